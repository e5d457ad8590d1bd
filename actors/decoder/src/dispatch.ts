// The decode loop shared by the decoder actor and `flowbus decode`: datagrams in, flow batches
// (one series per exporter, split to bus-sized messages) and counter samples out, every outcome counted.
import {
  FlowBatch,
  FlowProtocol,
  type InterfaceCounters,
  type RawPacket,
  formatIP,
  isIPv4Mapped,
} from '@flowbus/bus-schemas'
import type { Datagram, DecodeErrorReason, DecodeSink } from './protocol.js'
import { FlowRateLimiter, scaleSamplingRate } from './rate-limit.js'
import { SequenceTracker, type SequenceVerdict } from './sequence.js'

/** Protocol label of metrics and CLI summaries. */
export type ProtocolName = 'netflow-v5' | 'netflow-v9' | 'ipfix' | 'sflow-v5' | 'unknown'

/** Protocol label of flows decoded from held data once its template came from the bus. */
export type FlowSource = ProtocolName | 'late'

export const protocolName = (protocol: FlowProtocol): ProtocolName => {
  switch (protocol) {
    case FlowProtocol.NETFLOW_V5:
      return 'netflow-v5'
    case FlowProtocol.NETFLOW_V9:
      return 'netflow-v9'
    case FlowProtocol.IPFIX:
      return 'ipfix'
    case FlowProtocol.SFLOW_V5:
      return 'sflow-v5'
    default:
      return 'unknown'
  }
}

/**
 * Where a datagram sits in its export stream: `stream` names the sequence space within the
 * exporter (NetFlow v5 engine, v9 source id, IPFIX observation domain, sFlow agent/sub-agent),
 * `units` is how many units of that space's sequence the datagram carries.
 */
export interface SequencePoint {
  readonly stream: string | number
  readonly sequence: number
  readonly units: number
}

/** One protocol's decoder as the loop drives it; it writes flows to the sink and never throws on bad input. */
export interface ProtocolDecoder {
  decode(datagram: Datagram, sink: DecodeSink): SequencePoint | undefined
}

export type ProtocolDecoders = Partial<Record<FlowProtocol, ProtocolDecoder>>

/** Errors the loop itself reports besides the decoders' own reasons. */
export type LoopErrorReason = DecodeErrorReason | 'exception'

/** Receives every outcome of the loop: the actor turns them into metrics, the CLI into a summary. */
export interface DecodeObserver {
  packet(exporter: string, protocol: ProtocolName): void
  flows(exporter: string, protocol: FlowSource, count: number): void
  error(exporter: string, protocol: ProtocolName, reason: LoopErrorReason, detail: string | undefined): void
  sequence(exporter: string, protocol: ProtocolName, verdict: SequenceVerdict): void
  /** Flows the rate limit dropped (their weight went to kept flows). */
  rateLimited(exporter: string, count: number): void
  counterSamples(exporter: string, count: number): void
  /** Called at the end of each loop call, so an observer may sum per call and publish once. */
  flush?(): void
}

/** What one call of the loop produced, grouped by exporter (the bus partition key). */
export interface DecodedOutput {
  /** Flow batches in decode order; an exporter's flows may span several batches. */
  readonly flows: { readonly exporter: string; readonly batch: FlowBatch }[]
  readonly counters: { readonly exporter: string; readonly counters: InterfaceCounters[] }[]
}

export interface FlowDecoderOptions {
  readonly decoders: ProtocolDecoders
  readonly observer: DecodeObserver
  /** A batch is closed once it holds this many flows (a datagram is never split). */
  readonly maxFlowsPerBatch?: number
  /** Per-exporter flow rate limit, flows/s; 0 (default) disables it. */
  readonly rateLimit?: number
}

/** What the loop keeps per exporter address and port: its name in text and its sequence streams. */
interface ExporterEntry {
  readonly name: string
  readonly sequences: SequenceTracker
}

/** Exporter address/port pairs remembered at most; beyond, the oldest is forgotten (its sequences start over). */
const MAX_EXPORTERS = 65536

const NO_STREAM = { exporter: '', protocol: 'unknown' as ProtocolName }

/**
 * The decoding state of one process (sequence expectations, rate-limit windows; template state
 * lives in the protocol decoders) and the loop over datagrams. Not reentrant: one loop at a time.
 */
