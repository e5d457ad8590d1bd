// The sampled-header parser on hand-built frames: each layer it knows, what it keeps when a frame
// is cut, and that no cut or corrupted frame makes it throw or read outside its bounds.
import { FlowBatch, formatIP, type NumericColumn } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { FrameStatus, parseFrame, type FirstLayer } from '../../src/packet/index.js'
import {
  authenticationHeader,
  bytes,
  ethernet,
  icmpHeader,
  ipv4Header,
  ipv6Extension,
  ipv6Fragment,
  ipv6Header,
  mplsStack,
  tcpHeader,
  udpHeader,
  vlanTag,
} from './build.js'
import { seededRandom } from '../sflow/random.js'

const DST = '00:11:22:33:44:55'
const SRC = '66:77:88:99:aa:bb'

function parse(frame: Uint8Array, first: FirstLayer = 'ethernet', batch = new FlowBatch(4)) {
  const row = batch.appendRow()
  const status = parseFrame(frame, 0, frame.length, batch, row, first)
  const n = (col: NumericColumn): number => batch.getNumber(col, row)
  return {
    status,
    batch,
    n,
    src: batch.has('SrcAddr') ? formatIP(batch.getIP('SrcAddr', row)) : undefined,
    dst: batch.has('DstAddr') ? formatIP(batch.getIP('DstAddr', row)) : undefined,
    labels: [...batch.getList('MPLSLabels', row)],
  }
}

