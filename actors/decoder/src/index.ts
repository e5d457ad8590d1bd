// Public surface of @flowbus/decoder: the actor, the decode loop shared with `flowbus decode`,
// and the protocol contract the NetFlow/IPFIX/sFlow decoders implement.
export * from './protocol.js'
export { decoderActor, templateFingerprint } from './actor.js'
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
