// The transport contract against a real Kafka broker (KRaft, started once for this file), plus
// what only Kafka has: topic provisioning, naks redelivering the rest of a partition in order,
// and the request/reply plumbing (responder groups, per-client reply topics).
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKafkaTransport, type KafkaTransportOptions } from '../../actors/runtime/src/bus/kafka.js'
import { TransportNoResponders, type Delivery, type StreamSpec, type Transport } from '../../actors/runtime/src/bus/transport.js'
import { kafkaUnavailable, startKafka, type KafkaBroker } from '../src/harness/kafka.js'
import { contractStream, defineTransportContract, spawnFixtureConsumer } from './suite.js'

const unavailable = await kafkaUnavailable()
let broker: KafkaBroker | undefined
// Filled in by beforeAll; factories read it when the tests run. The short session timeout
// makes a killed member's shards move within seconds.
const options: { brokers: string[]; sessionTimeoutMs: number } = { brokers: [], sessionTimeoutMs: 6_000 }

beforeAll(async () => {
  if (unavailable) return
  broker = await startKafka()
  options.brokers = broker.brokers
})
afterAll(async () => {
  await broker?.stop()
})

const connect = (extra: Partial<KafkaTransportOptions> = {}): Promise<Transport> => createKafkaTransport({ ...options, ...extra })

defineTransportContract('kafka', {
  create: () => connect(),
  spawnConsumer: (args) => spawnFixtureConsumer({ transport: 'kafka', options }, args),
  // Delivery marks in the committed offsets' metadata carry counts over to the next owner.
  features: { redeliveryCountAfterMemberLoss: true },
  ...(unavailable ? { skip: unavailable } : {}),
})

const text = new TextDecoder()
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

const waitFor = async (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await sleep(25)
  }
}

