// Enricher shards as separate OS processes, for any durable transport: two shards share
// flows.decoded, a third joins mid-stream, then one is killed with SIGKILL while flows keep
// coming. Every published flow must come out of flows.enriched, copies of a message byte-identical
// (what the clickhouse-writer's md5 deduplication needs), and every row must carry its own
// exporter's metadata.
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { type FlowBatch, flowBatchCodec, flowBatchToRows, flowsDecoded, flowsEnriched } from '@flowbus/bus-schemas'
import { type BusConfig, type BusService, type Transport, configSchema, connectTransport, loadConfig, makeBus, makeMetrics } from '@flowbus/runtime'
import { Effect, Exit, Scope } from 'effect'
import { expect } from 'vitest'
import { enricherActor } from '../../actors/enricher/src/actor.js'
import { decodedBatch } from '../../actors/enricher/test/flows.js'
import { metricSample } from '../src/harness/metrics.js'
import { type ServerProcess, freePort, removeDir, startProcess, tempDir } from '../src/harness/process.js'
import { waitFor as harnessWaitFor } from '../src/harness/process.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
// The compiled flowbus command, as deployed (`npm test` builds first).
const flowbus = join(root, 'actors/cli/bin/flowbus.js')

const EXPORTERS = 12
const FLOWS_PER_MESSAGE = 250
const MESSAGES_PER_PHASE = 36

const exporterAddress = (i: number) => `192.0.2.${i + 1}`
const exporterName = (address: string) => `edge-${address.split('.')[3]}`
const interfaceName = (address: string, ifIndex: number) => `${exporterName(address)}-port${ifIndex}`

export interface ShardingSetup {
  /** The bus section of every process's configuration (transport, servers, partitions). */
  readonly bus: Record<string, unknown>
}

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const waitFor = (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 90_000) =>
  harnessWaitFor(what, condition, timeoutMs, 100)

interface Shard {
  readonly name: string
  readonly process: ServerProcess
  metrics(): Promise<string>
}

const startShard = async (dir: string, name: string, configFile: string): Promise<Shard> => {
  const port = await freePort()
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_'))) as Record<string, string>
  const child = startProcess({
    name: `enricher ${name}`,
    command: process.execPath,
    args: [flowbus, 'actor', 'enricher', '--config', configFile],
    cwd: root,
    // Each shard its own /metrics port; the rest of the configuration is shared.
    env: { ...env, FLOWBUS_HTTP__LISTEN: `127.0.0.1:${port}` },
  })
  const base = `http://127.0.0.1:${port}`
  let exited: number | string | undefined
  void child.exited.then((code) => (exited = code))
  await waitFor(
    () => `enricher ${name} to be ready (exited: ${exited}):\n${child.output()}`,
    async () => {
      if (exited !== undefined) throw new Error(`enricher ${name} exited (${exited}):\n${child.output()}`)
      return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200
    },
  )
  void dir
  return { name, process: child, metrics: async () => (await fetch(`${base}/metrics`)).text() }
}

