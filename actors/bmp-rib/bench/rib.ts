// Benchmark of the RIB with full tables: 1,000,000 IPv4 + 200,000 IPv6 prefixes from each of 4
// peers (4.8M routes), AS paths and communities shared as in real tables; memory, load, peer drop, lookups.
//
// Runs itself again in a child Node.js with --expose-gc (to measure memory after collection) and
// a 4 GiB heap limit; BENCH_IPV4 / BENCH_IPV6 / BENCH_PEERS / BENCH_SECONDS scale it down or up.
// Times are CPU time of the process (the machine is shared by many jobs; wall time would measure them).
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

if (process.env.FLOWBUS_BENCH_CHILD !== '1') {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--max-old-space-size=4096', '--import', 'tsx', '--conditions=source', fileURLToPath(import.meta.url)],
    { stdio: 'inherit', env: { ...process.env, FLOWBUS_BENCH_CHILD: '1' } },
  )
  process.exit(child.status ?? 1)
}

const { parseIP } = await import('@flowbus/bus-schemas')
const { Rib } = await import('../src/rib/rib.js')
type PrefixList = import('../src/bgp/update.js').PrefixList

const IPV4 = Number(process.env.BENCH_IPV4 ?? 1_000_000)
const IPV6 = Number(process.env.BENCH_IPV6 ?? 200_000)
const PEERS = Number(process.env.BENCH_PEERS ?? 4)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const ORIGINS = 75_000

// mulberry32: seeded, so every run builds the same table.
let seed = 7
const random = (n: number): number => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
}

// The prefixes (shared by all peers, as full tables are) and the origin AS of each.
const total = IPV4 + IPV6
const addresses = new Uint8Array(16 * total)
const lengths = new Uint8Array(total)
const origin = new Uint32Array(total)
for (let i = 0; i < total; i++) {
  const o = 16 * i
  // Origins own runs of neighbouring prefixes, so an UPDATE carries several prefixes.
  origin[i] = i % 8 === 0 || i === 0 ? 1000 + random(ORIGINS) : origin[i - 1]!
  if (i < IPV4) {
    addresses[o + 10] = addresses[o + 11] = 0xff
    const r = random(100)
    const bits = r < 60 ? 24 : r < 72 ? 22 : r < 82 ? 23 : r < 90 ? 20 : 16 + random(9)
    const value = ((1 + random(222)) << 24) | (random(1 << 24) & ~((1 << (32 - bits)) - 1))
    addresses[o + 12] = value >>> 24
    addresses[o + 13] = (value >>> 16) & 0xff
    addresses[o + 14] = (value >>> 8) & 0xff
    addresses[o + 15] = value & 0xff
    lengths[i] = 96 + bits
  } else {
    addresses[o] = 0x20
    addresses[o + 1] = 0x01 + random(3)
    for (let j = 2; j < 6; j++) addresses[o + j] = random(256)
    const r = random(100)
    const bits = r < 55 ? 48 : r < 75 ? 32 : r < 90 ? 44 : 29 + random(20)
    for (let j = Math.ceil(bits / 8); j < 16; j++) addresses[o + j] = 0
    if (bits % 8) addresses[o + (bits >> 3)]! &= 0xff << (8 - (bits % 8))
    lengths[i] = bits
  }
}

// Per peer: transit paths toward each origin from a few hundred upstream chains, and a community
// set chosen among a few hundred (regional tags), as route servers and transit providers tag.
const transit = Array.from({ length: 400 }, () => Array.from({ length: 1 + random(3) }, () => 100 + random(5000)))
const communitySets = Array.from({ length: 300 }, (_, k) => Array.from({ length: random(4) }, (_, j) => ((64500 + (k % 20)) << 16) | (j * 100 + random(50))))
const largeSets = Array.from({ length: 50 }, (_, k) => (k % 3 === 0 ? [] : [4200000000 + k, 1, random(1000)]))
const routers = Array.from({ length: PEERS }, (_, p) => parseIP(`192.0.2.${p + 1}`))

const rib = new Rib()
const peerIds = routers.map((router, p) =>
  rib.addPeer({ key: `bench-${p}`, routerAddress: router, address: parseIP(`198.51.100.${p + 1}`), asn: 64600 + p, peerType: 0, postPolicy: true }),
)

const gc = (globalThis as { gc?: () => void }).gc
const settle = () => {
  gc?.()
  gc?.()
}
settle()
const rssBefore = process.memoryUsage().rss

