// The writer's own Prometheus series, beside the shared actor and bus counters: rows stored,
// insert sizes and latency, retries, refused rows and how far behind the bus the writer is.
import type { MetricsService } from '@flowbus/runtime'
import { Counter, Gauge, Histogram } from 'prom-client'

export interface WriterMetrics {
  readonly rows: Counter<'table'>
  readonly insertRows: Histogram<'table'>
  readonly insertSeconds: Histogram<'table'>
  readonly retries: Counter<'table'>
  readonly rejectedRows: Counter<'table'>
  readonly redeliveredRows: Counter<'table'>
  readonly pendingMessages: Gauge<'table'>
  readonly lagSeconds: Gauge<'table'>
}

const byRegistry = new WeakMap<object, WriterMetrics>()

/** The writer's series in this process's registry (created once per registry). */
export const writerMetrics = (metrics: MetricsService): WriterMetrics => {
  const known = byRegistry.get(metrics.registry)
  if (known) return known
  const registers = [metrics.registry]
  const labelNames = ['table'] as const
  const created: WriterMetrics = {
    rows: new Counter({ name: 'flowbus_writer_rows_total', help: 'Rows ClickHouse accepted (rate: rows/s stored)', labelNames, registers }),
    insertRows: new Histogram({
      name: 'flowbus_writer_insert_rows',
      help: 'Rows per insert',
      labelNames,
      buckets: [100, 1000, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000],
      registers,
    }),
    insertSeconds: new Histogram({
      name: 'flowbus_writer_insert_seconds',
      help: 'Time ClickHouse took to accept an insert',
      labelNames,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    retries: new Counter({ name: 'flowbus_writer_retries_total', help: 'Inserts retried after ClickHouse failed', labelNames, registers }),
    rejectedRows: new Counter({
      name: 'flowbus_writer_rejected_rows_total',
      help: 'Rows ClickHouse refused as invalid; their bus messages go to the dead-letter subject',
      labelNames,
      registers,
    }),
    redeliveredRows: new Counter({
      name: 'flowbus_writer_redelivered_rows_total',
      help: 'Rows of messages the bus delivered again after their insert committed: acknowledged without inserting',
      labelNames,
      registers,
    }),
    pendingMessages: new Gauge({ name: 'flowbus_writer_pending_messages', help: 'Bus messages held until their insert commits', labelNames, registers }),
    lagSeconds: new Gauge({
      name: 'flowbus_writer_lag_seconds',
      help: 'Age of the oldest bus message held and not yet acknowledged',
      labelNames,
      registers,
    }),
  }
  byRegistry.set(metrics.registry, created)
  return created
}
