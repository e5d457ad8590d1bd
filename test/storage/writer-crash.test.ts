// The clickhouse-writer killed with SIGKILL mid-stream, on NATS JetStream and on Kafka, as a
// separate OS process: after a restart on the same chDB data directory, ClickHouse holds every
// published flow exactly once (the bus redelivers what was not acknowledged; the writer regroups
// the messages as its ledger recorded them, so the repeated inserts carry the same tokens).
import { type ChildProcess, spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { FlowBatch, flowsEnriched } from '@flowbus/bus-schemas'
import { type BusConfig, configSchema, connectTransport, loadConfig, makeBus, makeMetrics } from '@flowbus/runtime'
import { Effect } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clickhouseWriter } from '../../actors/clickhouse-writer/src/actor.js'
import { sampleFlowBatch } from '../../bus-schemas/test/fixtures/sample-flows.js'
import { type KafkaBroker, kafkaUnavailable, startKafka } from '../src/harness/kafka.js'
import { type NatsServer, ensureNatsServer, startNats } from '../src/harness/nats.js'
import { removeDir, skipReason, tempDir } from '../src/harness/process.js'
import type { WriterChildEvent } from './fixtures/writer.js'

const fixture = new URL('./fixtures/writer.ts', import.meta.url).pathname
const MESSAGES = 60
const FLOWS = 1000

/** Flow batch `i`: every flow has its own source address, so duplicates show as rows > distinct. */
const batchOf = (i: number): FlowBatch => {
  const batch = sampleFlowBatch(FLOWS, 1000 + i)
  for (let r = 0; r < FLOWS; r++) batch.setIPv4('SrcAddr', r, (0x0a000000 + i * FLOWS + r) >>> 0)
  return batch
}

interface WriterChild {
  readonly process: ChildProcess
  readonly counts: { rows: number; distinct: number }
  readonly ready: Promise<number>
  readonly exited: Promise<number | null>
}

const startChild = (configFile: string): WriterChild => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', fixture, configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const counts = { rows: 0, distinct: 0 }
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const ready = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: WriterChildEvent
      try {
        event = JSON.parse(line) as WriterChildEvent
      } catch {
        return // log lines of the kernel
      }
      if (event.event === 'ready') resolve(event.port)
      else if (event.event === 'count') Object.assign(counts, { rows: event.rows, distinct: event.distinct })
      else if (event.event === 'error') reject(new Error(`writer child: ${event.message}`))
    })
    void exited.then((code) => reject(new Error(`writer child exited (${code}) before it was ready: ${stderr}`)))
  })
  return { process: child, counts, ready, exited }
}

const until = async (check: () => boolean, what: string, timeoutMs = 90_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const crashTest = async (bus: Record<string, unknown>, dir: string) => {
  const configFile = join(dir, 'flowbus.yaml')
  const config = {
    bus: { ...bus, consumer: { ackWait: '3s' } },
    http: { listen: '127.0.0.1:0' },
    log: { level: 'warning' },
    // Grouped inserts, closed by rows (3 messages of one shard) or by time: a crash must still
    // store each flow once (groups are recorded by bus position before their insert).
    'clickhouse-writer': { batchRows: 3000, batchTime: '300ms' },
    clickhouse: { path: join(dir, 'clickhouse'), retention: { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 } },
  }
  await writeFile(configFile, JSON.stringify(config))
  const first = startChild(configFile)
  await first.ready
  const busConfig = (loadConfig(configSchema([clickhouseWriter]), { file: configFile }) as { bus: BusConfig }).bus
  const transport = await connectTransport(busConfig)
  const publisher = makeBus(transport, busConfig, makeMetrics())
  const publish = (i: number) => Effect.runPromise(publisher.publish(flowsEnriched, `192.0.2.${i % 16}`, batchOf(i)))
  try {
    // Publish at a pace, kill the writer once it stored some of it, publish the rest.
    let i = 0
    for (; i < MESSAGES / 2; i++) {
      await publish(i)
      await new Promise((resolve) => setTimeout(resolve, 30))
    }
    await until(() => first.counts.rows >= 5 * FLOWS, 'the first writer to store some flows')
    first.process.kill('SIGKILL')
    expect(await first.exited).toBe(null)
    const storedBeforeCrash = first.counts.rows
    expect(storedBeforeCrash).toBeLessThan(MESSAGES * FLOWS)
    for (; i < MESSAGES; i++) await publish(i)

    const second = startChild(configFile)
    await second.ready
    const total = MESSAGES * FLOWS
    await until(() => second.counts.rows >= total, `${total} rows after the restart (now ${second.counts.rows})`)
    // Let redeliveries that could still come settle, then check nothing was stored twice.
    await new Promise((resolve) => setTimeout(resolve, 4000))
    expect(second.counts).toEqual({ rows: total, distinct: total })
    second.process.kill('SIGTERM')
    expect(await second.exited).toBe(0)
  } finally {
    first.process.kill('SIGKILL')
    await transport.close()
  }
}

const natsSkip = await skipReason('nats-server', ensureNatsServer)
const kafkaSkip = await kafkaUnavailable()

describe.skipIf(natsSkip !== undefined)('clickhouse-writer killed mid-stream on NATS JetStream', () => {
  let nats: NatsServer
  let dir: string
  beforeAll(async () => {
    nats = await startNats()
    dir = await tempDir('writer-crash-nats')
  })
  afterAll(async () => {
    await nats?.stop()
    await removeDir(dir)
  })
  it('stores every published flow exactly once after a restart', async () => {
    await crashTest({ transport: 'nats', nats: { servers: [nats.url] } }, dir)
  }, 150_000)
})

describe.skipIf(kafkaSkip !== undefined)('clickhouse-writer killed mid-stream on Kafka', () => {
  let kafka: KafkaBroker
  let dir: string
  beforeAll(async () => {
    kafka = await startKafka()
    dir = await tempDir('writer-crash-kafka')
  })
  afterAll(async () => {
    await kafka?.stop()
    await removeDir(dir)
  })
  it('stores every published flow exactly once after a restart', async () => {
    await crashTest({ transport: 'kafka', kafka: { brokers: kafka.brokers } }, dir)
  }, 150_000)
})
