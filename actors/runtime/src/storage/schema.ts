// The one storage definition of flows in ClickHouse: every FlowBatch column's type, codec, role
// (dimension, filter, aggregated or raw only) and optional group; tables, DDL and docs derive from it.
import { type FlowColumnKind, type FlowColumnName, type FlowColumnSpec, flowColumns } from '@flowbus/bus-schemas'

/**
 * Optional groups: columns most networks leave empty, stored only when enabled in
 * `clickhouse.columns.enable` (an empty column still costs insert work and a file per part).
 */
export const optionalGroups = {
  geo: 'GeoIP city and state of source and destination (countries are always stored)',
  l2: 'VLANs and MAC addresses',
  l3l4: 'L3/L4 header details: TTL, TOS, fragments, IPv6 flow label, TCP flags, ICMP type and code',
  mpls: 'MPLS label stack',
  nat: 'addresses and ports after NAT',
  vrf: 'VRF ids and names of the input and output interfaces',
  timing: 'flow start and end time as the exporter saw them',
} as const
export type OptionalGroup = keyof typeof optionalGroups

/** How one flow column is stored. */
export interface StorageColumnDefinition {
  readonly name: FlowColumnName
  /** ClickHouse type, without codec. */
  readonly type: string
  /** Compression codec of the raw table, e.g. `CODEC(T64, LZ4)`; absent: the table default (LZ4). */
  readonly codec?: string
  /** Offered as a group-by dimension. */
  readonly dimension: boolean
  /** Offered in the filter language. */
  readonly filterable: boolean
  /** Kept in the aggregated flows_* tables; false: raw `flows` only. */
  readonly aggregated: boolean
  /** Stored only when its group is enabled; absent: always stored. */
  readonly group?: OptionalGroup
  /** Data-skipping index on the raw table, e.g. `bloom_filter(0.01)`. */
  readonly index?: string
}

const boundary = "Enum8('undefined' = 0, 'external' = 1, 'internal' = 2)"
const direction = "Enum8('undefined' = 0, 'ingress' = 1, 'egress' = 2)"

// Options shared by many rows of the table below.
const name = { type: 'LowCardinality(String)', dimension: true, filterable: true, aggregated: true } as const
const rawOnly = { dimension: true, filterable: true, aggregated: false } as const
const address = { type: 'IPv6', codec: 'CODEC(ZSTD(1))', ...rawOnly, index: 'bloom_filter(0.01)' } as const
const counter = { type: 'UInt64', codec: 'CODEC(T64, ZSTD(1))', dimension: false, filterable: false, aggregated: true } as const

