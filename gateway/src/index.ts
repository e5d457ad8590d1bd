// Public surface of @flowbus/gateway: the actor, its schema and server, and the query engine
// (tests, the benchmark and tools drive them directly).
export { gateway, gatewayAddresses } from './actor.js'
export { GatewayConfig } from './config.js'
export { ANONYMOUS, type User, authenticate } from './auth.js'
export { akvoradoFilters, type FilterLanguage } from './filter-language.js'
export { parsePrometheusText, readHealth, summariseHealth } from './health.js'
export { EventQueue, LiveHub } from './live.js'
export { makeDimensionCatalogue } from './query/dimensions.js'
export { makeQueryEngine, percentile, previousPeriodOffset, seriesStats, type QueryEngine } from './query/engine.js'
export { QueryInputError } from './query/errors.js'
export { makeQueryRunner } from './query/runner.js'
export { chooseTable } from './query/tables.js'
export { GRAPHQL_PATH, buildSchema, createGatewayServer } from './server.js'
