// End-to-end benchmark of one enricher shard, in-process: 2000-flow decoded messages like the
// decoder's (its maxFlowsPerMessage default; BENCH_FLOWS=500 for the earlier shape), every enricher on (static metadata, classification, sampling, embedded GeoIP, networks,
// AS numbers). Cases: `pipeline` (metadata + stages on decoded batches, no bus) and `actor` (the
// actor on the memory bus: decode, routing attempt without bmp-rib, enrich, encode, publish, ack).
// BENCH_CASE=pipeline runs the first case alone (for profiling).
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
/** Flows per message; a round is always 32000 flows (16 messages of 2000, 64 of 500). */
const FLOWS = Number(process.env.BENCH_FLOWS ?? 2000)
const MESSAGES = Math.max(1, Math.round(32000 / FLOWS))
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

/**
 * Traffic-like addresses: 90% drawn from 20000 known hosts by a Zipf-like popularity (rank k
 * weighs 1/k: a few servers, resolvers and CDNs carry most flows, a long tail the rest), 20%
 * new each time (scans, clients). Half of the hosts sit in a configured network; one in ten is IPv6.
 * A 500-flow batch then holds about 330 distinct addresses per side, a 2000-flow one about 1100,
 * the busiest repeating often.
 */
const HOSTS = 20000
const freshAddress = (): Uint8Array => {
  const bytes = new Uint8Array(16)
  if (random(10) === 0) {
    bytes.set([0x20, 0x01, 0x0d, 0xb8, random(256), random(256)])
    for (let i = 8; i < 16; i++) bytes[i] = random(256)
    return bytes
  }
  const p = prefixes[random(prefixes.length)]!
  const v4 = random(2) === 0 ? [p[0]!, p[1]!, p[2]!, random(256)] : [1 + random(222), random(256), random(256), random(256)]
  bytes.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4])
  return bytes
}
const hosts = Array.from({ length: HOSTS }, freshAddress)
const popularity = new Float64Array(HOSTS)
for (let k = 0, sum = 0; k < HOSTS; k++) popularity[k] = sum += 1 / (k + 1)
const address = (): Uint8Array => {
  if (random(10) === 0) return freshAddress()
  const x = (random(1 << 30) / (1 << 30)) * popularity[HOSTS - 1]!
  let lo = 0
  let hi = HOSTS - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (popularity[mid]! < x) lo = mid + 1
    else hi = mid
  }
  return hosts[lo]!
}

/** Interfaces per exporter (8 × 48 = 384 in all); a few uplinks carry most flows. */
const INTERFACES = 48
const ifIndex = (): number => 1 + Math.min(random(INTERFACES), random(INTERFACES), random(INTERFACES))

/** One decoded message as the decoder emits it: one exporter, a few missing sampling rates. */
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
    batch.setIP('SrcAddr', r, address())
    batch.setIP('DstAddr', r, address())
    batch.u32('InIf')[r] = ifIndex()
    batch.u32('OutIf')[r] = ifIndex()
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
      interfaces: Array.from({ length: INTERFACES }, (_, i) => ({ ifIndex: i + 1, name: `et-0/0/${i + 1}`, description: descriptions[i % descriptions.length], speed: 100000 })),
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

/** CPU time of this thread in microseconds (the machine is shared: wall time includes waiting for a core). */
const cpuMicros = (): number => {
  const threadCpu = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage
  const u = threadCpu !== undefined ? threadCpu.call(process) : process.cpuUsage()
  return u.user + u.system
}

/** Distinct values per batch, to show how the data repeats (printed to stderr). */
const describeData = () => {
  let src = 0
  let ifs = 0
  const all = new Set<string>()
  for (const bytes of messages) {
    const b = flowBatchCodec.decode(bytes)
    const seen = new Set<string>()
    const view = b.view('SrcAddr')!
    for (let r = 0; r < b.count; r++) seen.add(view.subarray(r * 16, r * 16 + 16).join('.'))
    src += seen.size
    const inIf = b.view('InIf')!
    for (let r = 0; r < b.count; r++) all.add(`${b.getIP('ExporterAddress', r).join('.')}/${inIf[r]}`)
  }
  ifs = all.size
  console.error(`# data: ${MESSAGES} messages of ${FLOWS} flows, ${EXPORTERS} exporters; ${Math.round(src / MESSAGES)} distinct source addresses per batch on average; ${ifs} distinct (exporter, in interface)`)
}