describe.skipIf(unavailable !== undefined)('kafka transport specifics', () => {
  let admin: Admin
  const clients: Transport[] = []
  const client = async (extra: Partial<KafkaTransportOptions> = {}): Promise<Transport> => {
    const t = await connect(extra)
    clients.push(t)
    return t
  }

  beforeAll(async () => {
    admin = new Kafka({ brokers: options.brokers, logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
  })
  afterAll(async () => {
    for (const t of clients.splice(0)) await t.close()
    await admin?.disconnect()
  })

  const topicConfig = async (topic: string): Promise<Map<string, string>> => {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    })
    return new Map(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))
  }
  const partitionCount = async (topic: string): Promise<number> => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
    return topics[0]!.partitions.length
  }

  it('provisions topics idempotently: grows partitions, never shrinks, updates retention, keeps operator settings', async () => {
    const t = await client()
    const small: StreamSpec = { ...contractStream('provision', 2), maxAgeSeconds: 3_600, maxBytes: 8 * 1024 * 1024 }
    const bucket = { natsBucket: 'unused', kafkaTopic: `flowbus-contract-bucket${randomBytes(4).toString('hex')}-v1`, replicas: 1 }
    await t.provision([small], [bucket])
    await t.provision([small], [bucket]) // a second run changes nothing and does not fail
    expect(await partitionCount(small.kafkaTopic)).toBe(2)
    let config = await topicConfig(small.kafkaTopic)
    expect(config.get('retention.ms')).toBe('3600000')
    expect(config.get('retention.bytes')).toBe(String(4 * 1024 * 1024)) // Kafka counts bytes per partition
    expect(config.get('cleanup.policy')).toBe('delete')
    expect(Number(config.get('max.message.bytes'))).toBeGreaterThan(t.maxMessageBytes)
    expect((await topicConfig(bucket.kafkaTopic)).get('cleanup.policy')).toBe('compact')

    // An operator tunes the topic by hand; a later provisioning must not undo it.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: small.kafkaTopic,
          configEntries: [
            { name: 'retention.ms', value: '3600000' },
            { name: 'retention.bytes', value: String(4 * 1024 * 1024) },
            { name: 'cleanup.policy', value: 'delete' },
            { name: 'max.message.bytes', value: config.get('max.message.bytes')! },
            { name: 'compression.type', value: 'zstd' },
          ],
        },
      ],
    })
    // The broker answers from its copy of the cluster metadata, which follows the controller
    // a moment later: wait until it shows each change before acting on or asserting it.
    await waitFor(
      () => 'the operator setting to show',
      async () => (await topicConfig(small.kafkaTopic)).get('compression.type') === 'zstd',
    )
    const grown: StreamSpec = { ...small, partitions: 4, maxAgeSeconds: 7_200, maxBytes: 0 }
    await t.provision([grown], [])
    await waitFor(
      () => 'the new partitions and retention to show',
      async () =>
        (await partitionCount(small.kafkaTopic)) === 4 &&
        (await topicConfig(small.kafkaTopic)).get('retention.ms') === '7200000',
    )
    config = await topicConfig(small.kafkaTopic)
    expect(config.get('retention.bytes')).toBe('-1')
    expect(config.get('compression.type')).toBe('zstd')

    await t.provision([small], []) // fewer partitions asked: the topic keeps its 4
    expect(await partitionCount(small.kafkaTopic)).toBe(4)
  })

  it('fails only the records the broker refuses, naming topic and shard, and keeps publishing in order', async () => {
    const [producer, consumer] = [await client(), await client()]
    const stream = contractStream('refused', 2)
    await producer.provision([stream], [])
    // An operator caps record batches on this topic below what the transport allows.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: stream.kafkaTopic, configEntries: [{ name: 'max.message.bytes', value: '2000' }] }],
    })
    await waitFor(
      () => 'the lower limit to show',
      async () => (await topicConfig(stream.kafkaTopic)).get('max.message.bytes') === '2000',
    )
    // Sent together: the broker refuses shard 0's batch and stores shard 1's.
    const [big, small] = await Promise.allSettled([
      producer.publish(stream, 0, 'big', new Uint8Array(5_000)),
      producer.publish(stream, 1, 'x', bytes('x')),
    ])
    expect(big.status).toBe('rejected')
    expect(String((big as PromiseRejectedResult).reason)).toMatch(new RegExp(`${stream.kafkaTopic} partition 0: MESSAGE_TOO_LARGE`))
    expect(small.status).toBe('fulfilled')
    // The refused batch used no sequence numbers: the shard goes on as if it never happened.
    for (const m of ['a', 'b', 'c']) await producer.publish(stream, 0, m, bytes(m))

    const got = new Map<number, string[]>()
    let count = 0
    const sub = await consumer.consume(
      stream,
      { group: `refused-${randomBytes(4).toString('hex')}`, maxInFlight: 16, maxInFlightBytes: 1 << 20, ackWaitMs: 60_000 },
      async (d: Delivery) => {
        got.set(d.shard, [...(got.get(d.shard) ?? []), text.decode(d.data)])
        count++
        await d.ack()
      },
    )
    try {
      await waitFor(() => `4 messages, got ${count}`, () => count >= 4)
      await sleep(200)
      expect(got.get(0)).toEqual(['a', 'b', 'c'])
      expect(got.get(1)).toEqual(['x'])
    } finally {
      await sub.close()
    }
  })

  it('after a nak, redelivers the rest of the shard in order, counting each message separately', async () => {
    const [producer, consumer] = [await client(), await client()]
    const stream = contractStream('naksequence', 1)
    await producer.provision([stream], [])
    const log: string[] = []
    const acked: string[] = []
    const sub = await consumer.consume(
      stream,
      { group: `nak-${randomBytes(4).toString('hex')}`, maxInFlight: 16, maxInFlightBytes: 1 << 20, ackWaitMs: 60_000 },
      async (d: Delivery) => {
        const data = text.decode(d.data)
        log.push(`${data}#${d.deliveryCount}`)
        if (data === 'b' && d.deliveryCount < 3) await d.nak(50)
        else {
          await d.ack()
          acked.push(data)
        }
      },
    )
    try {
      await waitFor(() => 'the shard assignment', () => sub.assignedShards().length === 1)
      for (const m of ['a', 'b', 'c', 'd']) await producer.publish(stream, 0, m, bytes(m))
      await waitFor(() => `a, b, c and d acked, log ${log.join(' ')}`, () => acked.length >= 4)
      await sleep(200)
      // Kafka keeps one order per partition: nothing after b is acked before b is.
      expect(acked).toEqual(['a', 'b', 'c', 'd'])
      expect(log.filter((entry) => entry.startsWith('b#'))).toEqual(['b#1', 'b#2', 'b#3'])
      // b is nak'ed inside its handler, so c and d were never handed out before b's redelivery.
      expect(log).toEqual(['a#1', 'b#1', 'b#2', 'b#3', 'c#1', 'd#1'])
    } finally {
      await sub.close()
    }
  })

  it('keeps unacked deliveries of the shards a member still owns across a rebalance, and moves the rest', async () => {
    const [producer, a, b] = [await client(), await client(), await client()]
    const stream = contractStream('rebalance', 4)
    const group = `rebalance-${randomBytes(4).toString('hex')}`
    const consume = { group, maxInFlight: 64, maxInFlightBytes: 1 << 20, ackWaitMs: 120_000 }
    await producer.provision([stream], [])
    const heldByA: Delivery[] = []
    const gotB: Delivery[] = []
    const subA = await a.consume(stream, consume, async (d) => {
      heldByA.push(d)
    })
    let subB: Awaited<ReturnType<Transport['consume']>> | undefined
    try {
      await waitFor(() => 'A to own all 4 shards', () => subA.assignedShards().length === 4)
      const first = Array.from({ length: 40 }, (_, i) => `r${i}`)
      for (const [i, m] of first.entries()) await producer.publish(stream, i % 4, m, bytes(m))
      await waitFor(() => `A to hold 40 deliveries, has ${heldByA.length}`, () => heldByA.length === 40)

      subB = await b.consume(stream, consume, async (d) => {
        gotB.push(d)
        await d.ack()
      })
      await waitFor(
        () => `the shards to be split, A ${subA.assignedShards()} B ${subB?.assignedShards()}`,
        () => subA.assignedShards().length > 0 && subB!.assignedShards().length > 0 && subA.assignedShards().length + subB!.assignedShards().length === 4,
      )
      const kept = new Set(subA.assignedShards())
      for (const d of heldByA) await d.ack() // too late for the shards that moved: B redoes those
      const moved = first.filter((_, i) => !kept.has(i % 4))
      await waitFor(
        () => `B to get the ${moved.length} messages of the shards that moved, has ${gotB.length}`,
        () => moved.every((m) => gotB.some((d) => text.decode(d.data) === m)),
      )
      const second = Array.from({ length: 20 }, (_, i) => `s${i}`)
      for (const [i, m] of second.entries()) await producer.publish(stream, i % 4, m, bytes(m))
      const all = () => [...heldByA, ...gotB].map((d) => text.decode(d.data))
      await waitFor(() => 'the 20 later messages', () => second.every((m) => all().includes(m)))
      await sleep(300)

      // A was never handed again what it still held on the shards it kept.
      expect(heldByA.slice(0, 40).every((d) => d.deliveryCount === 1)).toBe(true)
      expect(heldByA.length - 40).toBe(second.filter((_, i) => kept.has(i % 4)).length)
      // B got the moved ones once more than A did, then the later ones once.
      for (const d of gotB) {
        const data = text.decode(d.data)
        expect(d.deliveryCount, data).toBe(data.startsWith('r') ? 2 : 1)
      }
      expect(gotB.filter((d) => text.decode(d.data).startsWith('r')).length).toBe(moved.length)
    } finally {
      await subB?.close()
      await subA.close()
    }
  })

  it('reports missing responders once the last responder left, and removes its reply topic on close', async () => {
    const [server, requester] = [await connect(), await connect()]
    const subject = `contract.lookup${randomBytes(4).toString('hex')}.v1`
    try {
      const responder = await server.serve(subject, async (request) => bytes(`re:${text.decode(request)}`))
      const before = await admin.listTopics()
      expect(text.decode(await requester.request(subject, bytes('x'), 10_000))).toBe('re:x')
      const topics = await admin.listTopics()
      expect(topics).toContain(`flowbus-${subject.replace(/\./g, '-')}-requests`)
      const replyTopics = topics.filter((name) => name.startsWith('flowbus-replies-') && !before.includes(name))
      expect(replyTopics).toHaveLength(1)

      await responder.close()
      await sleep(1_100) // past the transport's cache of a group seen with members
      const error = await requester.request(subject, bytes('y'), 5_000).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(TransportNoResponders)

      await requester.close()
      expect(await admin.listTopics()).not.toContain(replyTopics[0])
    } finally {
      await requester.close()
      await server.close()
    }
  })
})

