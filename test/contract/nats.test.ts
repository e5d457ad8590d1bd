// The transport contract against a real nats-server with JetStream on loopback, plus the
// NATS-specific behaviour the shared suite does not reach: limits from the server, large
// messages under a small byte budget, provisioning updates, escaped KV keys, responder errors,
// and the transport's own data connection (frames split across reads, status messages, close).
import { setTimeout as sleep } from 'node:timers/promises'
import { connect } from '@nats-io/transport-node'
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNatsTransport, type NatsTransportOptions } from '../../actors/runtime/src/bus/nats.js'
import { NatsWire, WireClosedError, type WireMsg } from '../../actors/runtime/src/bus/nats-wire.js'
import {
  TransportMessageTooLarge,
  type Delivery,
  type KvEntry,
  type Transport,
} from '../../actors/runtime/src/bus/transport.js'
import { ensureNatsServer, startNats, type NatsServer } from '../src/harness/nats.js'
import { skipReason } from '../src/harness/process.js'
import { contractStream, defineTransportContract, spawnFixtureConsumer } from './suite.js'

const skip = await skipReason('nats-server', ensureNatsServer)

// Members of a group judge each other dead after 4 s without heartbeat (the default); the suite's
// takeover tests wait for that.
let contractServer: NatsServer | undefined
const contractOptions = (): NatsTransportOptions => ({ servers: [contractServer!.url], name: 'contract' })

defineTransportContract('nats', {
  beforeAll: async () => {
    contractServer = await startNats()
  },
  afterAll: async () => {
    await contractServer?.stop()
  },
  create: () => createNatsTransport(contractOptions()),
  spawnConsumer: (args) => spawnFixtureConsumer({ transport: 'nats', options: contractOptions() }, args),
  features: { redeliveryCountAfterMemberLoss: true },
  skip,
})

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b))

const waitFor = async (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await sleep(20)
  }
}

