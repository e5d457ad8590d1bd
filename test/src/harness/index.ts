// The test harness: real servers started as child processes on loopback for cross-actor tests.
// One module per server; process.ts holds the plumbing they share.
export * from './process.js'
export * from './nats.js'
export * from './kafka.js'
export * from './exporters.js'
export * from './metrics.js'
export * from './graphql.js'
export * from './testdata.js'
export * from './snmpd.js'
export * from './gobgp.js'
