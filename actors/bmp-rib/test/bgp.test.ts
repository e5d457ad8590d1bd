// BGP UPDATE decoding on hand-built messages for what the captures lack: 2-byte AS paths completed
// by AS4_PATH, AS_SET and confederation segments, ADD-PATH, End-of-RIB forms, malformed attributes.
import { formatIP } from '@flowbus/bus-schemas'
import { formatPrefix } from '@flowbus/runtime'
import { describe, expect, it } from 'vitest'
import { BgpDecodeError, decodeUpdate, type BgpUpdate } from '../src/bgp/update.js'

const u16 = (v: number) => [v >> 8, v & 0xff]
const u32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]
const attribute = (flags: number, code: number, value: number[]) =>
  flags & 0x10 ? [flags, code, ...u16(value.length), ...value] : [flags, code, value.length, ...value]
const update = (withdrawn: number[], attributes: number[], nlri: number[]): Uint8Array => {
  const body = [...u16(withdrawn.length), ...withdrawn, ...u16(attributes.length), ...attributes, ...nlri]
  return Uint8Array.from([...Array(16).fill(0xff), ...u16(19 + body.length), 2, ...body])
}
const decode = (bytes: Uint8Array, asn4 = true, addPath = false): BgpUpdate =>
  decodeUpdate(bytes, 0, bytes.length, { asn4, addPath: () => addPath })
const prefixes = (u: BgpUpdate, kind: 'announced' | 'withdrawn') =>
  u[kind].flatMap((l) => Array.from({ length: l.count }, (_, i) => `${formatPrefix(l.addresses, l.lengths[i]!, 16 * i)}${l.pathIds ? `#${l.pathIds[i]}` : ''}`))

const ORIGIN = attribute(0x40, 1, [0])
const NEXT_HOP = attribute(0x40, 3, [192, 0, 2, 1])

describe('BGP UPDATE', () => {
  it('reads 4-byte paths with an AS_SET (its lowest member) and leaves confederation segments out', () => {
    const asPath = attribute(0x40, 2, [
      3, 1, ...u32(64512), // AS_CONFED_SEQUENCE
      2, 2, ...u32(65001), ...u32(4200000001),
      1, 3, ...u32(65030), ...u32(65010), ...u32(65020), // AS_SET
    ])
    const u = decode(update([], [...ORIGIN, ...asPath, ...NEXT_HOP], [24, 198, 51, 100]))
    expect(u.attributes.asPath).toEqual([65001, 4200000001, 65010])
    expect(prefixes(u, 'announced')).toEqual(['198.51.100.0/24'])
    expect(formatIP(u.attributes.nextHop!)).toBe('192.0.2.1')
  })

  it('completes a 2-byte path with AS4_PATH (RFC 6793)', () => {
    const asPath = attribute(0x40, 2, [2, 3, ...u16(65001), ...u16(23456), ...u16(23456)])
    const as4Path = attribute(0xc0, 17, [2, 2, ...u32(4200000001), ...u32(4200000002)])
    const u = decode(update([], [...ORIGIN, ...asPath, ...NEXT_HOP, ...as4Path], [16, 10, 1]), false)
    expect(u.attributes.asPath).toEqual([65001, 4200000001, 4200000002])
  })

  it('reads ADD-PATH path ids, MP_REACH IPv6 with a link-local next hop, and MP_UNREACH', () => {
    const nextHops = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1, 0xfe, 0x80, ...Array(13).fill(0), 1]
    const mpReach = attribute(0x90, 14, [...u16(2), 1, 32, ...nextHops, 0, ...u32(7), 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1])
    const mpUnreach = attribute(0x90, 15, [...u16(2), 1, ...u32(9), 32, 0x20, 0x01, 0x0d, 0xb9])
    const u = decode(update([...u32(3), 24, 192, 0, 2], [...ORIGIN, ...attribute(0x40, 2, []), ...mpReach, ...mpUnreach], []), true, true)
    expect(prefixes(u, 'announced')).toEqual(['2001:db8:1::/48#7'])
    expect(prefixes(u, 'withdrawn')).toEqual(['192.0.2.0/24#3', '2001:db9::/32#9'])
    expect(formatIP(u.attributes.mpNextHop!)).toBe('2001:db8::1')
    expect(u.endOfRib).toBeUndefined()
  })

  it('recognises End-of-RIB for IPv4 and for other families, and skips unknown families', () => {
    expect(decode(update([], [], [])).endOfRib).toEqual({ afi: 1, safi: 1 })
    expect(decode(update([], attribute(0x80, 15, [...u16(2), 1]), [])).endOfRib).toEqual({ afi: 2, safi: 1 })
    const vpn = decode(update([], [...ORIGIN, ...attribute(0x80, 15, [...u16(1), 128, 0x70, 1, 2, 3])], []))
    expect([vpn.skippedFamilies, vpn.withdrawn.length, vpn.endOfRib]).toEqual([['1/128'], 0, undefined])
  })

  it('rejects malformed UPDATEs with a reason', () => {
    const reason = (bytes: Uint8Array) => {
      try {
        decode(bytes)
        return 'accepted'
      } catch (error) {
        expect(error).toBeInstanceOf(BgpDecodeError)
        return (error as BgpDecodeError).reason
      }
    }
    expect(reason(update([], [...ORIGIN, ...NEXT_HOP], [33, 1, 2, 3, 4, 5]))).toBe('bgp-bad-nlri')
    expect(reason(update([], [...ORIGIN, ...NEXT_HOP], [24, 1, 2]))).toBe('bgp-bad-nlri')
    expect(reason(update([], [...ORIGIN, 0x40, 3, 9, 1, 2], []))).toBe('bgp-bad-attribute')
    expect(reason(update([], [...ORIGIN, ...attribute(0x40, 2, [2, 5, ...u32(1)])], []))).toBe('bgp-bad-as-path')
    expect(reason(update([], [...ORIGIN, ...attribute(0xc0, 8, [1, 2, 3])], []))).toBe('bgp-bad-attribute')
    expect(reason(update([], [...ORIGIN], [24, 198, 51, 100]))).toBe('bgp-missing-next-hop')
    const short = update([], [], [])
    short[17] = 200
    expect(reason(short)).toBe('bgp-bad-length')
  })
})
