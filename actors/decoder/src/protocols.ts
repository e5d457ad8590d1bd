// Binds the protocol decoders (netflow/, sflow/) to the decode loop: one decoder per sniffed
// protocol, the NetFlow v9/IPFIX template state, and the hold of data awaiting templates.
import type { TemplateRecord } from '@flowbus/bus-schemas'
import type { ProtocolDecoders } from './dispatch.js'
import type { DecodeSink } from './protocol.js'

/** What the template state tells its owner (the actor stores templates on the bus, counts holds). */
export interface TemplateEvents {
  /** A template was learnt from a packet, or changed. */
  learnt(record: TemplateRecord): void
  /** An exporter withdrew a template. */
  withdrawn(record: TemplateRecord): void
}

export interface ProtocolSetOptions {
  /** Data held for a missing template is given up after this long. */
  readonly holdMaxAgeMs: number
  /** Datagrams held at most, all exporters together. */
  readonly holdMaxDatagrams: number
  readonly events?: TemplateEvents
}

export interface HoldStats {
  /** Datagrams held right now. */
  readonly held: number
  /** Since start: datagrams held, decoded once their template came, expired, dropped for room. */
  readonly totals: { readonly held: number; readonly decoded: number; readonly expired: number; readonly overflow: number }
}

/** The decoders of one process, with their shared template state. */
export interface ProtocolSet {
  readonly decoders: ProtocolDecoders
  /**
   * Takes in a template from the bucket (another decoder learnt it); data held for it is decoded
   * into `sink`. Returns false when the record is not a template this set can use.
   */
  loadTemplate(record: TemplateRecord, sink: DecodeSink): boolean
  withdrawTemplate(record: TemplateRecord): void
  /** Gives up held data older than the hold's age; each expiry is a `missing-template` error. */
  expireHeld(nowMs: number, sink: DecodeSink): void
  readonly templateCount: number
  holdStats(): HoldStats
}

export const makeProtocolSet = (_options: ProtocolSetOptions): ProtocolSet => ({
  decoders: {},
  loadTemplate: () => false,
  withdrawTemplate: () => {},
  expireHeld: () => {},
  templateCount: 0,
  holdStats: () => ({ held: 0, totals: { held: 0, decoded: 0, expired: 0, overflow: 0 } }),
})
