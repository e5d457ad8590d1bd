// Groups received datagrams into flows.raw messages, one pending message per listener and exporter,
// closed by size here and by the actor's flush timer; plain code, called once per datagram.
import { exporterPartitionKey, FlowProtocol, parseIP, sniffProtocol, type RawPacket, type RawPacketBatch } from '@flowbus/bus-schemas'

/** A message ready for the bus: the partition key is the exporter address in text form. */
export interface ClosedBatch {
  readonly key: string
  readonly batch: RawPacketBatch
  readonly bytes: number
}

/** Counts of one exporter on one listener since the last `takeCounts`. */
export interface ExporterCounts {
  readonly listener: string
  readonly exporter: string
  packets: number
  bytes: number
  unknownProtocol: number
}

export interface ExporterState {
  readonly key: string
  readonly address: Uint8Array
  readonly counts: ExporterCounts
  packets: RawPacket[]
  bytes: number
  lastSeenMs: number
}

export interface BatcherOptions {
  /** Identity written in every message (`receiver` field), e.g. `host/listener`. */
  readonly receiverName: (listener: string) => string
  readonly maxPackets: number
  readonly maxBytes: number
  /** Called with each closed message; must not block (it queues). */
  readonly emit: (closed: ClosedBatch) => void
}

/**
 * Exporters are kept by listener and source address text as Node reports it, so the address is
 * parsed once per exporter, not once per datagram. Datagrams of an unknown protocol are counted
 * per exporter and not published: no decoder could read them.
 */
export class PacketBatcher {
  /** Exporters by listener, then by source address text. */
  private readonly listeners = new Map<string, Map<string, ExporterState>>()
  private readonly names = new Map<string, string>()
  private lastMs = 0
  private lastNs = 0n

  constructor(private readonly options: BatcherOptions) {}

  /** The exporters of one listener; a socket keeps it, so the per-datagram lookup is by address only. */
  exportersOf(listener: string): Map<string, ExporterState> {
    let exporters = this.listeners.get(listener)
    if (exporters === undefined) this.listeners.set(listener, (exporters = new Map()))
    return exporters
  }

  /** Takes one datagram; `payload` is kept by reference (Node gives each datagram its own buffer). */
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
    state.counts.packets++
    state.counts.bytes += payload.length
    const protocol = sniffProtocol(payload)
    if (protocol === FlowProtocol.UNKNOWN) {
      state.counts.unknownProtocol++
      return
    }
    state.packets.push({
      exporterAddress: state.address,
      exporterPort: sourcePort,
      receivedNs: this.receivedNs(nowMs),
      protocol,
      payload,
    })
    state.bytes += payload.length
    if (state.packets.length >= this.options.maxPackets || state.bytes >= this.options.maxBytes) this.close(state, listener)
  }

  /** Closes every pending message (timer tick, shutdown). */
  flush(): void {
    for (const exporters of this.listeners.values()) {
      for (const state of exporters.values()) if (state.packets.length > 0) this.close(state, state.counts.listener)
    }
  }

  /** Counts of every exporter that received something since the last call, then resets them. */
  takeCounts(visit: (counts: ExporterCounts) => void): void {
    for (const state of this.allExporters()) {
      const c = state.counts
      if (c.packets === 0) continue
      visit(c)
      c.packets = c.bytes = c.unknownProtocol = 0
    }
  }

  /** Forgets exporters idle since `beforeMs`, so spoofed or departed sources do not pile up. */
  forgetIdle(beforeMs: number): void {
    for (const exporters of this.listeners.values()) {
      for (const [source, state] of exporters) {
        if (state.lastSeenMs < beforeMs && state.packets.length === 0 && state.counts.packets === 0) exporters.delete(source)
      }
    }
  }

  get exporterCount(): number {
    let n = 0
    for (const exporters of this.listeners.values()) n += exporters.size
    return n
  }

  private *allExporters(): Generator<ExporterState> {
    for (const exporters of this.listeners.values()) yield* exporters.values()
  }

  /** Milliseconds as nanoseconds, converted once per millisecond rather than once per datagram. */
  private receivedNs(nowMs: number): bigint {
    if (nowMs !== this.lastMs) {
      this.lastMs = nowMs
      this.lastNs = BigInt(nowMs) * 1_000_000n
    }
    return this.lastNs
  }

  private newExporter(exporters: Map<string, ExporterState>, listener: string, sourceAddress: string): ExporterState {
    // Link-local sources come with a zone (`fe80::1%eth0`) that is not part of the address.
    const zone = sourceAddress.indexOf('%')
    const address = parseIP(zone < 0 ? sourceAddress : sourceAddress.slice(0, zone))
    const key = exporterPartitionKey(address)
    const state: ExporterState = {
      key,
      address,
      counts: { listener, exporter: key, packets: 0, bytes: 0, unknownProtocol: 0 },
      packets: [],
      bytes: 0,
      lastSeenMs: 0,
    }
    exporters.set(sourceAddress, state)
    return state
  }

  private close(state: ExporterState, listener: string): void {
    let receiver = this.names.get(listener)
    if (receiver === undefined) this.names.set(listener, (receiver = this.options.receiverName(listener)))
    const closed: ClosedBatch = { key: state.key, batch: { receiver, packets: state.packets }, bytes: state.bytes }
    state.packets = []
    state.bytes = 0
    this.options.emit(closed)
  }
}
