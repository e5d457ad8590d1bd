// Public surface of the NetFlow v5, NetFlow v9 and IPFIX decoders (pure code, no I/O).
// The decoder actor builds one TemplateDecoder per shard and calls decodeNetflowV5 for v5.
export { decodeNetflowV5 } from './v5.js'
export { TemplateDecoder, type TemplateDecoderOptions, type TemplateChange, type ExportHeader, type OptionsSnapshot } from './template-decoder.js'
export { type InterfaceNames } from './plan.js'
