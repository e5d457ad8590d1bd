// Renders every generated file of bus-schemas from its source of truth, without writing anything:
// generate.mjs writes the result, and a test fails when a checked-in file differs from it.

import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import { FLOW_BATCH_PROTO_PATH, renderFlowBatchProto } from '../src/flow-proto.js'

/** The bus-schemas package directory. */
export const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')

export const GENERATED_TS_PATH = 'src/generated/flowbus.ts'
const PROTO_DIR = 'proto/flowbus/v1'

/** Messages with a hand-written in-memory type and codec: no generated interface. */
const handWritten = new Set(['FlowBatch', 'RawPacket', 'RawPacketBatch'])

/** Path (relative to the package) → content of every generated file. */
export function renderGenerated(): Map<string, string> {
  const out = new Map<string, string>()
  out.set(FLOW_BATCH_PROTO_PATH, renderFlowBatchProto())

  // Parse every .proto into one root; flow_batch.proto from the renderer, so a stale file on
  // disk cannot leak into the descriptor.
  const root = new protobuf.Root()
  const files = readdirSync(join(packageDir, PROTO_DIR))
    .filter((f) => f.endsWith('.proto'))
    .map((f) => `${PROTO_DIR}/${f}`)
  if (!files.includes(FLOW_BATCH_PROTO_PATH)) files.push(FLOW_BATCH_PROTO_PATH)
  for (const file of files.sort()) {
    const source = file === FLOW_BATCH_PROTO_PATH ? renderFlowBatchProto() : readFileSync(join(packageDir, file), 'utf8')
    protobuf.parse(source, root, { keepCase: false, alternateCommentMode: true })
  }
  root.resolveAll()
  out.set(GENERATED_TS_PATH, renderTypes(root, files))
  return out
}

const tsScalar: Record<string, string> = {
  double: 'number',
  float: 'number',
  int32: 'number',
  uint32: 'number',
  sint32: 'number',
  fixed32: 'number',
  sfixed32: 'number',
  // 64-bit integers are decoded as numbers: exact up to 2^53, enough for times and counters here.
  int64: 'number',
  uint64: 'number',
  sint64: 'number',
  fixed64: 'number',
  sfixed64: 'number',
  bool: 'boolean',
  string: 'string',
  bytes: 'Uint8Array',
}

const docComment = (text: string | null, indent: string): string[] =>
  text ? [`${indent}/** ${text.replace(/\*\//g, '* /').split('\n').join(`\n${indent} * `)} */`] : []

/** SCREAMING_SNAKE prefix proto style puts on enum values, stripped for TypeScript. */
const enumPrefix = (name: string): string => `${name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}_`

function renderTypes(root: protobuf.Root, files: string[]): string {
  const pkg = root.lookup('flowbus.v1') as protobuf.Namespace
  const descriptor = root.toJSON({ keepComments: false })
  const lines = [
    `// GENERATED from bus-schemas/${PROTO_DIR}/*.proto by bus-schemas/scripts/generate.mjs: do not edit.`,
    '// The protobuf descriptor (for protobufjs reflection codecs) and the TypeScript types of the messages.',
    '',
    "import type { INamespace } from 'protobufjs'",
    '',
    `/** Descriptor of package flowbus.v1 (${files.map((f) => f.split('/').pop()).join(', ')}), protobufjs JSON form. */`,
    `export const flowbusDescriptor: INamespace = ${JSON.stringify(descriptor, null, 2)}`,
  ]
  const nested = [...pkg.nestedArray].sort((a, b) => a.name.localeCompare(b.name))
  for (const item of nested) {
    if (item instanceof protobuf.Enum) {
      const prefix = enumPrefix(item.name)
      lines.push('', ...docComment(item.comment, ''), `export const ${item.name} = {`)
      for (const [key, value] of Object.entries(item.values)) {
        const short = key.startsWith(prefix) ? key.slice(prefix.length) : key
        lines.push(`  ${short}: ${value},`)
      }
      lines.push('} as const', `export type ${item.name} = (typeof ${item.name})[keyof typeof ${item.name}]`)
    } else if (item instanceof protobuf.Type && !handWritten.has(item.name)) {
      lines.push('', ...docComment(item.comment, ''), `export interface ${item.name} {`)
      for (const field of item.fieldsArray) {
        const resolved = field.resolvedType
        const base = resolved ? resolved.name : tsScalar[field.type]
        if (base === undefined) throw new Error(`${item.name}.${field.name}: no TypeScript type for ${field.type}`)
        if (field.map) throw new Error(`${item.name}.${field.name}: map fields are not supported by the generator`)
        lines.push(...docComment(field.comment, '  '), `  ${field.name}: ${base}${field.repeated ? '[]' : ''}`)
      }
      lines.push('}')
    }
  }
  lines.push('')
  return lines.join('\n')
}
