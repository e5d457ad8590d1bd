// The receiver actor over real UDP on loopback (IPv4 and IPv6): every datagram reaches flows.raw
// with its exporter, port, protocol and payload, batches close by size and by timer, metrics count
// per exporter, shutdown publishes the last batch, and bad configuration is refused with a reason.
import { execFileSync } from 'node:child_process'
import dgram from 'node:dgram'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FlowProtocol, formatIP } from '@flowbus/bus-schemas'
import { ConfigError, configSchema, loadConfig, type Transport } from '@flowbus/runtime'
import { createMemoryTransport } from '../../runtime/src/bus/memory.js'
import { createNatsTransport } from '../../runtime/src/bus/nats.js'
import { ensureNatsServer, skipReason, startNats, type NatsServer } from '@flowbus/test/harness'
import { Schema } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { receiverActor, receiverEndpoints } from '../src/actor.js'
import { parseListenAddress, ReceiverConfig } from '../src/config.js'
import { parseProcNetUdp, readUdpDrops } from '../src/proc-net-udp.js'
import { nodeHasReusePort } from '../src/sockets.js'
import { startReceiver, until, type RunningReceiver } from './start.js'

/** First bytes that make each protocol's version field, then a marker naming sender and sequence. */
const headers: Record<string, number[]> = {
  v5: [0, 5],
  v9: [0, 9],
  ipfix: [0, 10],
  sflow: [0, 0, 0, 5],
}
const protocolOf: Record<string, FlowProtocol> = {
  v5: FlowProtocol.NETFLOW_V5,
  v9: FlowProtocol.NETFLOW_V9,
  ipfix: FlowProtocol.IPFIX,
  sflow: FlowProtocol.SFLOW_V5,
}

const datagram = (kind: string, sender: string, seq: number): Buffer =>
  Buffer.concat([Buffer.from(headers[kind]!), Buffer.from(`|${sender}|${kind}|${seq}|`), Buffer.alloc(seq % 300, seq & 0xff)])

interface Sender {
  readonly address: string
  readonly port: number
  send(payload: Buffer, port: number, host: string): Promise<void>
  close(): void
}

async function sender(address: string): Promise<Sender> {
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4')
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, address, () => resolve())
  })
  return {
    address,
    port: socket.address().port,
    send: (payload, port, host) => new Promise((resolve, reject) => socket.send(payload, port, host, (e) => (e ? reject(e) : resolve()))),
    close: () => socket.close(),
  }
}

/** Loopback listeners on kernel-chosen ports. */
const loopback = (extra: object = {}) => ({
  listeners: [
    { name: 'netflow', listen: ['127.0.0.1:0', '[::1]:0'] },
    { name: 'sflow', listen: ['127.0.0.1:0'] },
  ],
  receiveBuffer: '4MiB',
  ...extra,
})

const endpointsOf = (listener: string, family: 4 | 6): number => {
  const found = receiverEndpoints().find((e) => e.listener === listener && e.family === family)
  if (!found) throw new Error(`no ${listener} IPv${family} endpoint`)
  return found.port
}

async function metricValue(receiver: RunningReceiver, name: string, labels: Record<string, string>): Promise<number> {
  const metric = receiver.metrics.registry.getSingleMetric(name)
  if (!metric) throw new Error(`no metric ${name}`)
  const { values } = await metric.get()
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((sum, v) => sum + v.value, 0)
}

/** Sends `count` datagrams of each kind from each sender, in order per sender, a few at a time. */
async function blast(senders: Sender[], kinds: string[], count: number, target: (s: Sender, kind: string) => [number, string]) {
  const expected: { address: string; port: number; kind: string; payload: Buffer }[] = []
  for (let seq = 0; seq < count; seq++) {
    await Promise.all(
      senders.flatMap((s) =>
        kinds.map((kind) => {
          const payload = datagram(kind, `${s.address}:${s.port}`, seq)
          expected.push({ address: s.address, port: s.port, kind, payload })
          const [port, host] = target(s, kind)
          return s.send(payload, port, host)
        }),
      ),
    )
  }
  return expected
}

