// flows.raw messages: the datagrams a receiver got, with exporter address, port, time and sniffed
// protocol. Hand-written codec: at ~160k datagrams/s per receiver, per-packet protobufjs objects would show.

import { FlowProtocol } from './generated/flowbus.js'
import type { Codec } from './subject.js'
import {
  WIRE_I64,
  WIRE_LEN,
  WIRE_VARINT,
  WireReader,
  readUtf8,
  tagOf,
  utf8Length,
  varintSize,
  writeUtf8,
  writeVarint,
} from './wire.js'

export const RAW_PACKET_BATCH_TYPE = 'flowbus.v1.RawPacketBatch'

/** One UDP datagram from an exporter. */
export interface RawPacket {
  /** Exporter address, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  exporterAddress: Uint8Array
  exporterPort: number
  /** Receive time, nanoseconds since the Unix epoch. */
  receivedNs: bigint
  /** Protocol sniffed from the datagram's version field (FlowProtocol values). */
  protocol: FlowProtocol
  /** The datagram; decoded payloads are views into the message buffer, not copies. */
  payload: Uint8Array
}

export interface RawPacketBatch {
  /** Identity of the receiver that produced the batch, for metrics. */
  receiver: string
  packets: RawPacket[]
}

/**
 * Sniffs the flow protocol from the first bytes of a datagram: NetFlow v5/v9 and IPFIX start with
 * a 16-bit version (5, 9, 10), sFlow with a 32-bit version 5. Anything else is UNKNOWN.
 */
export function sniffProtocol(payload: Uint8Array): FlowProtocol {
  if (payload.length < 4) return FlowProtocol.UNKNOWN
  const v16 = (payload[0]! << 8) | payload[1]!
  if (v16 === 5) return FlowProtocol.NETFLOW_V5
  if (v16 === 9) return FlowProtocol.NETFLOW_V9
  if (v16 === 10) return FlowProtocol.IPFIX
  if (v16 === 0 && payload[2] === 0 && payload[3] === 5) return FlowProtocol.SFLOW_V5
  return FlowProtocol.UNKNOWN
}

const TWO_32 = 4294967296n
const F_ADDRESS = tagOf(1, WIRE_LEN)
const F_PORT = tagOf(2, WIRE_VARINT)
const F_TIME = tagOf(3, WIRE_I64)
const F_PROTOCOL = tagOf(4, WIRE_VARINT)
const F_PAYLOAD = tagOf(5, WIRE_LEN)

/** Size of one encoded RawPacket body (without its own tag and length); default values are omitted. */
function packetSize(p: RawPacket): number {
  let n = 0
  if (p.exporterAddress.length > 0) n += 1 + varintSize(p.exporterAddress.length) + p.exporterAddress.length
  if (p.exporterPort !== 0) n += 1 + varintSize(p.exporterPort)
  if (p.receivedNs !== 0n) n += 9
  if (p.protocol !== 0) n += 1 + varintSize(p.protocol)
  if (p.payload.length > 0) n += 1 + varintSize(p.payload.length) + p.payload.length
  return n
}

