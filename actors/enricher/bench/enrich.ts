// End-to-end benchmark of one enricher shard, in-process: 500-flow decoded messages like the
// decoder's, every enricher on (static metadata, classification, sampling, embedded GeoIP, networks,
// AS numbers). Cases: `pipeline` (metadata + stages on decoded batches, no bus) and `actor` (the
// actor on the memory bus: decode, routing attempt without bmp-rib, enrich, encode, publish, ack).
import { FlowBatch, flowBatchCodec, flowsDecoded, flowsEnriched, preEncoded } from '@flowbus/bus-schemas'
import { type HttpEndpoint, configSchema, loadConfig, makeBus, makeMetrics, runActors, type ResolvedConfig } from '@flowbus/runtime'
import { Effect, Fiber, Scope } from 'effect'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryBus } from '../../runtime/src/bus/memory.js'
import { buildStages, enricherActor } from '../src/actor.js'
import type { EnricherConfig } from '../src/config.js'
import { MetadataChain } from '../src/metadata/chain.js'
import { configuredDefaults, staticProvider } from '../src/metadata/static.js'
import { EnrichPipeline } from '../src/pipeline.js'
import { EnrichContext } from '../src/stages.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const FLOWS = 500
const MESSAGES = 64
const EXPORTERS = 8

let state = 7
const random = (n: number): number => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0
  return Math.floor((state / 4294967296) * n)
}

// 1000 configured networks (/24 in 10/8 and public space) with names, sites and AS numbers.
const networks: Record<string, unknown> = {}
for (let i = 0; i < 1000; i++) networks[`${i % 4 === 0 ? 10 : 20 + (i % 180)}.${(i * 7) % 256}.${(i * 13) % 256}.0/24`] = { name: `net${i}`, site: `s${i % 30}`, asn: 64600 + (i % 50) }
const prefixes = Object.keys(networks).map((p) => p.split('.').slice(0, 3).map(Number))

/** Traffic-like addresses: 60% from 3000 busy hosts, the rest anywhere, half inside a configured network. */
const hosts: number[] = []
const address = (): number => {
  if (hosts.length === 3000 && random(10) < 6) return hosts[random(3000)]!
  const p = prefixes[random(prefixes.length)]!
  const a = random(2) === 0 ? ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | random(256)) >>> 0 : ((1 + random(222)) * 16777216 + random(16777216)) >>> 0
  if (hosts.length < 3000) hosts.push(a)
  return a
}

/** One decoded message as the decoder emits it: one exporter, 24 interfaces, a few missing rates. */
const decodedMessage = (exporter: number): Uint8Array => {
  const batch = new FlowBatch(FLOWS)
  batch.appendRows(FLOWS)
  const exporters = batch.ip('ExporterAddress')
  const probe = new FlowBatch(1)
  probe.appendRow()
  probe.setIPv4('ExporterAddress', 0, (0xc0000200 + exporter) >>> 0)
  const exporterBytes = probe.getIP('ExporterAddress', 0)
  for (let r = 0; r < FLOWS; r++) {
    exporters.set(exporterBytes, r * 16)
    batch.setIPv4('SrcAddr', r, address())
    batch.setIPv4('DstAddr', r, address())
    batch.u32('InIf')[r] = 1 + random(24)
    batch.u32('OutIf')[r] = 1 + random(24)
    batch.u32('SamplingRate')[r] = random(5) === 0 ? 0 : 1000
    batch.u32('SrcAS')[r] = random(3) === 0 ? 0 : 64512 + random(2000)
    batch.u64('Bytes')[r] = 64 + random(1400)
    batch.u64('Packets')[r] = 1 + random(10)
    batch.u16('SrcPort')[r] = random(65536)
    batch.u16('DstPort')[r] = [443, 80, 53, 22][random(4)]!
    batch.u8('Proto')[r] = 6
    batch.u32('TimeReceived')[r] = 1_760_000_000
  }
  return flowBatchCodec.encode(batch)
}

const descriptions = ['Transit: Cogent', 'Transit: Lumen', 'IX: FranceIX', 'PNI: Google', 'core', 'customer 42']
const section = {
  metadata: {
    exporters: Array.from({ length: EXPORTERS }, (_, e) => ({
      subnet: `192.0.2.${e}`,
      name: `edge${e}.par`,
      site: 'par1',
      interfaces: Array.from({ length: 20 }, (_, i) => ({ ifIndex: i + 1, name: `et-0/0/${i + 1}`, description: descriptions[i % descriptions.length], speed: 100000 })),
    })),
  },
  classification: {
    exporterRules: ['Exporter.Name matches "^edge" -> role = "edge"'],
    interfaceRules: [
      'Interface.Description matches "^Transit: (\\S+)" -> provider = $1, connectivity = "transit", boundary = external',
      'Interface.Description matches "^(IX|PNI): (\\S+)" -> provider = $2, connectivity = $1, boundary = external',
      'Interface.Description == "core" -> boundary = internal',
    ],
  },
  sampling: { defaultSamplingRate: { '192.0.2.0/24': 2000 } },
  networks,
  live: { oneIn: 100 },
  http: undefined,
}