function checkDelivered(receiver: RunningReceiver, expected: { address: string; port: number; kind: string; payload: Buffer }[]) {
  const got = new Map<string, number>()
  const lastSeq = new Map<string, number>()
  for (const { key, batch } of receiver.published) {
    for (const p of batch.packets) {
      // The partition key is the exporter address; every datagram of a message is from that exporter.
      expect(formatIP(p.exporterAddress)).toBe(key)
      const text = Buffer.from(p.payload).toString('latin1')
      const [, sender, kind, seq] = text.split('|')
      expect(protocolOf[kind!]).toBe(p.protocol)
      expect(sender).toBe(`${key}:${p.exporterPort}`)
      expect(p.receivedNs).toBeGreaterThan(0n)
      const id = `${sender}|${kind}`
      got.set(`${id}|${seq}`, (got.get(`${id}|${seq}`) ?? 0) + 1)
      // Order per exporter and port is kept (the decoder relies on it).
      expect(Number(seq)).toBeGreaterThan(lastSeq.get(id) ?? -1)
      lastSeq.set(id, Number(seq))
    }
  }
  for (const e of expected) {
    const text = e.payload.toString('latin1').split('|')
    expect(got.get(`${text[1]}|${text[2]}|${text[3]}`), `${text[1]} ${text[2]} ${text[3]}`).toBe(1)
  }
  expect(receiver.packets()).toBe(expected.length)
}

