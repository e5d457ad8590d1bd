// Public surface of @flowbus/snmp-poller: the actor and its config, plus the pure parts (agent
// table, breaker, cache, one poll) for tests and tools.
export { makeSnmpPollerActor, snmpPollerActor } from './actor.js'
export { AgentTable, type AgentSettings } from './agents.js'
export { CircuitBreaker, breakerStateValue, type BreakerOptions, type BreakerState } from './breaker.js'
export { MetadataCache, exporterInfo, type CacheOptions, type CacheStats, type Completion, type DemandResult } from './cache.js'
export { AgentConfig, BreakerConfig, SnmpPollerConfig, configProblem } from './config.js'
export { makeSnmpPollerMetrics, observeCache, type SnmpPollerMetrics } from './metrics.js'
export {
  SnmpFailure,
  netSnmpClient,
  type AuthProtocol,
  type PrivProtocol,
  type SnmpClient,
  type SnmpFailureReason,
  type SnmpTarget,
  type SnmpV3User,
  type SnmpValue,
} from './net-snmp.js'
export { OID, pollExporter, pollOids, readPoll, type PolledInterface, type PollOptions, type PollPlan, type PollResult } from './poll.js'
