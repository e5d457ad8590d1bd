// Renders the FlowBatch message of flow_batch.proto from the column list, so the two never drift.
// scripts/generate.mjs writes the result to proto/flowbus/v1/flow_batch.proto; a test checks it is current.

import { FLOW_BATCH_COUNT_FIELD, FLOW_BATCH_STRINGS_FIELD, flowColumns, type FlowColumnKind } from './flow-columns.js'

const wireDeclaration: Record<FlowColumnKind, { type: string; layout: string }> = {
  u8: { type: 'bytes', layout: 'u8: 1 byte per flow' },
  u16: { type: 'bytes', layout: 'u16: 2 bytes per flow, little-endian' },
  u32: { type: 'repeated fixed32', layout: 'u32' },
  u64: { type: 'repeated fixed64', layout: 'u64' },
  ip: { type: 'bytes', layout: 'IP: 16 bytes per flow' },
  mac: { type: 'repeated fixed64', layout: 'MAC in the low 48 bits' },
  string: { type: 'repeated fixed32', layout: 'string: index into strings' },
  u32list: { type: 'repeated fixed32', layout: 'list: all flows\' values concatenated' },
  u32x3list: { type: 'repeated fixed32', layout: 'list of u32 triples: all flows\' triples concatenated' },
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
    '// A batch of flows, one field per column. How to read it in any language:',
    '// - `count` is the number of flows; a present column holds exactly `count` values.',
    '// - An absent column means zero, the empty string or an empty list for every flow.',
    '// - u8 and u16 columns are `bytes` holding a little-endian array, 1 or 2 bytes per flow.',
    '// - u32 and string columns are packed `repeated fixed32`, u64 and MAC columns packed',
    '//   `repeated fixed64`: on the wire both are little-endian arrays.',
    '// - IP columns are `bytes`, 16 bytes per flow, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d).',
    '// - String columns hold indexes into `strings`, whose entry 0 is always the empty string;',
    '//   `strings` may be omitted when every string is empty.',
    '// - List columns hold the values of all flows concatenated; `<Name>Counts` (packed uint32)',
    '//   gives each flow\'s number of elements (triples for DstLargeCommunities).',
    '// Field names are the Akvorado column names, the same as in JSON and ClickHouse.',
    'message FlowBatch {',
    '  // Number of flows in the batch.',
    `  uint32 count = ${FLOW_BATCH_COUNT_FIELD};`,
    '  // String table shared by every string column; strings[0] is "".',
    `  repeated string strings = ${FLOW_BATCH_STRINGS_FIELD};`,
  ]
  for (const c of flowColumns) {
    const { type, layout } = wireDeclaration[c.kind]
    lines.push('', `  // ${c.doc} (${layout}).`, `  ${type} ${c.name} = ${c.field};`)
    if (c.countsField !== undefined) {
      const unit = c.kind === 'u32x3list' ? 'triples' : 'values'
      lines.push(`  // Number of ${c.name} ${unit} of each flow.`, `  repeated uint32 ${c.name}Counts = ${c.countsField};`)
    }
  }
  lines.push('}', '')
  return lines.join('\n')
}
