// Compiled filters run in chDB against the real flows schema (every optional group enabled) on a
// table of known rows; the rows they match must be the rows a JS evaluation of the same filter
// picks. The evaluator below reads the syntax tree with its own code, not the compiler's.
import { join } from 'node:path'
import { parseIP } from '@flowbus/bus-schemas'
import { type ClickHouseConfig, ClickHouseSection, flowsTable, ident, openClickHouse, optionalGroups, renderCreateTable, storageColumns } from '@flowbus/runtime'
import { Schema } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, tempDir } from '../../../test/src/harness/process.js'
import { type FilterLiteral, type FilterNode, compileFilterText, parseFilter } from '../../src/filter/index.js'
import { pick, randomFilter, seededRandom } from './generate.js'

type Client = Awaited<ReturnType<typeof openClickHouse>>

// --- the rows ------------------------------------------------------------------------------------

interface Row {
  TimeReceived: number
  FlowStartTimeMs: number
  ExporterAddress: string
  ExporterName: string
  SrcAddr: string
  DstAddr: string
  SrcNetMask: number
  DstNetMask: number
  SrcAS: number
  DstAS: number
  DstASPath: number[]
  DstCommunities: number[]
  DstLargeCommunities: [number, number, number][]
  MPLSLabels: number[]
  InIfBoundary: string
  OutIfBoundary: string
  FlowDirection: string
  InIfSpeed: number
  OutIfSpeed: number
  InIfProvider: string
  OutIfProvider: string
  SrcCountry: string
  DstCountry: string
  SrcPort: number
  DstPort: number
  Proto: number
  EType: number
  SrcMAC: number
  Bytes: number
  Packets: number
}

const BASE = 1700000000

const makeRows = (count: number): Row[] => {
  const rand = seededRandom(42)
  const subset = <T>(items: readonly T[]): T[] => items.filter(() => rand() < 0.4)
  const v4 = ['192.0.2.1', '192.0.2.77', '192.0.2.200', '198.51.100.7', '198.51.100.130', '10.1.2.3', '203.0.113.9']
  const v6 = ['2001:db8::1', '2001:db8:1::5', '2001:db8:ffff::1', 'fe80::1', '2a00:1450::200e']
  return Array.from({ length: count }, (_, i) => ({
    TimeReceived: BASE + i,
    FlowStartTimeMs: (BASE + i) * 1000 - Math.floor(rand() * 2000),
    ExporterAddress: pick(rand, ['192.0.2.1', '192.0.2.2', '2001:db8::1']),
    ExporterName: pick(rand, ['th2-edge1', 'th2-edge2', 'par-core1', "o'brien", 'TH2-UPPER', '50%off', '']),
    SrcAddr: pick(rand, rand() < 0.6 ? v4 : v6),
    DstAddr: pick(rand, rand() < 0.6 ? v4 : v6),
    SrcNetMask: pick(rand, [0, 24, 25, 32, 48]),
    DstNetMask: pick(rand, [0, 24, 25, 32, 48]),
    SrcAS: pick(rand, [0, 12322, 29447, 65000, 4200000000]),
    DstAS: pick(rand, [0, 12322, 29447, 65000]),
    DstASPath: subset([1299, 174, 12322, 64512]),
    DstCommunities: subset([65000 * 65536 + 100, 65000 * 65536 + 200, 65536 + 1]),
    DstLargeCommunities: subset([
      [65000, 100, 200],
      [65000, 1, 2],
    ] as [number, number, number][]),
    MPLSLabels: subset([16000, 16001, 3]),
    InIfBoundary: pick(rand, ['undefined', 'external', 'internal']),
    OutIfBoundary: pick(rand, ['undefined', 'external', 'internal']),
    FlowDirection: pick(rand, ['undefined', 'ingress', 'egress']),
    InIfSpeed: pick(rand, [0, 1000, 10000, 100000]),
    OutIfSpeed: pick(rand, [0, 1000, 10000, 100000]),
    InIfProvider: pick(rand, ['', 'cogent', 'telia']),
    OutIfProvider: pick(rand, ['', 'cogent', 'telia']),
    SrcCountry: pick(rand, ['FR', 'DE', '']),
    DstCountry: pick(rand, ['FR', 'DE', '']),
    SrcPort: pick(rand, [22, 80, 443, 1024, 1025, 50000, 65535]),
    DstPort: pick(rand, [22, 80, 443, 1024, 1025, 50000, 65535]),
    Proto: pick(rand, [1, 6, 17, 47]),
    EType: pick(rand, [0x0800, 0x86dd]),
    SrcMAC: pick(rand, [0x001122334455, 0x020000000001, 0xffffffffffff, 0]),
    Bytes: pick(rand, [0, 64, 1500, 150000, 9000]),
    Packets: pick(rand, [0, 1, 2, 100]),
  }))
}

