// Benchmark of the NetFlow v5, v9 and IPFIX decoders: records/s on one core into a reused FlowBatch.
// Realistic datagrams: 30 records of a 20-field template each (v5: 30 fixed records), varied values.
import { FlowBatch } from '@flowbus/bus-schemas'
import type { DecodeSink, Datagram } from '../src/protocol.js'
import { TemplateDecoder, decodeNetflowV5 } from '../src/netflow/index.js'

const RECORDS = 30
const DATAGRAMS = 64
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const exporterAddress = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1])

let seed = 12345
const random = (n: number): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed % n
}

/** [type, length] of a typical router template; times differ between v9 (uptime) and IPFIX (absolute). */
const fields = (ipfix: boolean): [number, number][] => [
  [8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [5, 1], [6, 1], [1, ipfix ? 8 : 4], [2, ipfix ? 8 : 4], [10, 4],
  [14, 4], [9, 1], [13, 1], [15, 4], [16, 4], [17, 4], [ipfix ? 152 : 22, ipfix ? 8 : 4], [ipfix ? 153 : 21, ipfix ? 8 : 4], [61, 1], [89, 1],
]

function record(view: DataView, o: number, spec: [number, number][]): number {
  for (const [, length] of spec) {
    for (let i = 0; i < length; i++) view.setUint8(o + i, random(256))
    o += length
  }
  return o
}

function templateDatagram(ipfix: boolean): Uint8Array {
  const spec = fields(ipfix)
  const header = ipfix ? 16 : 20
  const length = header + 4 + 4 + spec.length * 4
  const out = new Uint8Array(length)
  const v = new DataView(out.buffer)
  v.setUint16(0, ipfix ? 10 : 9)
  v.setUint16(2, ipfix ? length : 1)
  let o = header
  v.setUint16(o, ipfix ? 2 : 0)
  v.setUint16(o + 2, length - header)
  v.setUint16(o + 4, 300)
  v.setUint16(o + 6, spec.length)
  o += 8
  for (const [type, len] of spec) {
    v.setUint16(o, type)
    v.setUint16(o + 2, len)
    o += 4
  }
  return out
}

function dataDatagram(ipfix: boolean, n: number): Uint8Array {
  const spec = fields(ipfix)
  const recordLength = spec.reduce((s, [, l]) => s + l, 0)
  const header = ipfix ? 16 : 20
  const length = header + 4 + RECORDS * recordLength
  const out = new Uint8Array(length)
  const v = new DataView(out.buffer)
  v.setUint16(0, ipfix ? 10 : 9)
  v.setUint16(2, ipfix ? length : RECORDS)
  v.setUint32(4, ipfix ? 1_700_000_000 : 3_600_000)
  v.setUint32(ipfix ? 8 : 12, n)
  if (!ipfix) v.setUint32(8, 1_700_000_000)
  v.setUint16(header, 300)
  v.setUint16(header + 2, length - header)
  let o = header + 4
  for (let r = 0; r < RECORDS; r++) o = record(v, o, spec)
  return out
}

function v5Datagram(n: number): Uint8Array {
  const out = new Uint8Array(24 + RECORDS * 48)
  const v = new DataView(out.buffer)
  v.setUint16(0, 5)
  v.setUint16(2, RECORDS)
  v.setUint32(4, 3_600_000)
  v.setUint32(8, 1_700_000_000)
  v.setUint32(16, n * RECORDS)
  v.setUint16(22, 0x4000 | 1000)
  for (let i = 24; i < out.length; i++) out[i] = random(256)
  return out
}

function run(name: string, datagrams: Datagram[], decode: (d: Datagram, sink: DecodeSink) => void): void {
  const batch = new FlowBatch(8192)
  let errors = 0
  const sink: DecodeSink = { flows: batch, counters: [], error: () => errors++ }
  let records = 0
  const pass = (): void => {
    for (const d of datagrams) {
      decode(d, sink)
      if (batch.count >= 8192 - RECORDS) batch.clear()
    }
  }
  for (let i = 0; i < 200; i++) pass() // warm-up: let V8 optimise the decode loops
  batch.clear()
  const start = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  let elapsed = 0
  while (elapsed < SECONDS) {
    for (let i = 0; i < 50; i++) pass()
    records += 50 * datagrams.length * RECORDS
    elapsed = Number(process.hrtime.bigint() - start) / 1e9
  }
  const cpu = process.cpuUsage(cpuStart)
  if (errors > 0) throw new Error(`${name}: ${errors} decode errors`)
  // Per CPU second: the machine is shared, wall-clock time includes waiting for a core.
  console.log(`bench decode.${name} ${Math.round(records / ((cpu.user + cpu.system) / 1e6))} records/s`)
  console.log(`bench decode.${name}.wall ${Math.round(records / elapsed)} records/s`)
}

const datagram = (payload: Uint8Array): Datagram => ({ exporterAddress, exporterPort: 2055, timeReceived: 1_700_000_000, payload })

for (const ipfix of [false, true]) {
  const noSink: DecodeSink = { flows: new FlowBatch(1), counters: [], error: (r) => { throw new Error(r) } }
  const decoder = new TemplateDecoder({ lateSink: () => noSink })
  decoder.decode(datagram(templateDatagram(ipfix)), noSink)
  const data = Array.from({ length: DATAGRAMS }, (_, i) => datagram(dataDatagram(ipfix, i)))
  run(ipfix ? 'ipfix' : 'netflow-v9', data, (d, sink) => decoder.decode(d, sink))
}
run('netflow-v5', Array.from({ length: DATAGRAMS }, (_, i) => datagram(v5Datagram(i))), decodeNetflowV5)
