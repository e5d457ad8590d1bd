// The gateway section: where GraphQL is served, who may ask (auth), how much a query may cost
// (limits), the live subscriptions' per-client queue, and where health metrics come from.
import { Duration } from '@flowbus/runtime'
import { Schema } from 'effect'

const positiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())

/** One static bearer token and the user it stands for. */
const TokenEntry = Schema.Struct({
  token: Schema.String.pipe(Schema.minLength(16, { message: () => 'a bearer token needs at least 16 characters' })),
  user: Schema.String.pipe(Schema.minLength(1)),
  name: Schema.optional(Schema.String),
  email: Schema.optional(Schema.String),
})

export const AuthSection = Schema.Struct({
  mode: Schema.optionalWith(Schema.Literal('off', 'tokens', 'proxy'), { default: () => 'off' as const }).annotations({
    description:
      'off: everyone is the user "anonymous" (embedded default, keep the listener on localhost); tokens: `Authorization: Bearer <token>` from `tokens`; proxy: user, name and email from headers a trusted reverse proxy sets',
  }),
  tokens: Schema.optionalWith(Schema.Array(TokenEntry), { default: () => [] }).annotations({
    description: 'tokens mode: accepted bearer tokens, each with its user (and optional name, email)',
  }),
  userHeader: Schema.optionalWith(Schema.String, { default: () => 'remote-user' }).annotations({
    description: 'proxy mode: header holding the user login (requests without it are refused)',
  }),
  nameHeader: Schema.optionalWith(Schema.String, { default: () => 'remote-name' }),
  emailHeader: Schema.optionalWith(Schema.String, { default: () => 'remote-email' }),
})

export const LimitsSection = Schema.Struct({
  maxDepth: Schema.optionalWith(positiveInt, { default: () => 10 }).annotations({ description: 'deepest field nesting a query may have' }),
  maxCost: Schema.optionalWith(positiveInt, { default: () => 1000 }).annotations({
    description: 'largest estimated cost of one request (each ClickHouse-backed field costs 10, times its series or rows asked; see docs/gateway.md)',
  }),
  maxPoints: Schema.optionalWith(positiveInt, { default: () => 2000 }).annotations({ description: 'most points a time series may ask for' }),
  maxRange: Schema.optionalWith(Duration, { default: () => 366 * 86_400_000 }).annotations({ description: 'longest time range a query may cover' }),
  maxLimit: Schema.optionalWith(positiveInt, { default: () => 1000 }).annotations({ description: 'most series, top-N rows or flows one query may ask for' }),
  queryTimeout: Schema.optionalWith(Duration, { default: () => 30_000 }).annotations({
    description: 'a ClickHouse query running longer is cancelled and the request fails',
  }),
  maxConcurrentQueries: Schema.optionalWith(positiveInt, { default: () => 4 }).annotations({
    description: 'ClickHouse queries one user may have running at once; more are refused, not queued',
  }),
})

export const LiveSection = Schema.Struct({
  queueLength: Schema.optionalWith(positiveInt, { default: () => 64 }).annotations({
    description: 'events waiting for one subscriber, at most: a slower client loses the oldest and is told how many',
  }),
  maxFlowsPerEvent: Schema.optionalWith(positiveInt, { default: () => 500 }).annotations({
    description: 'liveFlows: most flows sent in one event (the rest of a bus batch counts as dropped)',
  }),
})

export const GatewayConfig = Schema.Struct({
  listen: Schema.optionalWith(Schema.String, { default: () => '127.0.0.1:8081' }).annotations({
    description: 'host:port serving GraphQL at /graphql (HTTP, SSE and WebSocket)',
  }),
  graphiql: Schema.optionalWith(Schema.Boolean, { default: () => true }).annotations({
    description: 'serve the GraphiQL IDE to browsers at /graphql',
  }),
  introspection: Schema.optionalWith(Schema.Boolean, { default: () => true }).annotations({
    description: 'answer schema introspection queries (GraphiQL and code generators need it)',
  }),
  auth: Schema.optionalWith(AuthSection, { default: () => Schema.decodeUnknownSync(AuthSection)({}) }),
  limits: Schema.optionalWith(LimitsSection, { default: () => Schema.decodeUnknownSync(LimitsSection)({}) }),
  live: Schema.optionalWith(LiveSection, { default: () => Schema.decodeUnknownSync(LiveSection)({}) }),
  metricsURLs: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }).annotations({
    description:
      'multi-process deployments: /metrics URLs of the receivers, decoders and writers, scraped for the `health` query (this process\'s own metrics are always read)',
  }),
})
export type GatewayConfig = Schema.Schema.Type<typeof GatewayConfig>
