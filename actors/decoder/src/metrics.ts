// The decoder's Prometheus counters, per exporter, protocol and error reason, and the observer
// that feeds them from the decode loop (the runtime's received/emitted/dropped counters too).
import type { ActorContextService } from '@flowbus/runtime'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { DecodeObserver } from './dispatch.js'

export interface DecoderMetrics {
  readonly packets: Counter<'exporter' | 'protocol'>
  readonly flows: Counter<'exporter' | 'protocol'>
  readonly errors: Counter<'exporter' | 'reason'>
  readonly sequenceGaps: Counter<'exporter' | 'protocol'>
  readonly sequenceResets: Counter<'exporter' | 'protocol'>
  readonly sequenceReorders: Counter<'exporter' | 'protocol'>
  readonly rateLimited: Counter<'exporter'>
  readonly counterSamples: Counter<'exporter'>
  /** Data sets held for a template that has not come yet. */
  readonly heldNow: Gauge
  readonly templates: Gauge
  /** Templates taken in, by source: `packet` (from an exporter) or `bucket` (from another decoder). */
  readonly templatesLoaded: Counter<'source'>
  /** Template writes to (and withdrawals from) the bucket, by outcome. */
  readonly templatesStored: Counter<'outcome'>
  /** Options data taken from (source bucket) and written to (outcome) the exporter.options bucket. */
  readonly optionsLoaded: Counter<never>
  readonly optionsStored: Counter<'outcome'>
}

// Several decoder actors may share one process registry (tests): reuse what is registered.
const counter = <L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> =>
  (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [registry] })

const gauge = (registry: Registry, name: string, help: string): Gauge =>
  (registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, registers: [registry] })

export const makeDecoderMetrics = (registry: Registry): DecoderMetrics => ({
  packets: counter(registry, 'flowbus_decoder_packets_total', 'Export datagrams decoded, per exporter and protocol', ['exporter', 'protocol']),
  flows: counter(registry, 'flowbus_decoder_flows_total', 'Flows decoded, per exporter and protocol (before the rate limit; protocol "late": held data decoded once its template came from the bus)', ['exporter', 'protocol']),
  errors: counter(registry, 'flowbus_decoder_errors_total', 'Decoding errors, per exporter and reason', ['exporter', 'reason']),
  sequenceGaps: counter(
    registry,
    'flowbus_decoder_sequence_gaps_total',
    'Export units lost before reaching the collector, from sequence numbers (v5 flows, v9 packets, IPFIX records, sFlow datagrams)',
    ['exporter', 'protocol'],
  ),
  sequenceResets: counter(registry, 'flowbus_decoder_sequence_resets_total', 'Sequence restarts (exporter reboot or jump too large to be loss)', ['exporter', 'protocol']),
  sequenceReorders: counter(registry, 'flowbus_decoder_sequence_reorders_total', 'Datagrams arriving after a newer one (late or duplicated)', ['exporter', 'protocol']),
  rateLimited: counter(registry, 'flowbus_decoder_rate_limited_flows_total', 'Flows dropped by the per-exporter rate limit (their weight moved to kept flows)', ['exporter']),
  counterSamples: counter(registry, 'flowbus_decoder_counter_samples_total', 'Interface counter samples decoded (sFlow)', ['exporter']),
  heldNow: gauge(registry, 'flowbus_decoder_held_data_sets', 'Data sets held for a template that has not come yet (expired or pushed out ones count as missing-template errors)'),
  templates: gauge(registry, 'flowbus_decoder_templates', 'NetFlow v9/IPFIX templates known to this decoder'),
  templatesLoaded: counter(registry, 'flowbus_decoder_templates_loaded_total', 'Templates taken in, by source (packet or bucket)', ['source']),
  templatesStored: counter(registry, 'flowbus_decoder_templates_stored_total', 'Template writes to the templates bucket, by outcome (stored, deleted, failed)', ['outcome']),
  optionsLoaded: counter(registry, 'flowbus_decoder_options_loaded_total', 'Options data of an exporter domain taken from the exporter.options bucket', []),
  optionsStored: counter(registry, 'flowbus_decoder_options_stored_total', 'Options data writes to the exporter.options bucket, by outcome (stored, failed)', ['outcome']),
})

