// What every protocol decoder shares: the datagram it reads, where it writes flows and counter
// samples, and how it reports errors. Protocol code is pure: no bus, no Effect, no I/O.
import type { FlowBatch, InterfaceCounters } from '@flowbus/bus-schemas'

/** One export datagram and where it came from. */
export interface Datagram {
  /** Exporter address, 16 bytes (IPv4 as IPv4-mapped IPv6), the datagram's source IP. */
  readonly exporterAddress: Uint8Array
  /** Exporter UDP source port: NetFlow v9/IPFIX templates are scoped by it. */
  readonly exporterPort: number
  /** When the collector received the datagram, seconds since the Unix epoch (TimeReceived). */
  readonly timeReceived: number
  readonly payload: Uint8Array
}

/**
 * Why a datagram, or part of one, could not be decoded. Errors are counted per exporter and
 * reason by the decoder actor; a decoder never throws on bad input.
 */
export type DecodeErrorReason =
  | 'truncated' // shorter than its headers or lengths say
  | 'bad-version' // not a version this decoder handles
  | 'bad-length' // a length field is impossible (zero, past the end, below the minimum)
  | 'bad-template' // a template or options template that cannot be right (field count, lengths)
  | 'missing-template' // data whose template never arrived (reported when held data expires or overflows)
  | 'template-limit' // too many templates for one exporter/domain: the new one is ignored
  | 'bad-record' // a record or sample that cannot be parsed; the datagram's other records are kept
  | 'bad-frame' // a sampled packet header that cannot be parsed past some layer (fields up to there are kept)

/** Where a decoder writes: flows into a columnar batch, counter samples into a list, errors to a counter. */
export interface DecodeSink {
  readonly flows: FlowBatch
  /** sFlow counter samples (generic interface counters). */
  readonly counters: InterfaceCounters[]
  /** Counts one error of the datagram being decoded; `detail` is for debug logs only. */
  error(reason: DecodeErrorReason, detail?: string): void
}
