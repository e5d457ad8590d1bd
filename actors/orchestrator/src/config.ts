// The orchestrator's section: where ClickHouse servers fetch dictionaries from, AS name
// overrides, and how often migrations are retried while ClickHouse is unreachable.
import { Duration } from '@flowbus/runtime'
import { Schema } from 'effect'

export const OrchestratorConfig = Schema.Struct({
  dictionaryURL: Schema.optionalWith(Schema.String, { default: () => '' }).annotations({
    description:
      'base URL of this orchestrator as a ClickHouse server reaches it (e.g. http://orchestrator:8080): dictionaries then load ' +
      'from /api/v0/clickhouse/*.csv over HTTP; empty: from tables the orchestrator fills (works embedded and on servers)',
  }),
  asNames: Schema.optionalWith(
    Schema.Record({
      key: Schema.String.pipe(Schema.pattern(/^\d+$/, { message: () => 'AS numbers are decimal integers (e.g. 64512)' })),
      value: Schema.String,
    }),
    { default: () => ({}) },
  ).annotations({ description: 'AS names replacing or adding to the shipped list, e.g. { 64512: "private" }' }),
  migrationRetry: Schema.optionalWith(Duration, { default: () => 5_000 }).annotations({
    description: 'wait between migration attempts while ClickHouse is unreachable or failing',
  }),
})
export type OrchestratorConfig = Schema.Schema.Type<typeof OrchestratorConfig>
