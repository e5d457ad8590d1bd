// Prometheus metrics of one process: a registry served on /metrics, the counters every actor
// shares (received, emitted, dropped by reason, errors by kind) and the bus counters.
import { Context, Layer } from 'effect'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface MetricsService {
  readonly registry: Registry
  /** What each actor took in, by kind (e.g. "packets", "flows", "batches"). */
  readonly received: Counter<'actor' | 'kind'>
  /** What each actor produced, by kind. */
  readonly emitted: Counter<'actor' | 'kind'>
  /** What each actor deliberately discarded, by reason. */
  readonly dropped: Counter<'actor' | 'reason'>
  /** Errors met by each actor, by kind. */
  readonly errors: Counter<'actor' | 'kind'>
  readonly bus: {
    readonly publishedMessages: Counter<'subject'>
    readonly publishedBytes: Counter<'subject'>
    readonly publishErrors: Counter<'subject' | 'reason'>
    readonly deliveredMessages: Counter<'subject' | 'group'>
    readonly deliveredBytes: Counter<'subject' | 'group'>
    readonly acked: Counter<'subject' | 'group'>
    readonly nacked: Counter<'subject' | 'group'>
    readonly deadLettered: Counter<'subject' | 'group' | 'reason'>
    readonly handlerSeconds: Histogram<'subject' | 'group'>
    readonly requests: Counter<'subject' | 'outcome'>
    readonly inFlight: Gauge<'subject' | 'group'>
  }
}

export class Metrics extends Context.Tag('flowbus/Metrics')<Metrics, MetricsService>() {}

/** A fresh registry with process metrics and the shared counters. */
export const makeMetrics = (): MetricsService => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'flowbus_process_' })
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] })
  return {
    registry,
    received: counter('flowbus_actor_received_total', 'Items an actor received, by kind', ['actor', 'kind']),
    emitted: counter('flowbus_actor_emitted_total', 'Items an actor emitted, by kind', ['actor', 'kind']),
    dropped: counter('flowbus_actor_dropped_total', 'Items an actor dropped, by reason', ['actor', 'reason']),
    errors: counter('flowbus_actor_errors_total', 'Errors an actor met, by kind', ['actor', 'kind']),
    bus: {
      publishedMessages: counter('flowbus_bus_published_messages_total', 'Messages published', ['subject']),
      publishedBytes: counter('flowbus_bus_published_bytes_total', 'Payload bytes published', ['subject']),
      publishErrors: counter('flowbus_bus_publish_errors_total', 'Publications that failed, by reason', ['subject', 'reason']),
      deliveredMessages: counter('flowbus_bus_delivered_messages_total', 'Messages delivered to consumers', ['subject', 'group']),
      deliveredBytes: counter('flowbus_bus_delivered_bytes_total', 'Payload bytes delivered to consumers', ['subject', 'group']),
      acked: counter('flowbus_bus_acked_total', 'Messages acknowledged after processing', ['subject', 'group']),
      nacked: counter('flowbus_bus_nacked_total', 'Messages handed back for redelivery', ['subject', 'group']),
      deadLettered: counter('flowbus_bus_deadlettered_total', 'Messages moved to a dead-letter subject, by reason', ['subject', 'group', 'reason']),
      handlerSeconds: new Histogram({
        name: 'flowbus_bus_handler_seconds',
        help: 'Time spent handling one bus message',
        labelNames: ['subject', 'group'],
        buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
        registers: [registry],
      }),
      requests: counter('flowbus_bus_requests_total', 'Requests sent, by outcome', ['subject', 'outcome']),
      inFlight: new Gauge({
        name: 'flowbus_bus_in_flight_messages',
        help: 'Messages delivered and not yet acknowledged',
        labelNames: ['subject', 'group'],
        registers: [registry],
      }),
    },
  }
}

export const MetricsLive = Layer.sync(Metrics, makeMetrics)
