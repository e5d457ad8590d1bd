// Groups received datagrams into flows.raw messages already in RawPacketBatch wire form, one pending
// buffer per listener and exporter, so a finished message is one ArrayBuffer to hand to another thread.
import { exporterPartitionKey, FlowProtocol, parseIP, sniffProtocol, varintSize, writeVarint } from '@flowbus/bus-schemas'

/** A message ready for the bus: RawPacketBatch bytes `[0, length)` of `buffer`, owned by the receiver of it. */
export interface WireBatch {
  /** Partition key: the exporter address in text form. */
  readonly key: string
  readonly buffer: ArrayBuffer
  readonly length: number
  readonly packets: number
}

/** Counts of one exporter on one listener since the last `takeCounts`. */
export interface ExporterCounts {
  readonly listener: string
  readonly exporter: string
  packets: number
  bytes: number
  unknownProtocol: number
}

interface ExporterState {
  readonly key: string
  readonly address: Uint8Array
  readonly header: Uint8Array
  readonly counts: ExporterCounts
  /** Pending message; empty (length 0) until the exporter's next datagram. */
  buffer: Uint8Array
  position: number
  /** Size of the exporter's last message: the next buffer is sized after it. */
  lastLength: number
  packets: number
  payloadBytes: number
  lastSeenMs: number
}

export interface WireBatcherOptions {
  /** Identity written in every message (`receiver` field), e.g. `host/listener`. */
  readonly receiverName: (listener: string) => string
  readonly maxPackets: number
  readonly maxBytes: number
  /** Called with each closed message; the batcher keeps no reference to its buffer. */
  readonly emit: (batch: WireBatch) => void
}

// RawPacketBatch field 2 (packets), RawPacket fields 1 (address), 2 (port), 3 (time), 4 (protocol), 5 (payload).
const TAG_RECEIVER = 0x0a
const TAG_PACKET = 0x12
const TAG_ADDRESS = 0x0a
const TAG_PORT = 0x10
const TAG_TIME = 0x19
const TAG_PROTOCOL = 0x20
const TAG_PAYLOAD = 0x2a
/**
 * A new pending buffer is sized after the exporter's last message plus one largest datagram, at
 * most this (an exporter whose messages close on the timer gets small ones: fewer fresh pages to
 * zero per second), and grows by doubling when a message outgrows it.
 */
const MAX_INITIAL_CAPACITY = 320 * 1024
const LARGEST_DATAGRAM = 65_536
const TWO_32 = 4294967296

/**
 * Exporters are kept by listener and source address text as Node reports it, so the address is
 * parsed once per exporter. Each datagram is copied once, into its exporter's pending message,
 * already encoded; nothing per datagram stays on the heap. Unknown protocols are only counted.
 */
export class WireBatcher {
  private readonly listeners = new Map<string, Map<string, ExporterState>>()
  private readonly headers = new Map<string, Uint8Array>()
  private lastMs = -1
  private timeLow = 0
  private timeHigh = 0

  constructor(private readonly options: WireBatcherOptions) {}

  /** The exporters of one listener; a socket keeps it, so the per-datagram lookup is by address only. */
  exportersOf(listener: string): Map<string, ExporterState> {
    let exporters = this.listeners.get(listener)
    if (exporters === undefined) this.listeners.set(listener, (exporters = new Map()))
    return exporters
  }

  /** Takes one datagram; the payload is copied, so Node's buffer can go. */
  datagram(listener: string, sourceAddress: string, sourcePort: number, payload: Uint8Array, nowMs: number): void {
    this.datagramOf(this.exportersOf(listener), listener, sourceAddress, sourcePort, payload, nowMs)
  }

  /** `datagram` for a caller holding its listener's exporters (the socket callback). */
  datagramOf(
    exporters: Map<string, ExporterState>,
    listener: string,
    sourceAddress: string,
    sourcePort: number,
    payload: Uint8Array,
    nowMs: number,
  ): void {
    let state = exporters.get(sourceAddress)
    if (state === undefined) state = this.newExporter(exporters, listener, sourceAddress)
    state.lastSeenMs = nowMs
    const length = payload.length
    state.counts.packets++
    state.counts.bytes += length
    const protocol = sniffProtocol(payload)
    if (protocol === FlowProtocol.UNKNOWN) {
      state.counts.unknownProtocol++
      return
    }
    if (nowMs !== this.lastMs) this.setTime(nowMs)
    const body =
      18 + (sourcePort === 0 ? 0 : 1 + varintSize(sourcePort)) + 9 + 2 + (length === 0 ? 0 : 1 + varintSize(length) + length)
    let out = state.buffer
    const needed = state.position + 1 + varintSize(body) + body
    if (needed > out.length) out = this.grow(state, needed)
    let pos = state.position
    out[pos++] = TAG_PACKET
    pos = writeVarint(out, pos, body)
    out[pos++] = TAG_ADDRESS
    out[pos++] = 16
    out.set(state.address, pos)
    pos += 16
    if (sourcePort !== 0) {
      out[pos++] = TAG_PORT
      pos = writeVarint(out, pos, sourcePort)
    }
    out[pos++] = TAG_TIME
    writeUint32LE(out, pos, this.timeLow)
    writeUint32LE(out, pos + 4, this.timeHigh)
    pos += 8
    out[pos++] = TAG_PROTOCOL
    out[pos++] = protocol
    if (length > 0) {
      out[pos++] = TAG_PAYLOAD
      pos = writeVarint(out, pos, length)
      out.set(payload, pos)
      pos += length
    }
    state.position = pos
    state.packets++
    state.payloadBytes += length
    if (state.packets >= this.options.maxPackets || state.payloadBytes >= this.options.maxBytes) this.close(state)
  }

