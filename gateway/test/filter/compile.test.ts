// The filter language, table-driven: accepted filters with the exact SQL and parameters they
// compile to, rejected ones with their positioned errors, direction swapping and completion.
import { type StorageColumn, allStorageColumns, storageColumns } from '@flowbus/runtime'
import { describe, expect, it } from 'vitest'
import type { FilterNode } from '../../src/filter/index.js'
import {
  compileFilter,
  compileFilterText,
  completeFilter,
  filterColumns,
  parseFilter,
  swapColumnName,
  swapDirection,
  validateFilter,
} from '../../src/filter/index.js'
import { randomFilter, seededRandom } from './generate.js'

const columns = allStorageColumns

describe('accepted filters', () => {
  const cases: [string, string, Record<string, unknown>][] = [
    // The examples.
    [
      'InIfBoundary = external AND SrcAS = AS12322 AND DstPort IN (80, 443)',
      'InIfBoundary = {f0:Int8} AND SrcAS = {f1:UInt32} AND DstPort IN ({f2:UInt16}, {f3:UInt16})',
      { f0: 1, f1: 12322, f2: 80, f3: 443 },
    ],
    ['DstAddr << 192.0.2.0/24', 'DstAddr BETWEEN {f0:IPv6} AND {f1:IPv6}', { f0: '::ffff:192.0.2.0', f1: '::ffff:192.0.2.255' }],
    ['ExporterName LIKE "th2-%"', 'ExporterName LIKE {f0:String}', { f0: 'th2-%' }],
    ['NOT (DstPort > 1024 OR InIfSpeed >= 1000)', 'NOT (DstPort > {f0:UInt16} OR InIfSpeed >= {f1:UInt32})', { f0: 1024, f1: 1000 }],
    ['Proto = "gre"', 'Proto = {f0:UInt8}', { f0: 47 }],
    ['DstCommunities = 65000:100:200', 'has(DstLargeCommunities, tuple({f0:UInt32}, {f1:UInt32}, {f2:UInt32}))', { f0: 65000, f1: 100, f2: 200 }],
    ['DstCommunities = 65000:100', 'has(DstCommunities, {f0:UInt32})', { f0: 65000 * 65536 + 100 }],
    ['SrcPort < DstPort', 'SrcPort < DstPort', {}],
    // Case, blanks, comments.
    ['exportername = \'th2\'', 'ExporterName = {f0:String}', { f0: 'th2' }],
    ['ExporterName="a"', 'ExporterName = {f0:String}', { f0: 'a' }],
    ['  srcas   =   as65000  ', 'SrcAS = {f0:UInt32}', { f0: 65000 }],
    ['DstPort > 1024 -- unprivileged\nand SrcAS = 12322 /* Free */', 'DstPort > {f0:UInt16} AND SrcAS = {f1:UInt32}', { f0: 1024, f1: 12322 }],
    ['OutIfProvider /* that\'s\nthe provider */ = \'telia\'', 'OutIfProvider = {f0:String}', { f0: 'telia' }],
    ['InIfDescription = "contains -- and /* not comments"', 'InIfDescription = {f0:String}', { f0: 'contains -- and /* not comments' }],
    ['DstPort=80--comment right after a value', 'DstPort = {f0:UInt16}', { f0: 80 }],
    ['-- only a comment\n', 'true', {}],
    ['', 'true', {}],
    // Precedence: NOT > AND > OR.
    ['DstPort = 1 OR DstPort = 2 AND SrcPort = 3', 'DstPort = {f0:UInt16} OR (DstPort = {f1:UInt16} AND SrcPort = {f2:UInt16})', { f0: 1, f1: 2, f2: 3 }],
    ['NOT DstPort > 1024 AND SrcPort < 1024', 'NOT (DstPort > {f0:UInt16}) AND SrcPort < {f1:UInt16}', { f0: 1024, f1: 1024 }],
    ['not not Proto = 6', 'NOT (NOT (Proto = {f0:UInt8}))', { f0: 6 }],
    ['(DstPort = 1 OR DstPort = 2) AND SrcPort = 3', '(DstPort = {f0:UInt16} OR DstPort = {f1:UInt16}) AND SrcPort = {f2:UInt16}', { f0: 1, f1: 2, f2: 3 }],
    ['DstPort > 1024 AND(SrcPort < 1024 OR InIfSpeed >= 1000)', 'DstPort > {f0:UInt16} AND (SrcPort < {f1:UInt16} OR InIfSpeed >= {f2:UInt32})', { f0: 1024, f1: 1024, f2: 1000 }],
    // Strings.
    ['ExporterName != "x"', 'ExporterName != {f0:String}', { f0: 'x' }],
    ['ExporterName ILIKE "TH2%"', 'ExporterName ILIKE {f0:String}', { f0: 'TH2%' }],
    ['ExporterName UNLIKE "th2%"', 'ExporterName NOT LIKE {f0:String}', { f0: 'th2%' }],
    ['ExporterName IUNLIKE "th2%"', 'ExporterName NOT ILIKE {f0:String}', { f0: 'th2%' }],
    ['ExporterName NOT LIKE "th2%"', 'ExporterName NOT LIKE {f0:String}', { f0: 'th2%' }],
    ['SrcCountry IN ("FR", \'DE\')', 'SrcCountry IN ({f0:String}, {f1:String})', { f0: 'FR', f1: 'DE' }],
    ['SrcCountry NOTIN ("FR")', 'SrcCountry NOT IN ({f0:String})', { f0: 'FR' }],
    ['SrcCountry NOT IN ("FR")', 'SrcCountry NOT IN ({f0:String})', { f0: 'FR' }],
    ['ExporterName LIKE th2-%', 'ExporterName LIKE {f0:String}', { f0: 'th2-%' }],
    ['ExporterName = "quote \\" and \\\' and \\\\ and \\n"', 'ExporterName = {f0:String}', { f0: 'quote " and \' and \\ and \\n' }],
    ['ExporterName = "日本語 🚀"', 'ExporterName = {f0:String}', { f0: '日本語 🚀' }],
    ['InIfProvider != OutIfProvider', 'InIfProvider != OutIfProvider', {}],
    // IP addresses and subnets.
    ['SrcAddr = 203.0.113.4', 'SrcAddr = {f0:IPv6}', { f0: '::ffff:203.0.113.4' }],
    ['ExporterAddress = 2001:db8:0::1', 'ExporterAddress = {f0:IPv6}', { f0: '2001:db8::1' }],
    ['SrcAddr = 203.0.113.0/24', 'SrcAddr BETWEEN {f0:IPv6} AND {f1:IPv6}', { f0: '::ffff:203.0.113.0', f1: '::ffff:203.0.113.255' }],
    ['SrcAddr << 192.168.0.1/24', 'SrcAddr BETWEEN {f0:IPv6} AND {f1:IPv6}', { f0: '::ffff:192.168.0.0', f1: '::ffff:192.168.0.255' }],
    ['DstAddr !<< 192.168.0.128/27', 'NOT (DstAddr BETWEEN {f0:IPv6} AND {f1:IPv6})', { f0: '::ffff:192.168.0.128', f1: '::ffff:192.168.0.159' }],
    ['ExporterAddress << 2001:db8::c000/115', 'ExporterAddress BETWEEN {f0:IPv6} AND {f1:IPv6}', { f0: '2001:db8::c000', f1: '2001:db8::dfff' }],
    ['SrcAddr != 2001:db8::1', 'SrcAddr != {f0:IPv6}', { f0: '2001:db8::1' }],
    ['SrcAddr IN (203.0.113.1, 2001:db8::1)', 'SrcAddr IN ({f0:IPv6}, {f1:IPv6})', { f0: '::ffff:203.0.113.1', f1: '2001:db8::1' }],
    [
      'SrcAddr NOTIN (203.0.113.1, 10.0.0.0/8)',
      'NOT (SrcAddr = {f0:IPv6} OR SrcAddr BETWEEN {f1:IPv6} AND {f2:IPv6})',
      { f0: '::ffff:203.0.113.1', f1: '::ffff:10.0.0.0', f2: '::ffff:10.255.255.255' },
    ],
    ['SrcAddr << 0.0.0.0/0 AND DstPort = 1', '(SrcAddr BETWEEN {f0:IPv6} AND {f1:IPv6}) AND DstPort = {f2:UInt16}', { f0: '::ffff:0.0.0.0', f1: '::ffff:255.255.255.255', f2: 1 }],
    // Akvorado's network prefix columns.
    [
      'DstNetPrefix = 192.168.0.128/27',
      'DstAddr BETWEEN {f0:IPv6} AND {f1:IPv6} AND DstNetMask = {f2:UInt8}',
      { f0: '::ffff:192.168.0.128', f1: '::ffff:192.168.0.159', f2: 27 },
    ],
    [
      'SrcNetPrefix != 2001:db8::/48 OR DstPort = 1',
      'NOT (SrcAddr BETWEEN {f0:IPv6} AND {f1:IPv6} AND SrcNetMask = {f2:UInt8}) OR DstPort = {f3:UInt16}',
      { f0: '2001:db8::', f1: '2001:db8:0:ffff:ffff:ffff:ffff:ffff', f2: 48, f3: 1 },
    ],
    // Numbers, AS numbers, names.
    ['SrcAS IN (AS12322, 29447)', 'SrcAS IN ({f0:UInt32}, {f1:UInt32})', { f0: 12322, f1: 29447 }],
    ['SrcAS NOTIN(12322,29447)', 'SrcAS NOT IN ({f0:UInt32}, {f1:UInt32})', { f0: 12322, f1: 29447 }],
    ['DstAS != SrcAS', 'DstAS != SrcAS', {}],
    ['SrcAS = 4294967295', 'SrcAS = {f0:UInt32}', { f0: 4294967295 }],
    ['ForwardingStatus >= 128', 'ForwardingStatus >= {f0:UInt8}', { f0: 128 }],
    ['Proto = tcp', 'Proto = {f0:UInt8}', { f0: 6 }],
    ['Proto = 17', 'Proto = {f0:UInt8}', { f0: 17 }],
    ['Proto IN (tcp, "udp", 1)', 'Proto IN ({f0:UInt8}, {f1:UInt8}, {f2:UInt8})', { f0: 6, f1: 17, f2: 1 }],
    ['EType = IPv6', 'EType = {f0:UInt16}', { f0: 0x86dd }],
    ['EType != ipv4', 'EType != {f0:UInt16}', { f0: 0x0800 }],
    ['PacketSize > 1500', 'intDivOrZero(Bytes, Packets) > {f0:UInt64}', { f0: '1500' }],
    ['ipttl > 50', 'IPTTL > {f0:UInt8}', { f0: 50 }],
    ['SrcVlan = 1000', 'SrcVlan = {f0:UInt16}', { f0: 1000 }],
    // Enums.
    ['OutIfBoundary != INTERNAL', 'OutIfBoundary != {f0:Int8}', { f0: 2 }],
    ['InIfBoundary IN (external, "undefined")', 'InIfBoundary IN ({f0:Int8}, {f1:Int8})', { f0: 1, f1: 0 }],
    ['FlowDirection = egress', 'FlowDirection = {f0:Int8}', { f0: 2 }],
    ['InIfBoundary = OutIfBoundary', 'InIfBoundary = OutIfBoundary', {}],
    // Arrays: `=` means contains.
    ['DstASPath = AS1299', 'has(DstASPath, {f0:UInt32})', { f0: 1299 }],
    ['DstASPath != 65000', 'NOT has(DstASPath, {f0:UInt32})', { f0: 65000 }],
    ['DstASPath IN (AS1299, 174)', 'hasAny(DstASPath, [{f0:UInt32}, {f1:UInt32}])', { f0: 1299, f1: 174 }],
    ['DstASPath NOTIN (1299)', 'NOT hasAny(DstASPath, [{f0:UInt32}])', { f0: 1299 }],
    ['DstCommunities != 65000:100', 'NOT has(DstCommunities, {f0:UInt32})', { f0: 4259840100 }],
    [
      'DstCommunities IN (65000:100, 65000:100:200)',
      '(has(DstCommunities, {f0:UInt32}) OR has(DstLargeCommunities, tuple({f1:UInt32}, {f2:UInt32}, {f3:UInt32})))',
      { f0: 4259840100, f1: 65000, f2: 100, f3: 200 },
    ],
    ['DstLargeCommunities = 4200000000:1:2', 'has(DstLargeCommunities, tuple({f0:UInt32}, {f1:UInt32}, {f2:UInt32}))', { f0: 4200000000, f1: 1, f2: 2 }],
    ['MPLSLabels = 16000', 'has(MPLSLabels, {f0:UInt32})', { f0: 16000 }],
    // MAC addresses.
    ['SrcMAC = 00:11:22:33:44:55', 'SrcMAC = {f0:UInt64}', { f0: 0x001122334455 }],
    ['SrcMAC != 00-0c-fF-33-44-55', 'SrcMAC != {f0:UInt64}', { f0: 0x000cff334455 }],
    ['DstMAC = 0000.5e00.5301', 'DstMAC = {f0:UInt64}', { f0: 0x00005e005301 }],
    ['SrcMAC IN (00:11:22:33:44:55)', 'SrcMAC IN ({f0:UInt64})', { f0: 0x001122334455 }],
    // Time (UTC).
    ['TimeReceived >= "2024-05-01 12:00:00"', 'TimeReceived >= {f0:DateTime}', { f0: Date.UTC(2024, 4, 1, 12) / 1000 }],
    ['TimeReceived < 2024-05-01', 'TimeReceived < {f0:DateTime}', { f0: Date.UTC(2024, 4, 1) / 1000 }],
    ['FlowStartTime > "2024-05-01T12:00:00.25Z"', 'FlowStartTime > {f0:DateTime64(3)}', { f0: `${Date.UTC(2024, 4, 1, 12) / 1000}.250` }],
    ['TimeReceived > 1700000000', 'TimeReceived > {f0:DateTime}', { f0: 1700000000 }],
  ]
  it.each(cases)('%s', (text, sql, params) => {
    const result = compileFilterText(text, { columns })
    expect(result).toMatchObject({ ok: true, sql, params })
  })

  it('lists the storage columns read, so the gateway can pick the raw table', () => {
    const result = compileFilterText('SrcAS = 1 AND (DstPort = 80 OR PacketSize > 100) AND DstCommunities = 1:2:3 AND DstNetPrefix = 10.0.0.0/8', { columns })
    expect(result.ok && result.columns).toEqual(['Bytes', 'DstAddr', 'DstLargeCommunities', 'DstNetMask', 'DstPort', 'Packets', 'SrcAS'])
    expect(compileFilterText('DstCommunities IN (1:2, 1:2:3) OR SrcPort < DstPort', { columns })).toMatchObject({
      columns: ['DstCommunities', 'DstLargeCommunities', 'DstPort', 'SrcPort'],
    })
    expect(compileFilterText('', { columns })).toMatchObject({ columns: [] })
    // A parameter prefix that starts like a column is not a column read.
    expect(compileFilterText('DstPort = 1', { columns, paramPrefix: 'SrcAS_' })).toMatchObject({ sql: 'DstPort = {SrcAS_0:UInt16}', columns: ['DstPort'] })
  })

  it('names parameters with the given prefix and refuses a prefix that is not an identifier', () => {
    expect(compileFilterText('DstPort = 1', { columns, paramPrefix: 'filter_' })).toMatchObject({ sql: 'DstPort = {filter_0:UInt16}', params: { filter_0: 1 } })
    expect(() => compileFilterText('DstPort = 1', { columns, paramPrefix: 'a}' })).toThrow(/paramPrefix/)
  })
})