/** Per-column storage, keyed by flow column: the compiler insists every flow column has one. */
const definitions: { readonly [N in FlowColumnName]: Omit<StorageColumnDefinition, 'name'> } = {
  // T64, not DoubleDelta: rows are sorted by 5-minute bucket only, so times are unsorted within
  // it; measured on 10M flows, T64 stores 12.8 MiB (DoubleDelta 14.8, Delta 20.6) and a time
  // filter decodes in 9 ns a row (DoubleDelta 30) (docs/storage.md).
  TimeReceived: { type: 'DateTime', codec: 'CODEC(T64, LZ4)', dimension: false, filterable: true, aggregated: true },
  SamplingRate: { type: 'UInt32', codec: 'CODEC(T64, LZ4)', dimension: false, filterable: true, aggregated: true },
  ExporterAddress: { type: 'IPv6', codec: 'CODEC(ZSTD(1))', dimension: true, filterable: true, aggregated: true },
  ExporterName: name,
  ExporterGroup: name,
  ExporterRole: name,
  ExporterSite: name,
  ExporterRegion: name,
  ExporterTenant: name,
  SrcAddr: address,
  DstAddr: address,
  SrcNetMask: { type: 'UInt8', ...rawOnly },
  DstNetMask: { type: 'UInt8', ...rawOnly },
  NextHop: { type: 'IPv6', codec: 'CODEC(ZSTD(1))', ...rawOnly },
  SrcAS: { type: 'UInt32', dimension: true, filterable: true, aggregated: true, index: 'minmax' },
  DstAS: { type: 'UInt32', dimension: true, filterable: true, aggregated: true, index: 'minmax' },
  SrcNetName: name,
  DstNetName: name,
  SrcNetRole: name,
  DstNetRole: name,
  SrcNetSite: name,
  DstNetSite: name,
  SrcNetRegion: name,
  DstNetRegion: name,
  SrcNetTenant: name,
  DstNetTenant: name,
  SrcCountry: { ...name, index: 'set(256)' },
  DstCountry: { ...name, index: 'set(256)' },
  SrcGeoCity: { ...name, group: 'geo' },
  DstGeoCity: { ...name, group: 'geo' },
  SrcGeoState: { ...name, group: 'geo' },
  DstGeoState: { ...name, group: 'geo' },
  DstASPath: { type: 'Array(UInt32)', codec: 'CODEC(ZSTD(1))', ...rawOnly },
  DstCommunities: { type: 'Array(UInt32)', codec: 'CODEC(ZSTD(1))', ...rawOnly },
  DstLargeCommunities: { type: 'Array(Tuple(UInt32, UInt32, UInt32))', codec: 'CODEC(ZSTD(1))', ...rawOnly },
  InIf: { type: 'UInt32', dimension: true, filterable: true, aggregated: true },
  OutIf: { type: 'UInt32', dimension: true, filterable: true, aggregated: true },
  InIfName: name,
  OutIfName: name,
  InIfDescription: name,
  OutIfDescription: name,
  InIfSpeed: { type: 'UInt32', dimension: true, filterable: true, aggregated: true },
  OutIfSpeed: { type: 'UInt32', dimension: true, filterable: true, aggregated: true },
  InIfConnectivity: name,
  OutIfConnectivity: name,
  InIfProvider: name,
  OutIfProvider: name,
  InIfBoundary: { type: boundary, dimension: true, filterable: true, aggregated: true },
  OutIfBoundary: { type: boundary, dimension: true, filterable: true, aggregated: true },
  EType: { type: 'UInt16', dimension: true, filterable: true, aggregated: true },
  Proto: { type: 'UInt8', dimension: true, filterable: true, aggregated: true },
  // Ports stay out of the aggregated tables: ephemeral client ports would multiply their rows.
  SrcPort: { type: 'UInt16', ...rawOnly, index: 'minmax' },
  DstPort: { type: 'UInt16', ...rawOnly, index: 'minmax' },
  Bytes: counter,
  Packets: counter,
  ForwardingStatus: { type: 'UInt8', dimension: true, filterable: true, aggregated: true },
  FlowDirection: { type: direction, dimension: true, filterable: true, aggregated: true },
  SrcVlan: { type: 'UInt16', dimension: true, filterable: true, aggregated: true, group: 'l2' },
  DstVlan: { type: 'UInt16', dimension: true, filterable: true, aggregated: true, group: 'l2' },
  SrcMAC: { type: 'UInt64', codec: 'CODEC(T64, ZSTD(1))', ...rawOnly, group: 'l2' },
  DstMAC: { type: 'UInt64', codec: 'CODEC(T64, ZSTD(1))', ...rawOnly, group: 'l2' },
  IPTTL: { type: 'UInt8', ...rawOnly, group: 'l3l4' },
  IPTos: { type: 'UInt8', ...rawOnly, group: 'l3l4' },
  IPFragmentID: { type: 'UInt32', codec: 'CODEC(ZSTD(1))', dimension: false, filterable: true, aggregated: false, group: 'l3l4' },
  IPFragmentOffset: { type: 'UInt16', ...rawOnly, group: 'l3l4' },
  IPv6FlowLabel: { type: 'UInt32', codec: 'CODEC(ZSTD(1))', dimension: false, filterable: true, aggregated: false, group: 'l3l4' },
  TCPFlags: { type: 'UInt16', ...rawOnly, group: 'l3l4' },
  ICMPv4Type: { type: 'UInt8', dimension: true, filterable: true, aggregated: true, group: 'l3l4' },
  ICMPv4Code: { type: 'UInt8', dimension: true, filterable: true, aggregated: true, group: 'l3l4' },
  ICMPv6Type: { type: 'UInt8', dimension: true, filterable: true, aggregated: true, group: 'l3l4' },
  ICMPv6Code: { type: 'UInt8', dimension: true, filterable: true, aggregated: true, group: 'l3l4' },
  MPLSLabels: { type: 'Array(UInt32)', codec: 'CODEC(ZSTD(1))', ...rawOnly, group: 'mpls' },
  SrcAddrNAT: { ...address, group: 'nat' },
  DstAddrNAT: { ...address, group: 'nat' },
  SrcPortNAT: { type: 'UInt16', ...rawOnly, group: 'nat' },
  DstPortNAT: { type: 'UInt16', ...rawOnly, group: 'nat' },
  InVrf: { type: 'UInt32', dimension: true, filterable: true, aggregated: true, group: 'vrf' },
  OutVrf: { type: 'UInt32', dimension: true, filterable: true, aggregated: true, group: 'vrf' },
  InVrfName: { ...name, group: 'vrf' },
  OutVrfName: { ...name, group: 'vrf' },
  FlowStartTime: { type: 'DateTime64(3)', codec: 'CODEC(DoubleDelta, ZSTD(1))', dimension: false, filterable: true, aggregated: false, group: 'timing' },
  FlowEndTime: { type: 'DateTime64(3)', codec: 'CODEC(DoubleDelta, ZSTD(1))', dimension: false, filterable: true, aggregated: false, group: 'timing' },
}

