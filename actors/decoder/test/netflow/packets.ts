// Hand-built NetFlow v5/v9 and IPFIX datagrams for the decoder tests, and a sink that records
// what the decoders write. Values are written big-endian, as on the wire.
import { FlowBatch, flowBatchToRows, ipv4ToMapped, parseIP } from '@flowbus/bus-schemas'
import type { Datagram, DecodeErrorReason, DecodeSink } from '../../src/protocol.js'

/** A growing big-endian byte buffer. */
export class Bytes {
  readonly #out: number[] = []
  u8(v: number): this {
    this.#out.push(v & 0xff)
    return this
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v)
  }
  u24(v: number): this {
    return this.u8(v >>> 16).u16(v)
  }
  u32(v: number): this {
    return this.u16(v >>> 16).u16(v)
  }
  u64(v: number): this {
    return this.u32(Math.floor(v / 4294967296)).u32(v >>> 0)
  }
  /** An address in text form: 4 bytes for IPv4, 16 for IPv6. */
  ip(text: string): this {
    const a = parseIP(text)
    return this.raw(text.includes(':') ? a : a.subarray(12))
  }
  mac(text: string): this {
    return this.raw(text.split(':').map((h) => parseInt(h, 16)))
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.#out.push(bytes[i]! & 0xff)
    return this
  }
  /** IPFIX variable-length encoding: one length byte, or 255 and two length bytes. */
  varlen(bytes: ArrayLike<number>, long = false): this {
    if (long || bytes.length >= 255) this.u8(255).u16(bytes.length)
    else this.u8(bytes.length)
    return this.raw(bytes)
  }
  text(s: string): number[] {
    return [...new TextEncoder().encode(s)]
  }
  get length(): number {
    return this.#out.length
  }
  build(): Uint8Array {
    return Uint8Array.from(this.#out)
  }
}

export const bytes = (): Bytes => new Bytes()
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

/** A template field: [element, length] or [element, length, enterprise]. */
export type Field = readonly [number, number] | readonly [number, number, number]

/** IPFIX message around sets. */
export function ipfix(sets: Uint8Array[], o: { domain?: number; sequence?: number; exportTime?: number } = {}): Uint8Array {
  const length = 16 + sets.reduce((n, s) => n + s.length, 0)
  const b = bytes().u16(10).u16(length).u32(o.exportTime ?? 1_700_000_000).u32(o.sequence ?? 0).u32(o.domain ?? 0)
  for (const s of sets) b.raw(s)
  return b.build()
}

/** NetFlow v9 packet around flowsets. */
export function v9(
  sets: Uint8Array[],
  o: { sourceId?: number; sequence?: number; sysUptime?: number; unixSecs?: number; count?: number } = {},
): Uint8Array {
  const b = bytes()
    .u16(9)
    .u16(o.count ?? sets.length)
    .u32(o.sysUptime ?? 3_600_000)
    .u32(o.unixSecs ?? 1_700_000_000)
    .u32(o.sequence ?? 0)
    .u32(o.sourceId ?? 0)
  for (const s of sets) b.raw(s)
  return b.build()
}

/** A set / flowset: id, length, body, padded to 4 bytes when `pad`. */
export function set(id: number, body: Uint8Array, pad = false): Uint8Array {
  const padding = pad ? (4 - ((body.length + 4) % 4)) % 4 : 0
  return bytes()
    .u16(id)
    .u16(4 + body.length + padding)
    .raw(body)
    .raw(new Array<number>(padding).fill(0))
    .build()
}

function fieldBytes(b: Bytes, fields: readonly Field[]): void {
  for (const [type, length, pen] of fields) {
    if (pen === undefined) b.u16(type).u16(length)
    else b.u16(type | 0x8000).u16(length).u32(pen)
  }
}

/** One template record (IPFIX set 2 / v9 flowset 0 body part). */
export function template(id: number, fields: readonly Field[]): Uint8Array {
  const b = bytes().u16(id).u16(fields.length)
  fieldBytes(b, fields)
  return b.build()
}

/** One IPFIX options template record (set 3 body part). */
export function ipfixOptionsTemplate(id: number, scopeCount: number, fields: readonly Field[]): Uint8Array {
  const b = bytes().u16(id).u16(fields.length).u16(scopeCount)
  fieldBytes(b, fields)
  return b.build()
}

/** One NetFlow v9 options template record (flowset 1 body part): scope types, then option fields. */
export function v9OptionsTemplate(id: number, scopes: readonly Field[], options: readonly Field[]): Uint8Array {
  const b = bytes().u16(id).u16(scopes.length * 4).u16(options.length * 4)
  fieldBytes(b, scopes)
  fieldBytes(b, options)
  return b.build()
}

export const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

export const EXPORTER = ipv4ToMapped(0xc0000201) // 192.0.2.1

export function datagram(payload: Uint8Array, o: { exporter?: Uint8Array; port?: number; timeReceived?: number } = {}): Datagram {
  return { exporterAddress: o.exporter ?? EXPORTER, exporterPort: o.port ?? 2055, timeReceived: o.timeReceived ?? 1_700_000_100, payload }
}

/** A sink that keeps flows and errors. */
export class TestSink implements DecodeSink {
  readonly flows = new FlowBatch(16)
  readonly counters = []
  readonly errors: { reason: DecodeErrorReason; detail: string | undefined }[] = []
  error(reason: DecodeErrorReason, detail?: string): void {
    this.errors.push({ reason, detail })
  }
  reasons(): DecodeErrorReason[] {
    return this.errors.map((e) => e.reason)
  }
  rows(): Record<string, unknown>[] {
    return flowBatchToRows(this.flows) as unknown as Record<string, unknown>[]
  }
}

/** A seeded pseudo-random source (32-bit LCG): integers in [0, n), the same sequence every run. */
export function seededRandom(seed: number): (n: number) => number {
  let state = seed >>> 0
  return (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return (state >>> 8) % n
  }
}
