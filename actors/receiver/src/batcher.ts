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

interface ExporterState {
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
  private readonly exporters = new Map<string, ExporterState>()
  private readonly names = new Map<string, string>()

  constructor(private readonly options: BatcherOptions) {}

  /** Takes one datagram; `payload` is kept by reference (Node gives each datagram its own buffer). */
  datagram(listener: string, sourceAddress: string, sourcePort: number, payload: Uint8Array, nowMs: number): void {
    const id = `${listener}|${sourceAddress}`
    let state = this.exporters.get(id)
    if (state === undefined) state = this.newExporter(id, listener, sourceAddress)
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
      receivedNs: BigInt(nowMs) * 1_000_000n,
      protocol,
      payload,
    })
    state.bytes += payload.length
    if (state.packets.length >= this.options.maxPackets || state.bytes >= this.options.maxBytes) this.close(state, listener)
  }

  /** Closes every pending message (timer tick, shutdown). */
  flush(): void {
    for (const state of this.exporters.values()) if (state.packets.length > 0) this.close(state, state.counts.listener)
  }

  /** Counts of every exporter that received something since the last call, then resets them. */
  takeCounts(visit: (counts: ExporterCounts) => void): void {
    for (const state of this.exporters.values()) {
      const c = state.counts
      if (c.packets === 0) continue
      visit(c)
      c.packets = c.bytes = c.unknownProtocol = 0
    }
  }

  /** Forgets exporters idle since `beforeMs`, so spoofed or departed sources do not pile up. */
  forgetIdle(beforeMs: number): void {
    for (const [id, state] of this.exporters) {
      if (state.lastSeenMs < beforeMs && state.packets.length === 0 && state.counts.packets === 0) this.exporters.delete(id)
    }
  }

  get exporterCount(): number {
    return this.exporters.size
  }

  private newExporter(id: string, listener: string, sourceAddress: string): ExporterState {
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
    this.exporters.set(id, state)
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
