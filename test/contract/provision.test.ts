// `flowbus provision` against real brokers: every catalogue stream, its dead-letter stream and
// every state bucket exist afterwards with the configured shards and retention; running it
// again changes nothing.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import kafkajs from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { kafkaUnavailable, startKafka, type KafkaBroker } from '../src/harness/kafka.js'
import { ensureNatsServer, startNats, type NatsServer } from '../src/harness/nats.js'
import { skipReason } from '../src/harness/process.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_')))
const provision = (extra: Record<string, string>) =>
  spawnSync(process.execPath, [join(root, 'actors/cli/bin/flowbus.js'), 'provision'], {
    cwd: root,
    env: { ...env, FLOWBUS_BUS__PARTITIONS: '4', FLOWBUS_BUS__RETENTION__FLOWS__MAX_AGE: '2h', ...extra },
    encoding: 'utf8',
    timeout: 120_000,
  })

const natsSkip = await skipReason('nats-server', ensureNatsServer)
const kafkaSkip = await kafkaUnavailable()

describe.skipIf(natsSkip !== undefined)('flowbus provision on NATS', () => {
  let server: NatsServer
  beforeAll(async () => {
    server = await startNats()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('creates the streams and buckets of the catalogue, idempotently', async () => {
    const extra = { FLOWBUS_BUS__TRANSPORT: 'nats', FLOWBUS_BUS__NATS__SERVERS: `[${server.url}]` }
    const first = provision(extra)
    expect(first.stderr).toBe('')
    expect(first.status).toBe(0)
    expect(first.stdout).toContain('stream FLOWBUS_FLOWS_DECODED_V1 (flows.decoded.v1.*): 4 shards, 1 replicas, keeps 2h')
    expect(first.stdout).toContain('bucket flowbus_metadata_interfaces_v1')
    const second = provision(extra)
    expect(second.status).toBe(0)
    expect(second.stdout).toBe(first.stdout)

    const nc = await connect({ servers: server.url })
    try {
      const jsm = await jetstreamManager(nc)
      const decoded = await jsm.streams.info('FLOWBUS_FLOWS_DECODED_V1')
      expect(decoded.config.subjects).toEqual(['flows.decoded.v1.*'])
      expect(decoded.config.max_age).toBe(2 * 3600 * 1e9)
      const dead = await jsm.streams.info('FLOWBUS_DEADLETTER_FLOWS_DECODED_V1')
      expect(dead.config.subjects).toEqual(['deadletter.flows.decoded.v1.*'])
      const names: string[] = []
      for await (const s of jsm.streams.list()) names.push(s.config.name)
      expect(names).toContain('KV_flowbus_metadata_interfaces_v1')
      expect(names).toContain('FLOWBUS_FLOWS_RAW_V1')
    } finally {
      await nc.close()
    }
  })

  it('reports an unreachable server and exits non-zero', () => {
    const result = provision({ FLOWBUS_BUS__TRANSPORT: 'nats', FLOWBUS_BUS__NATS__SERVERS: '[nats://127.0.0.1:1]' })
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(/^flowbus: cannot connect to NATS at nats:\/\/127\.0\.0\.1:1: connection refused\n$/)
  })
})

describe.skipIf(kafkaSkip !== undefined)('flowbus provision on Kafka', () => {
  let broker: KafkaBroker
  beforeAll(async () => {
    broker = await startKafka()
  })
  afterAll(async () => {
    await broker?.stop()
  })

  it('creates the topics of the catalogue with their partitions, idempotently', async () => {
    const extra = { FLOWBUS_BUS__TRANSPORT: 'kafka', FLOWBUS_BUS__KAFKA__BROKERS: `[${broker.brokers[0]}]` }
    const first = provision(extra)
    expect(first.status).toBe(0)
    expect(first.stdout).toContain('stream flowbus-flows-enriched-v1: 4 shards')
    expect(provision(extra).status).toBe(0)
    const admin = new kafkajs.Kafka({ brokers: broker.brokers, logLevel: kafkajs.logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      const topics = await admin.fetchTopicMetadata({ topics: ['flowbus-flows-enriched-v1', 'flowbus-deadletter-flows-enriched-v1'] })
      const partitions = Object.fromEntries(topics.topics.map((t) => [t.name, t.partitions.length]))
      expect(partitions).toEqual({ 'flowbus-flows-enriched-v1': 4, 'flowbus-deadletter-flows-enriched-v1': 1 })
      expect(await admin.listTopics()).toContain('flowbus-templates-v1')
    } finally {
      await admin.disconnect()
    }
  })
})
