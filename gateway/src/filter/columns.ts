// What each storage column is to the filter language: its type class (which operators and values
// it takes), derived from the ClickHouse type and flags of the one schema definition.
import type { StorageColumn } from '@flowbus/runtime'

/** The type classes of the filter language; each has its own operators and value syntax. */
export type FilterColumnClass =
  /** IPv6 column (IPv4 stored mapped): addresses and subnets. */
  | 'ip'
  /** String or LowCardinality(String). */
  | 'string'
  /** Unsigned integer; `names` may give symbolic values (Proto, EType). */
  | 'uint'
  /** UInt32 AS number: `AS123` or `123`. */
  | 'asn'
  /** Array(UInt32) AS path: `=` means "contains". */
  | 'aspath'
  /** Array(UInt32) of standard communities (`65000:100`); `a:b:c` goes to the large communities column. */
  | 'communities'
  /** Array(Tuple(UInt32, UInt32, UInt32)) of large communities (`65000:100:200`). */
  | 'largeCommunities'
  /** Other Array(UInt32) (MPLS labels): `=` means "contains". */
  | 'uintArray'
  /** Enum8 (boundary, direction): one of its names. */
  | 'enum'
  /** MAC address held in a UInt64. */
  | 'mac'
  /** DateTime or DateTime64(3). */
  | 'time'
  /** Akvorado's SrcNetPrefix/DstNetPrefix: the address in a subnet and the prefix length equal to it. */
  | 'prefix'

/** A column as the filter language sees it. */
export interface FilterColumn {
  /** Canonical name (the schema's spelling). */
  readonly name: string
  readonly class: FilterColumnClass
  /** ClickHouse type of the query parameters holding its values, e.g. `UInt16`, `IPv6`, `Int8`. */
  readonly paramType: string
  /** Bits of an unsigned integer (range checks). */
  readonly bits?: number
  /** Symbolic values, lower case → number (enum members, protocol and EtherType names). */
  readonly names?: ReadonlyMap<string, number>
  /** SQL of the column: its name, or an expression for a computed column (PacketSize). */
  readonly sql: string
  /** The prefix length column of a `prefix` column (its `sql` is the address column). */
  readonly maskSql?: string
  /** Storage columns the SQL reads. */
  readonly references: readonly string[]
  /** Whether every column it reads is kept in the aggregated tables. */
  readonly aggregated: boolean
  /** Offered as a dimension (the gateway can fetch its distinct values for completion). */
  readonly dimension: boolean
}

/**
 * IP protocol names (IANA "Assigned Internet Protocol Numbers"), lower case: `Proto = tcp`,
 * `Proto = "gre"`. Compiled to the number, so the protocols dictionary is not needed at query time.
 */
export const protocolNumbers: ReadonlyMap<string, number> = new Map([
  ['hopopt', 0],
  ['icmp', 1],
  ['igmp', 2],
  ['ggp', 3],
  ['ipv4', 4],
  ['ipip', 4],
  ['st', 5],
  ['tcp', 6],
  ['egp', 8],
  ['igp', 9],
  ['udp', 17],
  ['rdp', 27],
  ['dccp', 33],
  ['ipv6', 41],
  ['ipv6-route', 43],
  ['ipv6-frag', 44],
  ['rsvp', 46],
  ['gre', 47],
  ['esp', 50],
  ['ah', 51],
  ['ipv6-icmp', 58],
  ['icmpv6', 58],
  ['ipv6-nonxt', 59],
  ['ipv6-opts', 60],
  ['eigrp', 88],
  ['ospf', 89],
  ['ospfigp', 89],
  ['etherip', 97],
  ['encap', 98],
  ['pim', 103],
  ['ipcomp', 108],
  ['vrrp', 112],
  ['l2tp', 115],
  ['isis', 124],
  ['sctp', 132],
  ['udplite', 136],
  ['mpls-in-ip', 137],
])

/** EtherType names (IEEE registry): `EType = IPv6`. */
export const etherTypes: ReadonlyMap<string, number> = new Map([
  ['ipv4', 0x0800],
  ['arp', 0x0806],
  ['ipv6', 0x86dd],
])

const unsignedBits = (type: string): number | undefined => {
  const m = /^UInt(8|16|32|64)$/.exec(type)
  return m ? Number(m[1]) : undefined
}

