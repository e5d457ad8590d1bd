// The socket threads' batcher: what it writes decodes as the RawPacketBatch the decoder expects
// (address, port, receive time in ns, protocol, payload), messages close by count, size and flush.
import { decodeRawPacketBatch, FlowProtocol, formatIP } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { WireBatcher, type WireBatch } from '../src/wire-batcher.js'

const v9 = (n: number, size = 40): Uint8Array => {
  const p = new Uint8Array(size).fill(n & 0xff)
  p[0] = 0
  p[1] = 9
  return p
}

function batcher(maxPackets: number, maxBytes: number) {
  const out: WireBatch[] = []
  const b = new WireBatcher({ receiverName: (l) => `host/${l}`, maxPackets, maxBytes, emit: (batch) => out.push(batch) })
  const decoded = () => out.map((w) => ({ key: w.key, packets: w.packets, batch: decodeRawPacketBatch(new Uint8Array(w.buffer, 0, w.length)) }))
  return { b, out, decoded }
}

describe('WireBatcher', () => {
  it('writes RawPacketBatch bytes with every field of every datagram, per exporter', () => {
    const { b, decoded } = batcher(3, 1 << 20)
    const now = 1_763_700_000_123
    const sflow = new Uint8Array([0, 0, 0, 5, 1, 2, 3])
    b.datagram('netflow', '192.0.2.1', 2055, v9(1), now)
    b.datagram('netflow', '2001:db8::7', 65535, sflow, now + 1)
    b.datagram('netflow', '192.0.2.1', 1, v9(2, 1400), now + 2)
    b.datagram('netflow', 'fe80::1%eth0', 300, v9(3), now + 3)
    b.datagram('netflow', '192.0.2.1', 2055, v9(4), now + 4)
    // The third datagram of 192.0.2.1 closed its message; the others wait for a flush.
    expect(decoded().map((d) => [d.key, d.packets])).toEqual([['192.0.2.1', 3]])
    b.flush()
    const all = decoded()
    expect(all.map((d) => [d.key, d.packets])).toEqual([
      ['192.0.2.1', 3],
      ['2001:db8::7', 1],
      ['fe80::1', 1],
    ])
    const first = all[0]!.batch
    expect(first.receiver).toBe('host/netflow')
    expect(first.packets.map((p) => [formatIP(p.exporterAddress), p.exporterPort, p.receivedNs, p.protocol])).toEqual([
      ['192.0.2.1', 2055, BigInt(now) * 1_000_000n, FlowProtocol.NETFLOW_V9],
      ['192.0.2.1', 1, BigInt(now + 2) * 1_000_000n, FlowProtocol.NETFLOW_V9],
      ['192.0.2.1', 2055, BigInt(now + 4) * 1_000_000n, FlowProtocol.NETFLOW_V9],
    ])
    expect([...first.packets[1]!.payload]).toEqual([...v9(2, 1400)])
    const v6 = all[1]!.batch.packets[0]!
    expect([formatIP(v6.exporterAddress), v6.exporterPort, v6.protocol, [...v6.payload]]).toEqual(['2001:db8::7', 65535, FlowProtocol.SFLOW_V5, [...sflow]])
  })

  it('closes a message at the byte limit, grows for large batches, and gives each buffer away', () => {
    const { b, out, decoded } = batcher(1_000_000, 4 << 20)
    // 4 MiB of 60 000-byte datagrams: the pending buffer grows past its first size several times.
    for (let i = 0; i < 70; i++) b.datagram('ipfix', '198.51.100.9', 4739, v9(i, 60_000), 1_000)
    expect(out).toHaveLength(1)
    expect(out[0]!.packets).toBe(70)
    const packets = decoded()[0]!.batch.packets
    expect(packets.map((p) => p.payload[5])).toEqual(Array.from({ length: 70 }, (_, i) => i & 0xff))
    b.datagram('ipfix', '198.51.100.9', 4739, v9(1), 1_001)
    b.flush()
    expect(out[1]!.buffer).not.toBe(out[0]!.buffer)
    expect(decoded()[1]!.batch.packets).toHaveLength(1)
  })

  it('counts datagrams, bytes and unknown protocols per exporter, and forgets idle ones', () => {
    const { b, out } = batcher(10, 1 << 20)
    b.datagram('sflow', '10.0.0.1', 6343, v9(1), 5_000)
    b.datagram('sflow', '10.0.0.1', 6343, new Uint8Array([1, 2, 3]), 5_000)
    b.datagram('sflow', '10.0.0.2', 6343, new Uint8Array([0, 7, 0, 0, 0]), 5_000)
    const counts: unknown[] = []
    b.takeCounts((c) => counts.push({ ...c }))
    expect(counts).toEqual([
      { listener: 'sflow', exporter: '10.0.0.1', packets: 2, bytes: 43, unknownProtocol: 1 },
      { listener: 'sflow', exporter: '10.0.0.2', packets: 1, bytes: 5, unknownProtocol: 1 },
    ])
    b.flush()
    expect(out.map((w) => [w.key, w.packets])).toEqual([['10.0.0.1', 1]])
    b.forgetIdle(6_000)
    expect(b.exporterCount).toBe(0)
  })
})
