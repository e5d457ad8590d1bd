// The one list of flow columns: Akvorado name, protobuf field number, storage kind and meaning.
// The FlowBatch .proto, the in-memory FlowBatch, JSON rows and (later) the ClickHouse schema derive from it.

/**
 * How a column is stored in memory and on the wire (every column is a `bytes` field; the exact
 * rules are in flow_batch.proto and docs/bus-schemas.md):
 * - `u8`, `u16`, `u32`, `u64`: unsigned integers, in memory Uint8/Uint16/Uint32Array and
 *   Float64Array for u64 (exact to 2^53); on the wire a little-endian array at the narrowest
 *   width (1, 2, 4 or 8 bytes) that holds the batch's values;
 * - `ip`: 16 bytes per flow in memory (IPv4 as IPv4-mapped IPv6 `::ffff:a.b.c.d`); on the wire
 *   16 bytes, or 4 for IPv4 addresses, with a bitmap companion field when a batch mixes both;
 * - `mac`: the 48-bit MAC as a number in memory (Float64Array); 6 bytes in network order on the wire;
 * - `string`: indexes into the batch's string table (0 = empty string), in memory a Uint32Array;
 *   on the wire like an integer column;
 * - `u32list`: every flow's u32 values concatenated, plus a counts field giving how many values
 *   each flow has (both at the narrowest width);
 * - `u32x3list`: like `u32list` with each element a triple of u32 (BGP large communities);
 *   counts are in triples.
 * A fixed-width column whose flows all hold the same value travels as that one value.
 */
export type FlowColumnKind = 'u8' | 'u16' | 'u32' | 'u64' | 'ip' | 'mac' | 'string' | 'u32list' | 'u32x3list'

export interface FlowColumnSpec {
  /** Akvorado column name: also the protobuf field name and the JSON key. */
  readonly name: string
  /** Protobuf field number of the values. Never reuse a number, even for a removed column. */
  readonly field: number
  readonly kind: FlowColumnKind
  /** Protobuf field number of the per-flow counts, list kinds only. */
  readonly countsField?: number
  /** Protobuf field number of the bitmap of flows whose address travels as 4 IPv4 bytes, ip kind only. */
  readonly ipv4FlowsField?: number
  /** One line: what the value means, with its unit. */
  readonly doc: string
}

/** Field numbers of the batch-level fields; columns start at 16. */
export const FLOW_BATCH_COUNT_FIELD = 1
export const FLOW_BATCH_STRINGS_FIELD = 2

