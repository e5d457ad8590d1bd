// Protobuf wire-format primitives shared by the hand-written codecs (FlowBatch, RawPacketBatch):
// varints, tags, field skipping and UTF-8, with bounds checks that name the field and offset.

export const WIRE_VARINT = 0
export const WIRE_I64 = 1
export const WIRE_LEN = 2
export const WIRE_SGROUP = 3
export const WIRE_EGROUP = 4
export const WIRE_I32 = 5

/** A message that is not valid protobuf for its type; the bus dead-letters it. */
export class WireFormatError extends Error {
  constructor(
    /** Protobuf message type, e.g. `flowbus.v1.FlowBatch`. */
    readonly typeName: string,
    /** Field being read (name or number) when the problem showed. */
    readonly field: string,
    /** Byte offset in the message. */
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`malformed ${typeName}: field ${field} at offset ${offset}: ${reason}`)
    this.name = 'WireFormatError'
  }
}

/** True on little-endian hosts: typed-array bytes are then already protobuf's fixed-width layout. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

export const varintSize = (v: number): number => {
  if (v < 0x80) return 1
  if (v < 0x4000) return 2
  if (v < 0x200000) return 3
  if (v < 0x10000000) return 4
  let n = 5
  for (let x = Math.floor(v / 0x800000000); x > 0; x = Math.floor(x / 128)) n++
  return n
}

/** Writes a non-negative integer (exact to 2^53) as a varint; returns the new offset. */
export function writeVarint(out: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80
    v = v >= 0x80000000 ? Math.floor(v / 128) : v >>> 7
  }
  out[pos++] = v
  return pos
}

/** Writes v (an integer below 2^53) as `width` little-endian bytes; returns the new offset. */
export function writeLittleEndian(out: Uint8Array, pos: number, v: number, width: number): number {
  let lo = v >>> 0
  let hi = width > 4 ? Math.floor(v / 0x100000000) >>> 0 : 0
  for (let i = 0; i < width; i++) {
    out[pos++] = i < 4 ? lo & 0xff : hi & 0xff
    if (i < 4) lo >>>= 8
    else hi >>>= 8
  }
  return pos
}

/** Reads `width` (1 to 8) little-endian bytes at pos as a number (exact up to 2^53). */
export function readLittleEndian(buf: Uint8Array, pos: number, width: number): number {
  let v = 0
  for (let i = width - 1; i >= 0; i--) v = v * 256 + buf[pos + i]!
  return v
}

export const tagOf = (field: number, wireType: number): number => field * 8 + wireType

/**
 * Sequential reader over one message. Every read checks bounds and throws WireFormatError
 * naming `typeName`, the current field and the offset, so truncated input never reads garbage.
 */
export class WireReader {
  pos: number
  /** Name or number of the field being decoded, for error messages. */
  field = 'tag'

  constructor(
    readonly typeName: string,
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start
  }

  fail(reason: string, offset = this.pos): never {
    throw new WireFormatError(this.typeName, this.field, offset, reason)
  }

  get done(): boolean {
    return this.pos >= this.end
  }

  /** Unsigned varint as a number: exact up to 2^53, larger values lose low bits. */
  varint(): number {
    const start = this.pos
    let b = this.buf[this.pos]
    if (b !== undefined && b < 0x80 && this.pos < this.end) {
      this.pos++
      return b
    }
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint', start)
      b = this.buf[this.pos++]!
      result += (b & 0x7f) * scale
      if (b < 0x80) return result
      scale *= 128
    }
    return this.fail('varint longer than 10 bytes', start)
  }

  /** Unsigned varint truncated to 32 bits, as protobuf does for uint32 fields. */
  uint32(): number {
    const v = this.varint()
    return v <= 0xffffffff ? v : v % 0x100000000
  }

  /** Length prefix of a LEN field; returns the payload start and moves past the payload. */
  lengthDelimited(): { start: number; end: number } {
    const at = this.pos
    const length = this.varint()
    const start = this.pos
    if (length > this.end - start) this.fail(`length ${length} runs past the end of the message (${this.end - start} bytes left)`, at)
    this.pos = start + length
    return { start, end: start + length }
  }

  fixed32(): number {
    if (this.end - this.pos < 4) this.fail('truncated fixed32')
    const b = this.buf
    const p = this.pos
    this.pos += 4
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x1000000
  }

  /** fixed64 as BigInt: exact at every magnitude. */
  fixed64(): bigint {
    const lo = this.fixed32()
    const hi = this.fixed32()
    return (BigInt(hi) << 32n) | BigInt(lo)
  }

  /** Reads a tag; returns [fieldNumber, wireType]. */
  tag(): [number, number] {
    this.field = 'tag'
    const at = this.pos
    const t = this.varint()
    const field = Math.floor(t / 8)
    if (field === 0) this.fail('field number 0 is invalid', at)
    return [field, t & 7]
  }

  /** Skips the value of an unknown field (forward compatibility: newer writers add fields). */
  skip(field: number, wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint()
        return
      case WIRE_I64:
        if (this.end - this.pos < 8) this.fail('truncated fixed64')
        this.pos += 8
        return
      case WIRE_LEN:
        this.lengthDelimited()
        return
      case WIRE_I32:
        if (this.end - this.pos < 4) this.fail('truncated fixed32')
        this.pos += 4
        return
      case WIRE_SGROUP: {
        for (;;) {
          if (this.done) this.fail(`unterminated group ${field}`)
          const [f, w] = this.tag()
          if (w === WIRE_EGROUP) {
            if (f !== field) this.fail(`group ${field} closed by end-group ${f}`)
            return
          }
          this.skip(f, w)
        }
      }
      default:
        this.fail(`invalid wire type ${wireType}`)
    }
  }
}

const textDecoder = new TextDecoder()
const textEncoder = new TextEncoder()

/** UTF-8 decode; short ASCII strings (most names) skip TextDecoder's per-call overhead. */
export function readUtf8(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 32) {
    let s = ''
    for (let i = start; i < end; i++) {
      const c = buf[i]!
      if (c >= 0x80) return textDecoder.decode(buf.subarray(start, end))
      s += String.fromCharCode(c)
    }
    return s
  }
  return textDecoder.decode(buf.subarray(start, end))
}

/** Byte length of the UTF-8 encoding of s (lone surrogates count as U+FFFD, as TextEncoder writes). */
export function utf8Length(s: string): number {
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) n += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2 // a pair: 2 UTF-16 units, 4 bytes
      i++
    } else n += 2
  }
  return n
}

/** Writes s as UTF-8 at pos (the caller sized the buffer with utf8Length); returns the new offset. */
export function writeUtf8(out: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return pos + textEncoder.encodeInto(s.slice(i), out.subarray(pos)).written
    out[pos++] = c
  }
  return pos
}
