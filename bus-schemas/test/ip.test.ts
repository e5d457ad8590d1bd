// Address text forms: RFC 5952 output, RFC 4291 input, IPv4-mapped printed as a dotted quad.

import { describe, expect, it } from 'vitest'
import { formatIP, formatMAC, ipv4ToMapped, isIPv4Mapped, parseIP, parseMAC } from '../src/ip.js'

const bytes = (...groups: number[]): Uint8Array => {
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  return out
}

describe('formatIP (RFC 5952)', () => {
  const cases: [Uint8Array, string][] = [
    // 4.1 leading zeros suppressed; 4.3 lowercase.
    [bytes(0x2001, 0x0db8, 0, 0, 0, 0, 0, 1), '2001:db8::1'],
    [bytes(0x2001, 0xdb8, 0xaaaa, 0xbbbb, 0xcccc, 0xdddd, 0xeeee, 0x0001), '2001:db8:aaaa:bbbb:cccc:dddd:eeee:1'],
    [bytes(0x2001, 0xdb8, 0xABCD, 0xEF, 1, 2, 3, 4), '2001:db8:abcd:ef:1:2:3:4'],
    // 4.2.2 a single zero group is not shortened.
    [bytes(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), '2001:db8:0:1:1:1:1:1'],
    // 4.2.1 the longest run is shortened, as much as possible.
    [bytes(0x2001, 0xdb8, 0, 0, 0, 0, 2, 1), '2001:db8::2:1'],
    [bytes(0x2001, 0, 0, 1, 0, 0, 0, 1), '2001:0:0:1::1'],
    // 4.2.3 on a tie, the first run.
    [bytes(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), '2001:db8::1:0:0:1'],
    // Runs at the edges, all zeros, all ones.
    [bytes(0, 0, 0, 0, 0, 0, 0, 0), '::'],
    [bytes(0, 0, 0, 0, 0, 0, 0, 1), '::1'],
    [bytes(0xfe80, 0, 0, 0, 0, 0, 0, 0), 'fe80::'],
    [bytes(0, 1, 0, 0, 0, 0, 0, 0), '0:1::'],
    [bytes(0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    // IPv4-mapped: printed as the IPv4 address flowbus users expect.
    [bytes(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201), '192.0.2.1'],
    [bytes(0, 0, 0, 0, 0, 0xffff, 0, 0), '0.0.0.0'],
    // IPv4-compatible and NAT64 addresses are plain IPv6.
    [bytes(0, 0, 0, 0, 0, 0, 0xc000, 0x0201), '::c000:201'],
    [bytes(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0201), '64:ff9b::c000:201'],
  ]
  for (const [input, text] of cases) {
    it(text, () => {
      expect(formatIP(input)).toBe(text)
      expect(parseIP(text)).toEqual(input)
    })
  }

  it('formats at an offset inside a column and checks the length', () => {
    const column = new Uint8Array(32)
    column.set(ipv4ToMapped(0x0a000001), 16)
    expect(formatIP(column, 16)).toBe('10.0.0.1')
    expect(() => formatIP(column, 20)).toThrow(/16 bytes/)
  })
})

describe('parseIP', () => {
  it('accepts every RFC 4291 text form', () => {
    expect(formatIP(parseIP('2001:DB8:0:0:0:0:0:1'))).toBe('2001:db8::1')
    expect(formatIP(parseIP('2001:0db8:0000:0000:0000:0000:0000:0001'))).toBe('2001:db8::1')
    expect(formatIP(parseIP('2001:db8:0::1'))).toBe('2001:db8::1')
    expect(formatIP(parseIP('::ffff:192.0.2.128'))).toBe('192.0.2.128')
    expect(formatIP(parseIP('::192.0.2.128'))).toBe('::c000:280')
    expect(formatIP(parseIP('1:2:3:4:5:6:192.0.2.1'))).toBe('1:2:3:4:5:6:c000:201')
    expect(formatIP(parseIP('1::'))).toBe('1::')
    expect(formatIP(parseIP('1:2:3:4:5:6:7::'))).toBe('1:2:3:4:5:6:7:0')
    expect(formatIP(parseIP('::2:3:4:5:6:7:8'))).toBe('0:2:3:4:5:6:7:8')
    expect(isIPv4Mapped(parseIP('203.0.113.7'))).toBe(true)
    expect(isIPv4Mapped(parseIP('::203.0.113.7'))).toBe(false)
  })

  const invalid = [
    '', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', 'a.b.c.d', '1.2.3.4 ',
    ':', ':::', '1:::2', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1',
    '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', ':1::', '1::2:', 'fe80::1%eth0', '2001:db8::/32',
    '::ffff:1.2.3', '1.2.3.4::', '::1.2.3.4:5',
  ]
  for (const text of invalid) {
    it(`rejects "${text}" naming the input`, () => {
      expect(() => parseIP(text)).toThrow(`invalid IP address "${text}"`)
    })
  }
})

describe('MAC addresses', () => {
  it('formats and parses 48-bit values', () => {
    expect(formatMAC(0)).toBe('00:00:00:00:00:00')
    expect(formatMAC(0xffffffffffff)).toBe('ff:ff:ff:ff:ff:ff')
    expect(formatMAC(0x02005e0010ab)).toBe('02:00:5e:00:10:ab')
    expect(parseMAC('02:00:5E:00:10:AB')).toBe(0x02005e0010ab)
    expect(parseMAC('02-00-5e-00-10-ab')).toBe(0x02005e0010ab)
    expect(() => parseMAC('02:00:5e:00:10')).toThrow('invalid MAC address "02:00:5e:00:10"')
  })
})