describe('receiver on the memory bus', () => {
  it('publishes every datagram from several IPv4 and IPv6 exporters, closing batches by timer', async () => {
    const transport = createMemoryTransport()
    // Batches never fill up: only the 10 ms timer can close them.
    const receiver = await startReceiver(loopback({ batchMaxPackets: 100_000, batchMaxBytes: '64MiB' }), transport)
    const senders = await Promise.all(['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.3', '::1'].map(sender))
    try {
      const v4 = endpointsOf('netflow', 4)
      const v6 = endpointsOf('netflow', 6)
      const sflow = endpointsOf('sflow', 4)
      const expected = await blast(senders, ['v5', 'v9', 'ipfix', 'sflow'], 40, (s, kind) =>
        s.address === '::1' ? [v6, '::1'] : [kind === 'sflow' ? sflow : v4, '127.0.0.1'],
      )
      await until(() => receiver.packets() >= expected.length, () => `${expected.length} datagrams, got ${receiver.packets()}`)
      checkDelivered(receiver, expected)
      expect(new Set(receiver.published.map((p) => p.key))).toEqual(new Set(['127.0.0.1', '127.0.0.2', '127.0.0.3', '::1']))
      expect(receiver.published.every((p) => p.batch.receiver.endsWith('/netflow') || p.batch.receiver.endsWith('/sflow'))).toBe(true)

      // Counters per exporter are added at each flush tick; the emitted count once the publish returned.
      for (let i = 0; i < 500; i++) {
        if ((await metricValue(receiver, 'flowbus_actor_emitted_total', { actor: 'receiver', kind: 'packets' })) >= expected.length) break
        await new Promise((r) => setTimeout(r, 10))
      }
      const perSender = 4 * 40
      expect(await metricValue(receiver, 'flowbus_receiver_packets_total', { exporter: '127.0.0.2' })).toBe(perSender)
      expect(await metricValue(receiver, 'flowbus_receiver_packets_total', { exporter: '127.0.0.3' })).toBe(2 * perSender)
      expect(await metricValue(receiver, 'flowbus_receiver_packets_total', { exporter: '::1', listener: 'netflow' })).toBe(perSender)
      expect(await metricValue(receiver, 'flowbus_receiver_packets_total', { exporter: '127.0.0.1', listener: 'sflow' })).toBe(40)
      const bytes2 = expected.filter((e) => e.address === '127.0.0.2').reduce((n, e) => n + e.payload.length, 0)
      expect(await metricValue(receiver, 'flowbus_receiver_bytes_total', { exporter: '127.0.0.2' })).toBe(bytes2)
      expect(await metricValue(receiver, 'flowbus_actor_received_total', { actor: 'receiver', kind: 'packets' })).toBe(expected.length)
      expect(await metricValue(receiver, 'flowbus_actor_emitted_total', { actor: 'receiver', kind: 'packets' })).toBe(expected.length)
      expect(await metricValue(receiver, 'flowbus_actor_emitted_total', { actor: 'receiver', kind: 'batches' })).toBe(receiver.published.length)
      expect(await metricValue(receiver, 'flowbus_receiver_receive_buffer_bytes', { listener: 'netflow' })).toBeGreaterThan(0)
      // The kernel-drop gauge has one series per listening port, read from /proc/net/udp{,6} at scrape.
      const drops = (await receiver.metrics.registry.getSingleMetric('flowbus_receiver_kernel_drops')!.get()).values
      expect(new Set(drops.map((d) => Number(d.labels.port)))).toEqual(new Set([v4, v6, sflow]))
      expect(drops.every((d) => d.value === 0)).toBe(true)
    } finally {
      for (const s of senders) s.close()
      await receiver.stop()
      await transport.close()
    }
  })

  it('closes batches at the size limit, counts unknown protocols, and flushes the last batch at shutdown', async () => {
    const transport = createMemoryTransport()
    // A 10 s timer: only the size limit or shutdown can close a batch during this test.
    const receiver = await startReceiver(loopback({ batchMaxPackets: 7, flushInterval: '10s' }), transport)
    const a = await sender('127.0.0.5')
    try {
      const port = endpointsOf('netflow', 4)
      const expected = await blast([a], ['v9'], 30, () => [port, '127.0.0.1'])
      for (let i = 0; i < 3; i++) await a.send(Buffer.from('garbage, not a flow protocol'), port, '127.0.0.1')
      // 30 datagrams: four full batches of 7 are published while running, the last 2 wait.
      await until(() => receiver.packets() >= 28, () => `28 datagrams, got ${receiver.packets()}`)
      await new Promise((r) => setTimeout(r, 100))
      expect(receiver.published.map((p) => p.batch.packets.length)).toEqual([7, 7, 7, 7])
      await receiver.stop()
      expect(receiver.published.map((p) => p.batch.packets.length)).toEqual([7, 7, 7, 7, 2])
      checkDelivered(receiver, expected)
      expect(await metricValue(receiver, 'flowbus_receiver_errors_total', { exporter: '127.0.0.5', reason: 'unknown-protocol' })).toBe(3)
      expect(await metricValue(receiver, 'flowbus_receiver_packets_total', { exporter: '127.0.0.5' })).toBe(33)
      expect(await metricValue(receiver, 'flowbus_actor_dropped_total', { actor: 'receiver', reason: 'unknown-protocol' })).toBe(3)
    } finally {
      a.close()
      await receiver.stop()
      await transport.close()
    }
  })

  it('bounds the memory held by messages waiting for a stalled bus, dropping and counting beyond it', async () => {
    // The bus stalls: publishes wait on a gate, so messages pile up in the receiver's queue.
    const memory = createMemoryTransport()
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const transport: Transport = Object.assign(Object.create(memory) as Transport, {
      publish: (...args: Parameters<Transport['publish']>) => gate.then(() => memory.publish(...args)),
    })
    // One datagram per message, count limit out of reach: only the byte bound can refuse messages.
    const receiver = await startReceiver(
      loopback({ batchMaxPackets: 1, publishers: 1, maxQueuedMessages: 4096, maxQueuedBytes: '1MiB' }),
      transport,
    )
    const a = await sender('127.0.0.6')
    try {
      const sent = 200
      await blast([a], ['v9'], sent, () => [endpointsOf('netflow', 4), '127.0.0.1'])
      const dropped = () => metricValue(receiver, 'flowbus_actor_dropped_total', { actor: 'receiver', reason: 'bus-backlog' })
      // Wait until the actor has taken in every datagram: the drops are then final (the gate is shut).
      let received = 0
      for (let tries = 0; received < sent && tries < 400; tries++) {
        await new Promise((r) => setTimeout(r, 50))
        received = await metricValue(receiver, 'flowbus_receiver_packets_total', { exporter: '127.0.0.6' })
      }
      expect(received, 'datagrams the receiver took in').toBe(sent)
      // Warnings are logged by a forked fiber: give it time on a busy machine.
      await until(() => receiver.warnings.some((w) => w.includes('maxQueuedBytes')), () => 'a backlog warning naming maxQueuedBytes')
      const queuedWhileStalled = await metricValue(receiver, 'flowbus_receiver_queued_messages', {})
      expect(queuedWhileStalled, 'messages queued while the bus stalls').toBeGreaterThan(0)
      expect(queuedWhileStalled, 'messages queued while the bus stalls').toBeLessThan(sent)
      const refused = await dropped()
      expect(refused).toBeGreaterThan(0)
      open()
      // Nothing unaccounted for: every datagram was either published or counted as dropped.
      await until(() => receiver.packets() === sent - refused, () => `${sent - refused} datagrams published, got ${receiver.packets()}`)
      await receiver.stop()
      expect(await dropped()).toBe(refused)
    } finally {
      open()
      a.close()
      await receiver.stop()
      await memory.close()
    }
  })

  it('warns when the kernel caps the receive buffer, naming net.core.rmem_max', async () => {
    const max = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'))
    const transport = createMemoryTransport()
    const receiver = await startReceiver({ listeners: [{ name: 'netflow', listen: ['127.0.0.1:0'] }], receiveBuffer: max * 4 }, transport)
    try {
      expect(receiver.warnings.join('\n')).toMatch(/capped the UDP receive buffer at \d+ bytes .*net\.core\.rmem_max/)
      expect(await metricValue(receiver, 'flowbus_receiver_receive_buffer_bytes', {})).toBeLessThan(max * 4)
    } finally {
      await receiver.stop()
      await transport.close()
    }
  })

  it('opens several sockets per address with SO_REUSEPORT where Node.js has it, else one with a warning', async () => {
    const transport = createMemoryTransport()
    const receiver = await startReceiver({ listeners: [{ name: 'netflow', listen: ['127.0.0.1:0'], workers: 3 }], receiveBuffer: '1MiB' }, transport)
    const a = await sender('127.0.0.9')
    try {
      const sockets = receiverEndpoints()
      if (nodeHasReusePort()) {
        expect(sockets).toHaveLength(3)
        expect(new Set(sockets.map((s) => s.port)).size).toBe(1)
      } else {
        expect(sockets).toHaveLength(1)
        expect(receiver.warnings.join('\n')).toContain('has no SO_REUSEPORT for UDP')
      }
      const expected = await blast([a], ['ipfix'], 20, () => [sockets[0]!.port, '127.0.0.1'])
      await until(() => receiver.packets() >= expected.length, () => `${expected.length} datagrams, got ${receiver.packets()}`)
      checkDelivered(receiver, expected)
    } finally {
      a.close()
      await receiver.stop()
      await transport.close()
    }
  })

  it('refuses to start when a port is taken, naming the listener and address', async () => {
    const holder = dgram.createSocket('udp4')
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', () => r()))
    const transport = createMemoryTransport()
    try {
      const taken = `127.0.0.1:${holder.address().port}`
      await expect(startReceiver({ listeners: [{ name: 'sflow', listen: [taken] }] }, transport)).rejects.toThrow(
        `receiver listener "sflow" cannot bind UDP ${taken}`,
      )
    } finally {
      holder.close()
      await transport.close()
    }
  })
})

