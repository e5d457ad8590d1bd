// The pipeline's loss accounting for the `health` query: counters of the receiver, decoder and
// writer read from this process's Prometheus registry and, in multi-process deployments, from
// the /metrics endpoints listed in gateway.metricsURLs (Prometheus text format).
import type { Registry } from 'prom-client'

/** One sample: metric name, labels, value. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Parses the Prometheus text exposition format (comments skipped, histograms as their series). */
export const parsePrometheusText = (text: string): Sample[] => {
  const samples: Sample[] = []
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
  for (const raw of text.split('\n')) {
    if (raw === '' || raw.startsWith('#')) continue
    const match = line.exec(raw)
    if (!match) continue
    const labels: Record<string, string> = {}
    for (const l of (match[2] ?? '').matchAll(label)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    const value = Number(match[3])
    if (Number.isFinite(value)) samples.push({ name: match[1]!, labels, value })
  }
  return samples
}

export const registrySamples = async (registry: Registry): Promise<Sample[]> => {
  const samples: Sample[] = []
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values as { labels: Record<string, string | number>; value: number; metricName?: string }[]) {
      samples.push({
        name: v.metricName ?? metric.name,
        labels: Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)])),
        value: v.value,
      })
    }
  }
  return samples
}

export interface ExporterHealth {
  exporter: string
  packetsReceived: number
  sequenceGaps: number
  decodeErrors: number
  flowsDecoded: number
}

export interface PipelineHealth {
  exporters: ExporterHealth[]
  socketDrops: number
  busPendingMessages: number
  busLagSeconds: number
  rowsStored: number
  sources: string[]
  errors: string[]
}

/** Sums the samples of all sources into per-exporter and pipeline figures. */
export const summariseHealth = (samples: readonly Sample[], sources: string[], errors: string[]): PipelineHealth => {
  const exporters = new Map<string, ExporterHealth>()
  const exporter = (name: string) => {
    let entry = exporters.get(name)
    if (!entry) exporters.set(name, (entry = { exporter: name, packetsReceived: 0, sequenceGaps: 0, decodeErrors: 0, flowsDecoded: 0 }))
    return entry
  }
  const health: PipelineHealth = { exporters: [], socketDrops: 0, busPendingMessages: 0, busLagSeconds: 0, rowsStored: 0, sources, errors }
  for (const s of samples) {
    const who = s.labels.exporter
    switch (s.name) {
      case 'flowbus_receiver_packets_total':
        if (who) exporter(who).packetsReceived += s.value
        break
      case 'flowbus_decoder_sequence_gaps_total':
        if (who) exporter(who).sequenceGaps += s.value
        break
      case 'flowbus_decoder_errors_total':
        if (who) exporter(who).decodeErrors += s.value
        break
      case 'flowbus_decoder_flows_total':
        if (who) exporter(who).flowsDecoded += s.value
        break
      case 'flowbus_receiver_kernel_drops':
        health.socketDrops += s.value
        break
      case 'flowbus_writer_pending_messages':
        health.busPendingMessages += s.value
        break
      case 'flowbus_writer_lag_seconds':
        health.busLagSeconds = Math.max(health.busLagSeconds, s.value)
        break
      case 'flowbus_writer_rows_total':
        health.rowsStored += s.value
        break
    }
  }
  health.exporters = [...exporters.values()].sort((a, b) => a.exporter.localeCompare(b.exporter))
  return health
}

/** Reads the local registry and every configured URL (each failure reported, not thrown). */
export const readHealth = async (registry: Registry, urls: readonly string[], timeoutMs = 5000): Promise<PipelineHealth> => {
  const samples = await registrySamples(registry)
  const sources = ['local']
  const errors: string[] = []
  await Promise.all(
    urls.map(async (url) => {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
        if (!response.ok) throw new Error(`HTTP ${response.status}`)
        samples.push(...parsePrometheusText(await response.text()))
        sources.push(url)
      } catch (error) {
        errors.push(`${url}: ${(error as Error).message}`)
      }
    }),
  )
  return summariseHealth(samples, sources, errors)
}
