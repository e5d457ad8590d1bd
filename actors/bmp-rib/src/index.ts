// Public surface of @flowbus/bmp-rib: the actor, its configuration, and the pure parts (BMP and
// BGP decoders, the collector state machine, the RIB) that tests and benchmarks use alone.
export { bmpRibActor } from './actor.js'
export { BmpRibConfig } from './config.js'
export * from './bgp/update.js'
export * from './bmp/messages.js'
export { BmpCollector, BmpSession, BmpSessionError, CollectorTally, type CollectorOptions } from './bmp/collector.js'
export { AttributeTable, Interned, type AttributeSet } from './rib/attributes.js'
export { Rib, type PeerInfo, type RouteChoice } from './rib/rib.js'
export { LookupAnswerer } from './lookup.js'
export { listenBmp, type BmpListener } from './listener.js'
