// Public surface of @flowbus/decoder: the actor, the decode loop shared with `flowbus decode`,
// the protocol contract, and the pure protocol decoders (NetFlow/IPFIX, sFlow, sampled frames).
export * from './protocol.js'
export { decoderActor, optionsRecord, optionsSnapshot, optionsStateKey, templateFingerprint } from './actor.js'
export { DecoderConfig } from './config.js'
export {
  FlowDecoder,
  decodeDatagrams,
  protocolName,
  type DecodedOutput,
  type DecodeObserver,
  type FlowSource,
  type FlowDecoderOptions,
  type LoopErrorReason,
  type ProtocolDecoder,
  type ProtocolDecoders,
  type ProtocolName,
  type SequencePoint,
} from './dispatch.js'
export { DecodeTally, makeDecoderMetrics, type DecoderMetrics } from './metrics.js'
export { createDecoder, type DecoderSetup, type DecoderSetupOptions } from './protocols.js'
export { FlowRateLimiter, scaleSamplingRate } from './rate-limit.js'
export { SequenceTracker, type SequenceVerdict, type SequenceTrackerOptions } from './sequence.js'
export {
  TemplateDecoder,
  decodeNetflowV5,
  type ExportHeader,
  type InterfaceNames,
  type OptionsSnapshot,
  type TemplateChange,
  type TemplateDecoderOptions,
} from './netflow/index.js'
export { DROPPED_UNKNOWN, FORWARDED, decodeSflow, discardStatus, type SflowDatagramHeader } from './sflow/index.js'
export { ETHERTYPE_IPV4, ETHERTYPE_IPV6, FrameStatus, parseFrame, type FirstLayer, type FrameFacts } from './packet/index.js'
