// The routing client: one routing.lookup request per exporter of a batch, with a timeout; when
// nobody answers (no bmp-rib running, timeouts) lookups pause with a doubling backoff so batches
// are not slowed by a request that will fail anyway. Never fails: a skipped lookup is counted.
import { type FlowBatch, type RouteInfo, type RoutingLookupRequest, type RoutingLookupResponse, routingLookup } from '@flowbus/bus-schemas'
import type { BusService } from '@flowbus/runtime'
import { Effect } from 'effect'
import type { RoutingColumns } from '../stages.js'
import { type RoutesApplied, type RoutingPlan, RoutingScratch, applyRoutes, planLookups } from './lookup.js'

export type RoutingOutcome = 'ok' | 'timeout' | 'no-responders' | 'malformed' | 'error' | 'backoff' | 'disabled'

export interface RoutingClientOptions {
  readonly enabled: boolean
  readonly timeoutMs: number
  readonly backoffMinMs: number
  readonly backoffMaxMs: number
  readonly setNextHop: boolean
  /** Look source addresses up too (for SrcAS / SrcNetMask from routing). */
  readonly sources: boolean
}

/** The lookup on the bus, or anything answering the same way (tests). */
export type RoutingLookupFn = (request: RoutingLookupRequest, timeoutMs: number) => Effect.Effect<RoutingLookupResponse, { readonly _tag: string }>

export const busRoutingLookup =
  (bus: BusService): RoutingLookupFn =>
  (request, timeoutMs) =>
    bus.request(routingLookup, request, timeoutMs)

const NO_ROUTE = { found: false } as RouteInfo

/**
 * One route per address: from distinct routes and their indexes (what a bmp-rib answers to a
 * request with sharedRoutes), or as sent by a responder that predates them. Undefined when an
 * index points past the distinct routes.
 */
const routesPerAddress = (response: RoutingLookupResponse): readonly RouteInfo[] | undefined => {
  if (response.routeIndex.length === 0) return response.routes
  const routes = new Array<RouteInfo>(response.routeIndex.length)
  for (let i = 0; i < routes.length; i++) {
    const index = response.routeIndex[i]!
    if (index > response.distinctRoutes.length) return undefined
    routes[i] = index === 0 ? NO_ROUTE : response.distinctRoutes[index - 1]!
  }
  return routes
}

/** What a batch's lookup gave: columns for the AS stage, or undefined when skipped. */
export interface RoutingAnswer {
  readonly columns: RoutingColumns
  readonly applied: RoutesApplied
}

export class RoutingClient {
  /** Requests by outcome; `backoff` and `disabled` count batches that were not looked up. */
  readonly outcomes: Record<RoutingOutcome, number> = { ok: 0, timeout: 0, 'no-responders': 0, malformed: 0, error: 0, backoff: 0, disabled: 0 }
  readonly addresses = { found: 0, notFound: 0 }
  #pausedUntil = 0
  #backoffMs: number

  constructor(
    private readonly lookup: RoutingLookupFn,
    private readonly options: RoutingClientOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.#backoffMs = options.backoffMinMs
  }

  /** Whether lookups are paused after failures (until when, ms since the epoch). */
  get pausedUntil(): number {
    return this.#pausedUntil
  }

  #failed(outcome: RoutingOutcome): void {
    this.outcomes[outcome]++
    this.#pausedUntil = this.now() + this.#backoffMs
    this.#backoffMs = Math.min(this.options.backoffMaxMs, this.#backoffMs * 2)
  }

  /**
   * Looks up the batch's addresses and writes the destination routes into it (see applyRoutes).
   * The answer's columns are reused by the next call: hand them to the AS stage before that.
   */
  enrich(batch: FlowBatch, rows: number, fallbackExporter: Uint8Array): Effect.Effect<RoutingAnswer | undefined> {
    return Effect.suspend(() => {
      if (!this.options.enabled) {
        this.outcomes.disabled++
        return Effect.succeed(undefined)
      }
      if (this.now() < this.#pausedUntil) {
        this.outcomes.backoff++
        return Effect.succeed(undefined)
      }
      const plans = planLookups(batch, rows, fallbackExporter, this.options.sources).filter((p) => p.count > 0)
      if (plans.length === 0) return Effect.succeed(undefined)
      return Effect.forEach(plans, (plan) => this.#ask(plan)).pipe(
        Effect.map((answers) => {
          const complete = answers.filter((a): a is { plan: RoutingPlan; routes: readonly RouteInfo[] } => a !== undefined)
          if (complete.length === 0) return undefined
          // Fresh columns per batch: another shard's batch may be looked up before this one is enriched.
          const columns = new RoutingScratch().reset(rows)
          const applied = applyRoutes(batch, rows, complete, columns, this.options.setNextHop)
          this.addresses.found += applied.found
          this.addresses.notFound += applied.notFound
          return { columns, applied }
        }),
      )
    })
  }

  #ask(plan: RoutingPlan): Effect.Effect<{ plan: RoutingPlan; routes: readonly RouteInfo[] } | undefined> {
    return this.lookup(plan.request, this.options.timeoutMs).pipe(
      Effect.map((response) => {
        const routes = routesPerAddress(response)
        if (routes === undefined || routes.length !== plan.count) {
          // A responder answering another question (or a buggy one) must not shift routes between rows.
          this.outcomes.malformed++
          return undefined
        }
        this.outcomes.ok++
        this.#backoffMs = this.options.backoffMinMs
        return { plan, routes }
      }),
      Effect.catchAll((error) => {
        const outcome: RoutingOutcome =
          error._tag === 'RequestTimeout' ? 'timeout' : error._tag === 'NoResponders' ? 'no-responders' : error._tag === 'MalformedMessage' ? 'malformed' : 'error'
        this.#failed(outcome)
        return Effect.succeed(undefined)
      }),
    )
  }
}