/** The whole scenario; assertions inside. */
export const shardingScenario = async (setup: ShardingSetup): Promise<void> => {
  const dir = await tempDir('enricher-sharding')
  const configFile = join(dir, 'flowbus.json')
  const exporters = Array.from({ length: EXPORTERS }, (_, i) => ({
    subnet: exporterAddress(i),
    name: exporterName(exporterAddress(i)),
    site: `site-${i}`,
    interfaces: [1, 2, 3].map((ifIndex) => ({ ifIndex, name: interfaceName(exporterAddress(i), ifIndex) })),
  }))
  writeFileSync(
    configFile,
    JSON.stringify({
      bus: { ...setup.bus, consumer: { ackWait: '3s' } },
      log: { level: 'warning', format: 'json' },
      // No bmp-rib in this test: routing lookups find no responder and back off.
      // The embedded GeoIP data is left out: it adds seconds to each start and nothing to sharding.
      enricher: { metadata: { exporters }, live: { oneIn: 0 }, geoip: { embedded: false } },
    }),
  )
  const busConfig = (loadConfig(configSchema([enricherActor]), { file: configFile, env: {} }) as { bus: BusConfig }).bus
  const transport: Transport = await connectTransport(busConfig)
  const bus: BusService = makeBus(transport, busConfig, makeMetrics())
  const scope = await run(Scope.make())
  const shards: Shard[] = []
  try {
    // What comes out: every row's id (Bytes), and each message's hash by the id of its first row.
    const rowsById = new Map<number, string>()
    const copies = new Map<number, number>()
    const messageHash = new Map<number, string>()
    const problems: string[] = []
    let enrichedMessages = 0
    const observe = (batch: FlowBatch) => {
      enrichedMessages++
      const rows = flowBatchToRows(batch)
      const hash = createHash('md5').update(flowBatchCodec.encode(batch)).digest('hex')
      const first = rows[0]!.Bytes as number
      const earlier = messageHash.get(first)
      if (earlier !== undefined && earlier !== hash) problems.push(`message starting at flow ${first} enriched twice differently`)
      messageHash.set(first, hash)
      for (const row of rows) {
        const id = row.Bytes as number
        const address = row.ExporterAddress as string
        if (row.ExporterName !== exporterName(address)) problems.push(`flow ${id} from ${address} named ${String(row.ExporterName)}`)
        if (row.InIfName !== interfaceName(address, row.InIf as number)) problems.push(`flow ${id} from ${address}: InIfName ${String(row.InIfName)}`)
        const text = JSON.stringify(row)
        const seen = rowsById.get(id)
        if (seen !== undefined && seen !== text) problems.push(`flow ${id} enriched twice differently`)
        rowsById.set(id, text)
        copies.set(id, (copies.get(id) ?? 0) + 1)
      }
    }
    await run(bus.subscribe(flowsEnriched, { group: `sharding-reader-${Date.now()}` }, (m) => Effect.sync(() => observe(m.value))).pipe(Scope.extend(scope)))

    let published = 0
    let message = 0
    const publishPhase = async (paceMs = 25, midway?: () => void) => {
      for (let i = 0; i < MESSAGES_PER_PHASE; i++, message++) {
        const address = exporterAddress(message % EXPORTERS)
        await run(bus.publish(flowsDecoded, address, decodedBatch(address, published, FLOWS_PER_MESSAGE)))
        published += FLOWS_PER_MESSAGE
        if (i === MESSAGES_PER_PHASE / 2) midway?.()
        if (paceMs > 0) await sleep(paceMs)
      }
    }

    const a = await startShard(dir, 'a', configFile)
    shards.push(a)
    const b = await startShard(dir, 'b', configFile)
    shards.push(b)
    await publishPhase()
    await waitFor(() => `flows enriched before the third shard (${rowsById.size}/${published})`, () => rowsById.size >= published / 2)

    // A third shard joins while flows keep coming; it takes partitions over.
    const joining = publishPhase()
    const c = await startShard(dir, 'c', configFile)
    shards.push(c)
    await joining
    await publishPhase()
    await waitFor(
      () => 'the third shard to enrich flows',
      async () => metricSample(await c.metrics(), 'flowbus_actor_received_total', { actor: 'enricher', kind: 'flows' }) > 0,
    )

    // Kill a working shard with messages in flight: frozen first (SIGSTOP), it keeps the messages
    // the broker hands it during a burst without acknowledging them; then SIGKILL. Its partitions
    // and those unacknowledged messages go to the others.
    expect(metricSample(await a.metrics(), 'flowbus_actor_received_total', { actor: 'enricher', kind: 'flows' })).toBeGreaterThan(0)
    a.process.child.kill('SIGSTOP')
    await publishPhase(0)
    await sleep(500)
    a.process.kill()
    expect(await a.process.exited).toBe('SIGKILL')
    await publishPhase()

    await waitFor(() => `every flow enriched (${rowsById.size}/${published})\n${problems.slice(0, 5).join('\n')}`, () => rowsById.size >= published, 120_000)
    // Redeliveries that could still come (ack waits, rebalances) settle before the final check.
    await sleep(4_000)
    expect(problems.slice(0, 10)).toEqual([])
    expect(rowsById.size).toBe(published)
    for (let id = 0; id < published; id++) if (!rowsById.has(id)) throw new Error(`flow ${id} never enriched`)
    const duplicated = [...copies.values()].filter((n) => n > 1).length
    console.info(
      `sharding on ${String(setup.bus.transport)}: ${published} flows in ${message} messages, ${enrichedMessages} enriched messages, ${duplicated} flows enriched more than once (byte-identical copies)`,
    )

    // The survivors did the work after the kill; each enriched within its own exporters only (checked per row above).
    for (const shard of [b, c]) {
      expect(metricSample(await shard.metrics(), 'flowbus_actor_received_total', { actor: 'enricher', kind: 'flows' })).toBeGreaterThan(0)
    }
  } finally {
    for (const shard of shards) await shard.process.stop()
    await run(Scope.close(scope, Exit.void))
    await transport.close()
    await removeDir(dir)
  }
}
