// Public surface of @flowbus/clickhouse-writer: the actor, and the pure encoders its benchmark
// and tests drive directly.
export { clickhouseWriter, FlowsRefused } from './actor.js'
export { WriterConfig } from './config.js'
export { NativeEncoder } from './encode/native.js'
export { encodeRows, type RowFormat } from './encode/rows.js'
export { planColumns, type ColumnPlan, type InsertColumn, UnsupportedColumn } from './encode/plan.js'
export { clickHouseCode, isRejectedData } from './errors.js'
export { embeddedInserter, serverInserter, type BlockInserter } from './inserter.js'
export { FlowWriter, blockHash, type HeldMessage, type WriterEvents } from './writer.js'