describe.skipIf(skip !== undefined)('nats transport specifics', () => {
  // A small max_payload makes the server's own limit visible and large messages cheap.
  const MAX_PAYLOAD = 64 * 1024
  let server: NatsServer
  const clients: Transport[] = []
  const client = async (extra: Partial<NatsTransportOptions> = {}): Promise<Transport> => {
    const t = await createNatsTransport({ servers: [server.url], ...extra })
    clients.push(t)
    return t
  }

  beforeAll(async () => {
    server = await startNats({ maxPayload: MAX_PAYLOAD })
  })
  afterAll(async () => {
    for (const t of clients) await t.close().catch(() => {})
    await server?.stop()
  })

  it('takes its message limit from the server, capped by the option', async () => {
    const fromServer = await client()
    expect(fromServer.maxMessageBytes).toBeLessThan(MAX_PAYLOAD)
    expect(fromServer.maxMessageBytes).toBeGreaterThan(MAX_PAYLOAD - 4096)
    const capped = await client({ maxMessageBytes: 10_000 })
    expect(capped.maxMessageBytes).toBe(10_000)

    const stream = contractStream('limit', 1)
    await capped.provision([stream], [])
    await capped.publish(stream, 0, 'k', new Uint8Array(10_000))
    await expect(capped.publish(stream, 0, 'k', new Uint8Array(10_001))).rejects.toBeInstanceOf(TransportMessageTooLarge)
    // Headers count against the server's max_payload: a message at the limit with huge headers is refused too.
    const hugeHeader = { note: 'x'.repeat(4_000) }
    const error = await fromServer
      .publish(stream, 0, 'k', new Uint8Array(fromServer.maxMessageBytes), hugeHeader)
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TransportMessageTooLarge)
    expect((error as TransportMessageTooLarge).limit).toBe(MAX_PAYLOAD)
  })

  it('delivers messages larger than the byte budget one at a time, in order', async () => {
    const t = await client()
    const stream = contractStream('bigmsg', 2)
    await t.provision([stream], [])
    const got: string[] = []
    let outstanding = 0
    let maxOutstanding = 0
    const sub = await t.consume(
      stream,
      { group: 'big', maxInFlight: 50, maxInFlightBytes: 10_000, ackWaitMs: 30_000 },
      async (d: Delivery) => {
        outstanding++
        maxOutstanding = Math.max(maxOutstanding, outstanding)
        got.push(str(d.data.subarray(0, 8))!.trim())
        await sleep(1)
        outstanding--
        await d.ack()
      },
    )
    const sent: string[] = []
    for (let i = 0; i < 12; i++) {
      const data = new Uint8Array(30_000).fill(0x20)
      data.set(bytes(`big${i}`))
      sent.push(`big${i}`)
      await t.publish(stream, 0, 'exporter', data)
    }
    await waitFor(() => `12 large messages, got ${got.length}`, () => got.length >= sent.length)
    expect(got).toEqual(sent)
    expect(maxOutstanding).toBe(1)
    await sub.close()
  })

  it('wakes an idle shard and keeps per-shard order across pulls', async () => {
    const t = await client()
    const stream = contractStream('idle', 3)
    await t.provision([stream], [])
    const got = new Map<number, number[]>()
    const sub = await t.consume(
      stream,
      { group: 'idle.group with spaces', maxInFlight: 7, maxInFlightBytes: 1 << 20, ackWaitMs: 30_000 },
      async (d) => {
        got.set(d.shard, [...(got.get(d.shard) ?? []), Number(str(d.data))])
        await d.ack()
      },
    )
    expect([...sub.assignedShards()].sort()).toEqual([0, 1, 2])
    await sleep(1_500) // every shard's first pull has come back empty: pulls are now idle ones
    for (let i = 0; i < 60; i++) await t.publish(stream, i % 3, `k${i % 3}`, bytes(String(i)))
    await waitFor(() => `60 deliveries, got ${JSON.stringify([...got])}`, () => [...got.values()].flat().length >= 60)
    for (let shard = 0; shard < 3; shard++) {
      expect(got.get(shard)).toEqual(Array.from({ length: 20 }, (_, i) => i * 3 + shard))
    }
    await sub.close()
  })

  it('provisions idempotently and applies changed retention to an existing stream', async () => {
    const t = await client()
    const stream = contractStream('provision', 2)
    await t.provision([stream], [])
    await Promise.all([t.provision([stream], []), (await client()).provision([stream], [])])
    await t.provision([{ ...stream, maxAgeSeconds: 60, maxBytes: 1 << 20 }], [])
    const nc = await connect({ servers: server.url })
    try {
      const info = await (await jetstreamManager(nc)).streams.info(stream.natsStream)
      expect(info.config.subjects).toEqual([`${stream.base}.*`])
      expect(info.config.max_age).toBe(60 * 1e9)
      expect(info.config.max_bytes).toBe(1 << 20)
      expect(info.config.storage).toBe('file')
    } finally {
      await nc.close()
    }
  })

  it('refuses to publish to or consume from a stream nobody provisioned, naming it', async () => {
    const t = await client()
    const stream = contractStream('unprovisioned', 1)
    await expect(t.publish(stream, 0, 'k', bytes('x'))).rejects.toThrow(stream.natsStream)
    await expect(t.publish({ ...stream }, 5, 'k', bytes('x'))).rejects.toThrow(/shard 5/)
    const options = { group: 'g', maxInFlight: 1, maxInFlightBytes: 1024, ackWaitMs: 1_000 }
    await expect(t.consume(stream, options, async () => {})).rejects.toThrow(/not provisioned/)
  })

  it('fails a publish the stream refuses, with the server reason and the subject', async () => {
    const t = await client()
    const stream = contractStream('refusing', 1)
    await t.provision([stream], [])
    // A stream full under discard "new" refuses further messages (our own streams discard old ones).
    const nc = await connect({ servers: server.url })
    try {
      await (await jetstreamManager(nc)).streams.update(stream.natsStream, { discard: DiscardPolicy.New, max_msgs: 1 })
    } finally {
      await nc.close()
    }
    await t.publish(stream, 0, 'k', bytes('first'))
    const refused = t.publish(stream, 0, 'k', bytes('second'))
    await expect(refused).rejects.toThrow(`${stream.base}.0`)
    await expect(refused).rejects.toThrow(/maximum messages/)
    // The connection is fine: the next stream takes messages again.
    const other = contractStream('refusing-other', 1)
    await t.provision([other], [])
    await t.publish(other, 0, 'k', bytes('ok'))
  })

  it('gives up on a publish nobody acknowledges, naming the subject', async () => {
    const t = await client()
    const stream = contractStream('unacknowledged', 1)
    // A plain subscriber instead of a stream: the server routes the message but nobody answers it.
    const nc = await connect({ servers: server.url })
    const swallowed: string[] = []
    nc.subscribe(`${stream.base}.*`, {
      callback: (_e, msg) => {
        swallowed.push(msg.subject)
      },
    })
    await nc.flush()
    try {
      await expect(t.publish(stream, 0, 'k', bytes('lost'))).rejects.toThrow(
        new RegExp(`no JetStream acknowledgement .*${stream.base}\\.0`),
      )
      expect(swallowed).toEqual([`${stream.base}.0`])
    } finally {
      await nc.close()
    }
  })

  it('keeps KV keys that NATS would reject, unchanged', async () => {
    const t = await client()
    const bucket = { natsBucket: `flowbus_keys_${Date.now()}`, kafkaTopic: 'unused', replicas: 1 }
    await t.provision([], [bucket])
    const kv = await t.kv(bucket)
    const keys = ['2001:db8::1', '192.0.2.1:17', 'a..b', '.lead', 'trail.', 'eq=sign', 'space key', 'ünïcode', 'x*>']
    for (const [i, key] of keys.entries()) await kv.put(key, bytes(`v${i}`))
    for (const [i, key] of keys.entries()) expect(str(await kv.get(key)), key).toBe(`v${i}`)
    expect((await kv.keys()).sort()).toEqual([...keys].sort())
    const seen = new Map<string, string | undefined>()
    const watch = await kv.watch((e: KvEntry) => seen.set(e.key, str(e.value)))
    // watch() resolves after the current entries were delivered
    expect(new Set(seen.keys())).toEqual(new Set(keys))
    await kv.delete('2001:db8::1')
    await waitFor(() => 'the delete', () => seen.has('2001:db8::1') && seen.get('2001:db8::1') === undefined)
    await watch.close()
  })

  it('fails a request at once when the responder throws, naming the subject', async () => {
    const [server1, requester] = [await client(), await client()]
    const subject = `contract.failing${Date.now()}.v1`
    const responder = await server1.serve(subject, async () => {
      throw new Error('lookup table not loaded')
    })
    await expect(requester.request(subject, bytes('q'), 20_000)).rejects.toThrow(
      new RegExp(`${subject}.*lookup table not loaded`),
    )
    await responder.close()
  })

  it('loses nothing and keeps each key in order while members join and leave under load', { timeout: 120_000 }, async () => {
    const producer = await client()
    const stream = contractStream('churn', 8)
    await producer.provision([stream], [])
    const group = `churn-${Date.now()}`
    // Arrival order across all members (one process, one array): per key, first deliveries must
    // come in publish order; a message may come twice around a handover, never zero times.
    const arrivals: { member: string; key: string; seq: number }[] = []
    const member = async (name: string) => {
      const t = await client()
      return t.consume(stream, { group, maxInFlight: 32, maxInFlightBytes: 1 << 20, ackWaitMs: 5_000 }, async (d) => {
        const [key, seq] = str(d.data)!.split('#') as [string, string]
        arrivals.push({ member: name, key, seq: Number(seq) })
        await sleep(Math.random() < 0.1 ? 5 : 0)
        await d.ack()
      })
    }
    const keys = Array.from({ length: 16 }, (_, i) => `exporter-${i}`)
    const shardOfKey = (key: string) => keys.indexOf(key) % stream.partitions
    let published = 0
    const publishing = (async () => {
      for (let seq = 0; seq < 60; seq++) {
        for (const key of keys) await producer.publish(stream, shardOfKey(key), key, bytes(`${key}#${seq}`))
        published += keys.length
        await sleep(10)
      }
    })()
    const a = await member('a')
    await waitFor(() => 'a few deliveries', () => arrivals.length > 50)
    const b = await member('b')
    const c = await member('c')
    await waitFor(() => 'more deliveries', () => arrivals.length > published / 2)
    await a.close()
    await b.close()
    await publishing
    const total = keys.length * 60
    const seen = () => new Set(arrivals.map((x) => `${x.key}#${x.seq}`)).size
    await waitFor(() => `all ${total} messages, have ${seen()}`, () => seen() === total, 60_000)
    expect(c.assignedShards()).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    for (const key of keys) {
      const firsts: number[] = []
      const done = new Set<number>()
      for (const x of arrivals) {
        if (x.key !== key || done.has(x.seq)) continue
        done.add(x.seq)
        firsts.push(x.seq)
      }
      expect(firsts, key).toEqual(Array.from({ length: 60 }, (_, i) => i))
    }
    expect(new Set(arrivals.map((x) => x.member))).toEqual(new Set(['a', 'b', 'c']))
    await c.close()
  })

  it('carries on after the server restarts: consumers, responders and KV watches reconnect', { timeout: 120_000 }, async () => {
    const restarting = await startNats()
    const local: Transport[] = []
    try {
      const open = async () => {
        const t = await createNatsTransport({ servers: [restarting.url] })
        local.push(t)
        return t
      }
      const [producer, consumer, responder, watcher] = [await open(), await open(), await open(), await open()]
      const stream = contractStream('restart', 2)
      const bucket = { natsBucket: `flowbus_restart_${Date.now()}`, kafkaTopic: 'unused', replicas: 1 }
      await producer.provision([stream], [bucket])
      const got = new Set<string>()
      const sub = await consumer.consume(
        stream,
        { group: 'restart', maxInFlight: 16, maxInFlightBytes: 1 << 20, ackWaitMs: 5_000 },
        async (d) => {
          got.add(str(d.data)!)
          await d.ack()
        },
      )
      const subject = `contract.restart${Date.now()}.v1`
      await responder.serve(subject, async (req) => bytes(`re:${str(req)}`))
      const seen = new Map<string, string | undefined>()
      await (await watcher.kv(bucket)).watch((e) => seen.set(e.key, str(e.value)))
      const kv = await producer.kv(bucket)

      for (let i = 0; i < 10; i++) await producer.publish(stream, i % 2, 'k', bytes(`before${i}`))
      await kv.put('state', bytes('before'))
      await waitFor(() => `10 deliveries before the restart, got ${got.size}`, () => got.size === 10)

      await restarting.restart()

      // A publisher retries what failed while the connection was down (at-least-once producer).
      const retrying = async (work: () => Promise<unknown>) => {
        for (const deadline = Date.now() + 30_000; ; ) {
          try {
            return await work()
          } catch (error) {
            if (Date.now() > deadline) throw error
            await sleep(200)
          }
        }
      }
      for (let i = 0; i < 10; i++) await retrying(() => producer.publish(stream, i % 2, 'k', bytes(`after${i}`)))
      await waitFor(() => `20 deliveries after the restart, got ${got.size}`, () => got.size === 20, 60_000)
      expect(str((await retrying(() => producer.request(subject, bytes('ping'), 5_000))) as Uint8Array)).toBe('re:ping')
      await retrying(() => kv.put('state', bytes('after')))
      await waitFor(() => `the watch to see the new state, saw ${seen.get('state')}`, () => seen.get('state') === 'after', 60_000)
      expect(sub.assignedShards()).toEqual([0, 1])
      await sub.close()
    } finally {
      for (const t of local) await t.close().catch(() => {})
      await restarting.stop()
    }
  })

  it('names the servers it cannot reach', async () => {
    const error = await createNatsTransport({ servers: ['nats://127.0.0.1:1'], connectTimeoutMs: 1_000 }).catch(
      (e: unknown) => e,
    )
    expect(String(error)).toContain('127.0.0.1:1')
  })
})