/** ClickHouse types each FlowBatch kind may be stored as (checked by the tests). */
export const typesOfKind: Readonly<Record<FlowColumnKind, readonly RegExp[]>> = {
  u8: [/^UInt(8|16|32|64)$/, /^Enum8\(/],
  u16: [/^UInt(16|32|64)$/],
  u32: [/^UInt(32|64)$/, /^DateTime$/],
  u64: [/^UInt64$/, /^DateTime64\(3\)$/],
  ip: [/^IPv6$/],
  mac: [/^UInt64$/],
  string: [/^(LowCardinality\()?String\)?$/],
  u32list: [/^Array\(UInt32\)$/],
  u32x3list: [/^Array\(Tuple\(UInt32, UInt32, UInt32\)\)$/],
}

/** A flow column as stored: its storage definition plus the FlowBatch column it comes from. */
export interface StorageColumn extends StorageColumnDefinition {
  /** The FlowBatch column (same name): its kind says how values are laid out in memory. */
  readonly flow: FlowColumnSpec
}

/** Every flow column with its storage definition, enabled or not, in FlowBatch order. */
export const allStorageColumns: readonly StorageColumn[] = flowColumns.map((flow) => ({
  name: flow.name,
  ...definitions[flow.name],
  flow,
}))

const storageByName = new Map(allStorageColumns.map((c) => [c.name as string, c]))

/** The storage definition of a flow column by name; undefined for an unknown name. */
export const storageColumn = (name: string): StorageColumn | undefined => storageByName.get(name)

/** Which optional columns a deployment stores: the `columns` key of the `clickhouse` section. */
export interface ColumnSelection {
  /** Optional groups or single optional columns to store. */
  readonly enable: readonly string[]
  /** Columns not to store (optional or not, except the ones every table needs). */
  readonly disable: readonly string[]
}

/** Columns the tables cannot do without: the time, the exporter and the counters. */
export const requiredColumns: ReadonlySet<string> = new Set(['TimeReceived', 'SamplingRate', 'ExporterAddress', 'Bytes', 'Packets'])

/** Problems with a column selection, one message per bad name (empty when valid). */
export const columnSelectionProblems = (selection: ColumnSelection): string[] => {
  const problems: string[] = []
  for (const entry of selection.enable) {
    if (!(entry in optionalGroups) && !storageByName.has(entry)) {
      problems.push(`"${entry}" is neither an optional group (${Object.keys(optionalGroups).join(', ')}) nor a flow column`)
    }
  }
  for (const entry of selection.disable) {
    if (entry in optionalGroups) continue
    if (!storageByName.has(entry)) problems.push(`"${entry}" is not a flow column (see docs/columns.md)`)
    else if (requiredColumns.has(entry)) problems.push(`"${entry}" cannot be disabled: every flows table needs it`)
  }
  return problems
}

/**
 * Dimensions each aggregated table also sums per interval in an aggregate projection of its own
 * (`clickhouse.projections`): a series or top-N by one of them, filtered on nothing else, then
 * reads a row per value and interval instead of one per combination of every key (those barely
 * aggregate: a day of flows_5m0s held ~1M rows per 10M flows). Each one costs insert and merge
 * work per insert into each aggregated table (docs/storage.md, measured), hence a short default:
 * the home page's dimensions.
 */
export const DEFAULT_PROJECTED_DIMENSIONS: readonly string[] = ['SrcAS', 'DstAS', 'ExporterName', 'SrcCountry', 'DstCountry']

/** Problems with `clickhouse.projections`, one message per name that is not an aggregated dimension. */
export const projectionProblems = (names: readonly string[]): string[] =>
  names.flatMap((name) => {
    const column = storageByName.get(name)
    if (column === undefined) return [`"${name}" is not a flow column (see docs/columns.md)`]
    if (!column.aggregated || !column.dimension) return [`"${name}" is not a dimension of the aggregated tables (see docs/columns.md)`]
    return []
  })

/** Whether a column is stored under this selection: a disable wins over an enable. */
export const isColumnEnabled = (column: StorageColumnDefinition, selection: ColumnSelection): boolean => {
  if (requiredColumns.has(column.name)) return true
  if (selection.disable.includes(column.name) || (column.group && selection.disable.includes(column.group))) return false
  if (column.group === undefined) return true
  return selection.enable.includes(column.group) || selection.enable.includes(column.name)
}

/**
 * The effective flow columns of a deployment, in FlowBatch order: what the writer inserts,
 * what the orchestrator creates, and what the gateway offers as dimensions and filters.
 */
export const storageColumns = (config: { readonly columns: ColumnSelection }): readonly StorageColumn[] =>
  allStorageColumns.filter((c) => isColumnEnabled(c, config.columns))

// --- tables ------------------------------------------------------------------------------------

/** The raw flows table. */
export const FLOWS_TABLE = 'flows'

/** An aggregated flows table, fed from `flows` by a materialized view. */
export interface AggregatedTable {
  readonly name: string
  /** Rows are summed per this many seconds of TimeReceived. */
  readonly resolutionSeconds: number
  /** Key of its retention in `clickhouse.retention`. */
  readonly retentionKey: 'flows1m' | 'flows5m' | 'flows1h'
}

/** Aggregated tables, finest first: the gateway picks the coarsest that gives the resolution asked. */
export const aggregatedTables: readonly AggregatedTable[] = [
  { name: 'flows_1m0s', resolutionSeconds: 60, retentionKey: 'flows1m' },
  { name: 'flows_5m0s', resolutionSeconds: 300, retentionKey: 'flows5m' },
  { name: 'flows_1h0m0s', resolutionSeconds: 3600, retentionKey: 'flows1h' },
]

/** Summed in the aggregated tables; `Flows` counts raw rows (in `flows` each row is one flow). */
export const FLOW_COUNT_COLUMN = 'Flows'

/** The materialized view feeding an aggregated table. */
export const aggregatedViewName = (table: string): string => `${table}_consumer`

/** Exporters and interfaces seen in flows (ReplacingMergeTree keeping the latest names). */
export const EXPORTERS_TABLE = 'exporters'
export const INTERFACES_TABLE = 'interfaces'

/** sFlow interface counter samples (`counters.interfaces`). */
export const COUNTERS_TABLE = 'interface_counters'

/** A column of the counters table and the InterfaceCounters field it comes from. */
export interface CounterColumn {
  readonly name: string
  readonly type: string
  readonly codec?: string
  /** Field of the decoded InterfaceCounters message (protobufjs camelCase name). */
  readonly field: string
  readonly doc: string
}

const packets = (field: string, doc: string): CounterColumn => ({ name: field[0]!.toUpperCase() + field.slice(1), type: 'UInt32', codec: 'CODEC(T64, ZSTD(1))', field, doc })

/** Columns of the counters table, in InterfaceCounters order. */
export const counterColumns: readonly CounterColumn[] = [
  { name: 'ExporterAddress', type: 'IPv6', codec: 'CODEC(ZSTD(1))', field: 'exporterAddress', doc: 'address the sFlow datagram came from' },
  { name: 'AgentAddress', type: 'IPv6', codec: 'CODEC(ZSTD(1))', field: 'agentAddress', doc: 'sFlow agent address inside the datagram' },
  { name: 'SubAgentID', type: 'UInt32', field: 'subAgentId', doc: 'sFlow sub-agent id' },
  { name: 'TimeReceived', type: 'DateTime', codec: 'CODEC(DoubleDelta, LZ4)', field: 'timeReceived', doc: 'when the collector received the sample' },
  { name: 'SequenceNumber', type: 'UInt32', codec: 'CODEC(Delta, ZSTD(1))', field: 'sequenceNumber', doc: 'counter sample sequence number, per source' },
  { name: 'IfIndex', type: 'UInt32', field: 'ifIndex', doc: 'SNMP ifIndex of the interface' },
  { name: 'IfType', type: 'UInt32', field: 'ifType', doc: 'IANA ifType of the interface' },
  { name: 'IfSpeed', type: 'UInt64', field: 'ifSpeed', doc: 'interface speed, bits per second' },
  { name: 'IfDirection', type: "Enum8('unknown' = 0, 'full-duplex' = 1, 'half-duplex' = 2, 'in' = 3, 'out' = 4)", field: 'ifDirection', doc: 'duplex or direction of the interface' },
  { name: 'IfStatus', type: 'UInt8', field: 'ifStatus', doc: 'bit 0 admin up, bit 1 operationally up' },
  { name: 'InOctets', type: 'UInt64', codec: 'CODEC(T64, ZSTD(1))', field: 'inOctets', doc: 'octets received (counter, wraps)' },
  packets('inUnicastPackets', 'unicast packets received'),
  packets('inMulticastPackets', 'multicast packets received'),
  packets('inBroadcastPackets', 'broadcast packets received'),
  packets('inDiscards', 'inbound packets discarded'),
  packets('inErrors', 'inbound packets with errors'),
  packets('inUnknownProtocols', 'inbound packets of an unknown protocol'),
  { name: 'OutOctets', type: 'UInt64', codec: 'CODEC(T64, ZSTD(1))', field: 'outOctets', doc: 'octets sent (counter, wraps)' },
  packets('outUnicastPackets', 'unicast packets sent'),
  packets('outMulticastPackets', 'multicast packets sent'),
  packets('outBroadcastPackets', 'broadcast packets sent'),
  packets('outDiscards', 'outbound packets discarded'),
  packets('outErrors', 'outbound packets with errors'),
  { name: 'PromiscuousMode', type: 'UInt8', field: 'promiscuousMode', doc: '1 when the interface is in promiscuous mode' },
]
