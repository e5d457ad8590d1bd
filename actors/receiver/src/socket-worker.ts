// A receiver socket thread: binds its listeners' UDP sockets and batches datagrams into RawPacketBatch
// buffers handed to the main thread, so pauses there (GC, bus work) never stop the socket reads.
import { parentPort, workerData } from 'node:worker_threads'
import { closeSockets, openSockets, type BoundSocket } from './sockets.js'
import { WireBatcher, type ExporterCounts } from './wire-batcher.js'
import type { FromSocketThread, SocketErrorReport, SocketThreadSetup, ToSocketThread } from './worker-protocol.js'

const setup = workerData as SocketThreadSetup
const port = parentPort!
const post = (message: FromSocketThread, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer)

const batcher = new WireBatcher({
  receiverName: (listener) => setup.receiverNames[listener] ?? listener,
  maxPackets: setup.maxPackets,
  maxBytes: setup.maxBytes,
  emit: (batch) => post({ type: 'batch', key: batch.key, buffer: batch.buffer, length: batch.length, packets: batch.packets }, [batch.buffer]),
})
const socketErrors: SocketErrorReport[] = []

/** Closes partial batches and reports the counts since the last tick (after the batches, in order). */
const tick = (): void => {
  batcher.flush()
  const counts: ExporterCounts[] = []
  batcher.takeCounts((c) => counts.push({ ...c }))
  if (counts.length > 0 || socketErrors.length > 0) post({ type: 'counts', counts, socketErrors: socketErrors.splice(0) })
}

let sockets: BoundSocket[] = []
let opened = false
try {
  sockets = await openSockets({
    listeners: setup.listeners,
    receiveBuffer: setup.receiveBuffer,
    onDatagram: (listener) => {
      const exporters = batcher.exportersOf(listener)
      return (payload, address, sourcePort) => batcher.datagramOf(exporters, listener, address, sourcePort, payload, Date.now())
    },
    warn: (message) => post({ type: 'warn', message }),
    onSocketError: (listener, error) => socketErrors.push({ listener, message: error.message }),
  })
  opened = true
} catch (error) {
  post({ type: 'failed', message: (error as Error).message })
  port.close()
}

if (opened) {
  const flushTimer = setInterval(tick, setup.flushIntervalMs)
  const idleTimer = setInterval(() => batcher.forgetIdle(Date.now() - setup.idleMs), 60_000)
  port.on('message', (message: ToSocketThread) => {
    if (message.type !== 'stop') return
    clearInterval(flushTimer)
    clearInterval(idleTimer)
    // Nothing more is read once the sockets are closed; what was read goes out with the last tick.
    void closeSockets(sockets).then(() => {
      tick()
      post({ type: 'stopped' })
      port.close()
    })
  })
  post({
    type: 'bound',
    sockets: sockets.map(({ listener, configured, host, port: bound, family, receiveBuffer }) => ({
      listener,
      configured,
      host,
      port: bound,
      family,
      receiveBuffer,
    })),
  })
}
