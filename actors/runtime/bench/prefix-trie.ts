// Benchmark of PrefixTrie: insert time, node memory and longest-prefix lookups/s for a table shaped
// like the Internet's (800k IPv4 prefixes mostly /24 and /22, 200k IPv6 mostly /48 and /32).
// Times are CPU time of the process: the machine is shared, wall time would measure the others.
import { LOOKUP_LANES, PrefixTrie } from '../src/prefix-trie.js'

const IPV4 = Number(process.env.BENCH_IPV4 ?? 800_000)
const IPV6 = Number(process.env.BENCH_IPV6 ?? 200_000)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)

// mulberry32: an LCG's low bits repeat too soon and would make duplicate prefixes.
let seed = 20240521
const random = (n: number): number => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
}

const ipv4Length = (): number => {
  const r = random(100)
  return r < 60 ? 24 : r < 75 ? 22 : r < 85 ? 23 : r < 92 ? 20 : 8 + random(16)
}
const ipv6Length = (): number => {
  const r = random(100)
  return r < 50 ? 48 : r < 70 ? 32 : r < 85 ? 44 : 29 + random(36)
}

const keys = new Uint8Array(16 * (IPV4 + IPV6))
const lengths = new Uint8Array(IPV4 + IPV6)
for (let i = 0; i < IPV4 + IPV6; i++) {
  const o = 16 * i
  if (i < IPV4) {
    keys[o + 10] = 0xff
    keys[o + 11] = 0xff
    keys[o + 12] = 1 + random(222)
    for (let j = 13; j < 16; j++) keys[o + j] = random(256)
    lengths[i] = 96 + ipv4Length()
  } else {
    keys[o] = 0x20
    keys[o + 1] = 0x01 + random(3)
    for (let j = 2; j < 8; j++) keys[o + j] = random(256)
    lengths[i] = ipv6Length()
  }
}

const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const trie = new PrefixTrie<number>()
const rssBefore = process.memoryUsage().rss
let t0 = cpuMs()
for (let i = 0; i < IPV4 + IPV6; i++) trie.insert(keys.subarray(16 * i, 16 * i + 16), lengths[i]!, i)
const insertMs = cpuMs() - t0
const rssAfter = process.memoryUsage().rss

// Lookups of addresses inside the table's prefixes (host bits randomised), in one column.
const BATCH = 65536
const column = new Uint8Array(16 * BATCH)
for (let i = 0; i < BATCH; i++) {
  const k = random(IPV4 + IPV6)
  column.set(keys.subarray(16 * k, 16 * k + 16), 16 * i)
  column[16 * i + 15] = random(256)
}
let found = 0
const values = new Array<number | undefined>(LOOKUP_LANES)
const matchLengths = new Int32Array(LOOKUP_LANES)
const rate = (lanes: boolean): number => {
  let lookups = 0
  const start = cpuMs()
  while (cpuMs() - start < SECONDS * 1000) {
    if (lanes) {
      // Groups of 16 in lockstep overlap their cache misses (how bmp-rib looks batches up).
      for (let i = 0; i < BATCH; i += LOOKUP_LANES) {
        trie.lookupLanes(column, 16 * i, LOOKUP_LANES, 0xffff, values, matchLengths)
        for (const v of values) if (v !== undefined) found++
      }
    } else {
      for (let i = 0; i < BATCH; i++) if (trie.lookup(column, 16 * i) !== undefined) found++
    }
    lookups += BATCH
  }
  return lookups / ((cpuMs() - start) / 1000)
}
const single = rate(false)
const laned = rate(true)

console.log(`bench prefix-trie.insert ${Math.round(((IPV4 + IPV6) / insertMs) * 1000)} prefixes/s`)
console.log(`bench prefix-trie.nodes ${trie.nodeCount} nodes`)
console.log(`bench prefix-trie.rss ${((rssAfter - rssBefore) / 1048576).toFixed(1)} MB`)
console.log(`bench prefix-trie.lookup ${Math.round(single)} lookups/s`)
console.log(`bench prefix-trie.lookup-lanes ${Math.round(laned)} lookups/s`)
if (found === 0) throw new Error('no lookup found a prefix: the benchmark table is wrong')