describe.skipIf(skip !== undefined)('nats data connection', () => {
  let server: NatsServer
  const wires: NatsWire[] = []
  const wire = async (readBufferBytes?: number): Promise<NatsWire> => {
    const w = await NatsWire.connect({ servers: [server.url], connectTimeoutMs: 5_000, reconnectWaitMs: 200, readBufferBytes })
    wires.push(w)
    return w
  }
  /** Deterministic bytes, different for every message, so a misplaced split shows. */
  const payload = (size: number, seed: number): Uint8Array => {
    const data = new Uint8Array(size)
    for (let i = 0; i < size; i++) data[i] = (i * 31 + seed * 7) & 0xff
    return data
  }

  beforeAll(async () => {
    server = await startNats()
  })
  afterAll(async () => {
    for (const w of wires) await w.close()
    await server?.stop()
  })

  for (const readBufferBytes of [7, 4096, undefined]) {
    it(`carries every size byte for byte, with headers and replies, reading ${readBufferBytes ?? 'the default'} bytes at a time`, async () => {
      const [sender, receiver] = [await wire(), await wire(readBufferBytes)]
      const subject = `wire.sizes.${readBufferBytes ?? 'default'}`
      const got: WireMsg[] = []
      receiver.subscribe(`${subject}.*`, (msg) => got.push(msg))
      await receiver.flush()
      const sizes = [0, 1, 2, 13, 1000, 65_535, 65_536, 65_537, 300_000, 900_000]
      const header = 'NATS/1.0\r\nFlowbus-Key: exporter 192.0.2.1\r\nNote: ünïcode\r\n\r\n'
      for (const [i, size] of sizes.entries()) {
        if (i % 2 === 0) sender.publish(`${subject}.${i}`, payload(size, i))
        else sender.publish(`${subject}.${i}`, payload(size, i), `reply.${i}`, header, Buffer.byteLength(header))
        sender.publishText(`${subject}.text`, `+ACK ${i}`)
      }
      await waitFor(() => `${sizes.length * 2} messages, got ${got.length}`, () => got.length === sizes.length * 2)
      const data = got.filter((msg) => !msg.subject.endsWith('.text'))
      expect(data.map((msg) => msg.subject)).toEqual(sizes.map((_, i) => `${subject}.${i}`))
      for (const [i, msg] of data.entries()) {
        expect(Buffer.from(msg.data).equals(Buffer.from(payload(sizes[i]!, i))), `message ${i} of ${sizes[i]} bytes`).toBe(true)
        if (i % 2 === 0) {
          expect(msg.headers).toBeUndefined()
          expect(msg.reply).toBe('')
        } else {
          expect(msg.headers).toEqual({ 'Flowbus-Key': 'exporter 192.0.2.1', Note: 'ünïcode' })
          expect(msg.reply).toBe(`reply.${i}`)
        }
        expect(msg.status).toBe(0)
      }
      const texts = got.filter((msg) => msg.subject.endsWith('.text')).map((msg) => str(msg.data))
      expect(texts).toEqual(sizes.map((_, i) => `+ACK ${i}`))
    })
  }

  it('reports status messages: no responders for a request nobody serves', async () => {
    const w = await wire()
    const replies: WireMsg[] = []
    w.subscribe('wire.status.reply', (msg) => replies.push(msg))
    w.publish('wire.status.nobody', bytes('anyone?'), 'wire.status.reply')
    await waitFor(() => 'the no responders status', () => replies.length === 1)
    expect(replies[0]!.status).toBe(503)
    expect(replies[0]!.data.length).toBe(0)
  })

  it('reconnects after a server restart, subscriptions and queued publishes included', { timeout: 60_000 }, async () => {
    const restarting = await startNats()
    const w = await NatsWire.connect({ servers: [restarting.url], connectTimeoutMs: 5_000, reconnectWaitMs: 200 })
    try {
      const got: string[] = []
      w.subscribe('wire.restart', (msg) => got.push(str(msg.data)!))
      w.publishText('wire.restart', 'before')
      await waitFor(() => 'the message before the restart', () => got.length === 1)
      await restarting.restart()
      // Queued while the connection is down or coming back, sent once it is up with its subscription.
      w.publish('wire.restart', bytes('after'))
      await waitFor(() => `the message after the restart, got ${JSON.stringify(got)}`, () => got.length === 2, 30_000)
      expect(got).toEqual(['before', 'after'])
    } finally {
      await w.close()
      await restarting.stop()
    }
  })

  it('authenticates with the transport credentials and names the server that refuses them', { timeout: 60_000 }, async () => {
    const secured = await startNats({ user: 'flow', pass: 's3cret' })
    try {
      const refused = await NatsWire.connect({
        servers: [secured.url],
        user: 'flow',
        pass: 'wrong',
        connectTimeoutMs: 5_000,
        reconnectWaitMs: 200,
      }).catch((e: unknown) => e)
      expect(String(refused)).toMatch(/authorization violation/i)
      expect(String(refused)).toContain(secured.url)

      const t = await createNatsTransport({ servers: [secured.url], user: 'flow', pass: 's3cret' })
      try {
        const stream = contractStream('secured', 1)
        await t.provision([stream], [])
        const got: string[] = []
        const sub = await t.consume(stream, { group: 'secured', maxInFlight: 4, maxInFlightBytes: 1 << 20, ackWaitMs: 5_000 }, async (d) => {
          got.push(str(d.data)!)
          await d.ack()
        })
        await t.publish(stream, 0, 'k', bytes('through both connections'))
        await waitFor(() => 'the delivery', () => got.length === 1)
        expect(got).toEqual(['through both connections'])
        await sub.close()
      } finally {
        await t.close()
      }
    } finally {
      await secured.stop()
    }
  })

  it('stops delivering to a closed subscription and refuses publishes once closed', async () => {
    const w = await wire()
    const got: string[] = []
    const sid = w.subscribe('wire.closing', (msg) => got.push(str(msg.data)!))
    w.publishText('wire.closing', 'one')
    await waitFor(() => 'the first message', () => got.length === 1)
    w.unsubscribe(sid)
    w.publishText('wire.closing', 'two')
    await w.flush()
    await w.close()
    await w.closed()
    expect(got).toEqual(['one'])
    expect(() => w.publish('wire.closing', bytes('three'))).toThrow(WireClosedError)
  })
})