describe('receiver configuration', () => {
  it('defaults to NetFlow, IPFIX and sFlow on IPv4 and IPv6', () => {
    const config = Schema.decodeUnknownSync(ReceiverConfig)({})
    expect(config.listeners.map((l) => [l.name, ...l.listen])).toEqual([
      ['netflow', '0.0.0.0:2055', '[::]:2055'],
      ['ipfix', '0.0.0.0:4739', '[::]:4739'],
      ['sflow', '0.0.0.0:6343', '[::]:6343'],
    ])
    expect(config.receiveBuffer).toBe(32 * 1024 * 1024)
    expect(config.flushInterval).toBe(50)
  })

  it('parses listen addresses and says what is wrong with bad ones', () => {
    expect(parseListenAddress('[2001:db8::1]:6343')).toEqual({ host: '2001:db8::1', port: 6343, family: 6 })
    expect(parseListenAddress('192.0.2.1:2055')).toEqual({ host: '192.0.2.1', port: 2055, family: 4 })
    expect(parseListenAddress('0.0.0.0:70000')).toMatch(/port 70000 is out of range/)
    expect(parseListenAddress('300.1.1.1:2055')).toMatch(/"300.1.1.1" is not an IP address/)
    expect(parseListenAddress('::1:2055')).toMatch(/not host:port/)
    expect(parseListenAddress('localhost:2055')).toMatch(/not an IP address/)
  })

  it('a bad configuration file names the key and the problem', () => {
    const file = join(tmpdir(), `flowbus-receiver-${process.pid}.yaml`)
    const schema = configSchema([receiverActor])
    for (const [listen, problem] of [
      ['0.0.0.0:99999', 'port 99999 is out of range'],
      ['1.2.3:2055', 'is not an IP address'],
    ] as const) {
      writeFileSync(file, `receiver:\n  listeners:\n    - name: netflow\n      listen: ["${listen}"]\n`)
      let error: unknown
      try {
        loadConfig(schema, { file, env: {} })
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as Error).message).toContain('receiver.listeners')
      expect((error as Error).message).toContain(problem)
    }
    writeFileSync(file, `receiver:\n  listeners:\n    - name: a\n      listen: ["0.0.0.0:1"]\n    - name: a\n      listen: ["0.0.0.0:2"]\n`)
    expect(() => loadConfig(schema, { file, env: {} })).toThrow(/listener name "a" is used twice/)
  })
})

