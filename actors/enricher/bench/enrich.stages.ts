// Benchmark of the enrichment stages alone: flows/s per CPU second of each stage over 2000-flow
// batches like the decoder's, plus raw network lookups/s. The actor's end-to-end figure is bench/enrich.ts.
// BENCH_UNIFORM=1: every address distinct (no cache helps); default: addresses repeat as in traffic.
import { FlowBatch, parseIP } from '@flowbus/bus-schemas'
import { ASNStage } from '../src/asn/stage.js'
import { ClassificationStage } from '../src/classification/stage.js'
import { GeoIPStage } from '../src/geoip/stage.js'
import { NetworkStage } from '../src/networks/stage.js'
import { parseNetworks } from '../src/networks/table.js'
import { SamplingStage } from '../src/sampling/stage.js'
import { EnrichContext, type EnrichStage } from '../src/stages.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const FLOWS = 2000
const BATCHES = 16

// xorshift32: deterministic addresses and choices, the same on every run.
let state = 20261121
const random = (n: number): number => {
  state ^= state << 13
  state ^= state >>> 17
  state ^= state << 5
  return Math.floor(((state >>> 0) / 4294967296) * n)
}

// 2000 networks: /24s and /20s in 10/8 and public space, 300 IPv6 /48s, like a large operator's list.
const networks: Record<string, unknown> = {}
for (let i = 0; i < 1700; i++) {
  const len = random(4) === 0 ? 20 : 24
  const a = random(3) === 0 ? 10 : 1 + random(222)
  const b = random(256)
  const c = len === 20 ? random(16) * 16 : random(256)
  networks[`${a}.${b}.${c}.0/${len}`] = { name: `net-${i}`, role: ['servers', 'users', 'dmz'][i % 3], site: `site-${i % 40}`, tenant: `t${i % 7}`, asn: 64512 + (i % 100) }
}
for (let i = 0; i < 300; i++) networks[`2001:db8:${random(65536).toString(16)}::/48`] = { name: `v6-${i}`, region: 'eu' }
const table = parseNetworks(networks, 'bench')
const ipv4Prefixes = Object.keys(networks).filter((k) => !k.includes(':'))

/**
 * Addresses as flows have them: by default 70% from 2000 busy hosts (servers, resolvers, CDNs)
 * and 30% anywhere; BENCH_UNIFORM=1 draws every address afresh (no repetition: the worst case).
 */
const UNIFORM = process.env.BENCH_UNIFORM === '1'
const busyHosts: string[] = []
function address(): string {
  if (!UNIFORM && busyHosts.length === 2000 && random(10) < 7) return busyHosts[random(2000)]!
  const a = freshAddress()
  if (busyHosts.length < 2000) busyHosts.push(a)
  return a
}

/** A new address: half inside a configured network, the rest anywhere; one in ten IPv6. */
function freshAddress(): string {
  if (random(10) === 0) return `2001:db8:${random(65536).toString(16)}::${random(65536).toString(16)}`
  if (random(2) === 0) {
    const p = ipv4Prefixes[random(ipv4Prefixes.length)]!.split('/')[0]!.split('.')
    return `${p[0]}.${p[1]}.${p[2]}.${random(256)}`
  }
  return `${1 + random(222)}.${random(256)}.${random(256)}.${random(256)}`
}

const descriptions = ['Transit: Cogent', 'Transit: Lumen', 'IX: FranceIX', 'PNI: Google', 'core link', 'customer 42', '']
function makeBatch(exporter: number): FlowBatch {
  const batch = new FlowBatch(FLOWS)
  batch.appendRows(FLOWS)
  for (let r = 0; r < FLOWS; r++) {
    batch.setIP('SrcAddr', r, parseIP(address()))
    batch.setIP('DstAddr', r, parseIP(address()))
    batch.setIPv4('ExporterAddress', r, (192 << 24) | (0 << 16) | (2 << 8) | exporter)
    batch.setString('ExporterName', r, `par0${exporter}-edge.example.net`)
    for (const side of ['In', 'Out'] as const) {
      const ifIndex = 1 + random(24)
      batch.u32(`${side}If`)[r] = ifIndex
      batch.setString(`${side}IfName`, r, `Te0/0/${ifIndex}`)
      batch.setString(`${side}IfDescription`, r, descriptions[ifIndex % descriptions.length]!)
      batch.u32(`${side}IfSpeed`)[r] = 10000
    }
    batch.u32('SrcAS')[r] = random(3) === 0 ? 65000 : random(70000)
    batch.u32('SamplingRate')[r] = random(4) === 0 ? 0 : 1000
  }
  return batch
}
const batches = Array.from({ length: BATCHES }, (_, i) => makeBatch(1 + (i % 8)))

function measure(name: string, unit: string, perPass: number, pass: () => void): void {
  for (let i = 0; i < 20; i++) pass() // warm-up
  const start = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  let done = 0
  let elapsed = 0
  while (elapsed < SECONDS) {
    for (let i = 0; i < 5; i++) pass()
    done += 5 * perPass
    elapsed = Number(process.hrtime.bigint() - start) / 1e9
  }
  const cpu = process.cpuUsage(cpuStart)
  // Per CPU second: the machine is shared, wall-clock time includes waiting for a core.
  console.log(`bench enrich.${name} ${Math.round(done / ((cpu.user + cpu.system) / 1e6))} ${unit}`)
}

const context = new EnrichContext()
function stageBench(name: string, stages: EnrichStage[]): void {
  measure(name, 'flows/s', BATCHES * FLOWS, () => {
    for (const batch of batches) {
      context.reset(FLOWS)
      for (const s of stages) s.apply(batch, FLOWS, context)
    }
  })
}

// Raw longest-prefix lookups, both addresses of every flow.
const addressColumns = batches.flatMap((b) => [b.view('SrcAddr')!, b.view('DstAddr')!])
let sink = 0
measure('networks-lookup', 'lookups/s', addressColumns.length * FLOWS, () => {
  for (const a of addressColumns) for (let r = 0; r < FLOWS; r++) if (table.lookup(a, r * 16) !== undefined) sink++
})

const networksStage = new NetworkStage(table)
const classification = new ClassificationStage({
  exporterRules: ['Exporter.Name matches "^([a-z]+)[0-9]+-(edge|core)\\." -> site = $1, role = $2', 'true -> region = "eu-west"'],
  interfaceRules: [
    'Interface.Description matches "^Transit: (\\S+)" -> provider = $1, connectivity = "transit", boundary = external',
    'Interface.Description matches "^(IX|PNI): (\\S+)" -> provider = $2, connectivity = $1, boundary = external',
    'true -> boundary = internal',
  ],
})
const sampling = new SamplingStage({ defaultSamplingRate: { '192.0.2.0/28': 1000, '192.0.2.0/24': 2000 } })
const asn = new ASNStage({ asProviders: ['flow-except-private', 'routing', 'networks', 'geoip'], netProviders: ['flow', 'routing'] })
const geoip = GeoIPStage.open({ pollInterval: 0 })

stageBench('networks', [networksStage])
stageBench('geoip', [geoip])
stageBench('classification', [classification])
stageBench('sampling', [sampling])
stageBench('asn', [asn])
stageBench('stages-chain', [classification, sampling, geoip, networksStage, asn])
geoip.close()
if (sink < 0) console.log(sink)
