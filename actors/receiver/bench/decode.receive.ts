// Benchmark: the receiver actor taking 1400-byte datagrams over loopback from a sender process at
// fixed rates, publishing flows.raw on the memory bus to a consumer decoding every message in the
// main thread; prints received packets/s, packets lost, and CPU per datagram (main thread and others).
// Run: npm run bench -- decode   (BENCH_RECEIVE_RATES=50,100,150 in k packets/s, BENCH_RECEIVE_SECONDS=3,
// BENCH_RECEIVE_WORKERS=1: sockets per address, more than one needs SO_REUSEPORT, Node.js 22.12+;
// BENCH_RECEIVE_BASELINE=0 skips the bare-socket baseline run before each rate)
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createMemoryTransport } from '../../runtime/src/bus/memory.js'
import { readUdpDrops } from '../src/proc-net-udp.js'
import { receiverEndpoints } from '../src/actor.js'
import { startReceiver } from '../test/start.js'

const RATES = (process.env.BENCH_RECEIVE_RATES ?? '50,100,150').split(',').map(Number)
const SECONDS = Number(process.env.BENCH_RECEIVE_SECONDS ?? 3)
const WORKERS = Number(process.env.BENCH_RECEIVE_WORKERS ?? 1)
const SIZE = 1400
const sender = fileURLToPath(new URL('../test/udp-sender.ts', import.meta.url))
const BUFFER = 32 << 20

/**
 * The figures only mean something with the 32 MiB buffer the receiver asks for: as root, raise
 * net.core.rmem_max when it is lower (and say so); otherwise say that the buffer is capped.
 */
function ensureReceiveBufferLimit(): void {
  const file = '/proc/sys/net/core/rmem_max'
  let max: number
  try {
    max = Number(readFileSync(file, 'utf8'))
  } catch {
    console.error(`# cannot read ${file}: receive buffer limit unknown`)
    return
  }
  if (max >= BUFFER) {
    console.error(`# net.core.rmem_max is ${max}: the ${BUFFER}-byte receive buffer is granted`)
    return
  }
  if (process.getuid?.() === 0) {
    try {
      writeFileSync(file, String(BUFFER))
      console.error(`# raised net.core.rmem_max from ${max} to ${BUFFER} (running as root)`)
      return
    } catch (error) {
      console.error(`# could not raise net.core.rmem_max: ${(error as Error).message}`)
    }
  }
  console.error(
    `# WARNING: net.core.rmem_max is ${max}: figures below are measured with a receive buffer capped at ${max} bytes, not ${BUFFER} (sysctl -w net.core.rmem_max=${BUFFER})`,
  )
}
ensureReceiveBufferLimit()

const print = (name: string, value: number, unit: string): void =>
  console.log(`bench decode.${name} ${value >= 100 || unit === 'packets' ? Math.round(value) : value.toFixed(2)} ${unit}`)

/**
 * CPU seconds of this process's main thread and of all its other threads (the socket threads,
 * plus V8 and libuv helpers), from /proc/self/task (clock ticks of 10 ms: fine over seconds).
 */
function threadCpu(): { main: number; others: number } {
  let main = 0
  let others = 0
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    } catch {
      continue // the thread ended meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const seconds = (Number(fields[11]) + Number(fields[12])) / 100
    if (Number(tid) === process.pid) main += seconds
    else others += seconds
  }
  return { main, others }
}

interface SenderResult {
  sent: number
  errors: number
  seconds: number
}

function runSender(port: number, rate: number): Promise<SenderResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, sender, '127.0.0.1', String(port), String(rate), String(SECONDS), String(SIZE)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out) as SenderResult)
      else reject(new Error(`sender exited with ${code}: ${out}`))
    })
  })
}

/**
 * The same load into a bare dgram socket that only counts: what Node.js and this machine allow at
 * the moment, so the receiver's figures can be read against it on a loaded machine.
 */
async function baseline(k: number): Promise<void> {
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: BUFFER })
  let received = 0
  socket.on('message', () => received++)
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()))
  try {
    const cpuBefore = process.cpuUsage()
    const result = await runSender(socket.address().port, k * 1000)
    await new Promise((r) => setTimeout(r, 300))
    const cpu = process.cpuUsage(cpuBefore)
    print(`receive-${k}k-baseline`, received / result.seconds, 'packets/s')
    print(`receive-${k}k-baseline-drops`, result.sent - received, 'packets')
    print(`receive-${k}k-baseline-cpu`, (cpu.user + cpu.system) / Math.max(1, received), 'µs/packet')
  } finally {
    socket.close()
  }
}

for (const k of RATES) {
  if (process.env.BENCH_RECEIVE_BASELINE !== '0') await baseline(k)
  const transport = createMemoryTransport()
  const receiver = await startReceiver(
    { listeners: [{ name: 'netflow', listen: ['127.0.0.1:0'], workers: WORKERS }], receiveBuffer: '32MiB' },
    transport,
  )
  try {
    const endpoint = receiverEndpoints()[0]!
    const ports = new Set([endpoint.port])
    const dropsBefore = (await readUdpDrops(ports)).get(endpoint.port) ?? 0
    const cpuBefore = process.cpuUsage()
    const threadsBefore = threadCpu()
    const result = await runSender(endpoint.port, k * 1000)
    // Give the receiver time to empty its socket queue and publish the last batches.
    let last = -1
    while (receiver.packets() !== last) {
      last = receiver.packets()
      await new Promise((r) => setTimeout(r, 200))
    }
    const kernelDrops = ((await readUdpDrops(ports)).get(endpoint.port) ?? 0) - dropsBefore
    const received = receiver.packets()
    const cpu = process.cpuUsage(cpuBefore)
    const threadsAfter = threadCpu()
    if (k === RATES[0]) console.error(`# receive buffer granted: ${endpoint.receiveBuffer} bytes; ${WORKERS} socket(s); Node.js ${process.versions.node}`)
    console.error(
      `# ${k}k: sent ${result.sent} in ${result.seconds.toFixed(2)} s (${Math.round(result.sent / result.seconds)}/s), received ${received}, kernel drops ${kernelDrops}, send errors ${result.errors}`,
    )
    print(`receive-${k}k`, received / result.seconds, 'packets/s')
    print(`receive-${k}k-drops`, result.sent - received, 'packets')
    print(`receive-${k}k-kernel-drops`, kernelDrops, 'packets')
    // CPU of this process (sockets, batching, the memory bus and its consumer) per datagram: steadier than
    // rates on a shared machine; 1e6 / this is the rate one free core would sustain.
    print(`receive-${k}k-cpu`, (cpu.user + cpu.system) / Math.max(1, received), 'µs/packet')
    // Split by thread: the main thread (bus, the consumer's decode) and the rest (socket threads,
    // V8's GC helpers; threads that ended during the run are missed).
    print(`receive-${k}k-cpu-main`, ((threadsAfter.main - threadsBefore.main) * 1e6) / Math.max(1, received), 'µs/packet')
    print(`receive-${k}k-cpu-other-threads`, ((threadsAfter.others - threadsBefore.others) * 1e6) / Math.max(1, received), 'µs/packet')
  } finally {
    await receiver.stop()
    await transport.close()
  }
}