/**
 * The decode loop's observer for the actor: decoder metrics plus the runtime's actor counters.
 * Packets and flows, counted per datagram, are summed per exporter and protocol during a loop
 * call and added to the counters once at its end (a labelled counter update costs more than a
 * datagram's bookkeeping).
 */
export const metricsObserver = (metrics: DecoderMetrics, actor: ActorContextService): DecodeObserver => {
  const sums = new Map<string, { exporter: string; protocol: string; packets: number; flows: number }>()
  const sumFor = (exporter: string, protocol: string) => {
    const key = `${exporter} ${protocol}`
    let sum = sums.get(key)
    if (sum === undefined) sums.set(key, (sum = { exporter, protocol, packets: 0, flows: 0 }))
    return sum
  }
  return {
    packet: (exporter, protocol) => {
      sumFor(exporter, protocol).packets++
    },
    flows: (exporter, protocol, count) => {
      sumFor(exporter, protocol).flows += count
    },
    flush: () => {
      let packets = 0
      for (const sum of sums.values()) {
        const labels = { exporter: sum.exporter, protocol: sum.protocol }
        if (sum.packets > 0) metrics.packets.inc(labels, sum.packets)
        if (sum.flows > 0) metrics.flows.inc(labels, sum.flows)
        packets += sum.packets
      }
      sums.clear()
      if (packets > 0) actor.received('packets', packets)
    },
    error: (exporter, _protocol, reason) => {
      metrics.errors.inc({ exporter, reason })
      actor.error(reason)
    },
    sequence: (exporter, protocol, verdict) => {
      if (verdict.lost > 0) metrics.sequenceGaps.inc({ exporter, protocol }, verdict.lost)
      else if (verdict.reset) metrics.sequenceResets.inc({ exporter, protocol })
      else if (verdict.reordered) metrics.sequenceReorders.inc({ exporter, protocol })
    },
    rateLimited: (exporter, count) => {
      metrics.rateLimited.inc({ exporter }, count)
      actor.dropped('rate-limit', count)
    },
    counterSamples: (exporter, count) => metrics.counterSamples.inc({ exporter }, count),
  }
}

/** Counts kept in memory: `flowbus decode` prints them, tests assert on them. */
export class DecodeTally implements DecodeObserver {
  readonly packets = new Map<string, number>()
  readonly flowCounts = new Map<string, number>()
  /** Errors by reason, all exporters together. */
  readonly errors = new Map<string, number>()
  readonly errorDetails: string[] = []
  lost = 0
  resets = 0
  reorders = 0
  limited = 0
  samples = 0

  packet(_exporter: string, protocol: string): void {
    this.packets.set(protocol, (this.packets.get(protocol) ?? 0) + 1)
  }
  flows(_exporter: string, protocol: string, count: number): void {
    this.flowCounts.set(protocol, (this.flowCounts.get(protocol) ?? 0) + count)
  }
  error(exporter: string, protocol: string, reason: string, detail: string | undefined): void {
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1)
    if (this.errorDetails.length < 100) this.errorDetails.push(`${exporter} ${protocol} ${reason}${detail ? `: ${detail}` : ''}`)
  }
  sequence(_exporter: string, _protocol: string, verdict: { lost: number; reset: boolean; reordered: boolean }): void {
    this.lost += verdict.lost
    if (verdict.reset) this.resets++
    if (verdict.reordered) this.reorders++
  }
  rateLimited(_exporter: string, count: number): void {
    this.limited += count
  }
  counterSamples(_exporter: string, count: number): void {
    this.samples += count
  }
}
