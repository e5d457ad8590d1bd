// The health summary from Prometheus text as other processes expose it: per-exporter loss
// accounting from the receiver and decoder series, pipeline figures from the writer's.
import { describe, expect, it } from 'vitest'
import { parsePrometheusText, summariseHealth } from '../src/health.js'

const text = `# HELP flowbus_receiver_packets_total UDP datagrams received
# TYPE flowbus_receiver_packets_total counter
flowbus_receiver_packets_total{listener="netflow",exporter="192.0.2.1"} 1000
flowbus_receiver_packets_total{listener="sflow",exporter="192.0.2.1"} 50
flowbus_receiver_packets_total{listener="netflow",exporter="192.0.2.2"} 7
flowbus_receiver_kernel_drops{listener="netflow",port="2055"} 3
flowbus_decoder_sequence_gaps_total{exporter="192.0.2.1",protocol="netflow9"} 12
flowbus_decoder_errors_total{exporter="192.0.2.2",reason="missing \\"template\\""} 2
flowbus_decoder_flows_total{exporter="192.0.2.1",protocol="netflow9"} 25000
flowbus_writer_rows_total{table="flows"} 24990
flowbus_writer_pending_messages{table="flows"} 4
flowbus_writer_lag_seconds{table="flows"} 1.5
flowbus_process_cpu_seconds_total 12.5
`

describe('health', () => {
  it('parses the text format, labels with escapes included', () => {
    const samples = parsePrometheusText(text)
    expect(samples).toHaveLength(11)
    expect(samples.find((s) => s.name === 'flowbus_decoder_errors_total')!.labels.reason).toBe('missing "template"')
  })

  it('sums per exporter and across processes', () => {
    const samples = [...parsePrometheusText(text), ...parsePrometheusText('flowbus_writer_rows_total{table="flows"} 10\nflowbus_writer_lag_seconds{table="flows"} 0.5\n')]
    const health = summariseHealth(samples, ['local', 'http://writer-2/metrics'], [])
    expect(health.exporters).toEqual([
      { exporter: '192.0.2.1', packetsReceived: 1050, sequenceGaps: 12, decodeErrors: 0, flowsDecoded: 25000 },
      { exporter: '192.0.2.2', packetsReceived: 7, sequenceGaps: 0, decodeErrors: 2, flowsDecoded: 0 },
    ])
    expect(health).toMatchObject({ socketDrops: 3, busPendingMessages: 4, busLagSeconds: 1.5, rowsStored: 25000 })
  })
})