describe('rejected filters', () => {
  const cases: [string, { message: RegExp; offset: number; line: number; column: number; expected: string[] }][] = [
    ['ExporterName', { message: /^after ExporterName: expected "=", "!=".* found end of filter$/, offset: 12, line: 1, column: 13, expected: ['=', '!=', '<', '<=', '>', '>=', '<<', '!<<', 'IN', 'NOTIN', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE'] }],
    ['ExporterName = ', { message: /^a value is missing after =: expected value, found end of filter$/, offset: 15, line: 1, column: 16, expected: ['value'] }],
    ["ExporterName = 'something", { message: /^string not terminated/, offset: 15, line: 1, column: 16, expected: ["'"] }],
    ['ExporterName = "a\nb"', { message: /^string not terminated/, offset: 15, line: 1, column: 16, expected: ['"'] }],
    ['ExporterNamee="something"', { message: /^unknown column "ExporterNamee" \(did you mean ExporterName\?\)$/, offset: 0, line: 1, column: 1, expected: ['column name'] }],
    ['ExporterName > "something"', { message: /^> does not apply to ExporterName/, offset: 13, line: 1, column: 14, expected: ['=', '!=', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE', 'IN', 'NOTIN'] }],
    ['ExporterAddress=203.0.113', { message: /^ExporterAddress takes an IP address or subnet/, offset: 16, line: 1, column: 17, expected: ['value'] }],
    ['ExporterAddress="2001:db8::1"', { message: /write addresses without quotes/, offset: 16, line: 1, column: 17, expected: ['value'] }],
    ['SrcAddr << 192.0.2.0/33', { message: /the prefix length is 0 to 32/, offset: 11, line: 1, column: 12, expected: ['value'] }],
    ['SrcAS=12322a', { message: /^SrcAS takes an AS number, not "12322a"$/, offset: 6, line: 1, column: 7, expected: ['value'] }],
    ['SrcAS=785473854857857485784', { message: /out of range for SrcAS \(0 to 4294967295\)/, offset: 6, line: 1, column: 7, expected: ['value'] }],
    ['DstPort = "80"', { message: /write numbers without quotes/, offset: 10, line: 1, column: 11, expected: ['value'] }],
    ['EType = ipv7', { message: /^EType takes a name \(ipv4, arp, ipv6…\) or a number, not "ipv7"$/, offset: 8, line: 1, column: 9, expected: ['value'] }],
    ['Proto = 1000', { message: /out of range for Proto \(0 to 255\)/, offset: 8, line: 1, column: 9, expected: ['value'] }],
    ['Proto = "nope"', { message: /^Proto takes a name/, offset: 8, line: 1, column: 9, expected: ['value'] }],
    ['InIfBoundary = outside', { message: /^"outside" is not a value of InIfBoundary: use undefined, external, internal$/, offset: 15, line: 1, column: 16, expected: ['undefined', 'external', 'internal'] }],
    ['InIfBoundary < external', { message: /^< does not apply to InIfBoundary/, offset: 13, line: 1, column: 14, expected: ['=', '!=', 'IN', 'NOTIN'] }],
    ['Proto = 100 AND', { message: /^a condition starts with a column name: expected column name, "NOT" or "\(", found end of filter$/, offset: 15, line: 1, column: 16, expected: ['column name', 'NOT', '('] }],
    ['AND Proto = 100', { message: /^"AND" needs a condition before it/, offset: 0, line: 1, column: 1, expected: ['column name', 'NOT', '('] }],
    ['Proto = 100AND Proto = 100', { message: /^unexpected text after the filter: expected "AND", "OR" or end of filter, found "Proto"$/, offset: 15, line: 1, column: 16, expected: ['AND', 'OR', 'end of filter'] }],
    ['Proto = 100AND', { message: /^Proto takes a name .* not "100AND"$/, offset: 8, line: 1, column: 9, expected: ['value'] }],
    ['Proto = 100 ANDProto = 100', { message: /^unexpected text after the filter: expected "AND", "OR" or end of filter, found "ANDProto"$/, offset: 12, line: 1, column: 13, expected: ['AND', 'OR', 'end of filter'] }],
    ['Proto = 100 AND (Proto = 100', { message: /^unclosed "\(" at offset 16/, offset: 28, line: 1, column: 29, expected: ['AND', 'OR', ')'] }],
    ['Proto = 100 /* Hello !', { message: /^comment not closed/, offset: 12, line: 1, column: 13, expected: ['*/'] }],
    ['SrcAS IN (AS12322, 29447', { message: /^IN list opened at offset 9 is not closed/, offset: 24, line: 1, column: 25, expected: [',', ')'] }],
    ['SrcAS IN (AS12322 29447)', { message: /^IN list opened at offset 9 is not closed: expected "," or "\)", found "29447"$/, offset: 18, line: 1, column: 19, expected: [',', ')'] }],
    ['SrcAS IN (AS12322,', { message: /^a value is missing in the IN list/, offset: 18, line: 1, column: 19, expected: ['value'] }],
    ['SrcAS IN 12322', { message: /^IN takes a parenthesised list: expected "\(", found "12322"$/, offset: 9, line: 1, column: 10, expected: ['('] }],
    ['DstPort = 80 )', { message: /^unexpected text after the filter/, offset: 13, line: 1, column: 14, expected: ['AND', 'OR', 'end of filter'] }],
    ['= 80', { message: /^a condition starts with a column name: expected column name, "NOT" or "\(", found "="$/, offset: 0, line: 1, column: 1, expected: ['column name', 'NOT', '('] }],
    ['DstPort = 1 AND\n  Foo = 2', { message: /^unknown column "Foo"$/, offset: 18, line: 2, column: 3, expected: ['column name'] }],
    ['DstPort = 1\n\n  AND SrcPort ~ 2', { message: /^after SrcPort: expected/, offset: 27, line: 3, column: 15, expected: ['=', '!=', '<', '<=', '>', '>=', '<<', '!<<', 'IN', 'NOTIN', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE'] }],
    ['Bytes > 1000', { message: /^Bytes cannot be used in a filter$/, offset: 0, line: 1, column: 1, expected: ['column name'] }],
    ['SrcPort < SrcAddr', { message: /^SrcPort and SrcAddr hold different kinds of values/, offset: 10, line: 1, column: 11, expected: ['value'] }],
    ['ExporterName < ExporterGroup', { message: /^two string columns compare only with = !=$/, offset: 13, line: 1, column: 14, expected: ['=', '!='] }],
    ['DstASPath = DstAS', { message: /^DstASPath compares only with values/, offset: 12, line: 1, column: 13, expected: ['value'] }],
    ['DstCommunities = 65536:1', { message: /both halves of a community are 0 to 65535/, offset: 17, line: 1, column: 18, expected: ['value'] }],
    ['DstLargeCommunities = 1:2', { message: /^DstLargeCommunities takes a large BGP community/, offset: 22, line: 1, column: 23, expected: ['value'] }],
    ['SrcNetPrefix = 192.0.2.1', { message: /^SrcNetPrefix takes a network prefix \(192.0.2.0\/24, 2001:db8::\/32\), not "192.0.2.1"$/, offset: 15, line: 1, column: 16, expected: ['value'] }],
    ['SrcNetPrefix << 192.0.2.0/24', { message: /^<< does not apply to SrcNetPrefix/, offset: 13, line: 1, column: 14, expected: ['=', '!='] }],
    ['SrcMAC = 00:11:22:33:44', { message: /^SrcMAC takes a MAC address/, offset: 9, line: 1, column: 10, expected: ['value'] }],
    ['TimeReceived > "2024-02-30"', { message: /^TimeReceived takes a UTC date and time/, offset: 15, line: 1, column: 16, expected: ['value'] }],
    ['SrcPort NOT = 3', { message: /^after NOT in a condition: expected "IN", "LIKE" or "ILIKE", found "="$/, offset: 12, line: 1, column: 13, expected: ['IN', 'LIKE', 'ILIKE'] }],
  ]
  it.each(cases)('%s', (text, want) => {
    const result = compileFilterText(text, { columns })
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.error.message).toMatch(want.message)
    expect({ offset: result.error.offset, line: result.error.line, column: result.error.column, expected: result.error.expected }).toEqual({
      offset: want.offset,
      line: want.line,
      column: want.column,
      expected: want.expected,
    })
    // validateFilter reports the same error.
    expect(validateFilter(text, columns)).toEqual({ ok: false, error: result.error })
  })

  it('says which group to enable for a column this deployment does not store', () => {
    const deployment = storageColumns({ columns: { enable: [], disable: ['SrcCountry'] } })
    expect(compileFilterText('SrcMAC = 00:11:22:33:44:55', { columns: deployment })).toMatchObject({
      ok: false,
      error: { message: 'SrcMAC is not stored by this deployment: enable the "l2" group in clickhouse.columns.enable', offset: 0 },
    })
    expect(compileFilterText('SrcCountry = "FR"', { columns: deployment })).toMatchObject({
      ok: false,
      error: { message: 'SrcCountry is not stored by this deployment (it is disabled in clickhouse.columns.disable)' },
    })
    const withoutLarge = deployment.filter((c) => c.name !== 'DstLargeCommunities')
    expect(compileFilterText('DstCommunities = 1:2:3', { columns: withoutLarge })).toMatchObject({
      ok: false,
      error: { message: 'DstLargeCommunities is not stored by this deployment, so large communities cannot be matched', offset: 17 },
    })
    expect(validateFilter('DstPort = 80', deployment)).toEqual({ ok: true })
  })

  it('rejects columns the schema does not mark filterable', () => {
    const notFilterable = allStorageColumns.filter((c) => !c.filterable).map((c) => c.name)
    expect(notFilterable.length).toBeGreaterThan(0)
    for (const name of notFilterable) {
      expect(compileFilterText(`${name} = 1`, { columns })).toMatchObject({ ok: false, error: { message: `${name} cannot be used in a filter` } })
    }
    // A schema whose DstPort is not filterable rejects it.
    const edited: StorageColumn[] = columns.map((c) => (c.name === 'DstPort' ? { ...c, filterable: false } : c))
    expect(compileFilterText('DstPort = 80', { columns: edited }).ok).toBe(false)
  })
})

describe('direction swap for bidirectional queries', () => {
  it('swaps Src↔Dst and In↔Out column names, leaving the others', () => {
    expect(['SrcAS', 'DstAddr', 'InIfName', 'OutIfBoundary', 'InIf', 'OutVrfName', 'srcport', 'DSTPORT', 'ExporterName', 'IPTTL', 'ICMPv4Type', 'EType'].map(swapColumnName)).toEqual([
      'DstAS',
      'SrcAddr',
      'OutIfName',
      'InIfBoundary',
      'OutIf',
      'InVrfName',
      'dstport',
      'SRCPORT',
      'ExporterName',
      'IPTTL',
      'ICMPv4Type',
      'EType',
    ])
  })

  const cases: [string, string][] = [
    ['SrcAS = AS12322', 'DstAS = {f0:UInt32}'],
    ['InIfBoundary = external AND OutIfName = "et0"', 'OutIfBoundary = {f0:Int8} AND InIfName = {f1:String}'],
    ['DstAddr << 192.0.2.0/24', 'SrcAddr BETWEEN {f0:IPv6} AND {f1:IPv6}'],
    ['SrcPort < DstPort', 'DstPort < SrcPort'],
    ['InIfProvider != OutIfProvider', 'OutIfProvider != InIfProvider'],
    ['ExporterName = "SrcAS"', 'ExporterName = {f0:String}'],
    ['SrcNetPrefix = 192.0.2.0/24', 'DstAddr BETWEEN {f0:IPv6} AND {f1:IPv6} AND DstNetMask = {f2:UInt8}'],
    ['SrcCountry = "FR" OR NOT InIfSpeed >= 1000', 'DstCountry = {f0:String} OR NOT (OutIfSpeed >= {f1:UInt32})'],
  ]
  it.each(cases)('%s', (text, sql) => {
    expect(compileFilterText(text, { columns, swapDirection: true })).toMatchObject({ ok: true, sql })
    // swapDirection on the tree compiles to the same SQL without the option.
    const parsed = parseFilter(text)
    expect(parsed.ok).toBe(true)
    if (!parsed.ok) return
    expect(compileFilter(swapDirection(parsed.ast), { columns })).toMatchObject({ ok: true, sql })
    // Swapping twice is the identity.
    expect(compileFilter(swapDirection(swapDirection(parsed.ast)), { columns })).toEqual(compileFilter(parsed.ast, { columns }))
  })

  it('says which column has no counterpart in the other direction', () => {
    expect(compileFilterText('DstASPath = AS1299', { columns, swapDirection: true })).toMatchObject({
      ok: false,
      error: { message: 'DstASPath has no counterpart in the other direction (there is no SrcASPath column), so a bidirectional query cannot reverse it', offset: 0 },
    })
  })
})

describe('completion', () => {
  const known = (written: string): string => filterColumns(columns).get(written.toLowerCase())!.name
  const labels = (text: string, cursor = text.length) => completeFilter(text, cursor, columns).suggestions.map((s) => s.label)

  it('offers columns and NOT where a condition starts, filtered by what is typed', () => {
    expect(labels('')).toContain('SrcAS')
    expect(labels('')).toContain('NOT')
    expect(labels('srca')).toEqual(['SrcAddr', 'SrcAS', 'SrcAddrNAT'])
    expect(completeFilter('srca', 4, columns)).toMatchObject({ replaceFrom: 0, replaceTo: 4 })
    expect(labels('DstPort = 80 AND (')).toContain('DstAS')
    // The word under the cursor is replaced whole.
    expect(completeFilter('DstPort = 80 AND SrcPo = 3', 21, columns)).toMatchObject({ replaceFrom: 17, replaceTo: 22 })
    expect(labels('DstPort = 80 AND SrcPo = 3', 21)).toEqual(['SrcPort', 'SrcPortNAT'])
  })

  it('marks raw-only columns', () => {
    const srcAddr = completeFilter('SrcAdd', 6, columns).suggestions.find((s) => s.label === 'SrcAddr')
    expect(srcAddr?.detail).toMatch(/raw table/)
    const srcAS = completeFilter('SrcA', 4, columns).suggestions.find((s) => s.label === 'SrcAS')
    expect(srcAS?.detail).not.toMatch(/raw table/)
  })

  it('offers the operators of the column type', () => {
    expect(labels('ExporterName ')).toEqual(['=', '!=', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE', 'IN', 'NOTIN'])
    expect(labels('SrcAddr ')).toEqual(['=', '!=', '<<', '!<<', 'IN', 'NOTIN'])
    expect(labels('ExporterName IL')).toEqual(['ILIKE'])
    // An operator just typed may still grow (`<` → `<=`).
    expect(labels('SrcPort <')).toEqual(['<', '<='])
    expect(completeFilter('SrcPort <', 9, columns)).toMatchObject({ replaceFrom: 8, replaceTo: 9 })
  })

  it('offers static values of enum-like columns and asks the gateway for the others', () => {
    expect(labels('InIfBoundary = ')).toEqual(['undefined', 'external', 'internal'])
    expect(labels('InIfBoundary = ex')).toEqual(['external'])
    expect(labels('Proto = t')).toEqual(['tcp'])
    expect(labels('EType IN (ipv4, ')).toEqual(['ipv4', 'arp', 'ipv6'])
    expect(completeFilter('ExporterName = "th2', 19, columns)).toEqual({
      replaceFrom: 15,
      replaceTo: 19,
      suggestions: [],
      valuesFor: { column: 'ExporterName', prefix: 'th2', quoted: true },
    })
    expect(completeFilter('SrcAS = 123', 11, columns).valuesFor).toEqual({ column: 'SrcAS', prefix: '123', quoted: false })
    expect(completeFilter('SrcAS IN (1, ', 13, columns).valuesFor).toEqual({ column: 'SrcAS', prefix: '', quoted: false })
    expect(completeFilter('DstAddr = /* x */ 19', 20, columns).valuesFor).toEqual({ column: 'DstAddr', prefix: '19', quoted: false })
    expect(completeFilter('DstPort = -- x\n', 15, columns).valuesFor).toEqual({ column: 'DstPort', prefix: '', quoted: false })
    // Arrays and MACs have no value lookup.
    expect(completeFilter('DstASPath = ', 12, columns).valuesFor).toBeUndefined()
    expect(completeFilter('SrcMAC = ', 9, columns).valuesFor).toBeUndefined()
  })

  it('offers AND, OR and a closing parenthesis after a condition, and nothing inside a comment', () => {
    expect(labels('DstPort = 80 ')).toEqual(['AND', 'OR'])
    expect(labels('(DstPort = 80 ')).toEqual(['AND', 'OR', ')'])
    expect(labels('DstPort = 80 a')).toEqual(['AND'])
    expect(labels('SrcAS IN (1, 2')).toEqual([])
    expect(labels('SrcAS IN (1, 2 ')).toEqual([',', ')'])
    expect(labels('DstPort = 80 /* Src')).toEqual([])
    expect(labels('DstPort = 80 -- Src')).toEqual([])
    expect(labels('DstPort = 80 -- comment\n')).toEqual(['AND', 'OR'])
  })

  it('at every column, operator and value of 300 random filters, offers what is written there', () => {
    const rand = seededRandom(5)
    const conditions = (node: FilterNode): FilterNode[] =>
      node.type === 'condition' ? [node] : node.type === 'not' ? conditions(node.operand) : node.operands.flatMap(conditions)
    let checked = 0
    for (let i = 0; i < 300; i++) {
      const text = randomFilter(rand, 3)
      const parsed = parseFilter(text)
      if (!parsed.ok || !parsed.ast.root) throw new Error(`${text} does not parse`)
      for (const condition of conditions(parsed.ast.root)) {
        if (condition.type !== 'condition') continue
        const column = known(condition.column.name)
        // In the middle of the column name: that column, replacing the whole word.
        const mid = condition.column.span.offset + Math.ceil(condition.column.span.length / 2)
        const atColumn = completeFilter(text, mid, columns)
        expect(atColumn.suggestions.map((s) => s.label), `${text} @${mid}`).toContain(column)
        expect(atColumn).toMatchObject({ replaceFrom: condition.column.span.offset, replaceTo: condition.column.span.offset + condition.column.span.length })
        // Where the operator starts: the column's operators, among them the one written.
        const atOperator = completeFilter(text, condition.operator.span.offset, columns)
        expect(atOperator.suggestions.map((s) => s.label), `${text} @${condition.operator.span.offset}`).toContain(condition.operator.op)
        // At a value: the names of a named column, a lookup of the column's values for scalar
        // dimensions, nothing for the others (arrays, MACs, times, prefixes).
        const value = condition.value
        const info = filterColumns(columns).get(column.toLowerCase())!
        const comparesColumns = value.type === 'literal' && !value.quoted && filterColumns(columns).has(value.text.toLowerCase())
        if (value.type === 'literal' && !comparesColumns) {
          const at = `${text} @${value.span.offset}`
          const atStart = completeFilter(text, value.span.offset, columns)
          if (info.names) {
            expect(atStart.valuesFor, at).toBeUndefined()
            // At the end of the word, or before the closing quote.
            const end = value.span.offset + value.span.length - (value.quoted ? 1 : 0)
            const atEnd = completeFilter(text, end, columns).suggestions.map((s) => s.label)
            if (info.names.has(value.text.replace(/["']/g, '').toLowerCase())) expect(atEnd, at).toContain(value.text.replace(/["']/g, '').toLowerCase())
          } else if (['string', 'ip', 'asn', 'uint'].includes(info.class) && info.dimension) {
            expect(atStart.valuesFor?.column, at).toBe(column)
          } else {
            expect(atStart, at).toMatchObject({ suggestions: [] })
            expect(atStart.valuesFor, at).toBeUndefined()
          }
        }
        checked++
      }
    }
    expect(checked).toBeGreaterThan(500)
  })
})