describe('parseFrame', () => {
  it('reads Ethernet, IPv4 and TCP', () => {
    const frame = bytes(
      ethernet(DST, SRC, 0x0800, ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, ttl: 61, tos: 0xb8, id: 4321 }, tcpHeader(443, 51000, 0x12))),
    )
    const r = parse(frame)
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.n('DstMAC')).toBe(0x001122334455)
    expect(r.n('SrcMAC')).toBe(0x66778899aabb)
    expect(r.n('EType')).toBe(0x0800)
    expect(r.src).toBe('10.0.0.1')
    expect(r.dst).toBe('10.0.0.2')
    expect(r.n('Proto')).toBe(6)
    expect(r.n('IPTTL')).toBe(61)
    expect(r.n('IPTos')).toBe(0xb8)
    expect(r.n('IPFragmentID')).toBe(4321)
    expect(r.n('SrcPort')).toBe(443)
    expect(r.n('DstPort')).toBe(51000)
    expect(r.n('TCPFlags')).toBe(0x12)
  })

  it('keeps the TCP NS flag as bit 8', () => {
    const frame = bytes(ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6 }, tcpHeader(1, 2, 0x110)))
    expect(parse(frame, 'ipv4').n('TCPFlags')).toBe(0x110)
  })

  it('skips IPv4 options', () => {
    const frame = bytes(ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, options: [1, 1, 1, 0] }, udpHeader(53, 5353)))
    const r = parse(frame, 'ipv4')
    expect(r.status).toBe(FrameStatus.Complete)
    expect([r.n('SrcPort'), r.n('DstPort')]).toEqual([53, 5353])
  })

  it('reads no ports from a non-first IPv4 fragment', () => {
    const frame = bytes(ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, id: 9, fragment: 185 }, udpHeader(53, 5353)))
    const r = parse(frame, 'ipv4')
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.n('IPFragmentOffset')).toBe(185)
    expect(r.n('IPFragmentID')).toBe(9)
    expect(r.n('SrcPort')).toBe(0)
  })

  it('reads an 802.1Q tag into SrcVlan', () => {
    const frame = bytes(ethernet(DST, SRC, 0x8100, vlanTag(100, 0x0800, ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17 }, udpHeader(1, 2)), 5)))
    const r = parse(frame)
    expect(r.n('SrcVlan')).toBe(100)
    expect(r.n('EType')).toBe(0x0800)
    expect(r.n('DstPort')).toBe(2)
  })

  it.each([0x88a8, 0x9100])('keeps the outer (service) tag of QinQ with TPID %s', (tpid) => {
    const frame = bytes(ethernet(DST, SRC, tpid, vlanTag(300, 0x8100, vlanTag(42, 0x86dd, ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 17 }, udpHeader(7, 8))))))
    const r = parse(frame)
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.n('SrcVlan')).toBe(300)
    expect(r.n('EType')).toBe(0x86dd)
    expect(r.src).toBe('2001:db8::1')
    expect(r.n('SrcPort')).toBe(7)
  })

  it('does not replace a VLAN the row already has', () => {
    const batch = new FlowBatch(4)
    const row = batch.appendRow()
    batch.u16('SrcVlan')[row] = 7
    const frame = bytes(ethernet(DST, SRC, 0x8100, vlanTag(100, 0x0806, [])))
    parseFrame(frame, 0, frame.length, batch, row, 'ethernet')
    expect(batch.getNumber('SrcVlan', row)).toBe(7)
  })

  it('reads an MPLS label stack and the IPv4 packet under it', () => {
    const frame = bytes(ethernet(DST, SRC, 0x8847, mplsStack([18, 16], ipv4Header({ src: '10.31.0.1', dst: '10.34.0.1', proto: 6 }, tcpHeader(11001, 23, 0x10)))))
    const r = parse(frame)
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.labels).toEqual([18, 16])
    expect(r.n('EType')).toBe(0x0800)
    expect(r.dst).toBe('10.34.0.1')
    expect(r.n('TCPFlags')).toBe(0x10)
  })

  it('reads an MPLS label stack over IPv6 and as a first layer', () => {
    const frame = bytes(mplsStack([1048575, 2], ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 6 }, tcpHeader(1, 80, 2))))
    const r = parse(frame, 'mpls')
    expect(r.labels).toEqual([1048575, 2])
    expect(r.n('EType')).toBe(0x86dd)
    expect(r.n('DstPort')).toBe(80)
  })

  it('goes through a pseudowire control word into an Ethernet-over-MPLS frame, keeping the outer MACs', () => {
    const inner = ethernet('02:00:00:00:00:03', '02:00:00:00:00:04', 0x0800, ipv4Header({ src: '10.1.1.1', dst: '10.2.2.2', proto: 17 }, udpHeader(10, 20)))
    const frame = bytes(ethernet(DST, SRC, 0x8847, mplsStack([300012, 17], [0, 0, 0, 0, ...inner])))
    const r = parse(frame)
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.labels).toEqual([300012, 17])
    expect(r.n('DstMAC')).toBe(0x001122334455)
    expect(r.n('EType')).toBe(0x0800)
    expect(r.src).toBe('10.1.1.1')
    expect(r.n('DstPort')).toBe(20)
  })

  it('stops after the labels when the payload is neither IP nor a control word', () => {
    const frame = bytes(ethernet(DST, SRC, 0x8847, mplsStack([100], [0x10, 0, 0, 0])))
    const r = parse(frame)
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.labels).toEqual([100])
    expect(r.n('EType')).toBe(0x8847)
    expect(r.src).toBeUndefined()
  })

  it('reads IPv6 header fields', () => {
    const frame = bytes(ipv6Header({ src: '2001:db8::1', dst: 'fe80::1', next: 17, hopLimit: 3, trafficClass: 0x2e, flowLabel: 0xabcde }, udpHeader(5, 6)))
    const r = parse(frame, 'ipv6')
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.dst).toBe('fe80::1')
    expect(r.n('IPTTL')).toBe(3)
    expect(r.n('IPTos')).toBe(0x2e)
    expect(r.n('IPv6FlowLabel')).toBe(0xabcde)
    expect(r.n('Proto')).toBe(17)
  })

  it('walks IPv6 extension headers (hop-by-hop, routing, destination options, AH) to the transport', () => {
    const transport = tcpHeader(22, 40000, 0x18)
    const chain = ipv6Extension(43, 0, ipv6Extension(60, 1, ipv6Extension(51, 0, authenticationHeader(6, 3, transport))))
    const frame = bytes(ethernet(DST, SRC, 0x86dd, ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 0 }, chain)))
    const r = parse(frame)
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.n('Proto')).toBe(6)
    expect(r.n('SrcPort')).toBe(22)
    expect(r.n('TCPFlags')).toBe(0x18)
  })

  it('reads the IPv6 fragment header; only a first fragment gives ports', () => {
    const first = parse(bytes(ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 44 }, ipv6Fragment(17, 0, 0xdeadbeef, true, udpHeader(500, 4500)))), 'ipv6')
    expect(first.n('IPFragmentID')).toBe(0xdeadbeef)
    expect(first.n('Proto')).toBe(17)
    expect(first.n('DstPort')).toBe(4500)
    const later = parse(bytes(ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 44 }, ipv6Fragment(17, 100, 7, false, [1, 2, 3, 4]))), 'ipv6')
    expect(later.status).toBe(FrameStatus.Complete)
    expect(later.n('IPFragmentOffset')).toBe(100)
    expect(later.n('Proto')).toBe(17)
    expect(later.n('SrcPort')).toBe(0)
  })

  it('reads ICMP and ICMPv6 type and code', () => {
    const v4 = parse(bytes(ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 1 }, icmpHeader(3, 13))), 'ipv4')
    expect([v4.n('ICMPv4Type'), v4.n('ICMPv4Code')]).toEqual([3, 13])
    const v6 = parse(bytes(ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 58 }, icmpHeader(135, 0))), 'ipv6')
    expect([v6.n('ICMPv6Type'), v6.n('ICMPv6Code')]).toEqual([135, 0])
    expect(v6.batch.has('ICMPv4Type')).toBe(false)
  })

  it('does not open tunnels: GRE and IP-in-IP report the outer header', () => {
    const inner = ipv4Header({ src: '192.168.0.1', dst: '192.168.0.2', proto: 1 }, icmpHeader(8, 0))
    const gre = parse(bytes(ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 47 }, [0, 0, 8, 0, ...inner])), 'ipv4')
    expect([gre.src, gre.n('Proto'), gre.n('ICMPv4Type')]).toEqual(['10.0.0.1', 47, 0])
    const ipip = parse(bytes(ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 4 }, inner)), 'ipv4')
    expect([ipip.src, ipip.n('Proto')]).toEqual(['10.0.0.1', 4])
  })

  it('leaves non-IP frames with their EtherType', () => {
    const r = parse(bytes(ethernet(DST, SRC, 0x0806, new Array<number>(28).fill(0))))
    expect(r.status).toBe(FrameStatus.Complete)
    expect(r.n('EType')).toBe(0x0806)
    expect(r.batch.has('SrcAddr')).toBe(false)
  })

  it('says Malformed for a wrong IP version or header length, keeping the link layer', () => {
    const badVersion = parse(bytes(ethernet(DST, SRC, 0x0800, [0x65, ...new Array<number>(39).fill(0)])))
    expect(badVersion.status).toBe(FrameStatus.Malformed)
    expect(badVersion.n('SrcMAC')).toBe(0x66778899aabb)
    const badIHL = parse(bytes([0x44, ...new Array<number>(39).fill(0)]), 'ipv4')
    expect(badIHL.status).toBe(FrameStatus.Malformed)
    const badV6 = parse(bytes([0x45, ...new Array<number>(39).fill(0)]), 'ipv6')
    expect(badV6.status).toBe(FrameStatus.Malformed)
  })

  it('keeps what it read when a frame is cut inside a header', () => {
    const full = ethernet(DST, SRC, 0x8100, vlanTag(12, 0x0800, ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6 }, tcpHeader(1000, 2000, 2))))
    const cutInTCP = parse(bytes(full.slice(0, 14 + 4 + 20 + 6)))
    expect(cutInTCP.status).toBe(FrameStatus.Truncated)
    expect(cutInTCP.n('SrcVlan')).toBe(12)
    expect(cutInTCP.dst).toBe('10.0.0.2')
    expect(cutInTCP.n('DstPort')).toBe(2000)
    expect(cutInTCP.n('TCPFlags')).toBe(0)
    const cutInIP = parse(bytes(full.slice(0, 14 + 4 + 10)))
    expect(cutInIP.status).toBe(FrameStatus.Truncated)
    expect(cutInIP.n('SrcMAC')).toBe(0x66778899aabb)
    expect(cutInIP.batch.has('SrcAddr')).toBe(false)
  })

  it('honours start and end inside a larger buffer', () => {
    const frame = ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17 }, udpHeader(1, 2))
    const buffer = bytes([0xff, 0xff, ...frame, 0xff, 0xff])
    const batch = new FlowBatch(2)
    const row = batch.appendRow()
    expect(parseFrame(buffer, 2, 2 + frame.length, batch, row, 'ipv4')).toBe(FrameStatus.Complete)
    expect(batch.getNumber('DstPort', row)).toBe(2)
    // The same frame one byte short of its UDP ports is cut, whatever follows in the buffer.
    expect(parseFrame(buffer, 2, 2 + 20 + 3, batch, batch.appendRow(), 'ipv4')).toBe(FrameStatus.Truncated)
  })

  it('writes rows after the batch grows', () => {
    const batch = new FlowBatch(1)
    const frame = bytes(ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17 }, udpHeader(1, 2)))
    for (let i = 0; i < 50; i++) parseFrame(frame, 0, frame.length, batch, batch.appendRow(), 'ipv4')
    expect(batch.count).toBe(50)
    for (let i = 0; i < 50; i++) expect(batch.getNumber('DstPort', i)).toBe(2)
  })

  it('never throws on cut or corrupted frames', () => {
    const frames = [
      ethernet(DST, SRC, 0x88a8, vlanTag(300, 0x8100, vlanTag(42, 0x8847, mplsStack([16, 17], [0, 0, 0, 0, ...ethernet(DST, SRC, 0x86dd, ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 0 }, ipv6Extension(44, 0, ipv6Fragment(51, 0, 1, true, authenticationHeader(58, 1, icmpHeader(1, 4))))))])))),
      ethernet(DST, SRC, 0x0800, ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, options: [1, 1, 1, 1] }, tcpHeader(1, 2, 3))),
    ]
    const next = seededRandom(12345)
    for (const full of frames) {
      for (let cut = 0; cut <= full.length; cut++) {
        const frame = bytes(full.slice(0, cut))
        for (const first of ['ethernet', 'ipv4', 'ipv6', 'mpls'] as const) expect(() => parse(frame, first)).not.toThrow()
      }
      for (let i = 0; i < 2000; i++) {
        const frame = bytes(full)
        for (let flips = 1 + next(4); flips > 0; flips--) frame[next(frame.length)]! ^= 1 << next(8)
        expect([FrameStatus.Complete, FrameStatus.Truncated, FrameStatus.Malformed]).toContain(parse(frame).status)
      }
    }
  })
})
