// Public surface of @flowbus/receiver: the actor, its configuration, and the pure pieces the CLI,
// tests and benchmarks reuse (batching, /proc/net/udp parsing).
export { receiverActor, receiverEndpoints, type ReceiverEndpoint } from './actor.js'
export { ReceiverConfig, ListenerConfig, parseListenAddress, type ListenAddress } from './config.js'
export { PacketBatcher, type ClosedBatch, type ExporterCounts } from './batcher.js'
export { parseProcNetUdp, readUdpDrops, type UdpSocketEntry } from './proc-net-udp.js'
export { nodeHasReusePort } from './sockets.js'