/** Members of an Enum8 type: `Enum8('undefined' = 0, 'external' = 1)` → undefined → 0, external → 1. */
const enumMembers = (type: string): Map<string, number> => {
  const members = new Map<string, number>()
  for (const m of type.matchAll(/'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)/g)) members.set(m[1]!.toLowerCase(), Number(m[2]))
  return members
}

/** The filter view of one storage column, or undefined for a type the language has no class for. */
export const filterColumnOf = (column: StorageColumn): FilterColumn | undefined => {
  const base = { name: column.name, sql: column.name, references: [column.name], aggregated: column.aggregated, dimension: column.dimension }
  const type = column.type
  if (type === 'IPv6') return { ...base, class: 'ip', paramType: 'IPv6' }
  if (/^(LowCardinality\()?String\)?$/.test(type)) return { ...base, class: 'string', paramType: 'String' }
  if (type.startsWith('Enum8(')) return { ...base, class: 'enum', paramType: 'Int8', names: enumMembers(type) }
  if (type === 'DateTime' || type === 'DateTime64(3)') return { ...base, class: 'time', paramType: type }
  if (type === 'Array(Tuple(UInt32, UInt32, UInt32))') return { ...base, class: 'largeCommunities', paramType: 'UInt32' }
  if (type === 'Array(UInt32)') {
    if (/ASPath$/.test(column.name)) return { ...base, class: 'aspath', paramType: 'UInt32' }
    if (/Communities$/.test(column.name)) return { ...base, class: 'communities', paramType: 'UInt32' }
    return { ...base, class: 'uintArray', paramType: 'UInt32' }
  }
  if (column.flow.kind === 'mac') return { ...base, class: 'mac', paramType: 'UInt64' }
  const bits = unsignedBits(type)
  if (bits === undefined) return undefined
  if (bits === 32 && /AS$/.test(column.name)) return { ...base, class: 'asn', paramType: type, bits }
  if (column.name === 'Proto') return { ...base, class: 'uint', paramType: type, bits, names: protocolNumbers }
  if (column.name === 'EType') return { ...base, class: 'uint', paramType: type, bits, names: etherTypes }
  return { ...base, class: 'uint', paramType: type, bits }
}

/**
 * The columns a filter may use, by lower-case name: every filterable column of the deployment,
 * plus Akvorado's computed `PacketSize` (bytes per packet) when Bytes and Packets are stored.
 */
export const filterColumns = (columns: readonly StorageColumn[]): ReadonlyMap<string, FilterColumn> => {
  const cached = filterColumnsCache.get(columns)
  if (cached) return cached
  const out = new Map<string, FilterColumn>()
  for (const column of columns) {
    if (!column.filterable) continue
    const filter = filterColumnOf(column)
    if (filter) out.set(column.name.toLowerCase(), filter)
  }
  const bytes = columns.find((c) => c.name === 'Bytes')
  const packets = columns.find((c) => c.name === 'Packets')
  if (bytes && packets) {
    out.set('packetsize', {
      name: 'PacketSize',
      class: 'uint',
      paramType: 'UInt64',
      bits: 64,
      // A flow of zero packets (a malformed record) has size 0 rather than failing the query.
      sql: 'intDivOrZero(Bytes, Packets)',
      references: ['Bytes', 'Packets'],
      aggregated: bytes.aggregated && packets.aggregated,
      dimension: false,
    })
  }
  // Akvorado's network prefix columns: `SrcNetPrefix = 192.0.2.0/24` is a flow from that subnet
  // whose routing prefix is that length.
  for (const side of ['Src', 'Dst']) {
    const address = out.get(`${side}Addr`.toLowerCase())
    const mask = out.get(`${side}NetMask`.toLowerCase())
    if (address && mask) {
      out.set(`${side}NetPrefix`.toLowerCase(), {
        name: `${side}NetPrefix`,
        class: 'prefix',
        paramType: 'IPv6',
        sql: address.sql,
        maskSql: mask.sql,
        references: [address.name, mask.name],
        aggregated: address.aggregated && mask.aggregated,
        dimension: false,
      })
    }
  }
  filterColumnsCache.set(columns, out)
  return out
}

// Completion and compilation run per keystroke and per query with the same column list.
const filterColumnsCache = new WeakMap<readonly StorageColumn[], ReadonlyMap<string, FilterColumn>>()

/**
 * The same column seen from the other direction: Src↔Dst, In↔Out (SrcAS↔DstAS, InIfName↔OutIfName);
 * other names are returned unchanged.
 */
export const swapColumnName = (name: string): string => {
  const m = /^(src|dst|in|out)(?=[A-Z])/i.exec(name)
  if (!m) return name
  const prefix = m[1]!
  const lower = prefix.toLowerCase()
  const other = lower === 'src' ? 'Dst' : lower === 'dst' ? 'Src' : lower === 'in' ? 'Out' : 'In'
  // Keep the writer's case style (`srcas` → `dstas`, `SRCAS` → `DSTAS`).
  const styled = prefix === prefix.toUpperCase() ? other.toUpperCase() : prefix === lower ? other.toLowerCase() : other
  return styled + name.slice(prefix.length)
}