describe('/proc/net/udp', () => {
  // Captured on this machine: a socket on 127.0.0.1:45794 and one on [::1]:47119 that were sent
  // 200 datagrams each without reading, with a 4 KiB buffer (197 dropped each).
  const udp4 = readFileSync(new URL('fixtures/proc-net-udp.txt', import.meta.url), 'utf8')
  const udp6 = readFileSync(new URL('fixtures/proc-net-udp6.txt', import.meta.url), 'utf8')

  it('parses IPv4 and IPv6 socket lines with their drops', () => {
    const v4 = parseProcNetUdp(udp4)
    expect(v4.map((e) => [formatIP(e.localAddress), e.localPort, e.drops])).toEqual([
      ['127.0.0.1', 40204, 0],
      ['127.0.0.1', 45794, 197],
      ['0.0.0.0', 54587, 0],
    ])
    expect(v4[1]!.receiveQueue).toBe(0x1b00)
    expect(v4[1]!.inode).toBe(360601)
    const v6 = parseProcNetUdp(udp6)
    expect(v6.map((e) => [formatIP(e.localAddress), e.localPort, e.drops])).toEqual([
      ['::', 55995, 0],
      ['::1', 47119, 197],
    ])
    expect(parseProcNetUdp('garbage\n  12: nonsense')).toEqual([])
  })

  it('sums drops of the ports asked for, across both files', async () => {
    const dir = tmpdir()
    const f4 = join(dir, `flowbus-udp-${process.pid}`)
    const f6 = join(dir, `flowbus-udp6-${process.pid}`)
    writeFileSync(f4, udp4)
    writeFileSync(f6, udp6)
    const drops = await readUdpDrops(new Set([45794, 47119, 1]), [f4, f6, join(dir, 'absent')])
    expect([...drops]).toEqual([
      [45794, 197],
      [47119, 197],
    ])
  })

  it('sees the drops of a real socket that is not read', async () => {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4096 })
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()))
    const port = socket.address().port
    try {
      // A child sends while this thread is blocked in execFileSync, so nothing reads the socket meanwhile.
      const send = `const s=require('dgram').createSocket('udp4');let n=0;for(let i=0;i<200;i++)s.send(Buffer.alloc(1000),${port},'127.0.0.1',()=>{if(++n===200)s.close()})`
      execFileSync(process.execPath, ['-e', send])
      const drops = await readUdpDrops(new Set([port]))
      expect(drops.get(port)).toBeGreaterThan(0)
    } finally {
      socket.close()
    }
  })
})

const natsSkip = await skipReason('nats-server', ensureNatsServer)

describe.skipIf(natsSkip !== undefined)('receiver on NATS JetStream', () => {
  let server: NatsServer
  beforeAll(async () => {
    server = await startNats()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('publishes every datagram to flows.raw on a real nats-server', async () => {
    const transport = await createNatsTransport({ servers: [server.url], name: 'receiver-test' })
    const receiver = await startReceiver(loopback(), transport, { transport: 'nats' })
    const senders = await Promise.all(['127.0.0.7', '127.0.0.8', '::1'].map(sender))
    try {
      const v4 = endpointsOf('netflow', 4)
      const v6 = endpointsOf('netflow', 6)
      const expected = await blast(senders, ['v9', 'ipfix', 'sflow'], 30, (s) => (s.address === '::1' ? [v6, '::1'] : [v4, '127.0.0.1']))
      await until(() => receiver.packets() >= expected.length, () => `${expected.length} datagrams, got ${receiver.packets()}`)
      checkDelivered(receiver, expected)
    } finally {
      for (const s of senders) s.close()
      await receiver.stop()
      await transport.close()
    }
  })
})

