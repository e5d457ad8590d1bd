// The demo-exporter's Prometheus metrics: flows, packets and bytes sent per exporter and protocol
// (the reference a loss test compares stored rows with), datagrams, send errors, BMP session
// state, and SNMP requests answered.
import { Counter, Gauge, type Registry } from 'prom-client'

export interface DemoExporterMetrics {
  /** Flow records (sFlow: samples) sent. */
  readonly flows: Counter<'exporter' | 'protocol'>
  /** Sampled packets the sent records account for (before multiplication by the sampling rate). */
  readonly packets: Counter<'exporter' | 'protocol'>
  readonly bytes: Counter<'exporter' | 'protocol'>
  readonly datagrams: Counter<'exporter' | 'protocol'>
  readonly sendErrors: Counter<'exporter'>
  /** 0 down, 1 connecting, 2 up. */
  readonly bmpState: Gauge<'exporter'>
  readonly bmpSessions: Counter<'exporter'>
  readonly snmpAnswered: Counter<'exporter'>
  readonly snmpErrors: Counter<'exporter' | 'reason'>
}

const counter = <L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> =>
  (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [registry] })

export const makeDemoExporterMetrics = (registry: Registry): DemoExporterMetrics => ({
  flows: counter(registry, 'flowbus_demo_exporter_flows_total', 'Flow records (sFlow samples) sent, per exporter and protocol', ['exporter', 'protocol']),
  packets: counter(registry, 'flowbus_demo_exporter_packets_total', 'Sampled packets in the records sent, per exporter and protocol', ['exporter', 'protocol']),
  bytes: counter(registry, 'flowbus_demo_exporter_bytes_total', 'Sampled bytes in the records sent, per exporter and protocol', ['exporter', 'protocol']),
  datagrams: counter(registry, 'flowbus_demo_exporter_datagrams_total', 'UDP datagrams sent, per exporter and protocol', ['exporter', 'protocol']),
  sendErrors: counter(registry, 'flowbus_demo_exporter_send_errors_total', 'UDP datagrams the socket refused, per exporter', ['exporter']),
  bmpState: (registry.getSingleMetric('flowbus_demo_exporter_bmp_session_state') as Gauge<'exporter'> | undefined) ??
    new Gauge({ name: 'flowbus_demo_exporter_bmp_session_state', help: 'BMP session per exporter: 0 down, 1 connecting, 2 up', labelNames: ['exporter'], registers: [registry] }),
  bmpSessions: counter(registry, 'flowbus_demo_exporter_bmp_sessions_total', 'BMP sessions established, per exporter', ['exporter']),
  snmpAnswered: counter(registry, 'flowbus_demo_exporter_snmp_answered_total', 'SNMP requests answered, per exporter', ['exporter']),
  snmpErrors: counter(registry, 'flowbus_demo_exporter_snmp_errors_total', 'SNMP requests refused or failed, per exporter and reason', ['exporter', 'reason']),
})