/** CPU milliseconds of this process (user + system): the machine is shared, wall time is not ours. */
const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const BATCH = 8
const load = (peer: number, first: number, last: number, family: 'ipv4' | 'ipv6') => {
  const nextHop = family === 'ipv4' ? routers[peer]!.slice() : parseIP(`2001:db8::${peer + 1}`)
  for (let i = first; i < last; ) {
    // One UPDATE: consecutive prefixes of one origin (at most BATCH).
    let end = i + 1
    while (end < last && end - i < BATCH && origin[end] === origin[i]) end++
    const o = origin[i]!
    const list: PrefixList = {
      family,
      count: end - i,
      addresses: addresses.subarray(16 * i, 16 * end),
      lengths: lengths.subarray(i, end),
      pathIds: undefined,
    }
    const path = [64600 + peer, ...transit[(o * 7 + peer * 13) % transit.length]!, o]
    const attributes = rib.attributes.intern(path, communitySets[(o + peer) % communitySets.length]!, largeSets[o % largeSets.length]!, nextHop)
    rib.announce(peerIds[peer]!, list, attributes)
    i = end
  }
}

let t0 = cpuMs()
for (let p = 0; p < PEERS; p++) {
  load(p, 0, IPV4, 'ipv4')
  load(p, IPV4, total, 'ipv6')
}
const loadMs = cpuMs() - t0
settle()
const rssAfter = process.memoryUsage().rss

// Lookups in batches of 4096 addresses inside the table's prefixes (host bits random), as the
// enricher sends them: exporter = the first peer's router (rule 1), and an unknown exporter (rule 3).
const LOOKUP_BATCH = 4096
const BATCHES = 64
const queries = new Uint8Array(16 * LOOKUP_BATCH * BATCHES)
for (let q = 0; q < LOOKUP_BATCH * BATCHES; q++) {
  const k = random(total)
  queries.set(addresses.subarray(16 * k, 16 * k + 16), 16 * q)
  queries[16 * q + 15] = random(256)
}
const slots = new Int32Array(LOOKUP_BATCH)
const prefixLengths = new Uint8Array(LOOKUP_BATCH)
/** Lookups per CPU second; the wall-clock rate of the same run is left in `wallRate`. */
let wallRate = 0
const lookupRate = (exporter: Uint8Array): number => {
  let done = 0
  let found = 0
  const wallStart = performance.now()
  const start = cpuMs()
  while (cpuMs() - start < SECONDS * 1000) {
    for (let b = 0; b < BATCHES; b++) {
      rib.lookup(exporter, queries.subarray(16 * LOOKUP_BATCH * b), LOOKUP_BATCH, undefined, slots, prefixLengths)
      for (let i = 0; i < LOOKUP_BATCH; i++) if (slots[i]! >= 0) found++
    }
    done += LOOKUP_BATCH * BATCHES
  }
  if (found === 0) throw new Error('no lookup found a route: the benchmark table is wrong')
  wallRate = done / ((performance.now() - wallStart) / 1000)
  return done / ((cpuMs() - start) / 1000)
}
const ownRouter = lookupRate(routers[0]!)
const ownRouterWall = wallRate
const otherExporter = lookupRate(parseIP('203.0.113.9'))
const otherExporterWall = wallRate

const prefixes = rib.prefixCount.ipv4 + rib.prefixCount.ipv6
t0 = cpuMs()
const removed = rib.removePeer(peerIds[PEERS - 1]!)
const dropMs = cpuMs() - t0
// Every peer announced every prefix (duplicates in the generated list count once).
if (removed !== prefixes) throw new Error(`dropping a peer removed ${removed} routes, not ${prefixes}`)

const a = rib.attributes
console.error(
  `# ${PEERS} peers, ${rib.prefixCount.ipv4} IPv4 + ${rib.prefixCount.ipv6} IPv6 prefixes, ${removed} routes per peer; ` +
    `${a.sets.size} attribute sets, ${a.paths.size} AS paths, ${a.communities.size} community sets (after the drop)`,
)
console.log(`bench rib.memory ${((rssAfter - rssBefore) / 1048576).toFixed(0)} MB`)
console.log(`bench rib.load ${loadMs.toFixed(0)} ms`)
console.log(`bench rib.load-rate ${Math.round((PEERS * total) / (loadMs / 1000))} routes/s`)
console.log(`bench rib.drop-peer ${dropMs.toFixed(0)} ms`)
console.log(`bench rib.lookup ${Math.round(ownRouter)} lookups/s`)
console.log(`bench rib.lookup-other-exporter ${Math.round(otherExporter)} lookups/s`)
// Wall clock of the same runs: lower than CPU time whenever other jobs share the cores.
console.log(`bench rib.lookup-wall ${Math.round(ownRouterWall)} lookups/s`)
console.log(`bench rib.lookup-other-exporter-wall ${Math.round(otherExporterWall)} lookups/s`)
