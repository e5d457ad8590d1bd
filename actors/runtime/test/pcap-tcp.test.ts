// readPcapTcpStreams on hand-built captures: segments out of order, retransmitted, overlapping,
// both directions of a connection apart, a SYN's sequence number, and a hole in the capture.
import { describe, expect, it } from 'vitest'
import { readPcapTcpStreams, newPcapReadStats } from '../src/pcap.js'

interface Segment {
  src: [number, number, number, number]
  dst: [number, number, number, number]
  srcPort: number
  dstPort: number
  seq: number
  syn?: boolean
  data: string
}

/** A classic little-endian Ethernet pcap of IPv4/TCP frames (checksums left zero: the reader ignores them). */
const capture = (segments: Segment[]): Uint8Array => {
  const frames = segments.map((s) => {
    const payload = new TextEncoder().encode(s.data)
    const frame = new Uint8Array(14 + 20 + 20 + payload.length)
    const v = new DataView(frame.buffer)
    v.setUint16(12, 0x0800)
    frame[14] = 0x45
    v.setUint16(16, 40 + payload.length)
    frame[14 + 8] = 64
    frame[14 + 9] = 6
    frame.set(s.src, 14 + 12)
    frame.set(s.dst, 14 + 16)
    const tcp = 34
    v.setUint16(tcp, s.srcPort)
    v.setUint16(tcp + 2, s.dstPort)
    v.setUint32(tcp + 4, s.seq >>> 0)
    frame[tcp + 12] = 5 << 4
    frame[tcp + 13] = s.syn ? 0x02 : 0x18
    frame.set(payload, tcp + 20)
    return frame
  })
  const out = new Uint8Array(24 + frames.reduce((n, f) => n + 16 + f.length, 0))
  const v = new DataView(out.buffer)
  v.setUint32(0, 0xa1b2c3d4, true)
  v.setUint16(4, 2, true)
  v.setUint16(6, 4, true)
  v.setUint32(16, 65535, true)
  v.setUint32(20, 1, true)
  let o = 24
  for (const f of frames) {
    v.setUint32(o + 8, f.length, true)
    v.setUint32(o + 12, f.length, true)
    out.set(f, o + 16)
    o += 16 + f.length
  }
  return out
}

const router = { src: [192, 0, 2, 1] as [number, number, number, number], dst: [192, 0, 2, 9] as [number, number, number, number], srcPort: 40000, dstPort: 10179 }
const collector = { src: router.dst, dst: router.src, srcPort: 10179, dstPort: 40000 }
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

describe('readPcapTcpStreams', () => {
  it('orders segments by sequence number, drops retransmitted bytes, keeps directions apart', () => {
    const streams = readPcapTcpStreams(
      capture([
        { ...router, seq: 0xfffffff0, syn: true, data: '' },
        { ...router, seq: 0xfffffff1, data: 'hello ' },
        // Across the 32-bit wrap, before the segment it follows.
        { ...router, seq: 0xfffffffd, data: 'again' },
        { ...collector, seq: 5000, data: 'ack' },
        { ...router, seq: 0xfffffff7, data: 'world ' },
        { ...router, seq: 0xfffffff1, data: 'hello ' },
        // Overlaps the end of "again" with new bytes after it.
        { ...router, seq: 0x00000000, data: 'in!' },
      ]),
      'built.pcap',
    )
    expect(streams.map((s) => [s.srcPort, s.dstPort, text(s.payload), s.complete])).toEqual([
      [40000, 10179, 'hello world again!', true],
      [10179, 40000, 'ack', true],
    ])
    expect([...streams[0]!.srcAddress.subarray(10)]).toEqual([0xff, 0xff, 192, 0, 2, 1])
  })

  it('stops a stream at a hole in the capture and counts it', () => {
    const stats = newPcapReadStats()
    const [stream] = readPcapTcpStreams(
      capture([
        { ...router, seq: 100, data: 'first ' },
        { ...router, seq: 112, data: 'after the hole' },
      ]),
      'hole.pcap',
      stats,
    )
    expect([text(stream!.payload), stream!.complete]).toEqual(['first ', false])
    expect(stats.skipped.get('TCP stream with a hole')).toBe(1)
  })
})
