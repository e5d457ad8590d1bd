// The enricher's Prometheus metrics: metadata lookups and the unknown-metadata policy, remote
// sources, metadata requests, routing lookups, outputs, and every stage's own counters.
import { Counter, Gauge, type Registry } from 'prom-client'

/** Something whose monotonic totals are read at scrape time (stages, the routing client). */
export type TotalsSource = () => readonly { labels: Record<string, string>; value: number }[]

export interface EnricherMetrics {
  readonly unknownFlows: Counter<'entity' | 'policy'>
  readonly held: Counter<'outcome'>
  readonly droppedFlows: Counter<'reason'>
  readonly remoteFetches: Counter<'source' | 'outcome'>
  readonly remoteRecords: Gauge<'source'>
  readonly remoteRejected: Counter<'source'>
  readonly metadataRequests: Counter<'kind'>
  readonly snmpEntries: Gauge<'bucket'>
  readonly liveFlows: Counter<never>
  readonly exportMessages: Counter<'outcome'>
  /** Register the totals of stages (labels stage, outcome) for the stage counter. */
  readonly addStageTotals: (source: TotalsSource) => () => void
  /** Register the routing client's totals (labels outcome) for the routing counters. */
  readonly addRoutingTotals: (requests: TotalsSource, addresses: TotalsSource) => () => void
}

const counter = <L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> =>
  (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [registry] })

const gauge = <L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Gauge<L> =>
  (registry.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge<L>({ name, help, labelNames, registers: [registry] })

// Totals kept by pure code are summed over every enricher of the process at scrape time.
const sources = new WeakMap<Registry, Map<string, Set<TotalsSource>>>()

const totalsCounter = (registry: Registry, name: string, help: string, labelNames: readonly string[]) => {
  let byName = sources.get(registry)
  if (!byName) sources.set(registry, (byName = new Map()))
  let set = byName.get(name)
  if (!set) {
    const registered = new Set<TotalsSource>()
    set = registered
    byName.set(name, registered)
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset()
        for (const source of registered) for (const { labels, value } of source()) if (value > 0) this.inc(labels, value)
      },
    })
  }
  const target = set
  return (source: TotalsSource) => {
    target.add(source)
    return () => void target.delete(source)
  }
}

export const makeEnricherMetrics = (registry: Registry): EnricherMetrics => {
  const stageTotals = totalsCounter(registry, 'flowbus_enricher_stage_total', 'Per-stage outcomes (hits, misses, rejects…), by stage and outcome', ['stage', 'outcome'])
  const routingRequests = totalsCounter(
    registry,
    'flowbus_enricher_routing_lookups_total',
    'Routing lookups by outcome (ok, timeout, no-responders, malformed, error); backoff and disabled count batches not looked up',
    ['outcome'],
  )
  const routingAddresses = totalsCounter(registry, 'flowbus_enricher_routing_addresses_total', 'Looked-up flow addresses a route covered (found) or not (not-found)', ['outcome'])
  return {
    unknownFlows: counter(
      registry,
      'flowbus_enricher_unknown_metadata_flows_total',
      'Flows whose exporter or an interface no provider names, by entity (exporter, interface) and the policy applied',
      ['entity', 'policy'],
    ),
    held: counter(registry, 'flowbus_enricher_metadata_holds_total', 'Batches held for metadata (hold policy), by outcome (resolved, timeout)', ['outcome']),
    droppedFlows: counter(registry, 'flowbus_enricher_dropped_flows_total', 'Flows not published, by reason (unknown-metadata, rejected, no-sampling-rate)', ['reason']),
    remoteFetches: counter(registry, 'flowbus_enricher_remote_fetches_total', 'Fetches of remote metadata sources, by source and outcome (ok, failed)', ['source', 'outcome']),
    remoteRecords: gauge(registry, 'flowbus_enricher_remote_records', 'Records held from each remote source (last good fetch)', ['source']),
    remoteRejected: counter(registry, 'flowbus_enricher_remote_rejected_records_total', 'Records of remote sources skipped as invalid', ['source']),
    metadataRequests: counter(registry, 'flowbus_enricher_metadata_requests_total', 'metadata.requests sent: messages, and exporters and interfaces asked for', ['kind']),
    snmpEntries: gauge(registry, 'flowbus_enricher_snmp_entries', "Entries mirrored from the snmp-poller's buckets", ['bucket']),
    liveFlows: counter(registry, 'flowbus_enricher_live_flows_total', 'Flows sent to flows.live', []),
    exportMessages: counter(registry, 'flowbus_enricher_export_messages_total', 'JSON export messages, by outcome (published, failed)', ['outcome']),
    addStageTotals: stageTotals,
    addRoutingTotals: (requests, addresses) => {
      const a = routingRequests(requests)
      const b = routingAddresses(addresses)
      return () => {
        a()
        b()
      }
    },
  }
}
