// The ClickHouse connection every storage user shares: @clickhouse/client over the in-process
// chDB engine (embedded, loaded only when used) or over HTTP(S) to a ClickHouse server.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import {
  type ClickHouseClient,
  type ClickHouseClientConfigOptions as ClientOptions,
  ClickHouseLogLevel,
  createClient,
} from '@clickhouse/client'
import { Context, Effect, Option, Schema, type Scope } from 'effect'
import { type ClickHouseConfig, ClickHouseSection, SharedSections } from '../config/sections.js'

/** A ClickHouse problem a person can act on: the message names the server or data path. */
export class ClickHouseUnavailable extends Error {
  readonly _tag = 'ClickHouseUnavailable'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ClickHouseUnavailable'
  }
}

// Failures reach callers as errors and are logged there with context; the client's own log would repeat them.
const quiet = { level: ClickHouseLogLevel.OFF }

// chDB binds one data directory per process: remember which one, and how many clients use it.
let embedded: { path: string; clients: number } | undefined

const openEmbedded = async (config: ClickHouseConfig): Promise<ClickHouseClient> => {
  const path = resolve(config.path)
  if (embedded && embedded.path !== path) {
    throw new ClickHouseUnavailable(
      `clickhouse.path ${path} cannot be opened: this process already runs the embedded engine on ${embedded.path} ` +
        '(chDB allows one data directory per process; give every actor of the process the same clickhouse section)',
    )
  }
  // The engine is a 500 MB library: processes in server mode never load it.
  const { createChdbConnection } = await import('chdb/connection')
  const connection = createChdbConnection({ path })
  embedded = { path, clients: (embedded?.clients ?? 0) + 1 }
  // chdb types the connection against @clickhouse/client-common, the client against its own copy
  // of the same interface: identical shapes, distinct declarations.
  const client = createClient({ connection: connection as unknown as NonNullable<ClientOptions['connection']>, request_timeout: config.requestTimeout, log: quiet })
  const close = client.close.bind(client)
  let closed = false
  // Releasing the slot once every client closed lets a later client (tests) choose another path.
  Object.defineProperty(client, 'close', {
    value: async () => {
      if (closed) return
      closed = true
      try {
        await close()
      } finally {
        if (embedded && --embedded.clients === 0) embedded = undefined
      }
    },
  })
  return client
}

const readPem = (key: string, file: string): Buffer => {
  try {
    return readFileSync(file)
  } catch (cause) {
    throw new ClickHouseUnavailable(`clickhouse.tls.${key} ${file}: ${(cause as Error).message}`, { cause })
  }
}

const openServer = (config: ClickHouseConfig): ClickHouseClient => {
  let url: URL
  try {
    url = new URL(config.url)
  } catch {
    throw new ClickHouseUnavailable(`clickhouse.url "${config.url}" is not a URL (e.g. http://127.0.0.1:8123)`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClickHouseUnavailable(`clickhouse.url "${config.url}" must be http:// or https:// (the HTTP interface, port 8123 or 8443)`)
  }
  const { ca, cert, key } = config.tls
  if ((cert === undefined) !== (key === undefined)) {
    throw new ClickHouseUnavailable('clickhouse.tls.cert and clickhouse.tls.key go together (mutual TLS)')
  }
  const tls =
    ca === undefined
      ? undefined
      : cert !== undefined && key !== undefined
        ? { ca_cert: readPem('ca', ca), cert: readPem('cert', cert), key: readPem('key', key) }
        : { ca_cert: readPem('ca', ca) }
  return createClient({
    url: config.url,
    username: config.username,
    password: config.password ?? '',
    request_timeout: config.requestTimeout,
    log: quiet,
    ...(tls ? { tls } : {}),
    // An error late in a long statement then comes back as an HTTP error, not after a 200 header.
    clickhouse_settings: { wait_end_of_query: 1 },
  })
}

/**
 * A @clickhouse/client for the configured ClickHouse. Embedded mode shares the process's one
 * chDB engine (a second, different path in the same process is an error naming both).
 * Opening does not connect: the first request does, and fails with the URL or path in its message.
 */
export const openClickHouse = async (config: ClickHouseConfig): Promise<ClickHouseClient> =>
  config.mode === 'embedded' ? openEmbedded(config) : openServer(config)

/** Where the configured ClickHouse is, for messages: the URL or the data path. */
export const describeClickHouse = (config: ClickHouseConfig): string =>
  config.mode === 'embedded' ? `embedded ClickHouse at ${resolve(config.path)}` : `ClickHouse server ${config.url}`

/**
 * Rewrites a failed request's error so it says which ClickHouse refused (client errors such as
 * ECONNREFUSED name neither the URL nor the mode).
 */
export const clickHouseError = (config: ClickHouseConfig, what: string, cause: unknown): ClickHouseUnavailable => {
  if (cause instanceof ClickHouseUnavailable) return cause
  // The socket error may sit under a wrapper (a migration step naming itself, the client's own).
  let refused = false
  for (let e = cause as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === 'ECONNREFUSED') refused = true
  }
  const message = cause instanceof Error ? cause.message : String(cause)
  const reason = refused ? `connection refused (is the server running and clickhouse.url right?): ${message}` : message
  return new ClickHouseUnavailable(`${what} on ${describeClickHouse(config)}: ${reason}`, { cause })
}

/** The client, open for the scope's lifetime. */
export class ClickHouse extends Context.Tag('flowbus/ClickHouse')<ClickHouse, ClickHouseClient>() {}

/** Opens the client for the enclosing scope and closes it when the scope ends. */
export const clickHouseScoped = (config: ClickHouseConfig): Effect.Effect<ClickHouseClient, ClickHouseUnavailable, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => openClickHouse(config), catch: (cause) => clickHouseError(config, 'opening', cause) }),
    (client) => Effect.promise(() => client.close().catch(() => undefined)),
  )

/** A table name qualified with the configured database, quoted for SQL. */
export const qualifiedTable = (config: Pick<ClickHouseConfig, 'database'>, table: string): string =>
  `\`${config.database}\`.\`${table}\``

/**
 * The shared `clickhouse` section, for an actor's start. The kernel hands actors only their own
 * section; the shared ones come from the SharedSections service when the process provides it,
 * else the defaults (embedded engine under ./data/clickhouse), with a warning.
 */
export const clickHouseSection: Effect.Effect<ClickHouseConfig> = Effect.flatMap(Effect.serviceOption(SharedSections), (shared) =>
  Option.isSome(shared)
    ? Effect.succeed(shared.value.clickhouse)
    : Effect.as(
        Effect.logWarning('this process does not pass the shared sections to actors: using the default clickhouse section'),
        Schema.decodeUnknownSync(ClickHouseSection)({}),
      ),
)