export class FlowDecoder {
  readonly #decoders: ProtocolDecoders
  readonly #observer: DecodeObserver
  readonly #maxFlows: number
  readonly #exporters = new Map<number | string, ExporterEntry>()
  readonly #rateLimiter: FlowRateLimiter
  /** Rate-limited datagrams decode here first, then kept rows are copied out. */
  readonly #scratch = new FlowBatch(256)
  #output = new OutputCollector(1)
  /** Late sinks handed out during the current call: their new rows are counted when it ends. */
  readonly #late = new Map<FlowBatch, { exporter: string; before: number }>()
  /** Exporter and protocol of the datagram being decoded, for sink errors. */
  #current = NO_STREAM
  readonly #sink: DecodeSink & { flows: FlowBatch; counters: InterfaceCounters[] }

  constructor(options: FlowDecoderOptions) {
    this.#decoders = options.decoders
    this.#observer = options.observer
    this.#maxFlows = options.maxFlowsPerBatch ?? 2000
    this.#rateLimiter = new FlowRateLimiter(options.rateLimit ?? 0)
    const self = this
    this.#sink = {
      flows: this.#scratch,
      counters: [],
      error(reason, detail) {
        self.#observer.error(self.#current.exporter, self.#current.protocol, reason, detail)
      },
    }
  }

  /** Decodes every datagram in order; a bad datagram is counted and never stops the others. */
  decode(packets: Iterable<RawPacket>): DecodedOutput {
    // Batches start at a size guessed from the datagrams (≥ 32 bytes per flow record in NetFlow
    // and IPFIX, more in sFlow): a small raw batch does not allocate columns for hundreds of rows.
    let bytes = 0
    if (Array.isArray(packets)) for (const packet of packets as RawPacket[]) bytes += packet.payload.length
    else bytes = Number.POSITIVE_INFINITY
    this.#output = new OutputCollector(this.#maxFlows, Math.ceil(bytes / 32) + 16)
    for (const packet of packets) this.#decodeOne(packet)
    return this.#take()
  }

  /**
   * A sink for flows and errors of `exporter` that come outside its own datagram's decode: data
   * held for a template and released when the template comes from the bus, held data expiring.
   * Its flows go to batches of their own (not rate limited), published with the call's output.
   */
  lateSink(exporterAddress: Uint8Array, _exporterPort: number): DecodeSink {
    const exporter = formatIP(exporterAddress)
    const batch = this.#output.batchFor(exporter, true)
    // The first hand-out of a batch in this call counts for all: later sinks write to the same rows.
    if (!this.#late.has(batch)) this.#late.set(batch, { exporter, before: batch.count })
    const observer = this.#observer
    const protocol = this.#current.protocol
    return {
      flows: batch,
      counters: [],
      error: (reason, detail) => observer.error(exporter, protocol, reason, detail),
    }
  }

  /**
   * Runs `work` outside any datagram (a template loaded from the bus releasing held data, held
   * data expiring) and returns the flows it wrote through late sinks. `protocol` labels its errors.
   */
  runOutside(protocol: FlowProtocol, work: () => void): DecodedOutput {
    this.#output = new OutputCollector(this.#maxFlows, 64)
    this.#current = { exporter: '', protocol: protocolName(protocol) }
    try {
      work()
    } catch (error) {
      this.#observer.error('', this.#current.protocol, 'exception', error instanceof Error ? error.message : String(error))
    }
    this.#current = NO_STREAM
    return this.#take()
  }

  /** Forgets the rate-limit state of exporters silent for five minutes (call now and then). */
  forgetIdle(nowSeconds: number): void {
    this.#rateLimiter.forgetIdle(nowSeconds)
  }

  #take(): DecodedOutput {
    for (const [batch, { exporter, before }] of this.#late) {
      if (batch.count > before) this.#observer.flows(exporter, 'late', batch.count - before)
    }
    this.#late.clear()
    this.#observer.flush?.()
    const output = this.#output.take()
    this.#output = new OutputCollector(1)
    return output
  }

  /** The exporter's entry; IPv4 exporters are found by a number, without formatting their address. */
  #exporter(address: Uint8Array, port: number): ExporterEntry {
    const key = isIPv4Mapped(address)
      ? (address[12]! * 0x100_0000 + ((address[13]! << 16) | (address[14]! << 8) | address[15]!)) * 65536 + port
      : `${formatIP(address)}|${port}`
    let entry = this.#exporters.get(key)
    if (entry === undefined) {
      entry = { name: formatIP(address), sequences: new SequenceTracker({ maxStreams: 4096 }) }
      this.#exporters.set(key, entry)
      if (this.#exporters.size > MAX_EXPORTERS) this.#exporters.delete(this.#exporters.keys().next().value!)
    }
    return entry
  }

  #decodeOne(packet: RawPacket): void {
    const entry = this.#exporter(packet.exporterAddress, packet.exporterPort)
    const exporter = entry.name
    const protocol = protocolName(packet.protocol)
    this.#observer.packet(exporter, protocol)
    const decoder = this.#decoders[packet.protocol]
    if (decoder === undefined) {
      this.#observer.error(exporter, protocol, 'bad-version', `no decoder for protocol ${packet.protocol}`)
      return
    }
    this.#current = { exporter, protocol }
    // Seconds from nanoseconds through a double: exact to well under a microsecond, and far
    // cheaper than BigInt division on every datagram.
    const timeReceived = Math.floor(Number(packet.receivedNs) / 1e9)
    const datagram: Datagram = {
      exporterAddress: packet.exporterAddress,
      exporterPort: packet.exporterPort,
      timeReceived,
      payload: packet.payload,
    }
    const limited = this.#rateLimiter.enabled
    const target = limited ? this.#scratch : this.#output.batchFor(exporter)
    if (limited) target.clear()
    const before = target.count
    const sink = this.#sink
    sink.flows = target
    let point: SequencePoint | undefined
    try {
      point = decoder.decode(datagram, sink)
    } catch (error) {
      // A decoder bug must not take the other datagrams down: count it and carry on.
      this.#observer.error(exporter, protocol, 'exception', error instanceof Error ? error.message : String(error))
    }
    this.#current = NO_STREAM
    const produced = target.count - before
    if (produced > 0) {
      this.#observer.flows(exporter, protocol, produced)
      if (limited) this.#keepLimited(exporter, timeReceived)
      else this.#output.grew(exporter)
    }
    if (sink.counters.length > 0) {
      this.#observer.counterSamples(exporter, sink.counters.length)
      this.#output.addCounters(exporter, sink.counters)
      sink.counters.length = 0
    }
    if (point !== undefined) {
      this.#observer.sequence(exporter, protocol, entry.sequences.observe(point.stream, point.sequence, point.units))
    }
  }

  #keepLimited(exporter: string, second: number): void {
    const scratch = this.#scratch
    const out = this.#output.batchFor(exporter)
    let dropped = 0
    for (let r = 0; r < scratch.count; r++) {
      const multiplier = this.#rateLimiter.admit(exporter, second)
      if (multiplier === 0) {
        dropped++
        continue
      }
      const row = out.appendRowFrom(scratch, r)
      if (multiplier !== 1) {
        const rates = out.u32('SamplingRate')
        rates[row] = scaleSamplingRate(rates[row]!, multiplier)
      }
    }
    if (dropped > 0) this.#observer.rateLimited(exporter, dropped)
    this.#output.grew(exporter)
  }
}

