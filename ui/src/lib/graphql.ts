// The console's only way to the gateway: queries and mutations over HTTP POST to /graphql (same
// origin), subscriptions over graphql-ws as rxjs Observables (which Svelte reads as stores).
import { createClient, type Client } from 'graphql-ws'
import { BehaviorSubject, Observable, share } from 'rxjs'

export const GRAPHQL_PATH = '/graphql'

/** A GraphQL error the gateway answered, with its extensions.code (BAD_FILTER, QUERY_TOO_COSTLY…). */
export class GatewayError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message)
  }
  /** The gateway could not be reached at all (network error, 502/503 from a proxy). */
  get unreachable(): boolean {
    return this.code === 'GATEWAY_DOWN'
  }
  /** The query asked more than the gateway's limits allow. */
  get tooLarge(): boolean {
    return ['RANGE_TOO_LONG', 'TOO_MANY_POINTS', 'LIMIT_TOO_HIGH', 'QUERY_TOO_COSTLY', 'QUERY_TOO_DEEP', 'QUERY_TIMEOUT'].includes(this.code)
  }
}

/** Whether the last request reached the gateway: the layout shows a banner when it did not. */
export const gatewayStatus = new BehaviorSubject<'up' | 'down'>('up')

// The gateway refuses more than gateway.limits.maxConcurrentQueries (default 4) ClickHouse queries
// per user at once, and the embedded engine runs one at a time anyway: requests wait their turn
// here, one at a time, and the pages keep each request to a few ClickHouse-backed fields.
let queue: Promise<unknown> = Promise.resolve()

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A query or mutation. `immediate` skips the queue, for requests that never reach ClickHouse
 * (filterValidate). A refusal for too many concurrent queries (another tab of the same user) is
 * retried a few times with backoff.
 */
export function gql<T>(query: string, variables: Record<string, unknown> = {}, signal?: AbortSignal, immediate = false): Promise<T> {
  const run = async () => {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted()
      try {
        return await request<T>(query, variables, signal)
      } catch (error) {
        if (!(error instanceof GatewayError) || error.code !== 'TOO_MANY_CONCURRENT_QUERIES' || attempt >= 4) throw error
        await pause(250 * 2 ** attempt)
      }
    }
  }
  if (immediate) return run()
  const turn = queue.then(run, run)
  queue = turn.catch(() => undefined)
  return turn
}

async function request<T>(query: string, variables: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
  let response: Response
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      body: JSON.stringify({ query, variables }),
      signal,
    })
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error
    gatewayStatus.next('down')
    throw new GatewayError(`the gateway at ${location.origin}${GRAPHQL_PATH} cannot be reached`, 'GATEWAY_DOWN')
  }
  if (response.status === 502 || response.status === 503 || response.status === 504) {
    gatewayStatus.next('down')
    throw new GatewayError(`the gateway answered HTTP ${response.status}`, 'GATEWAY_DOWN')
  }
  gatewayStatus.next('up')
  const body = (await response.json().catch(() => null)) as { data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] } | null
  if (!body) throw new GatewayError(`the gateway answered HTTP ${response.status} without a GraphQL body`, 'INTERNAL')
  const first = body.errors?.[0]
  if (first) throw new GatewayError(first.message, String(first.extensions?.code ?? 'INTERNAL'), first.extensions ?? {})
  return body.data as T
}

let client: Client | undefined
const wsClient = (): Client => {
  client ??= createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${GRAPHQL_PATH}`,
    lazy: true,
    retryAttempts: Infinity,
    // Reconnects after a gateway restart without a page reload, backing off to 10 s.
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** retries))),
    shouldRetry: () => true,
    on: {
      connected: () => gatewayStatus.next('up'),
      closed: (event) => {
        if ((event as CloseEvent | undefined)?.code !== 1000) gatewayStatus.next('down')
      },
    },
  })
  return client
}

/** A GraphQL subscription as a cold Observable: subscribing opens it, unsubscribing completes it. */
export function subscription<T>(query: string, variables: Record<string, unknown> = {}): Observable<T> {
  return new Observable<T>((observer) =>
    wsClient().subscribe<T>(
      { query, variables },
      {
        next: (result) => {
          const first = result.errors?.[0]
          if (first) observer.error(new GatewayError(first.message, String(first.extensions?.code ?? 'INTERNAL'), first.extensions ?? {}))
          else if (result.data) observer.next(result.data as T)
        },
        error: (error) => observer.error(error instanceof Error ? error : new GatewayError('the live connection failed', 'GATEWAY_DOWN')),
        complete: () => observer.complete(),
      },
    ),
  ).pipe(share())
}
