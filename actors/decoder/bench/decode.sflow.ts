// Benchmark: sFlow v5 decode on one core into a reused FlowBatch. Datagrams of 7 flow samples,
// each a 128-byte Ethernet/IPv4/TCP sampled header plus extended switch and router records.
// Rates are per second of this process's CPU time (the machine is shared; wall-clock rates follow).
import { FlowBatch, type InterfaceCounters } from '@flowbus/bus-schemas'
import type { DecodeErrorReason, DecodeSink } from '../src/protocol.js'
import { decodeSflow } from '../src/sflow/index.js'
import { bytes, ethernet, ipv4Header, tcpHeader, vlanTag } from '../test/packet/build.js'
import { counterSample, datagram, flowSample, genericInterface, sampledHeader, xdr } from '../test/sflow/builder.js'

const SAMPLES_PER_DATAGRAM = 7
const VARIANTS = 64
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)

function flowDatagram(variant: number): Uint8Array {
  const samples = Array.from({ length: SAMPLES_PER_DATAGRAM }, (_, i) => {
    const k = variant * SAMPLES_PER_DATAGRAM + i
    const payload = new Array<number>(128).fill(k & 0xff)
    const frame = bytes(
      ethernet(
        '00:11:22:33:44:55',
        `66:77:88:99:aa:${(k & 0xff).toString(16).padStart(2, '0')}`,
        0x8100,
        vlanTag(100 + (k % 50), 0x0800, ipv4Header({ src: `10.${k & 0xff}.0.1`, dst: `192.0.2.${i}`, proto: 6, ttl: 64, id: k }, tcpHeader(1024 + k, 443, 0x10, payload))),
      ).slice(0, 128),
    )
    return flowSample(
      [
        sampledHeader(1, 1500, frame),
        { format: 1001, body: xdr().u32(100).u32(0).u32(200).u32(0) },
        { format: 1002, body: xdr().address('192.0.2.254').u32(24).u32(16) },
      ],
      { sequenceNumber: k, samplingRate: 1000, input: 1 + (k % 48), output: 49 + (k % 48) },
    )
  })
  return datagram(samples, { sequenceNumber: variant })
}

function counterDatagram(variant: number): Uint8Array {
  const samples = Array.from({ length: SAMPLES_PER_DATAGRAM }, (_, i) =>
    counterSample([
      genericInterface({
        ifIndex: variant * SAMPLES_PER_DATAGRAM + i,
        ifType: 6,
        ifSpeed: 10_000_000_000,
        ifDirection: 1,
        ifStatus: 3,
        inOctets: 2 ** 40 + variant,
        inUnicastPackets: 1,
        inMulticastPackets: 2,
        inBroadcastPackets: 3,
        inDiscards: 4,
        inErrors: 5,
        inUnknownProtocols: 6,
        outOctets: 2 ** 41,
        outUnicastPackets: 7,
        outMulticastPackets: 8,
        outBroadcastPackets: 9,
        outDiscards: 10,
        outErrors: 11,
        promiscuousMode: 0,
      }),
    ]),
  )
  return datagram(samples, { sequenceNumber: variant })
}

const exporterAddress = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1])

/** Decodes the datagrams round-robin for about SECONDS; returns samples per CPU second and per wall second. */
function run(payloads: Uint8Array[], flush: (sink: BenchSink) => void): { cpu: number; wall: number } {
  const sink = new BenchSink()
  const datagrams = payloads.map((payload) => ({ exporterAddress, exporterPort: 6343, timeReceived: 1_700_000_000, payload }))
  // Warm-up, so the figure is for optimised code.
  for (let i = 0; i < 20_000; i++) {
    decodeSflow(datagrams[i % datagrams.length]!, sink)
    flush(sink)
  }
  if (sink.errors > 0) throw new Error(`benchmark datagrams decoded with ${sink.errors} errors`)
  let decoded = 0
  const start = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  const deadline = start + BigInt(SECONDS * 1e9)
  for (;;) {
    for (let i = 0; i < 1000; i++) {
      decodeSflow(datagrams[i % datagrams.length]!, sink)
      flush(sink)
    }
    decoded += 1000 * SAMPLES_PER_DATAGRAM
    const now = process.hrtime.bigint()
    if (now >= deadline) {
      const cpu = process.cpuUsage(cpuStart)
      return { cpu: decoded / ((cpu.user + cpu.system) / 1e6), wall: decoded / (Number(now - start) / 1e9) }
    }
  }
}

class BenchSink implements DecodeSink {
  readonly flows = new FlowBatch(2048)
  counters: InterfaceCounters[] = []
  errors = 0
  error(_reason: DecodeErrorReason): void {
    this.errors++
  }
}

const flows = run(Array.from({ length: VARIANTS }, (_, v) => flowDatagram(v)), (sink) => {
  // A decoder flushes its batch when full; the batch and its arrays are reused.
  if (sink.flows.count > 2000) sink.flows.clear()
})
console.log(`bench decode.sflow ${Math.round(flows.cpu)} samples/s`)
console.log(`bench decode.sflow-wall ${Math.round(flows.wall)} samples/s`)

const counters = run(Array.from({ length: VARIANTS }, (_, v) => counterDatagram(v)), (sink) => {
  if (sink.counters.length > 2000) sink.counters = []
})
console.log(`bench decode.sflow-counters ${Math.round(counters.cpu)} samples/s`)