// A broker of its own: restarting the shared one would disturb the tests above.
describe.skipIf(unavailable !== undefined)('kafka transport across a broker restart', () => {
  let own: KafkaBroker | undefined
  beforeAll(async () => {
    own = await startKafka()
  })
  afterAll(async () => {
    await own?.stop()
  })

  it('stores every publish made around a clean restart once, in order per shard', { timeout: 180_000 }, async () => {
    const broker = own!
    const producer = await createKafkaTransport({ brokers: broker.brokers, sessionTimeoutMs: 6_000 })
    const consumer = await createKafkaTransport({ brokers: broker.brokers, sessionTimeoutMs: 6_000 })
    try {
      const stream = contractStream('restart', 2)
      await producer.provision([stream], [])
      const published: string[][] = [[], []]
      let restarted = false
      // Each shard publishes one message after another, before, during and after the restart:
      // requests in flight when the broker goes away fail, reconnect and are sent again.
      const publishing = [0, 1].map(async (shard) => {
        let extra = 5
        for (let i = 0; !restarted || extra-- > 0; i++) {
          const m = `${shard}:${i}`
          await producer.publish(stream, shard, m, bytes(m))
          published[shard]!.push(m)
          if (!restarted) await sleep(20)
        }
      })
      await waitFor(
        () => 'some messages before the restart',
        () => published[0]!.length >= 5 && published[1]!.length >= 5,
      )
      await broker.restart()
      restarted = true
      await Promise.all(publishing)

      const got: string[][] = [[], []]
      const total = published[0]!.length + published[1]!.length
      let count = 0
      const sub = await consumer.consume(
        stream,
        { group: `restart-${randomBytes(4).toString('hex')}`, maxInFlight: 64, maxInFlightBytes: 1 << 20, ackWaitMs: 60_000 },
        async (d: Delivery) => {
          got[d.shard]!.push(text.decode(d.data))
          count++
          await d.ack()
        },
      )
      try {
        await waitFor(() => `${total} messages, got ${count}`, () => count >= total)
        await sleep(500)
        // Retries carry the numbers the broker saw first, so it stores none of them twice.
        expect(got).toEqual(published)
      } finally {
        await sub.close()
      }
    } finally {
      await producer.close()
      await consumer.close()
    }
  })
})
