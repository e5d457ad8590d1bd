// Public surface of the sampled-packet header parser, shared by sFlow sampled headers and
// IPFIX dataLinkFrameSection (IE 315).
export { parseFrame, parseFrameInto, FrameStatus, ETHERTYPE_IPV4, ETHERTYPE_IPV6, type FirstLayer, type FrameFacts } from './frame.js'
export { FlowColumnArrays } from './columns.js'
export { readU16, readU32, readU64, readMAC, copyIPv4Mapped, copyIPv6 } from './bytes.js'
