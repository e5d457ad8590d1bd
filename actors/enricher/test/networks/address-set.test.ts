// Per-batch distinct addresses: every row maps to the distinct address it holds, each distinct
// address once, on aligned columns (word compare) and unaligned ones (byte compare).
import { parseIP } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { AddressSet } from '../../src/networks/address-set.js'

const column = (addresses: string[], byteOffset: number): Uint8Array => {
  const bytes = new Uint8Array(byteOffset + addresses.length * 16).subarray(byteOffset)
  addresses.forEach((a, r) => bytes.set(parseIP(a), r * 16))
  return bytes
}

describe('AddressSet', () => {
  for (const byteOffset of [0, 1]) {
    it(`maps rows to distinct addresses (column at byte offset ${byteOffset})`, () => {
      // 300 rows over 7 addresses, with IPv4 and IPv6 differing in single words.
      const pool = ['10.0.0.1', '10.0.0.2', '::ffff:0:0', '2001:db8::1', '2001:db8::1:0:0:1', '0.0.0.0', '255.255.255.255']
      const rows = Array.from({ length: 300 }, (_, r) => pool[(r * r + 3 * r) % pool.length]!)
      const col = column(rows, byteOffset)
      const set = new AddressSet().build({}, col, rows.length)
      expect(set.count).toBe(new Set(rows.map((a) => parseIP(a).join('.'))).size)
      for (let r = 0; r < rows.length; r++) {
        const first = set.firstRow[set.unique[r]!]!
        expect(rows[first], `row ${r}`).toBe(rows[r])
        expect(first).toBeLessThanOrEqual(r)
      }
      const firsts = Array.from(set.firstRow.subarray(0, set.count), (r) => rows[r])
      expect(new Set(firsts).size).toBe(set.count)
    })
  }

  it('is rebuilt for another batch or after clear, reused for the same one', () => {
    const set = new AddressSet()
    const batch = {}
    const a = column(['10.0.0.1', '10.0.0.1'], 0)
    expect(set.build(batch, a, 2).count).toBe(1)
    a.set(parseIP('10.0.0.2'), 16)
    expect(set.build(batch, a, 2).count).toBe(1)
    set.clear()
    expect(set.build(batch, a, 2).count).toBe(2)
    expect(set.build({}, column(['10.0.0.3'], 0), 1).count).toBe(1)
  })
})