// Field numbers are part of the wire contract: add new columns at the end with new numbers
// (above every number in use, companion fields included: the next free one is 108).
const columnTable = [
  { name: 'TimeReceived', field: 16, kind: 'u32', doc: 'when the collector received the flow, seconds since the Unix epoch' },
  { name: 'SamplingRate', field: 17, kind: 'u32', doc: 'one packet in SamplingRate was sampled (0 or 1 = unsampled)' },
  { name: 'ExporterAddress', field: 18, kind: 'ip', ipv4FlowsField: 96, doc: 'address the flow export datagram came from' },
  { name: 'ExporterName', field: 19, kind: 'string', doc: 'exporter name (SNMP sysName or configured)' },
  { name: 'ExporterGroup', field: 20, kind: 'string', doc: 'exporter group, from classification' },
  { name: 'ExporterRole', field: 21, kind: 'string', doc: 'exporter role, from classification' },
  { name: 'ExporterSite', field: 22, kind: 'string', doc: 'exporter site, from classification' },
  { name: 'ExporterRegion', field: 23, kind: 'string', doc: 'exporter region, from classification' },
  { name: 'ExporterTenant', field: 24, kind: 'string', doc: 'exporter tenant, from classification' },
  { name: 'SrcAddr', field: 25, kind: 'ip', ipv4FlowsField: 97, doc: 'source IP address' },
  { name: 'DstAddr', field: 26, kind: 'ip', ipv4FlowsField: 98, doc: 'destination IP address' },
  { name: 'SrcNetMask', field: 27, kind: 'u8', doc: 'source prefix length (0-32 for IPv4, 0-128 for IPv6)' },
  { name: 'DstNetMask', field: 28, kind: 'u8', doc: 'destination prefix length (0-32 for IPv4, 0-128 for IPv6)' },
  { name: 'NextHop', field: 29, kind: 'ip', ipv4FlowsField: 99, doc: 'IP next hop (or BGP next hop after routing enrichment)' },
  { name: 'SrcAS', field: 30, kind: 'u32', doc: 'source AS number' },
  { name: 'DstAS', field: 31, kind: 'u32', doc: 'destination AS number' },
  { name: 'SrcNetName', field: 32, kind: 'string', doc: 'name of the source network, from network attributes' },
  { name: 'DstNetName', field: 33, kind: 'string', doc: 'name of the destination network, from network attributes' },
  { name: 'SrcNetRole', field: 34, kind: 'string', doc: 'role of the source network' },
  { name: 'DstNetRole', field: 35, kind: 'string', doc: 'role of the destination network' },
  { name: 'SrcNetSite', field: 36, kind: 'string', doc: 'site of the source network' },
  { name: 'DstNetSite', field: 37, kind: 'string', doc: 'site of the destination network' },
  { name: 'SrcNetRegion', field: 38, kind: 'string', doc: 'region of the source network' },
  { name: 'DstNetRegion', field: 39, kind: 'string', doc: 'region of the destination network' },
  { name: 'SrcNetTenant', field: 40, kind: 'string', doc: 'tenant of the source network' },
  { name: 'DstNetTenant', field: 41, kind: 'string', doc: 'tenant of the destination network' },
  { name: 'SrcCountry', field: 42, kind: 'string', doc: 'ISO 3166 alpha-2 country of the source address, from GeoIP' },
  { name: 'DstCountry', field: 43, kind: 'string', doc: 'ISO 3166 alpha-2 country of the destination address, from GeoIP' },
  { name: 'SrcGeoCity', field: 44, kind: 'string', doc: 'city of the source address, from GeoIP' },
  { name: 'DstGeoCity', field: 45, kind: 'string', doc: 'city of the destination address, from GeoIP' },
  { name: 'SrcGeoState', field: 46, kind: 'string', doc: 'state or region of the source address, from GeoIP' },
  { name: 'DstGeoState', field: 47, kind: 'string', doc: 'state or region of the destination address, from GeoIP' },
  { name: 'DstASPath', field: 48, kind: 'u32list', countsField: 49, doc: 'BGP AS path towards the destination, nearest AS first' },
  { name: 'DstCommunities', field: 50, kind: 'u32list', countsField: 51, doc: 'BGP standard communities of the destination route (ASN << 16 | value)' },
  { name: 'DstLargeCommunities', field: 52, kind: 'u32x3list', countsField: 53, doc: 'BGP large communities of the destination route, (ASN, local1, local2) triples' },
  { name: 'InIf', field: 54, kind: 'u32', doc: 'SNMP ifIndex of the input interface' },
  { name: 'OutIf', field: 55, kind: 'u32', doc: 'SNMP ifIndex of the output interface' },
  { name: 'InIfName', field: 56, kind: 'string', doc: 'name (ifName) of the input interface' },
  { name: 'OutIfName', field: 57, kind: 'string', doc: 'name (ifName) of the output interface' },
  { name: 'InIfDescription', field: 58, kind: 'string', doc: 'description (ifAlias) of the input interface' },
  { name: 'OutIfDescription', field: 59, kind: 'string', doc: 'description (ifAlias) of the output interface' },
  { name: 'InIfSpeed', field: 60, kind: 'u32', doc: 'speed of the input interface, Mbps' },
  { name: 'OutIfSpeed', field: 61, kind: 'u32', doc: 'speed of the output interface, Mbps' },
  { name: 'InIfConnectivity', field: 62, kind: 'string', doc: 'connectivity of the input interface (transit, ix, pni…), from classification' },
  { name: 'OutIfConnectivity', field: 63, kind: 'string', doc: 'connectivity of the output interface, from classification' },
  { name: 'InIfProvider', field: 64, kind: 'string', doc: 'provider behind the input interface, from classification' },
  { name: 'OutIfProvider', field: 65, kind: 'string', doc: 'provider behind the output interface, from classification' },
  { name: 'InIfBoundary', field: 66, kind: 'u8', doc: 'input interface boundary: 0 undefined, 1 external, 2 internal' },
  { name: 'OutIfBoundary', field: 67, kind: 'u8', doc: 'output interface boundary: 0 undefined, 1 external, 2 internal' },
  { name: 'EType', field: 68, kind: 'u16', doc: 'EtherType: 0x0800 IPv4, 0x86dd IPv6' },
  { name: 'Proto', field: 69, kind: 'u8', doc: 'IP protocol number (6 TCP, 17 UDP…)' },
  { name: 'SrcPort', field: 70, kind: 'u16', doc: 'source transport port' },
  { name: 'DstPort', field: 71, kind: 'u16', doc: 'destination transport port' },
  { name: 'Bytes', field: 72, kind: 'u64', doc: 'bytes in the flow, as sampled (multiply by SamplingRate for totals)' },
  { name: 'Packets', field: 73, kind: 'u64', doc: 'packets in the flow, as sampled' },
  { name: 'ForwardingStatus', field: 74, kind: 'u8', doc: 'forwarding status (IPFIX IE 89): 64 forwarded, 128 dropped, 192 consumed' },
  { name: 'FlowDirection', field: 75, kind: 'u8', doc: 'direction the exporter observed the flow in: 0 undefined, 1 ingress, 2 egress' },
  { name: 'SrcVlan', field: 76, kind: 'u16', doc: 'source VLAN id' },
  { name: 'DstVlan', field: 77, kind: 'u16', doc: 'destination VLAN id' },
  { name: 'SrcMAC', field: 78, kind: 'mac', doc: 'source MAC address (48 bits)' },
  { name: 'DstMAC', field: 79, kind: 'mac', doc: 'destination MAC address (48 bits)' },
  { name: 'IPTTL', field: 80, kind: 'u8', doc: 'IP TTL / IPv6 hop limit' },
  { name: 'IPTos', field: 81, kind: 'u8', doc: 'IP type of service / IPv6 traffic class' },
  { name: 'IPFragmentID', field: 82, kind: 'u32', doc: 'IP fragment identification' },
  { name: 'IPFragmentOffset', field: 83, kind: 'u16', doc: 'IP fragment offset' },
  { name: 'IPv6FlowLabel', field: 84, kind: 'u32', doc: 'IPv6 flow label (20 bits)' },
  { name: 'TCPFlags', field: 85, kind: 'u16', doc: 'TCP flags, ORed over the flow' },
  { name: 'ICMPv4Type', field: 86, kind: 'u8', doc: 'ICMPv4 type' },
  { name: 'ICMPv4Code', field: 87, kind: 'u8', doc: 'ICMPv4 code' },
  { name: 'ICMPv6Type', field: 88, kind: 'u8', doc: 'ICMPv6 type' },
  { name: 'ICMPv6Code', field: 89, kind: 'u8', doc: 'ICMPv6 code' },
  { name: 'MPLSLabels', field: 90, kind: 'u32list', countsField: 91, doc: 'MPLS label stack, top first (20-bit labels)' },
  { name: 'SrcAddrNAT', field: 92, kind: 'ip', ipv4FlowsField: 100, doc: 'source address after NAT' },
  { name: 'DstAddrNAT', field: 93, kind: 'ip', ipv4FlowsField: 101, doc: 'destination address after NAT' },
  { name: 'SrcPortNAT', field: 94, kind: 'u16', doc: 'source port after NAT' },
  { name: 'DstPortNAT', field: 95, kind: 'u16', doc: 'destination port after NAT' },
  { name: 'InVrf', field: 102, kind: 'u32', doc: 'VRF id of the input interface (IPFIX ingressVRFID)' },
  { name: 'OutVrf', field: 103, kind: 'u32', doc: 'VRF id of the output interface (IPFIX egressVRFID)' },
  { name: 'InVrfName', field: 104, kind: 'string', doc: 'name of the input VRF, from exporter options data' },
  { name: 'OutVrfName', field: 105, kind: 'string', doc: 'name of the output VRF, from exporter options data' },
  { name: 'FlowStartTime', field: 106, kind: 'u64', doc: 'first packet of the flow as the exporter saw it, milliseconds since the Unix epoch (0 unknown)' },
  { name: 'FlowEndTime', field: 107, kind: 'u64', doc: 'last packet of the flow as the exporter saw it, milliseconds since the Unix epoch (0 unknown)' },
] as const satisfies readonly FlowColumnSpec[]