export function encodeRawPacketBatch(batch: RawPacketBatch): Uint8Array {
  const receiverLength = utf8Length(batch.receiver)
  const sizes = batch.packets.map((p, i) => {
    if (p.exporterAddress.length !== 16 && p.exporterAddress.length !== 0) {
      throw new Error(`cannot encode ${RAW_PACKET_BATCH_TYPE}: packet ${i} exporter address has ${p.exporterAddress.length} bytes, expected 16`)
    }
    const inRange = (v: number, max: number): boolean => Number.isInteger(v) && v >= 0 && v <= max
    if (!inRange(p.exporterPort, 0xffff) || !inRange(p.protocol, 0x7fffffff) || !(p.receivedNs >= 0n && p.receivedNs < 1n << 64n)) {
      throw new Error(
        `cannot encode ${RAW_PACKET_BATCH_TYPE}: packet ${i} has port ${p.exporterPort}, protocol ${p.protocol} or time ${p.receivedNs} out of range`,
      )
    }
    return packetSize(p)
  })
  let size = receiverLength > 0 ? 1 + varintSize(receiverLength) + receiverLength : 0
  for (const s of sizes) size += 1 + varintSize(s) + s
  const out = new Uint8Array(size)
  let pos = 0
  if (receiverLength > 0) {
    out[pos++] = tagOf(1, WIRE_LEN)
    pos = writeVarint(out, pos, receiverLength)
    pos = writeUtf8(out, pos, batch.receiver)
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  batch.packets.forEach((p, i) => {
    out[pos++] = tagOf(2, WIRE_LEN)
    pos = writeVarint(out, pos, sizes[i]!)
    if (p.exporterAddress.length > 0) {
      out[pos++] = F_ADDRESS
      out[pos++] = 16
      out.set(p.exporterAddress, pos)
      pos += 16
    }
    if (p.exporterPort !== 0) {
      out[pos++] = F_PORT
      pos = writeVarint(out, pos, p.exporterPort)
    }
    if (p.receivedNs !== 0n) {
      out[pos++] = F_TIME
      view.setUint32(pos, Number(p.receivedNs % TWO_32), true)
      view.setUint32(pos + 4, Number(p.receivedNs / TWO_32), true)
      pos += 8
    }
    if (p.protocol !== 0) {
      out[pos++] = F_PROTOCOL
      pos = writeVarint(out, pos, p.protocol)
    }
    if (p.payload.length > 0) {
      out[pos++] = F_PAYLOAD
      pos = writeVarint(out, pos, p.payload.length)
      out.set(p.payload, pos)
      pos += p.payload.length
    }
  })
  return out
}

const NO_BYTES = new Uint8Array(0)

/** Decodes a RawPacketBatch; payloads and addresses are views into `buf` (no copy). */
export function decodeRawPacketBatch(buf: Uint8Array): RawPacketBatch {
  const reader = new WireReader(RAW_PACKET_BATCH_TYPE, buf)
  const batch: RawPacketBatch = { receiver: '', packets: [] }
  while (!reader.done) {
    const [field, wireType] = reader.tag()
    if (field === 1 && wireType === WIRE_LEN) {
      reader.field = 'receiver'
      const { start, end } = reader.lengthDelimited()
      batch.receiver = readUtf8(buf, start, end)
    } else if (field === 2 && wireType === WIRE_LEN) {
      reader.field = `packets[${batch.packets.length}]`
      const { start, end } = reader.lengthDelimited()
      batch.packets.push(decodePacket(new WireReader(RAW_PACKET_BATCH_TYPE, buf, start, end), batch.packets.length))
    } else if (field === 1 || field === 2) {
      reader.field = field === 1 ? 'receiver' : 'packets'
      reader.fail(`wire type ${wireType}, expected length-delimited (2)`)
    } else reader.skip(field, wireType)
  }
  return batch
}

function decodePacket(reader: WireReader, index: number): RawPacket {
  const p: RawPacket = { exporterAddress: NO_BYTES, exporterPort: 0, receivedNs: 0n, protocol: 0, payload: NO_BYTES }
  const expect = (wireType: number, wanted: number): void => {
    if (wireType !== wanted) reader.fail(`wire type ${wireType}, expected ${wanted}`)
  }
  while (!reader.done) {
    const [field, wireType] = reader.tag()
    switch (field) {
      case 1: {
        reader.field = `packets[${index}].exporter_address`
        expect(wireType, WIRE_LEN)
        const { start, end } = reader.lengthDelimited()
        if (end - start !== 16) reader.fail(`${end - start} bytes, expected 16`, start)
        p.exporterAddress = reader.buf.subarray(start, end)
        break
      }
      case 2:
        reader.field = `packets[${index}].exporter_port`
        expect(wireType, WIRE_VARINT)
        p.exporterPort = reader.uint32()
        break
      case 3:
        reader.field = `packets[${index}].received_ns`
        expect(wireType, WIRE_I64)
        p.receivedNs = reader.fixed64()
        break
      case 4:
        reader.field = `packets[${index}].protocol`
        expect(wireType, WIRE_VARINT)
        p.protocol = reader.uint32() as FlowProtocol
        break
      case 5: {
        reader.field = `packets[${index}].payload`
        expect(wireType, WIRE_LEN)
        const { start, end } = reader.lengthDelimited()
        p.payload = reader.buf.subarray(start, end)
        break
      }
      default:
        reader.field = `packets[${index}].${field}`
        reader.skip(field, wireType)
    }
  }
  // proto3 writers omit an all-zero address field: readers still get 16 bytes (`::`).
  if (p.exporterAddress.length === 0) p.exporterAddress = new Uint8Array(16)
  return p
}

export const rawPacketBatchCodec: Codec<RawPacketBatch> = {
  typeName: RAW_PACKET_BATCH_TYPE,
  encode: encodeRawPacketBatch,
  decode: decodeRawPacketBatch,
}
