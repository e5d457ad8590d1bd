// The receiver's socket threads: a thread that dies is reported (error log, counter) and restarted
// on the same port, so datagrams flow again; stopping during the restart pause leaves nothing behind.
import dgram from 'node:dgram'
import { describe, expect, it } from 'vitest'
import { createMemoryTransport } from '../../runtime/src/bus/memory.js'
import { receiverEndpoints, receiverSocketThreads } from '../src/actor.js'
import { startReceiver, until, type RunningReceiver } from './start.js'

const v9 = (seq: number): Buffer => Buffer.concat([Buffer.from([0, 9]), Buffer.from(`|seq|${seq}|`)])

async function send(port: number, from: number, count: number): Promise<void> {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()))
  try {
    for (let i = from; i < from + count; i++) await new Promise<void>((r, j) => socket.send(v9(i), port, '127.0.0.1', (e) => (e ? j(e) : r())))
  } finally {
    socket.close()
  }
}

async function threadErrors(receiver: RunningReceiver): Promise<number> {
  const { values } = await receiver.metrics.registry.getSingleMetric('flowbus_actor_errors_total')!.get()
  return values.filter((v) => v.labels.actor === 'receiver' && v.labels.kind === 'socket-thread').reduce((n, v) => n + v.value, 0)
}

describe('receiver socket threads', () => {
  it('restarts a thread that died, on the same port, and says so', async () => {
    const transport = createMemoryTransport()
    const receiver = await startReceiver({ listeners: [{ name: 'netflow', listen: ['127.0.0.1:0'] }], receiveBuffer: '1MiB' }, transport)
    try {
      const port = receiverEndpoints()[0]!.port
      await send(port, 0, 20)
      await until(() => receiver.packets() >= 20, () => `20 datagrams, got ${receiver.packets()}`)

      await receiverSocketThreads()[0]!.kill()
      await until(() => receiverSocketThreads().length === 1, () => 'the socket thread to be restarted')
      expect(await threadErrors(receiver)).toBe(1)
      expect(receiverEndpoints().map((e) => e.port)).toEqual([port])

      await send(port, 20, 20)
      await until(() => receiver.packets() >= 40, () => `40 datagrams, got ${receiver.packets()}`)
      const seqs = receiver.published.flatMap((p) => p.batch.packets.map((d) => Number(Buffer.from(d.payload).toString('latin1').split('|')[2])))
      expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i))
    } finally {
      await receiver.stop()
      await transport.close()
    }
  })

  it('stops cleanly while a dead thread waits for its restart', async () => {
    const transport = createMemoryTransport()
    const receiver = await startReceiver({ listeners: [{ name: 'sflow', listen: ['127.0.0.1:0'] }], receiveBuffer: '1MiB' }, transport)
    try {
      await receiverSocketThreads()[0]!.kill()
      await until(() => receiverSocketThreads().length === 0, () => 'the socket thread to be gone')
      await receiver.stop()
      expect(await threadErrors(receiver)).toBe(1)
      // No thread comes back after the stop (the restart timer was cleared).
      await new Promise((r) => setTimeout(r, 1500))
      expect(receiverSocketThreads()).toHaveLength(0)
      expect(receiverEndpoints()).toHaveLength(0)
    } finally {
      await receiver.stop()
      await transport.close()
    }
  })
})
