// Test helper: builds sFlow v5 datagrams field by field (XDR: big-endian 32-bit words, opaque
// data padded to 4 bytes), so unit tests can state exactly what each record holds.
import type { InterfaceCounters } from '@flowbus/bus-schemas'

export class Xdr {
  readonly #bytes: number[] = []
  u32(v: number): this {
    this.#bytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff)
    return this
  }
  u64(v: number): this {
    return this.u32(Math.floor(v / 4294967296)).u32(v >>> 0)
  }
  /** Raw bytes, padded with zeros to a multiple of 4. */
  opaque(data: ArrayLike<number>): this {
    for (let i = 0; i < data.length; i++) this.#bytes.push(data[i]!)
    while (this.#bytes.length % 4 !== 0) this.#bytes.push(0)
    return this
  }
  /** An sFlow address: type 1 with 4 bytes or type 2 with 16. */
  address(text: string): this {
    if (text.includes(':')) return this.u32(2).opaque(ipv6Bytes(text))
    return this.u32(1).opaque(text.split('.').map(Number))
  }
  /** A (format, length, body) structure: samples and records. */
  tagged(format: number, body: Xdr): this {
    return this.u32(format).u32(body.length).opaque(body.bytes())
  }
  get length(): number {
    return this.#bytes.length
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes)
  }
}

export const xdr = (): Xdr => new Xdr()

export function ipv6Bytes(text: string): number[] {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : [])
  const h = groups(head)
  const t = groups(tail)
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
  return all.flatMap((g) => [g >> 8, g & 0xff])
}

export interface DatagramOptions {
  agent?: string
  subAgentId?: number
  sequenceNumber?: number
  uptime?: number
}

/** A whole datagram around already built samples (each a `tagged` sample). */
export function datagram(samples: readonly { format: number; body: Xdr }[], options: DatagramOptions = {}): Uint8Array {
  const d = xdr()
    .u32(5)
    .address(options.agent ?? '192.0.2.1')
    .u32(options.subAgentId ?? 0)
    .u32(options.sequenceNumber ?? 1)
    .u32(options.uptime ?? 1000)
    .u32(samples.length)
  for (const s of samples) d.tagged(s.format, s.body)
  return d.bytes()
}

export interface FlowSampleOptions {
  sequenceNumber?: number
  sourceId?: number
  samplingRate?: number
  pool?: number
  drops?: number
  /** Compact form: the whole 32-bit interface word (format in the top 2 bits). */
  input?: number
  output?: number
}

/** A compact flow sample (format 1) with the given records. */
export function flowSample(records: readonly { format: number; body: Xdr }[], o: FlowSampleOptions = {}): { format: number; body: Xdr } {
  const body = xdr()
    .u32(o.sequenceNumber ?? 1)
    .u32(o.sourceId ?? 3)
    .u32(o.samplingRate ?? 1000)
    .u32(o.pool ?? 5000)
    .u32(o.drops ?? 0)
    .u32(o.input ?? 3)
    .u32(o.output ?? 4)
    .u32(records.length)
  for (const r of records) body.tagged(r.format, r.body)
  return { format: 1, body }
}

export interface ExpandedFlowSampleOptions {
  samplingRate?: number
  inFormat?: number
  inValue?: number
  outFormat?: number
  outValue?: number
}

/** An expanded flow sample (format 3) with the given records. */
export function expandedFlowSample(
  records: readonly { format: number; body: Xdr }[],
  o: ExpandedFlowSampleOptions = {},
): { format: number; body: Xdr } {
  const body = xdr()
    .u32(7)
    .u32(0)
    .u32(1234)
    .u32(o.samplingRate ?? 2048)
    .u32(100000)
    .u32(0)
    .u32(o.inFormat ?? 0)
    .u32(o.inValue ?? 70000)
    .u32(o.outFormat ?? 0)
    .u32(o.outValue ?? 80000)
    .u32(records.length)
  for (const r of records) body.tagged(r.format, r.body)
  return { format: 3, body }
}

export const sampledHeader = (protocol: number, frameLength: number, header: Uint8Array, stripped = 4): { format: number; body: Xdr } => ({
  format: 1,
  body: xdr().u32(protocol).u32(frameLength).u32(stripped).u32(header.length).opaque(header),
})

/** The counters of one sample: the message's fields the datagram itself carries. */
export type GenericInterfaceCounters = Omit<InterfaceCounters, 'exporterAddress' | 'agentAddress' | 'subAgentId' | 'timeReceived' | 'sequenceNumber'>

export const genericInterface = (c: GenericInterfaceCounters): { format: number; body: Xdr } => ({
  format: 1,
  body: xdr()
    .u32(c.ifIndex)
    .u32(c.ifType)
    .u64(c.ifSpeed)
    .u32(c.ifDirection)
    .u32(c.ifStatus)
    .u64(c.inOctets)
    .u32(c.inUnicastPackets)
    .u32(c.inMulticastPackets)
    .u32(c.inBroadcastPackets)
    .u32(c.inDiscards)
    .u32(c.inErrors)
    .u32(c.inUnknownProtocols)
    .u64(c.outOctets)
    .u32(c.outUnicastPackets)
    .u32(c.outMulticastPackets)
    .u32(c.outBroadcastPackets)
    .u32(c.outDiscards)
    .u32(c.outErrors)
    .u32(c.promiscuousMode),
})

/** A counter sample, compact (format 2) or expanded (format 4). */
export function counterSample(
  records: readonly { format: number; body: Xdr }[],
  expanded = false,
  sequenceNumber = 9,
): { format: number; body: Xdr } {
  const body = xdr().u32(sequenceNumber)
  if (expanded) body.u32(0).u32(5)
  else body.u32(5)
  body.u32(records.length)
  for (const r of records) body.tagged(r.format, r.body)
  return { format: expanded ? 4 : 2, body }
}
