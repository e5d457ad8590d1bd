// The decode loop with the real protocol decoders: what each protocol's sequence number counts
// (v5 flows, v9 packets, IPFIX data records, sFlow datagrams), checked on real captures whose
// sequence fields are rewritten.
import type { RawPacket } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { DecodeTally } from '../src/metrics.js'
import { createDecoder } from '../src/protocols.js'
import { rawPackets as packets } from './captures.js'

/** A copy of the datagram with the 32-bit big-endian sequence number at `offset` set. */
const withSequence = (packet: RawPacket, offset: number, sequence: number): RawPacket => {
  const payload = packet.payload.slice()
  new DataView(payload.buffer).setUint32(offset, sequence)
  return { ...packet, payload }
}

const decodeAll = (list: RawPacket[]) => {
  const tally = new DecodeTally()
  const { decoder } = createDecoder({ observer: tally })
  const output = decoder.decode(list)
  return { tally, flows: output.flows.reduce((n, o) => n + o.batch.count, 0) }
}

describe('sequence numbers per protocol', () => {
  it('NetFlow v5 counts flows', () => {
    const [p] = packets('flow-decoder-netflow/nfv5.pcap')
    // 29 flows per datagram: the next one is expected at +29; +29+58 means two datagrams lost.
    const { tally, flows } = decodeAll([withSequence(p!, 16, 1000), withSequence(p!, 16, 1029), withSequence(p!, 16, 1029 + 29 + 58)])
    expect(flows).toBe(87)
    expect(tally.lost).toBe(58)
  })

  it('NetFlow v9 counts export packets', () => {
    const [template] = packets('flow-decoder-netflow/template.pcap')
    const [data] = packets('flow-decoder-netflow/data.pcap')
    const { tally } = decodeAll([withSequence(template!, 12, 500), withSequence(data!, 12, 501), withSequence(data!, 12, 505)])
    expect(tally.lost).toBe(3)
    expect(tally.errors.size).toBe(0)
  })

  it('IPFIX counts data records', () => {
    const [p] = packets('flow-decoder-netflow/mpls.pcap')
    // mpls.pcap carries templates and 3 data records (one options record, two flows): RFC 7011
    // sequence numbers count options data records too.
    const { tally, flows } = decodeAll([withSequence(p!, 8, 70), withSequence(p!, 8, 73), withSequence(p!, 8, 76 + 10)])
    expect(flows).toBe(6)
    expect(tally.lost).toBe(10)
  })

  it('sFlow counts datagrams per agent and sub-agent', () => {
    const [p] = packets('flow-decoder-sflow/data-sflow-ipv4-data.pcap')
    // IPv4 agent: version, address type, address, sub-agent id, then the sequence number.
    const { tally } = decodeAll([withSequence(p!, 16, 7), withSequence(p!, 16, 8), withSequence(p!, 16, 12), withSequence(p!, 16, 10)])
    expect(tally.lost).toBe(3)
    expect(tally.reorders).toBe(1)
  })
})
