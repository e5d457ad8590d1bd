// Runs the gateway's read queries on ClickHouse: parameters always travel apart from the SQL,
// each query has a time limit and is cancelled when its client goes away, and each user may
// have only so many running at once.
import { randomUUID } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
import { QueryInputError } from './errors.js'

export interface QueryOptions {
  /** Who asks: counts against that user's concurrent queries. */
  readonly user: string
  /** Aborted when the client disconnects or the request ends. */
  readonly signal?: AbortSignal | undefined
  /** What the query is for, in errors and metrics (e.g. "timeseries"). */
  readonly purpose: string
}

export interface QueryEvents {
  readonly finished: (purpose: string, outcome: 'ok' | 'error' | 'timeout' | 'cancelled' | 'refused', seconds: number) => void
}

export interface QueryRunner {
  readonly rows: <T = Record<string, unknown>>(sql: string, params: Readonly<Record<string, unknown>>, options: QueryOptions) => Promise<T[]>
  /** Database holding the flowbus tables, already backquoted: `flowbus`. */
  readonly database: string
  /** Queries running now, per user (tests and metrics). */
  readonly running: (user: string) => number
}

export interface RunnerSettings {
  readonly database: string
  readonly timeoutMs: number
  readonly maxConcurrentPerUser: number
  /** Server mode: ClickHouse stops a query whose HTTP connection closed. Embedded: the engine finishes it. */
  readonly server: boolean
}

// ClickHouse error codes for a query over its time limit and a cancelled one.
const TIMEOUT_CODES = new Set(['159', '160'])
const CANCELLED_CODE = '394'

const codeOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' ? code : typeof code === 'number' ? String(code) : undefined
}

export const makeQueryRunner = (client: ClickHouseClient, settings: RunnerSettings, events?: QueryEvents): QueryRunner => {
  const runningByUser = new Map<string, number>()
  const timeoutSeconds = Math.max(1, Math.ceil(settings.timeoutMs / 1000))
  return {
    database: `\`${settings.database}\``,
    running: (user) => runningByUser.get(user) ?? 0,
    rows: async <T>(sql: string, params: Readonly<Record<string, unknown>>, options: QueryOptions): Promise<T[]> => {
      const running = runningByUser.get(options.user) ?? 0
      if (running >= settings.maxConcurrentPerUser) {
        events?.finished(options.purpose, 'refused', 0)
        throw new QueryInputError(
          `user ${options.user} already has ${running} queries running (gateway.limits.maxConcurrentQueries = ${settings.maxConcurrentPerUser}); wait for one to finish`,
          'TOO_MANY_CONCURRENT_QUERIES',
        )
      }
      if (options.signal?.aborted) throw new QueryInputError(`${options.purpose}: the client went away`, 'QUERY_CANCELLED')
      runningByUser.set(options.user, running + 1)
      const started = performance.now()
      // Our own deadline too: the engine in embedded mode cannot be interrupted from outside.
      const deadline = new AbortController()
      const timer = setTimeout(() => deadline.abort(), settings.timeoutMs + 1000)
      const signals = [deadline.signal, ...(options.signal ? [options.signal] : [])]
      const signal = signals.length === 1 ? deadline.signal : anySignal(signals)
      const seconds = () => (performance.now() - started) / 1000
      try {
        const queryId = randomUUID()
        const answer = (async () => {
          const result = await client.query({
            // Settings in the statement: chDB applies clickhouse_settings as session SETs that
            // would outlive this query and reach the writer sharing the engine.
            query: `${sql}\nSETTINGS max_execution_time = ${timeoutSeconds}, output_format_json_quote_64bit_integers = 0`,
            query_params: params as Record<string, unknown>,
            format: 'JSONEachRow',
            query_id: queryId,
            abort_signal: signal,
            ...(settings.server ? { clickhouse_settings: { readonly: '2', cancel_http_readonly_queries_on_client_close: 1 } } : {}),
          })
          return result.json<T>()
        })()
        // The engine in embedded mode does not stop on the abort signal: answer the client at
        // once and ask the engine to kill the query (a server also stops it as the connection closes).
        const rows = await new Promise<T[]>((resolve, reject) => {
          const abandon = () => {
            reject(new Error('aborted'))
            client
              .command({ query: 'KILL QUERY WHERE query_id = {id:String} ASYNC', query_params: { id: queryId } })
              .catch(() => undefined)
          }
          if (signal.aborted) return abandon()
          signal.addEventListener('abort', abandon, { once: true })
          answer.then(resolve, reject).finally(() => signal.removeEventListener('abort', abandon))
        })
        answer.catch(() => undefined)
        events?.finished(options.purpose, 'ok', seconds())
        return rows
      } catch (error) {
        if (options.signal?.aborted) {
          events?.finished(options.purpose, 'cancelled', seconds())
          throw new QueryInputError(`${options.purpose}: cancelled, the client went away`, 'QUERY_CANCELLED')
        }
        const code = codeOf(error)
        if (deadline.signal.aborted || (code !== undefined && TIMEOUT_CODES.has(code))) {
          events?.finished(options.purpose, 'timeout', seconds())
          throw new QueryInputError(
            `${options.purpose}: ClickHouse did not answer within gateway.limits.queryTimeout (${settings.timeoutMs} ms); narrow the range or the filter`,
            'QUERY_TIMEOUT',
          )
        }
        events?.finished(options.purpose, code === CANCELLED_CODE ? 'cancelled' : 'error', seconds())
        throw error
      } finally {
        clearTimeout(timer)
        const now = (runningByUser.get(options.user) ?? 1) - 1
        if (now <= 0) runningByUser.delete(options.user)
        else runningByUser.set(options.user, now)
      }
    },
  }
}

/** AbortSignal.any exists from Node 20.3; this covers older 20.x too. */
const anySignal = (signals: readonly AbortSignal[]): AbortSignal => {
  const any = (AbortSignal as unknown as { any?: (s: readonly AbortSignal[]) => AbortSignal }).any
  if (any) return any(signals)
  const controller = new AbortController()
  for (const s of signals) {
    if (s.aborted) controller.abort()
    else s.addEventListener('abort', () => controller.abort(), { once: true })
  }
  return controller.signal
}