const resolve = (bus: Record<string, unknown>): ResolvedConfig => {
  const dir = mkdtempSync(join(tmpdir(), 'enrich-bench-'))
  try {
    const file = join(dir, 'flowbus.json')
    const { http: _, ...enricher } = section
    writeFileSync(file, JSON.stringify({ bus, http: { listen: '' }, log: { level: 'warning' }, enricher }))
    return loadConfig(configSchema([enricherActor]), { file, env: {} }) as ResolvedConfig
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const messages = Array.from({ length: MESSAGES }, (_, i) => decodedMessage(i % EXPORTERS))
const config = resolve({})
const enricherConfig = config.enricher as EnricherConfig

/**
 * Metadata and every stage over freshly decoded batches; only the pipeline is timed, whole
 * (`pipeline`) and step by step (`pipeline.<step>`, each step's share of the same runs).
 */
const benchPipeline = () => {
  const { stages, geoip } = buildStages(enricherConfig)
  const meta = enricherConfig.metadata
  const chain = new MetadataChain([staticProvider(meta)], configuredDefaults(meta), meta.unknown.policy)
  // The same steps as EnrichPipeline.run, timed one by one (a second pipeline checks the whole).
  const pipeline = new EnrichPipeline(chain, stages)
  const context = new EnrichContext()
  const metadataDrop = new Uint8Array(FLOWS)
  const fallback = new Uint8Array(16)
  const steps = new Map<string, number>([['metadata', 0], ...stages.map((s) => [s.name, 0] as [string, number])])
  const round = (timed: boolean) => {
    let busy = 0
    for (const bytes of messages) {
      const whole = flowBatchCodec.decode(bytes)
      const start = process.hrtime.bigint()
      pipeline.run(whole, fallback, undefined, () => {})
      busy += Number(process.hrtime.bigint() - start)
      const batch = flowBatchCodec.decode(bytes)
      context.reset(batch.count)
      let t = process.hrtime.bigint()
      chain.apply(batch, batch.count, fallback, metadataDrop, () => {})
      let u = process.hrtime.bigint()
      if (timed) steps.set('metadata', steps.get('metadata')! + Number(u - t))
      for (const stage of stages) {
        t = u
        stage.apply(batch, batch.count, context)
        u = process.hrtime.bigint()
        if (timed) steps.set(stage.name, steps.get(stage.name)! + Number(u - t))
      }
    }
    return busy
  }
  for (let i = 0; i < 20; i++) round(false)
  let flows = 0
  let busyNs = 0
  const until = Date.now() + SECONDS * 1000
  while (Date.now() < until) {
    busyNs += round(true)
    flows += MESSAGES * FLOWS
  }
  geoip.close()
  console.log(`bench enrich.pipeline ${Math.round(flows / (busyNs / 1e9))} flows/s`)
  for (const [step, ns] of steps) console.log(`bench enrich.pipeline.${step} ${Math.round(flows / (ns / 1e9))} flows/s`)
}

/** The actor on the memory bus: bytes in, bytes out, throughput per CPU second of this process. */
const benchActor = async () => {
  const memory = createMemoryBus({ maxStreamMessages: 1_000_000, maxStreamBytes: 8 * 1024 ** 3 })
  const bus = makeBus(memory.connect(), config.bus, makeMetrics())
  const scope = Effect.runSync(Scope.make())
  let enriched = 0
  await Effect.runPromise(
    bus.subscribe(preEncoded(flowsEnriched), { group: 'bench-reader' }, () => Effect.sync(() => void enriched++)).pipe(Scope.extend(scope)),
  )
  let endpoint: HttpEndpoint | undefined
  const fiber = Effect.runFork(runActors({ actors: [enricherActor], config, transport: memory.connect(), onReady: (e) => (endpoint = e) }))
  while (endpoint === undefined) await new Promise((r) => setTimeout(r, 20))
  const input = preEncoded(flowsDecoded)
  const publishAll = async (rounds: number) => {
    for (let i = 0; i < rounds; i++) for (let m = 0; m < MESSAGES; m++) await Effect.runPromise(bus.publish(input, `192.0.2.${m % EXPORTERS}`, messages[m]!))
  }
  const waitEnriched = async (count: number) => {
    while (enriched < count) await new Promise((r) => setImmediate(r))
  }
  await publishAll(10)
  await waitEnriched(10 * MESSAGES)
  // Timed: messages are published ahead (the bus holds them) and the clock stops at the last enriched one.
  const rounds = Math.max(10, Math.round(SECONDS * 40))
  const cpu = process.cpuUsage()
  const start = performance.now()
  const base = enriched
  const publishing = publishAll(rounds)
  await waitEnriched(base + rounds * MESSAGES)
  await publishing
  const seconds = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  const flows = rounds * MESSAGES * FLOWS
  console.log(`bench enrich.actor ${Math.round(flows / seconds)} flows/s`)
  console.log(`bench enrich.actor-cpu ${Math.round(flows / ((used.user + used.system) / 1e6))} flows/cpu-s`)
  await Effect.runPromise(Fiber.interrupt(fiber))
}

benchPipeline()
await benchActor()
process.exit(0)
