// Public surface of the sFlow v5 decoder: datagrams into flow rows and interface counters.
// The sampled-header parser it uses is in ../packet.
export { decodeSflow, type SflowDatagramHeader } from './decode.js'
export { discardStatus, FORWARDED, DROPPED_UNKNOWN } from './forwarding.js'
