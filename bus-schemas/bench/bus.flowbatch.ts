// Benchmark of the FlowBatch codec on realistic 2000-flow batches, against protobufjs with one
// message per flow. Run: npx tsx --conditions=source bus-schemas/bench/bus.flowbatch.ts

import protobuf from 'protobufjs'
import { decodeFlowBatch, encodeFlowBatch, FLOW_BATCH_TYPE } from '../src/flow-batch-codec.js'
import type { FlowBatch } from '../src/flow-batch.js'
import { flowColumns } from '../src/flow-columns.js'
import { flowBatchToRows } from '../src/flow-rows.js'
import { WireReader } from '../src/wire.js'
import { sampleFlowBatch } from '../test/fixtures/sample-flows.js'

const FLOWS = 2000

/**
 * Flows per second of fn: a time-bounded warm-up, then the best of several short rounds, so a
 * neighbour process stealing the CPU for a moment does not decide the figure.
 */
function measure(flowsPerCall: number, fn: () => void, rounds = 5, roundMs = 120): number {
  const run = (ms: number): number => {
    let calls = 0
    const start = performance.now()
    let elapsed = 0
    do {
      fn()
      calls++
      elapsed = performance.now() - start
    } while (elapsed < ms)
    return (calls * flowsPerCall) / (elapsed / 1000)
  }
  run(200)
  let best = 0
  for (let i = 0; i < rounds; i++) best = Math.max(best, run(roundMs))
  return best
}

/** Where the bytes go: each field's share of the messages (tag and length included), biggest first. */
function bytesByField(messages: Uint8Array[]): string {
  const names = new Map<number, string>([[1, 'count'], [2, 'strings']])
  for (const c of flowColumns) {
    names.set(c.field, c.name)
    if (c.countsField !== undefined) names.set(c.countsField, `${c.name}Counts`)
    if (c.ipv4FlowsField !== undefined) names.set(c.ipv4FlowsField, `${c.name}IPv4Flows`)
  }
  const bytes = new Map<string, number>()
  for (const message of messages) {
    const reader = new WireReader(FLOW_BATCH_TYPE, message)
    while (!reader.done) {
      const start = reader.pos
      const [field, wireType] = reader.tag()
      reader.skip(field, wireType)
      const name = names.get(field) ?? String(field)
      bytes.set(name, (bytes.get(name) ?? 0) + reader.pos - start)
    }
  }
  const flows = messages.length * FLOWS
  return [...bytes]
    .filter(([, b]) => b / flows >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([name, b]) => `${name} ${(b / flows).toFixed(1)}`)
    .join(', ')
}

const print = (name: string, value: number, unit: string): void =>
  console.log(`bench ${name} ${value >= 100 ? Math.round(value) : value.toFixed(1)} ${unit}`)

const batches: FlowBatch[] = [1, 2, 3, 4].map((seed) => sampleFlowBatch(FLOWS, seed))
const encoded = batches.map(encodeFlowBatch)
let k = 0
let sink = 0

print('bus.flowbatch_encode', measure(FLOWS, () => (sink += encodeFlowBatch(batches[k++ & 3]!).length)), 'flows/s')
print('bus.flowbatch_decode', measure(FLOWS, () => (sink += decodeFlowBatch(encoded[k++ & 3]!).count)), 'flows/s')
print('bus.flowbatch_roundtrip', measure(FLOWS, () => (sink += decodeFlowBatch(encodeFlowBatch(batches[k++ & 3]!)).count)), 'flows/s')
print('bus.flowbatch_bytes_per_flow', encoded.reduce((s, e) => s + e.length, 0) / (4 * FLOWS), 'B')
console.error(`# bytes per flow by field: ${bytesByField(encoded)}`)

// Baseline: the same flows as one protobufjs message per flow (strings inline, IPs as bytes).
const flow = new protobuf.Type('Flow')
for (const c of flowColumns) {
  const type = { u8: 'uint32', u16: 'uint32', u32: 'uint32', u64: 'uint64', mac: 'uint64', ip: 'bytes', string: 'string' }
  if (c.kind === 'u32list' || c.kind === 'u32x3list') flow.add(new protobuf.Field(c.name, c.field, 'uint32', 'repeated'))
  else flow.add(new protobuf.Field(c.name, c.field, type[c.kind]))
}
const list = new protobuf.Type('FlowList').add(new protobuf.Field('flows', 1, 'Flow', 'repeated'))
new protobuf.Root().define('bench').add(flow).add(list)
const rows = flowBatchToRows(batches[0]!).map((row, r) => {
  const o: Record<string, unknown> = { ...row }
  for (const c of flowColumns) {
    if (c.kind === 'ip' && row[c.name] !== undefined) o[c.name] = batches[0]!.getIP(c.name as never, r)
    if (c.kind === 'u32x3list' && row[c.name] !== undefined) o[c.name] = (row[c.name] as number[][]).flat()
    if (c.kind === 'mac' && row[c.name] !== undefined) o[c.name] = batches[0]!.getNumber(c.name as never, r)
  }
  return o
})
const message = list.fromObject({ flows: rows })
print(
  'bus.protobufjs_per_record_roundtrip',
  measure(FLOWS, () => (sink += (list.decode(list.encode(message).finish()) as unknown as { flows: unknown[] }).flows.length), 3, 300),
  'flows/s',
)
if (sink === 42) console.log('')
