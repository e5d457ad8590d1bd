// The gateway's own Prometheus series beside the shared actor counters: ClickHouse queries by
// purpose and outcome with their latency, live subscribers, and live events dropped for slow clients.
import type { MetricsService } from '@flowbus/runtime'
import { Counter, Gauge, Histogram } from 'prom-client'

export interface GatewayMetrics {
  readonly queries: Counter<'purpose' | 'outcome'>
  readonly querySeconds: Histogram<'purpose'>
  readonly liveSubscribers: Gauge
  readonly liveDroppedEvents: Counter
}

const byRegistry = new WeakMap<object, GatewayMetrics>()

export const gatewayMetrics = (metrics: MetricsService, subscribers: () => number): GatewayMetrics => {
  const known = byRegistry.get(metrics.registry)
  if (known) return known
  const registers = [metrics.registry]
  const created: GatewayMetrics = {
    queries: new Counter({ name: 'flowbus_gateway_queries_total', help: 'ClickHouse queries, by purpose and outcome (ok, error, timeout, cancelled, refused)', labelNames: ['purpose', 'outcome'], registers }),
    querySeconds: new Histogram({
      name: 'flowbus_gateway_query_seconds',
      help: 'Time a ClickHouse query took, by purpose',
      labelNames: ['purpose'],
      buckets: [0.01, 0.05, 0.1, 0.3, 1, 3, 10, 30],
      registers,
    }),
    liveSubscribers: new Gauge({
      name: 'flowbus_gateway_live_subscribers',
      help: 'Live subscriptions open now',
      registers,
      collect() {
        this.set(subscribers())
      },
    }),
    liveDroppedEvents: new Counter({ name: 'flowbus_gateway_live_dropped_events_total', help: 'Live events dropped because a client read too slowly', registers }),
  }
  byRegistry.set(metrics.registry, created)
  return created
}
