// Public surface of @flowbus/receiver: the actor, its configuration, and the pure pieces the CLI,
// tests and benchmarks reuse (batching into RawPacketBatch bytes, /proc/net/udp parsing).
export { receiverActor, receiverEndpoints, receiverSocketThreads, type ReceiverEndpoint } from './actor.js'
export { ReceiverConfig, ListenerConfig, parseListenAddress, type ListenAddress } from './config.js'
export { WireBatcher, type WireBatch, type ExporterCounts } from './wire-batcher.js'
export { parseProcNetUdp, readUdpDrops, type UdpSocketEntry } from './proc-net-udp.js'
export { nodeHasReusePort } from './sockets.js'
