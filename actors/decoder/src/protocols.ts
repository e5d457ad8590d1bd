// Binds the protocol decoders (netflow/, sflow/) to the decode loop: one decoder per sniffed
// protocol, sequence points from their headers, and the NetFlow v9/IPFIX template state.
import { FlowProtocol, formatIP } from '@flowbus/bus-schemas'
import { type DecodeObserver, FlowDecoder, type ProtocolDecoder, type ProtocolDecoders, type SequencePoint } from './dispatch.js'
import { type ExportHeader, type TemplateChange, TemplateDecoder, decodeNetflowV5 } from './netflow/index.js'
import { decodeSflow } from './sflow/index.js'

/**
 * What each protocol's sequence number counts, as a SequencePoint: NetFlow v5 flow_sequence
 * counts flows (per engine type/id), v9 counts export packets (per source id), IPFIX counts data
 * records (per observation domain). Streams are numbers (no string per datagram), the protocol
 * in the bits above the 32-bit id so v9 and IPFIX domains of one exporter stay apart.
 */
const netflowPoint = (h: ExportHeader | undefined): SequencePoint | undefined => {
  if (h === undefined) return undefined
  switch (h.protocol) {
    case FlowProtocol.NETFLOW_V5:
      return { stream: h.observationDomainId, sequence: h.sequenceNumber, units: h.dataRecords }
    case FlowProtocol.NETFLOW_V9:
      return { stream: 0x1_0000_0000 + h.observationDomainId, sequence: h.sequenceNumber, units: 1 }
    case FlowProtocol.IPFIX:
      return { stream: 0x2_0000_0000 + h.observationDomainId, sequence: h.sequenceNumber, units: h.dataRecords }
    default:
      return undefined
  }
}

export interface DecoderSetupOptions {
  readonly observer: DecodeObserver
  readonly maxFlowsPerBatch?: number
  /** Per-exporter flow rate limit, flows/s; 0 disables it. */
  readonly rateLimit?: number
  /** How long data waits for its template, ms. */
  readonly holdMs?: number
  /** Data sets held for templates at most, all exporters together. */
  readonly maxHeld?: number
  /** Hears every template learnt from a packet, changed, re-announced or withdrawn. */
  readonly onTemplate?: (change: TemplateChange) => void
}

/** The decode loop of one process with every protocol decoder, and its NetFlow v9/IPFIX template state. */
export interface DecoderSetup {
  readonly decoder: FlowDecoder
  readonly templates: TemplateDecoder
}

export const createDecoder = (options: DecoderSetupOptions): DecoderSetup => {
  // The template decoder writes late flows (held data released by a template from the bus,
  // expiries) through the loop, which is built after it.
  let decoder: FlowDecoder | undefined
  const templates = new TemplateDecoder({
    lateSink: (address, port) => decoder!.lateSink(address, port),
    ...(options.onTemplate ? { onTemplate: options.onTemplate } : {}),
    ...(options.holdMs !== undefined ? { holdMs: options.holdMs } : {}),
    ...(options.maxHeld !== undefined ? { maxHeld: options.maxHeld } : {}),
  })
  const templated: ProtocolDecoder = { decode: (d, sink) => netflowPoint(templates.decode(d, sink)) }
  const decoders: ProtocolDecoders = {
    [FlowProtocol.NETFLOW_V5]: { decode: (d, sink) => netflowPoint(decodeNetflowV5(d, sink)) },
    [FlowProtocol.NETFLOW_V9]: templated,
    [FlowProtocol.IPFIX]: templated,
    [FlowProtocol.SFLOW_V5]: {
      decode: (d, sink) => {
        const h = decodeSflow(d, sink)
        return h === undefined ? undefined : { stream: `agent ${formatIP(h.agentAddress)}/${h.subAgentId}`, sequence: h.sequenceNumber, units: 1 }
      },
    },
  }
  decoder = new FlowDecoder({
    decoders,
    observer: options.observer,
    ...(options.maxFlowsPerBatch !== undefined ? { maxFlowsPerBatch: options.maxFlowsPerBatch } : {}),
    ...(options.rateLimit !== undefined ? { rateLimit: options.rateLimit } : {}),
  })
  return { decoder, templates }
}
