// The snmp-poller's Prometheus metrics: SNMP requests, successes, timeouts and errors per exporter,
// breaker state per exporter, what requests asked for, and the cache's size and oldest entry.
import { Counter, Gauge, type Registry } from 'prom-client'
import { breakerStateValue } from './breaker.js'
import type { MetadataCache } from './cache.js'

export interface SnmpPollerMetrics {
  /** SNMP GETs sent (a retry after a timeout is the same request). */
  readonly requests: Counter<'exporter'>
  /** Polls of an exporter that succeeded. */
  readonly successes: Counter<'exporter'>
  /** GETs that got no answer after their retries (a wrong v2c community looks the same). */
  readonly timeouts: Counter<'exporter'>
  /** Polls that failed, by reason (timeout, auth, agent-error, too-big, invalid-response, socket). */
  readonly errors: Counter<'exporter' | 'reason'>
  readonly breakerOpened: Counter<'exporter'>
  /** Requested ifIndexes, by outcome: polled, cached (fresh or known absent), no-agent (no subnet matched), invalid (not 1..2^31-1). */
  readonly demanded: Counter<'outcome'>
  /** Entries read back from the bus state at start, by kind (exporters, interfaces). */
  readonly loaded: Counter<'kind'>
  /** Entries written to (or deleted from) the bus state, by kind and operation. */
  readonly published: Counter<'kind' | 'operation'>
}

// Several pollers may share one process registry (tests): reuse what is registered.
const counter = <L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> =>
  (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [registry] })

export const makeSnmpPollerMetrics = (registry: Registry): SnmpPollerMetrics => ({
  requests: counter(registry, 'flowbus_snmp_poller_requests_total', 'SNMP GET requests sent, per exporter', ['exporter']),
  successes: counter(registry, 'flowbus_snmp_poller_successes_total', 'Polls of an exporter that succeeded', ['exporter']),
  timeouts: counter(registry, 'flowbus_snmp_poller_timeouts_total', 'SNMP GET requests left unanswered after retries, per exporter', ['exporter']),
  errors: counter(registry, 'flowbus_snmp_poller_errors_total', 'Polls that failed, per exporter and reason', ['exporter', 'reason']),
  breakerOpened: counter(registry, 'flowbus_snmp_poller_breaker_opened_total', 'Times the breaker of an exporter opened', ['exporter']),
  demanded: counter(registry, 'flowbus_snmp_poller_demanded_interfaces_total', 'ifIndexes requested by enrichers, by outcome (polled, cached, no-agent, invalid)', ['outcome']),
  loaded: counter(registry, 'flowbus_snmp_poller_loaded_total', 'Cache entries reloaded from the bus state at start, by kind', ['kind']),
  published: counter(registry, 'flowbus_snmp_poller_published_total', 'Entries written to or deleted from the bus state, by kind and operation', ['kind', 'operation']),
})

/**
 * Gauges read from the cache when scraped: breaker state per exporter (0 closed, 1 half-open,
 * 2 open), cache entries and the age of the oldest one, per kind. Registered once per registry;
 * the latest cache wins (one poller per process outside tests).
 */
const observed = new WeakMap<Registry, { cache: MetadataCache }>()

export const observeCache = (registry: Registry, cache: MetadataCache, now: () => number = Date.now): void => {
  const existing = observed.get(registry)
  if (existing) {
    existing.cache = cache
    return
  }
  const holder = { cache }
  observed.set(registry, holder)
  new Gauge({
    name: 'flowbus_snmp_poller_breaker_state',
    help: 'Breaker state per exporter: 0 closed, 1 half-open, 2 open',
    labelNames: ['exporter'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [exporter, state] of holder.cache.breakers()) this.set({ exporter }, breakerStateValue[state])
    },
  })
  new Gauge({
    name: 'flowbus_snmp_poller_cache_entries',
    help: 'Exporters and interfaces in the cache, by kind',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const stats = holder.cache.stats()
      this.set({ kind: 'exporters' }, stats.exporters)
      this.set({ kind: 'interfaces' }, stats.interfaces)
    },
  })
  new Gauge({
    name: 'flowbus_snmp_poller_cache_oldest_age_seconds',
    help: 'Age of the oldest cached entry, by kind (0 when none)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const stats = holder.cache.stats()
      const t = now()
      this.set({ kind: 'exporters' }, stats.oldestExporterMs === 0 ? 0 : (t - stats.oldestExporterMs) / 1000)
      this.set({ kind: 'interfaces' }, stats.oldestInterfaceMs === 0 ? 0 : (t - stats.oldestInterfaceMs) / 1000)
    },
  })
}