const mapped = (ip: string): string => (ip.includes(':') ? ip : `::ffff:${ip}`)

const insertable = (row: Row): Record<string, unknown> => {
  const { FlowStartTimeMs, ...rest } = row
  return {
    ...rest,
    FlowStartTime: `${Math.floor(FlowStartTimeMs / 1000)}.${String(FlowStartTimeMs % 1000).padStart(3, '0')}`,
    ExporterAddress: mapped(row.ExporterAddress),
    SrcAddr: mapped(row.SrcAddr),
    DstAddr: mapped(row.DstAddr),
  }
}

// --- the JS evaluator -----------------------------------------------------------------------------

const hex = (ip: string): string => Buffer.from(parseIP(ip)).toString('hex')

/** Whether `ip` lies in `subnet` (or equals a plain address), comparing leading bits. */
const inNetwork = (ip: string, written: string): boolean => {
  const [address, length] = written.split('/') as [string, string | undefined]
  const bits = length === undefined ? 128 : Number(length) + (address.includes(':') ? 0 : 96)
  const a = BigInt(`0x${hex(ip)}`)
  const b = BigInt(`0x${hex(address)}`)
  const shift = BigInt(128 - bits)
  return a >> shift === b >> shift
}

const likeToRegExp = (pattern: string, flags: string): RegExp => {
  let source = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '\\' && i + 1 < pattern.length) source += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    else if (c === '%') source += '[\\s\\S]*'
    else if (c === '_') source += '[\\s\\S]'
    else source += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${source}$`, flags)
}

const names: Record<string, number> = { tcp: 6, udp: 17, gre: 47, icmp: 1, ipv4: 0x0800, ipv6: 0x86dd }
const kinds: Record<string, 'prefix' | 'number' | 'string' | 'ip' | 'enum' | 'aspath' | 'communities' | 'labels' | 'mac' | 'time' | 'time64'> = {
  SrcPort: 'number',
  DstPort: 'number',
  InIfSpeed: 'number',
  OutIfSpeed: 'number',
  Proto: 'number',
  EType: 'number',
  PacketSize: 'number',
  SrcAS: 'number',
  DstAS: 'number',
  ExporterName: 'string',
  InIfProvider: 'string',
  OutIfProvider: 'string',
  SrcCountry: 'string',
  DstCountry: 'string',
  SrcAddr: 'ip',
  DstAddr: 'ip',
  ExporterAddress: 'ip',
  InIfBoundary: 'enum',
  OutIfBoundary: 'enum',
  FlowDirection: 'enum',
  DstASPath: 'aspath',
  DstCommunities: 'communities',
  MPLSLabels: 'labels',
  SrcMAC: 'mac',
  TimeReceived: 'time',
  FlowStartTime: 'time64',
  SrcNetPrefix: 'prefix',
  DstNetPrefix: 'prefix',
}
const canonical = new Map(Object.keys(kinds).map((k) => [k.toLowerCase(), k]))

const field = (row: Row, column: string): unknown =>
  column === 'PacketSize' ? (row.Packets === 0 ? 0 : Math.floor(row.Bytes / row.Packets)) : column === 'FlowStartTime' ? row.FlowStartTimeMs : row[column as keyof Row]

const numberOf = (text: string): number => names[text.toLowerCase()] ?? Number(text.replace(/^as/i, ''))
const macOf = (text: string): number => parseInt(text.replace(/[:.-]/g, ''), 16)
const timeOf = (text: string, ms: boolean): number => {
  const seconds = /^\d+$/.test(text) ? Number(text) : NaN
  const at = Number.isNaN(seconds) ? Date.parse(`${text.replace(' ', 'T')}${text.length > 10 ? 'Z' : 'T00:00:00Z'}`) : seconds * 1000
  return ms ? at : Math.floor(at / 1000)
}

const compare = (a: number | string, op: string, b: number | string): boolean => {
  switch (op) {
    case '=':
      return a === b
    case '!=':
      return a !== b
    case '<':
      return a < b
    case '<=':
      return a <= b
    case '>':
      return a > b
    default:
      return a >= b
  }
}

/** One value of a condition against a row, for `=` (membership) semantics. */
const matches = (row: Row, column: string, literal: FilterLiteral): boolean => {
  const v = field(row, column)
  const text = literal.text
  switch (kinds[column]) {
    case 'ip':
      return inNetwork(v as string, text)
    case 'prefix': {
      const side = column.slice(0, 3) as 'Src' | 'Dst'
      return inNetwork(row[`${side}Addr`], text) && row[`${side}NetMask`] === Number(text.split('/')[1])
    }
    case 'aspath':
      return (v as number[]).includes(numberOf(text))
    case 'labels':
      return (v as number[]).includes(Number(text))
    case 'communities': {
      const parts = text.split(':').map(Number)
      if (parts.length === 3) return row.DstLargeCommunities.some((t) => t.every((x, i) => x === parts[i]))
      return (v as number[]).includes(parts[0]! * 65536 + parts[1]!)
    }
    case 'enum':
      return v === text.toLowerCase()
    case 'string':
      return v === text
    case 'mac':
      return v === macOf(text)
    case 'time':
    case 'time64':
      return v === timeOf(text, kinds[column] === 'time64')
    default:
      return v === numberOf(text)
  }
}

const evaluate = (row: Row, node: FilterNode): boolean => {
  switch (node.type) {
    case 'and':
      return node.operands.every((o) => evaluate(row, o))
    case 'or':
      return node.operands.some((o) => evaluate(row, o))
    case 'not':
      return !evaluate(row, node.operand)
    case 'condition': {
      const column = canonical.get(node.column.name.toLowerCase())!
      const op = node.operator.op
      const value = node.value
      if (value.type === 'list') {
        const any = value.items.some((item) => matches(row, column, item))
        return op === 'IN' ? any : !any
      }
      const other = !value.quoted ? canonical.get(value.text.toLowerCase()) : undefined
      if (other) return compare(field(row, column) as number | string, op, field(row, other) as number | string)
      const kind = kinds[column]
      switch (op) {
        case '=':
        case '<<':
          return matches(row, column, value)
        case '!=':
        case '!<<':
          return !matches(row, column, value)
        case 'LIKE':
        case 'ILIKE':
        case 'UNLIKE':
        case 'IUNLIKE': {
          const hit = likeToRegExp(value.text, op === 'ILIKE' || op === 'IUNLIKE' ? 'i' : '').test(field(row, column) as string)
          return op.includes('UN') ? !hit : hit
        }
        default: {
          const wanted = kind === 'time' || kind === 'time64' ? timeOf(value.text, kind === 'time64') : numberOf(value.text)
          return compare(field(row, column) as number, op, wanted)
        }
      }
    }
  }
}

// --- the tests ------------------------------------------------------------------------------------

let dir: string
let client: Client
let config: ClickHouseConfig
const rows = makeRows(400)

beforeAll(async () => {
  dir = await tempDir('gateway-filter')
  config = Schema.decodeUnknownSync(ClickHouseSection)({
    path: join(dir, 'db'),
    database: 'filter_exec',
    columns: { enable: Object.keys(optionalGroups) },
    // The rows are from 2023: no TTL may drop them.
    retention: { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 },
  })
  client = await openClickHouse(config)
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${ident(config.database)}` })
  await client.command({ query: renderCreateTable(config, flowsTable(config)) })
  await client.insert({ table: `${config.database}.flows`, values: rows.map(insertable), format: 'JSONEachRow' })
})