/** Shorthand for `decoder.decode(packets)`: the one decode loop of the actor and the CLI. */
export const decodeDatagrams = (decoder: FlowDecoder, packets: Iterable<RawPacket>): DecodedOutput => decoder.decode(packets)

/** Per-exporter batches being filled, closed at the size limit, in the order they were opened. */
class OutputCollector {
  readonly #maxFlows: number
  readonly #capacity: number
  readonly #open = new Map<string, FlowBatch>()
  readonly #flows: { exporter: string; batch: FlowBatch }[] = []
  readonly #counters = new Map<string, InterfaceCounters[]>()

  /** `expectedFlows` sizes new batches; they are never smaller than needed to go past the limit once. */
  constructor(maxFlows: number, expectedFlows = Number.POSITIVE_INFINITY) {
    this.#maxFlows = maxFlows
    // Room for the datagram that crosses the limit, so a full batch is not reallocated.
    this.#capacity = Math.min(maxFlows + 128, expectedFlows)
  }

  /** The exporter's open batch; late flows get batches of their own, so they can be told apart. */
  batchFor(exporter: string, late = false): FlowBatch {
    const key = late ? `late ${exporter}` : exporter
    let batch = this.#open.get(key)
    if (batch !== undefined && late && batch.count >= this.#maxFlows) {
      this.#open.delete(key)
      batch = undefined
    }
    if (batch === undefined) {
      batch = new FlowBatch(this.#capacity)
      this.#open.set(key, batch)
      this.#flows.push({ exporter, batch })
    }
    return batch
  }

  /** After a datagram's flows were added: close the exporter's batch once it is full. */
  grew(exporter: string): void {
    const batch = this.#open.get(exporter)
    if (batch !== undefined && batch.count >= this.#maxFlows) this.#open.delete(exporter)
  }

  addCounters(exporter: string, counters: InterfaceCounters[]): void {
    const list = this.#counters.get(exporter)
    if (list === undefined) this.#counters.set(exporter, [...counters])
    else list.push(...counters)
  }

  take(): DecodedOutput {
    return {
      flows: this.#flows.filter((f) => f.batch.count > 0),
      counters: [...this.#counters].map(([exporter, counters]) => ({ exporter, counters })),
    }
  }
}
