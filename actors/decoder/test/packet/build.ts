// Test helper: packet headers built layer by layer (outermost first), for frame parser tests and
// for the sampled headers of hand-built sFlow datagrams and benchmarks.
import { ipv6Bytes } from '../sflow/builder.js'

export type Bytes = number[]

const u16 = (v: number): Bytes => [(v >> 8) & 0xff, v & 0xff]
const u32 = (v: number): Bytes => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]
const mac = (text: string): Bytes => text.split(':').map((h) => parseInt(h, 16))
const ipv4 = (text: string): Bytes => text.split('.').map(Number)

export const ethernet = (dst: string, src: string, type: number, payload: Bytes): Bytes => [
  ...mac(dst),
  ...mac(src),
  ...u16(type),
  ...payload,
]

/** One VLAN tag (TPID is the EtherType before it), then the next EtherType. */
export const vlanTag = (vlan: number, next: number, payload: Bytes, priority = 0): Bytes => [
  ...u16((priority << 13) | vlan),
  ...u16(next),
  ...payload,
]

/** An MPLS label stack, bottom of stack set on the last label. */
export const mplsStack = (labels: readonly number[], payload: Bytes, ttl = 64): Bytes => [
  ...labels.flatMap((label, i) => u32(((label << 12) | (i === labels.length - 1 ? 0x100 : 0) | ttl) >>> 0)),
  ...payload,
]

export interface IPv4Options {
  src: string
  dst: string
  proto: number
  ttl?: number
  tos?: number
  id?: number
  /** Flags and fragment offset word (offset in 8-byte units in the low 13 bits). */
  fragment?: number
  options?: Bytes
}

export const ipv4Header = (o: IPv4Options, payload: Bytes): Bytes => {
  const options = o.options ?? []
  const headerLength = 20 + options.length
  return [
    0x40 | (headerLength / 4),
    o.tos ?? 0,
    ...u16(headerLength + payload.length),
    ...u16(o.id ?? 0),
    ...u16(o.fragment ?? 0),
    o.ttl ?? 64,
    o.proto,
    0,
    0,
    ...ipv4(o.src),
    ...ipv4(o.dst),
    ...options,
    ...payload,
  ]
}

export interface IPv6Options {
  src: string
  dst: string
  next: number
  hopLimit?: number
  trafficClass?: number
  flowLabel?: number
}

export const ipv6Header = (o: IPv6Options, payload: Bytes): Bytes => [
  ...u32(((6 << 28) | ((o.trafficClass ?? 0) << 20) | (o.flowLabel ?? 0)) >>> 0),
  ...u16(payload.length),
  o.next,
  o.hopLimit ?? 64,
  ...ipv6Bytes(o.src),
  ...ipv6Bytes(o.dst),
  ...payload,
]

/** A generic IPv6 extension header (hop-by-hop, routing, destination options) of 8·(1+units) bytes. */
export const ipv6Extension = (next: number, units: number, payload: Bytes): Bytes => [
  next,
  units,
  ...new Array<number>(6 + units * 8).fill(0),
  ...payload,
]

export const ipv6Fragment = (next: number, offset: number, id: number, more: boolean, payload: Bytes): Bytes => [
  next,
  0,
  ...u16((offset << 3) | (more ? 1 : 0)),
  ...u32(id),
  ...payload,
]

/** Authentication header with `words` 32-bit words of ICV beyond the fixed 12 bytes. */
export const authenticationHeader = (next: number, words: number, payload: Bytes): Bytes => [
  next,
  1 + words,
  0,
  0,
  ...u32(0x1000),
  ...u32(1),
  ...new Array<number>(words * 4).fill(0),
  ...payload,
]

export const tcpHeader = (src: number, dst: number, flags: number, payload: Bytes = []): Bytes => [
  ...u16(src),
  ...u16(dst),
  ...u32(1),
  ...u32(2),
  0x50 | ((flags >> 8) & 1),
  flags & 0xff,
  ...u16(65535),
  0,
  0,
  0,
  0,
  ...payload,
]

export const udpHeader = (src: number, dst: number, payload: Bytes = []): Bytes => [
  ...u16(src),
  ...u16(dst),
  ...u16(8 + payload.length),
  0,
  0,
  ...payload,
]

export const icmpHeader = (type: number, code: number, payload: Bytes = [0, 1, 0, 1]): Bytes => [type, code, 0, 0, ...payload]

export const bytes = (b: Bytes): Uint8Array => Uint8Array.from(b)
