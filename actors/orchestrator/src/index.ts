// Public surface of @flowbus/orchestrator: the actor, its migrations and endpoints (for tests and tools).
export { orchestrator, dictionarySourceOf } from './actor.js'
export { asNames, asNamesFromRanges, asNamesVersion } from './asns.js'
export { OrchestratorConfig } from './config.js'
export { csvField, parseCsvLine, renderCsv } from './csv.js'
export { type DictionaryData, type DictionaryName, makeDictionaryData } from './dictionaries.js'
export { API_PREFIX, clickHouseEndpoints, initScript } from './endpoints.js'
export { type MigrationOptions, type MigrationReport, type MigrationStep, migrationSteps, runMigrations, showCreateAll } from './migrations.js'
