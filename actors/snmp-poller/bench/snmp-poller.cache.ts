// Benchmark of the poller's bookkeeping at scale: 1000 exporters × 100 interfaces cached. Prints the
// cost of one housekeeping pass (run every second), of a metrics scrape, and requests answered from
// the cache per second.
import { ipv4ToMapped } from '@flowbus/bus-schemas'
import { AgentTable } from '../src/agents.js'
import { MetadataCache } from '../src/cache.js'

const EXPORTERS = Number(process.env.BENCH_EXPORTERS ?? 1000)
const INTERFACES = Number(process.env.BENCH_INTERFACES ?? 100)

const clock = { now: 1_700_000_000_000 }
const cache = new MetadataCache(
  new AgentTable([{ subnet: '10.0.0.0/8', version: '2c', communities: ['public'], port: 161 }]),
  { refreshAfter: 1_800_000, expireAfter: 7_200_000, maxInterfacesPerPoll: INTERFACES, breaker: { failures: 3, openFor: 30_000, maxOpenFor: 600_000 } },
  () => clock.now,
)
const addresses = Array.from({ length: EXPORTERS }, (_, i) => ipv4ToMapped((10 << 24) | i))
const ifIndexes = Array.from({ length: INTERFACES }, (_, i) => i + 1)
const polled = new Map(ifIndexes.map((i) => [i, { ifName: `et-0/0/${i}`, ifDescr: `et-0/0/${i}`, ifAlias: `peer ${i}`, ifHighSpeed: 100_000 }]))
for (const address of addresses) {
  const { key } = cache.demand(address, ifIndexes)
  const plan = cache.take(key!)!
  cache.complete(key!, plan, { ok: true, sysName: 'edge', interfaces: polled, community: 0, requests: 1, timeouts: 0 })
  cache.release(key!)
}

const time = (runs: number, f: () => void): number => {
  const start = process.hrtime.bigint()
  for (let r = 0; r < runs; r++) f()
  return Number(process.hrtime.bigint() - start) / 1e6 / runs
}

time(5, () => cache.due())
console.log(`bench snmp-poller.cache.housekeeping-${EXPORTERS * INTERFACES} ${time(20, () => cache.due()).toFixed(2)} ms`)
console.log(`bench snmp-poller.cache.scrape-${EXPORTERS * INTERFACES} ${time(20, () => cache.stats()).toFixed(2)} ms`)
let answered = 0
const requestMs = time(20, () => {
  for (const address of addresses) answered += cache.demand(address, ifIndexes).cached
})
console.log(`bench snmp-poller.cache.cached-ifindexes ${((EXPORTERS * INTERFACES) / requestMs / 1000).toFixed(2)} M/s`)
if (answered !== 20 * EXPORTERS * INTERFACES) throw new Error(`expected every request answered from the cache, got ${answered}`)