afterAll(async () => {
  await client?.close()
  if (dir) await removeDir(dir)
})

const matchedInChDB = async (text: string, swapDirection = false): Promise<number[]> => {
  const compiled = compileFilterText(text, { columns: storageColumns(config), swapDirection })
  if (!compiled.ok) throw new Error(`${text}: ${compiled.error.message}`)
  const result = await client.query({
    query: `SELECT toUnixTimestamp(TimeReceived) AS t FROM ${ident(config.database)}.flows WHERE ${compiled.sql} ORDER BY t`,
    query_params: compiled.params,
    format: 'JSONEachRow',
  })
  return (await result.json<{ t: number }>()).map((r) => r.t - BASE)
}

const matchedInJS = (text: string): number[] => {
  const parsed = parseFilter(text)
  if (!parsed.ok) throw new Error(`${text}: ${parsed.error.message}`)
  return rows.flatMap((row, i) => (parsed.ast.root === null || evaluate(row, parsed.ast.root) ? [i] : []))
}

describe('compiled filters in chDB', () => {
  it('the rows are all there', async () => {
    expect(await matchedInChDB('')).toHaveLength(rows.length)
  })

  const filters = [
    'InIfBoundary = external AND SrcAS = AS12322 AND DstPort IN (80, 443)',
    'DstAddr << 192.0.2.0/24',
    'SrcAddr << 2001:db8::/32',
    'SrcAddr !<< 198.51.100.0/24 AND SrcAddr != 10.1.2.3',
    'SrcAddr = 192.0.2.0/24',
    'SrcNetPrefix = 192.0.2.0/24 OR DstNetPrefix = 2001:db8::/48',
    'SrcNetPrefix != 198.51.100.0/25',
    'SrcAddr IN (192.0.2.1, 2001:db8:1::/48)',
    'SrcAddr NOTIN (192.0.2.77, 203.0.113.9)',
    'ExporterAddress = 192.0.2.1',
    'ExporterName LIKE "th2-%"',
    'ExporterName ILIKE "th2-%"',
    'ExporterName UNLIKE "%edge%"',
    'ExporterName IUNLIKE "TH2%"',
    'ExporterName = "o\'brien" OR ExporterName = \'o\\\'brien\'',
    'ExporterName LIKE "%\\%%"',
    'ExporterName LIKE "_ar-%"',
    'ExporterName = ""',
    'NOT (DstPort > 1024 OR InIfSpeed >= 1000)',
    'Proto = "gre"',
    'Proto IN (tcp, udp)',
    'EType = IPv6',
    'DstCommunities = 65000:100:200',
    'DstCommunities = 65000:100',
    'DstCommunities != 65000:200 AND DstCommunities IN (1:1, 65000:1:2)',
    'DstASPath = AS1299 AND DstASPath != 174',
    'DstASPath IN (12322, 64512)',
    'DstASPath NOTIN (1299)',
    'MPLSLabels = 16000',
    'SrcPort < DstPort',
    'SrcPort >= DstPort AND InIfSpeed < OutIfSpeed',
    'InIfProvider = OutIfProvider AND InIfProvider != ""',
    'InIfBoundary = OutIfBoundary',
    'SrcAS != DstAS',
    'SrcAS > 65000',
    'SrcMAC = 00:11:22:33:44:55 OR SrcMAC = ff-ff-ff-ff-ff-ff',
    'SrcMAC NOTIN (0000.0000.0000)',
    'FlowDirection != ingress',
    'PacketSize >= 1500',
    'PacketSize = 0',
    'TimeReceived >= 1700000100 AND TimeReceived < "2023-11-14 22:18:20"',
    'FlowStartTime < "2023-11-14 22:13:30.500"',
    'SrcCountry IN ("FR", "") AND DstCountry NOTIN ("DE")',
    'NOT NOT DstPort = 80 OR DstPort = 22 AND SrcPort = 443',
  ]
  it.each(filters)('%s', async (text) => {
    const expected = matchedInJS(text)
    expect(await matchedInChDB(text)).toEqual(expected)
  })

  it('match the JS evaluation on 250 random filters, each selecting some rows and leaving others', async () => {
    const rand = seededRandom(7)
    let informative = 0
    for (let i = 0; i < 250; i++) {
      const text = randomFilter(rand, 3)
      const expected = matchedInJS(text)
      expect(await matchedInChDB(text), text).toEqual(expected)
      if (expected.length > 0 && expected.length < rows.length) informative++
    }
    // The comparison means something only if most filters split the rows.
    expect(informative).toBeGreaterThan(150)
  })

  it('a bidirectional query reverses Src and Dst: the reversed filter matches the swapped rows', async () => {
    // Swapping the filter's directions is the same as swapping the rows' directions.
    for (const text of ['SrcAS = AS12322 AND SrcPort < DstPort', 'SrcAddr << 192.0.2.0/24 OR InIfBoundary = external', 'InIfSpeed >= 10000 AND NOT SrcCountry = "FR"']) {
      const parsed = parseFilter(text)
      if (!parsed.ok) throw new Error(parsed.error.message)
      const swappedRows = rows.map((r) => ({
        ...r,
        SrcAS: r.DstAS,
        DstAS: r.SrcAS,
        SrcPort: r.DstPort,
        DstPort: r.SrcPort,
        SrcAddr: r.DstAddr,
        DstAddr: r.SrcAddr,
        InIfBoundary: r.OutIfBoundary,
        OutIfBoundary: r.InIfBoundary,
        InIfSpeed: r.OutIfSpeed,
        OutIfSpeed: r.InIfSpeed,
        SrcCountry: r.DstCountry,
        DstCountry: r.SrcCountry,
      }))
      const expected = swappedRows.flatMap((row, i) => (evaluate(row, parsed.ast.root!) ? [i] : []))
      expect(await matchedInChDB(text, true), text).toEqual(expected)
      expect(expected.length).toBeGreaterThan(0)
    }
  })

  it('hostile values reach ClickHouse only as parameters: they match nothing and drop nothing', async () => {
    for (const text of [
      "ExporterName = \"'; DROP TABLE flows; --\"",
      "ExporterName IN ('\\'); DROP TABLE flows; --', \"x\")",
      'ExporterName LIKE "%\' OR 1=1 --"',
      'SrcCountry = "{f0:String}"',
    ]) {
      expect(await matchedInChDB(text)).toEqual([])
    }
    expect(await matchedInChDB('')).toHaveLength(rows.length)
  })
})
