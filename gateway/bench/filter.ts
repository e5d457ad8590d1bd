// Benchmark of the filter language: parse + compile of typical filters (filters/s), parsing a
// 1 MB filter (MB/s) and completion at the end of a typical filter (completions/s), on one core.
import { allStorageColumns } from '@flowbus/runtime'
import { compileFilterText, completeFilter, parseFilter } from '../src/filter/index.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1)

const typical = [
  'InIfBoundary = external AND SrcAS = AS12322 AND DstPort IN (80, 443)',
  'DstAddr << 192.0.2.0/24 AND NOT (DstPort > 1024 OR InIfSpeed >= 1000)',
  'ExporterName LIKE "th2-%" -- edge routers\nAND Proto = "gre"',
  'DstCommunities = 65000:100:200 OR DstASPath = AS1299 OR SrcMAC = 00:11:22:33:44:55',
]

/** Runs `work` repeatedly for about SECONDS and returns calls per second. */
const rate = (work: () => void): number => {
  for (let i = 0; i < 100; i++) work()
  let calls = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < SECONDS * 1000) {
    for (let i = 0; i < 100; i++) work()
    calls += 100
    elapsed = performance.now() - start
  }
  return (calls * 1000) / elapsed
}

let n = 0
const compiled = rate(() => {
  const result = compileFilterText(typical[n++ % typical.length]!, { columns: allStorageColumns })
  if (!result.ok) throw new Error(result.error.message)
})
console.log(`bench filter.compile ${Math.round(compiled)} filters/s`)

const big = `${'(SrcAS = AS12322 AND DstAddr << 192.0.2.0/24) OR '.repeat(Math.ceil((1 << 20) / 49))}DstPort = 1`
const parses = rate(() => {
  if (!parseFilter(big).ok) throw new Error('the 1 MB filter does not parse')
})
console.log(`bench filter.parse_1mb ${((parses * big.length) / (1 << 20)).toFixed(1)} MB/s`)

const partial = 'InIfBoundary = external AND SrcAS = AS12322 AND DstPort IN (80, 443) AND Src'
const completions = rate(() => {
  if (completeFilter(partial, partial.length, allStorageColumns).suggestions.length === 0) throw new Error('no completion')
})
console.log(`bench filter.complete ${Math.round(completions)} completions/s`)
