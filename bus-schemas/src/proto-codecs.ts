// Codecs for the low-volume messages (metadata, templates, routing) through protobufjs reflection
// over the generated descriptor; the hot FlowBatch and RawPacketBatch have hand-written codecs.

import protobuf from 'protobufjs'
import {
  flowbusDescriptor,
  type ExporterInfo,
  type InterfaceCountersBatch,
  type InterfaceInfo,
  type RoutingLookupRequest,
  type RoutingLookupResponse,
  type TemplateRecord,
} from './generated/flowbus.js'
import type { Codec } from './subject.js'

/** protobufjs reflection root of package flowbus.v1 (also handy to decode any flowbus message in tools). */
export const flowbusRoot: protobuf.Root = protobuf.Root.fromJSON(flowbusDescriptor)

// Plain objects with every field present: numbers for enums and 64-bit integers, arrays for
// repeated fields, so decoded values match the generated interfaces exactly.
const toObjectOptions: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true, arrays: true }

/** Normalises protobufjs's Buffer-backed bytes to plain Uint8Array views, the same on every platform. */
function plainBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) {
    return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  }
  if (Array.isArray(value)) return value.map(plainBytes)
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>
    for (const k of Object.keys(o)) o[k] = plainBytes(o[k])
  }
  return value
}

/** Codec of one flowbus.v1 message type through protobufjs; errors name the type and the problem. */
export function reflectionCodec<T extends object>(typeName: string): Codec<T> {
  const type = flowbusRoot.lookupType(typeName)
  return {
    typeName,
    encode(value: T): Uint8Array {
      const problem = type.verify(value)
      if (problem !== null) throw new Error(`cannot encode ${typeName}: ${problem}`)
      return type.encode(value).finish()
    },
    decode(bytes: Uint8Array): T {
      let message: protobuf.Message
      try {
        message = type.decode(bytes)
      } catch (e) {
        throw new Error(`malformed ${typeName}: ${e instanceof Error ? e.message : String(e)}`)
      }
      return plainBytes(type.toObject(message, toObjectOptions)) as T
    },
  }
}

export const exporterInfoCodec = reflectionCodec<ExporterInfo>('flowbus.v1.ExporterInfo')
export const interfaceInfoCodec = reflectionCodec<InterfaceInfo>('flowbus.v1.InterfaceInfo')
export const templateRecordCodec = reflectionCodec<TemplateRecord>('flowbus.v1.TemplateRecord')
export const routingLookupRequestCodec = reflectionCodec<RoutingLookupRequest>('flowbus.v1.RoutingLookupRequest')
export const routingLookupResponseCodec = reflectionCodec<RoutingLookupResponse>('flowbus.v1.RoutingLookupResponse')

export const interfaceCountersBatchCodec = reflectionCodec<InterfaceCountersBatch>('flowbus.v1.InterfaceCountersBatch')
