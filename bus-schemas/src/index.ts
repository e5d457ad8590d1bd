// Public surface of @flowbus/bus-schemas: subject types and catalogue, message types and codecs,
// the columnar FlowBatch, and the address helpers every actor shares.

export * from './subject.js'
export * from './subjects.js'
export * from './flow-columns.js'
export { FlowBatch, splitHalves, type ListData, type StorageOf } from './flow-batch.js'
export { encodeFlowBatch, decodeFlowBatch, flowBatchCodec, FLOW_BATCH_TYPE, MAX_FLOWS_PER_BATCH } from './flow-batch-codec.js'
export { flowBatchToRows, type FlowRow, type FlowRowsOptions } from './flow-rows.js'
export { renderFlowBatchProto } from './flow-proto.js'
export * from './raw-packets.js'
export * from './generated/flowbus.js'
export * from './proto-codecs.js'
export * from './keys.js'
export * from './ip.js'
export { WireFormatError, varintSize, writeVarint } from './wire.js'