  /** Closes every pending message (timer tick, shutdown). */
  flush(): void {
    for (const exporters of this.listeners.values()) {
      for (const state of exporters.values()) if (state.packets > 0) this.close(state)
    }
  }

  /** Counts of every exporter that received something since the last call, then resets them. */
  takeCounts(visit: (counts: ExporterCounts) => void): void {
    for (const exporters of this.listeners.values()) {
      for (const state of exporters.values()) {
        const c = state.counts
        if (c.packets === 0) continue
        visit(c)
        c.packets = c.bytes = c.unknownProtocol = 0
      }
    }
  }

  /** Forgets exporters idle since `beforeMs`, so spoofed or departed sources do not pile up. */
  forgetIdle(beforeMs: number): void {
    for (const exporters of this.listeners.values()) {
      for (const [source, state] of exporters) {
        if (state.lastSeenMs < beforeMs && state.packets === 0 && state.counts.packets === 0) exporters.delete(source)
      }
    }
  }

  get exporterCount(): number {
    let n = 0
    for (const exporters of this.listeners.values()) n += exporters.size
    return n
  }

  /** Receive time as fixed64 nanoseconds, split exactly (ms × 10⁶ exceeds 2⁵³), once per millisecond. */
  private setTime(nowMs: number): void {
    this.lastMs = nowMs
    const highMs = Math.floor(nowMs / TWO_32)
    const low = (nowMs - highMs * TWO_32) * 1_000_000
    const carry = Math.floor(low / TWO_32)
    this.timeLow = low - carry * TWO_32
    this.timeHigh = highMs * 1_000_000 + carry
  }

  /** A new pending buffer, or a larger copy of the current one, with the message header written. */
  private grow(state: ExporterState, needed: number): Uint8Array {
    const start = state.position === 0
    let capacity = start
      ? Math.min(MAX_INITIAL_CAPACITY, state.header.length + LARGEST_DATAGRAM + Math.ceil(state.lastLength * 1.25))
      : state.buffer.length * 2
    while (capacity < needed + (start ? state.header.length : 0)) capacity *= 2
    const out = new Uint8Array(capacity)
    if (start) {
      out.set(state.header)
      state.position = state.header.length
    } else out.set(state.buffer.subarray(0, state.position))
    state.buffer = out
    return out
  }

  private newExporter(exporters: Map<string, ExporterState>, listener: string, sourceAddress: string): ExporterState {
    // Link-local sources come with a zone (`fe80::1%eth0`) that is not part of the address.
    const zone = sourceAddress.indexOf('%')
    const address = parseIP(zone < 0 ? sourceAddress : sourceAddress.slice(0, zone))
    const key = exporterPartitionKey(address)
    const state: ExporterState = {
      key,
      address,
      header: this.headerOf(listener),
      counts: { listener, exporter: key, packets: 0, bytes: 0, unknownProtocol: 0 },
      buffer: EMPTY,
      position: 0,
      lastLength: 0,
      packets: 0,
      payloadBytes: 0,
      lastSeenMs: 0,
    }
    exporters.set(sourceAddress, state)
    return state
  }

  /** The `receiver` field, encoded once per listener. */
  private headerOf(listener: string): Uint8Array {
    let header = this.headers.get(listener)
    if (header === undefined) {
      const name = new TextEncoder().encode(this.options.receiverName(listener))
      header = new Uint8Array(1 + varintSize(name.length) + name.length)
      header[0] = TAG_RECEIVER
      header.set(name, writeVarint(header, 1, name.length))
      this.headers.set(listener, header)
    }
    return header
  }

  private close(state: ExporterState): void {
    const batch: WireBatch = { key: state.key, buffer: state.buffer.buffer as ArrayBuffer, length: state.position, packets: state.packets }
    state.lastLength = state.position
    state.buffer = EMPTY
    state.position = 0
    state.packets = 0
    state.payloadBytes = 0
    this.options.emit(batch)
  }
}

const EMPTY = new Uint8Array(0)

function writeUint32LE(out: Uint8Array, pos: number, n: number): void {
  out[pos] = n & 0xff
  out[pos + 1] = (n >>> 8) & 0xff
  out[pos + 2] = (n >>> 16) & 0xff
  out[pos + 3] = (n >>> 24) & 0xff
}