type Column = (typeof columnTable)[number]
type NameOfKind<K extends FlowColumnKind> = Extract<Column, { readonly kind: K }>['name']

export type FlowColumnName = Column['name']
export type U8Column = NameOfKind<'u8'>
export type U16Column = NameOfKind<'u16'>
export type U32Column = NameOfKind<'u32'>
export type U64Column = NameOfKind<'u64'>
export type IpColumn = NameOfKind<'ip'>
export type MacColumn = NameOfKind<'mac'>
export type StringColumn = NameOfKind<'string'>
export type U32ListColumn = NameOfKind<'u32list'>
export type U32TripleListColumn = NameOfKind<'u32x3list'>
export type ListColumn = U32ListColumn | U32TripleListColumn
/** Columns holding one number per flow. */
export type NumericColumn = U8Column | U16Column | U32Column | U64Column | MacColumn
/** The kind of a named column, at the type level: `KindOf<'SrcAS'>` is `'u32'`. */
export type KindOf<C extends FlowColumnName> = Extract<Column, { readonly name: C }>['kind']

/** Every flow column in field-number order: iterate over this to derive schemas. */
export const flowColumns: readonly (FlowColumnSpec & { readonly name: FlowColumnName })[] = columnTable

const byName = new Map<string, FlowColumnSpec>(flowColumns.map((c) => [c.name, c]))

/** Spec of a column by name, undefined for an unknown name (e.g. from user input). */
export const flowColumn = (name: string): FlowColumnSpec | undefined => byName.get(name)

/** Ordinal of each column in `flowColumns`: FlowBatch keeps its arrays in that order. */
export const flowColumnIndex: ReadonlyMap<string, number> = new Map(flowColumns.map((c, i) => [c.name, i]))
