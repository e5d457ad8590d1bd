// The decode loop with stand-in protocol decoders: dispatch by sniffed protocol, per-exporter
// output batches split at the size limit, errors and exceptions counted, sequence gaps, rate limit.
import { FlowProtocol, type RawPacket, parseIP } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { FlowDecoder, type ProtocolDecoder } from '../src/dispatch.js'
import { DecodeTally } from '../src/metrics.js'

const packet = (exporter: string, protocol: FlowProtocol, payload: number[], second = 1_700_000_000): RawPacket => ({
  exporterAddress: parseIP(exporter),
  exporterPort: 2055,
  receivedNs: BigInt(second) * 1_000_000_000n,
  protocol,
  payload: Uint8Array.from(payload),
})

/**
 * A stand-in decoder: payload [n, sequence, bytes…] writes n flows with Bytes = 100 and
 * SamplingRate = 10; n = 255 reports a truncated datagram, n = 254 throws (a decoder bug).
 */
const fake: ProtocolDecoder = {
  decode(datagram, sink) {
    const [n = 0, sequence = 0] = datagram.payload
    if (n === 255) {
      sink.error('truncated', 'short')
      return undefined
    }
    if (n === 254) throw new Error('decoder bug')
    sink.flows.reserve(n)
    for (let i = 0; i < n; i++) {
      const r = sink.flows.appendRow()
      sink.flows.u64('Bytes')[r] = 100
      sink.flows.u32('SamplingRate')[r] = 10
      sink.flows.u32('TimeReceived')[r] = datagram.timeReceived
      sink.flows.setIP('ExporterAddress', r, datagram.exporterAddress)
    }
    return { stream: 'domain-0', sequence, units: 1 }
  },
}

const make = (options: { rateLimit?: number; maxFlowsPerBatch?: number } = {}) => {
  const tally = new DecodeTally()
  const decoder = new FlowDecoder({ decoders: { [FlowProtocol.NETFLOW_V9]: fake }, observer: tally, ...options })
  return { tally, decoder }
}

describe('FlowDecoder', () => {
  it('decodes each datagram with its protocol decoder, one batch series per exporter', () => {
    const { tally, decoder } = make()
    const out = decoder.decode([
      packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [3, 0]),
      packet('2001:db8::7', FlowProtocol.NETFLOW_V9, [2, 0]),
      packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [4, 1]),
    ])
    expect(out.flows.map((f) => [f.exporter, f.batch.count])).toEqual([
      ['192.0.2.1', 7],
      ['2001:db8::7', 2],
    ])
    expect(tally.packets.get('netflow-v9')).toBe(3)
    expect(tally.flowCounts.get('netflow-v9')).toBe(9)
    expect(tally.errors.size).toBe(0)
  })

  it('counts unknown protocols, decoder errors and decoder exceptions, and keeps the other datagrams', () => {
    const { tally, decoder } = make()
    const out = decoder.decode([
      packet('192.0.2.1', FlowProtocol.UNKNOWN, [1, 2, 3]),
      packet('192.0.2.1', FlowProtocol.SFLOW_V5, [0, 0, 0, 5]),
      packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [255]),
      packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [254]),
      packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [2, 0]),
    ])
    expect(out.flows.map((f) => f.batch.count)).toEqual([2])
    expect(Object.fromEntries(tally.errors)).toEqual({ 'bad-version': 2, truncated: 1, exception: 1 })
    expect(tally.errorDetails.some((d) => d.includes('decoder bug'))).toBe(true)
    expect(tally.packets.get('unknown')).toBe(1)
  })

  it('closes a batch once it reaches the size limit, never splitting a datagram', () => {
    const { decoder } = make({ maxFlowsPerBatch: 5 })
    const out = decoder.decode([3, 3, 3, 1].map((n, i) => packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [n, i])))
    expect(out.flows.map((f) => f.batch.count)).toEqual([6, 4])
    expect(out.flows.every((f) => f.exporter === '192.0.2.1')).toBe(true)
  })

  it('counts sequence gaps per exporter and stream', () => {
    const { tally, decoder } = make()
    decoder.decode([0, 1, 4, 5].map((seq) => packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [1, seq])))
    decoder.decode([packet('192.0.2.2', FlowProtocol.NETFLOW_V9, [1, 9])])
    expect(tally.lost).toBe(2)
    decoder.decode([packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [1, 3])])
    expect(tally.reorders).toBe(1)
    expect(tally.lost).toBe(2)
  })

  it('under a rate limit, keeps fewer flows carrying the weight of the dropped ones', () => {
    const { tally, decoder } = make({ rateLimit: 10 })
    const packets = Array.from({ length: 20 }, (_, i) => packet('192.0.2.1', FlowProtocol.NETFLOW_V9, [10, i], 1_700_000_000 + Math.floor(i / 10)))
    const out = decoder.decode(packets)
    let kept = 0
    let weighted = 0
    for (const { batch } of out.flows) {
      for (let r = 0; r < batch.count; r++) {
        kept++
        weighted += batch.getNumber('Bytes', r) * batch.getNumber('SamplingRate', r)
      }
    }
    expect(kept).toBeLessThan(200)
    expect(tally.limited).toBe(200 - kept)
    // 200 flows of 100 bytes sampled 1:10, minus at most the flows dropped after the last kept one.
    expect(weighted).toBeLessThanOrEqual(200 * 100 * 10)
    expect(weighted).toBeGreaterThan(200 * 100 * 10 * 0.95)
    expect(tally.flowCounts.get('netflow-v9')).toBe(200)
  })

  it('collects flows written through late sinks outside a datagram, counted once as late', () => {
    const { tally, decoder } = make()
    const exporter = parseIP('192.0.2.9')
    const out = decoder.runOutside(FlowProtocol.IPFIX, () => {
      const first = decoder.lateSink(exporter, 4739)
      first.flows.appendRow()
      first.flows.appendRow()
      const second = decoder.lateSink(exporter, 4739)
      second.flows.appendRow()
      second.error('missing-template', 'expired')
    })
    expect(out.flows.map((f) => [f.exporter, f.batch.count])).toEqual([['192.0.2.9', 3]])
    expect(tally.flowCounts.get('late')).toBe(3)
    expect(tally.errorDetails).toEqual(['192.0.2.9 ipfix missing-template: expired'])
  })
})
