// Renders the FlowBatch message of flow_batch.proto from the column list, so the two never drift.
// scripts/generate.mjs writes the result to proto/flowbus/v1/flow_batch.proto; a test checks it is current.

import { FLOW_LIST_WIRE_WIDTHS, FLOW_WIRE_WIDTHS, SINGLE_VALUE_MIN_FLOWS } from './flow-batch-codec.js'
import { FLOW_BATCH_COUNT_FIELD, FLOW_BATCH_STRINGS_FIELD, flowColumns, type FlowColumnKind } from './flow-columns.js'

const widths = (ws: readonly number[]): string => (ws.length === 1 ? String(ws[0]) : `${ws.slice(0, -1).join(', ')} or ${ws.at(-1)}`)

/** What one field's bytes hold, in the per-field comment. */
const layout: Record<FlowColumnKind, string> = {
  u8: `u8: ${widths(FLOW_WIRE_WIDTHS.u8)} byte per flow`,
  u16: `u16: ${widths(FLOW_WIRE_WIDTHS.u16)} bytes per flow`,
  u32: `u32: ${widths(FLOW_WIRE_WIDTHS.u32)} bytes per flow`,
  u64: `u64: ${widths(FLOW_WIRE_WIDTHS.u64)} bytes per flow`,
  ip: `IP: ${widths([...FLOW_WIRE_WIDTHS.ip].reverse())} bytes per flow`,
  mac: `MAC: ${widths(FLOW_WIRE_WIDTHS.mac)} bytes per flow, network order`,
  string: `string: index into strings, ${widths(FLOW_WIRE_WIDTHS.string)} bytes per flow`,
  u32list: `list of u32: every flow's values, ${widths(FLOW_LIST_WIRE_WIDTHS)} bytes each`,
  u32x3list: `list of u32 triples: every flow's triples flattened, ${widths(FLOW_LIST_WIRE_WIDTHS)} bytes per u32`,
}

export const FLOW_BATCH_PROTO_PATH = 'proto/flowbus/v1/flow_batch.proto'

/** The text of flow_batch.proto. */
export function renderFlowBatchProto(): string {
  const lines = [
    '// GENERATED from bus-schemas/src/flow-columns.ts by bus-schemas/scripts/generate.mjs: do not edit.',
    '// flows.decoded, flows.enriched, flows.live: a batch of flows stored column by column.',
    'syntax = "proto3";',
    '',
    'package flowbus.v1;',
    '',
    '// A batch of flows, one `bytes` field per column. How to read it in any language, with n = `count`:',
    '// - An absent column means 0, the empty string, the address :: or an empty list for every flow.',
    '// - A column of fixed-width values has a payload of n × w bytes, one value of w bytes per flow,',
    '//   where w = length / n is one of the widths its comment allows; or exactly w bytes, one value',
    `//   that every flow has. Writers use the single value only when n >= ${SINGLE_VALUE_MIN_FLOWS}, so the two`,
    '//   readings never collide: try n × w first.',
    '// - Integers (u8, u16, u32, u64 columns) are unsigned little-endian; a writer picks the',
    '//   narrowest width that holds the batch\'s values, a reader accepts every allowed width.',
    '// - String columns hold indexes into `strings` (entry 0 is always ""), read like integers;',
    '//   writers size them by the table (1 byte up to 256 strings, 2 up to 65536); `strings` may',
    '//   be omitted when every string is empty.',
    '// - MAC columns hold the 48-bit MAC, 6 bytes in network order.',
    '// - IP columns hold 16-byte addresses in network order, IPv4 as IPv4-mapped IPv6',
    '//   (::ffff:a.b.c.d); or 4-byte IPv4 addresses (network order) standing for ::ffff:a.b.c.d.',
    '//   When `<Name>IPv4Flows` is present, flows mix the two: it has ceil(n / 8) bytes, bit r',
    '//   (byte r / 8, bit r % 8, least significant first) set when flow r is IPv4, and the',
    '//   column holds every flow\'s address in order, 4 bytes for those flows and 16 for the others.',
    '// - List columns hold the values of all flows concatenated, little-endian, w = length / total',
    '//   values; `<Name>Counts` is a fixed-width column (as above) of each flow\'s number of',
    '//   elements (triples for DstLargeCommunities), whose sum gives that total.',
    '// Field names are the Akvorado column names, the same as in JSON and ClickHouse.',
    'message FlowBatch {',
    '  // Number of flows in the batch.',
    `  uint32 count = ${FLOW_BATCH_COUNT_FIELD};`,
    '  // String table shared by every string column; strings[0] is "".',
    `  repeated string strings = ${FLOW_BATCH_STRINGS_FIELD};`,
  ]
  for (const c of flowColumns) {
    const mixed = c.ipv4FlowsField === undefined ? '' : `, mixed when ${c.name}IPv4Flows is present`
    lines.push('', `  // ${c.doc} (${layout[c.kind]}${mixed}).`, `  bytes ${c.name} = ${c.field};`)
    if (c.countsField !== undefined) {
      const unit = c.kind === 'u32x3list' ? 'triples' : 'values'
      lines.push(
        `  // Number of ${c.name} ${unit} of each flow (${widths(FLOW_LIST_WIRE_WIDTHS)} bytes per flow).`,
        `  bytes ${c.name}Counts = ${c.countsField};`,
      )
    }
  }
  // Companion bitmaps come last: their numbers follow the columns'.
  for (const c of flowColumns) {
    if (c.ipv4FlowsField === undefined) continue
    lines.push('', `  // Flows whose ${c.name} is a 4-byte IPv4 address, one bit per flow; absent unless they mix.`, `  bytes ${c.name}IPv4Flows = ${c.ipv4FlowsField};`)
  }
  lines.push('}', '')
  return lines.join('\n')
}