/**
 * Metadata and every stage over freshly decoded batches (decoding is not timed): the whole
 * pipeline per wall and per CPU second, then each step's CPU cost over the same batches
 * (`pipeline.<step>`, step by step across a round of batches, each with its own context).
 */
const benchPipeline = () => {
  describeData()
  const { stages, geoip } = buildStages(enricherConfig)
  const meta = enricherConfig.metadata
  const chain = new MetadataChain([staticProvider(meta)], configuredDefaults(meta), meta.unknown.policy)
  const pipeline = new EnrichPipeline(chain, stages)
  const contexts = messages.map(() => new EnrichContext())
  const metadataDrop = new Uint8Array(FLOWS)
  const fallback = new Uint8Array(16)
  const steps = new Map<string, number>([['metadata', 0], ...stages.map((s) => [s.name, 0] as [string, number])])
  const decodeAll = () => messages.map((bytes) => flowBatchCodec.decode(bytes))
  const wholeRound = () => {
    const batches = decodeAll()
    const wall = process.hrtime.bigint()
    const cpu = cpuMicros()
    for (const batch of batches) pipeline.run(batch, fallback, undefined, () => {})
    return { cpu: cpuMicros() - cpu, wall: Number(process.hrtime.bigint() - wall) / 1000 }
  }
  const stepRound = () => {
    const batches = decodeAll()
    let t = cpuMicros()
    for (const batch of batches) chain.apply(batch, batch.count, fallback, metadataDrop.fill(0), () => {})
    let u = cpuMicros()
    steps.set('metadata', steps.get('metadata')! + u - t)
    for (let i = 0; i < batches.length; i++) contexts[i]!.reset(batches[i]!.count)
    for (const stage of stages) {
      t = u
      for (let i = 0; i < batches.length; i++) stage.apply(batches[i]!, batches[i]!.count, contexts[i]!)
      u = cpuMicros()
      steps.set(stage.name, steps.get(stage.name)! + u - t)
    }
  }
  for (let i = 0; i < 20; i++) wholeRound()
  const sample = pipeline.run(flowBatchCodec.decode(messages[0]!), fallback, undefined, () => {})
  console.error(`# one batch: ${sample.batch.count} flows kept, dropped ${JSON.stringify(sample.dropped)}`)
  let flows = 0
  let cpuMicrosTotal = 0
  let wallMicros = 0
  const until = Date.now() + SECONDS * 1000
  while (Date.now() < until) {
    const { cpu, wall } = wholeRound()
    cpuMicrosTotal += cpu
    wallMicros += wall
    flows += MESSAGES * FLOWS
  }
  for (let i = 0; i < 10; i++) stepRound()
  for (const step of steps.keys()) steps.set(step, 0)
  let stepFlows = 0
  const stepsUntil = Date.now() + (SECONDS * 1000) / 2
  while (Date.now() < stepsUntil) {
    stepRound()
    stepFlows += MESSAGES * FLOWS
  }
  geoip.close()
  console.log(`bench enrich.pipeline ${Math.round(flows / (wallMicros / 1e6))} flows/s`)
  console.log(`bench enrich.pipeline-cpu ${Math.round(flows / (cpuMicrosTotal / 1e6))} flows/cpu-s`)
  for (const [step, us] of steps) console.log(`bench enrich.pipeline.${step} ${Math.round(stepFlows / (us / 1e6))} flows/cpu-s`)
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
if (process.env.BENCH_CASE !== 'pipeline') await benchActor()
process.exit(0)
