// Counted demo traffic for loss tests and the end-to-end benchmark: the demo network's exporters
// (same model, generator and encoders as the demo-exporter actor) send exactly the flows asked for
// from their own addresses, and remember each flow's identity to compare with the stored rows.
import { createSocket, type Socket } from 'node:dgram'
import { formatIP } from '@flowbus/bus-schemas'
import {
  type DemoFlow,
  DemoExporterConfig,
  SflowExporter,
  TemplateExporter,
  TrafficGenerator,
  buildNetwork,
  type ModelExporter,
} from '@flowbus/demo-exporter'
import { Schema } from 'effect'

/**
 * The identity of a flow as stored: what a duplicate repeats and two random flows hardly share.
 * ICMP flows leave the ports out: exporters carry type and code there in different ways.
 */
export const flowKey = (row: { ExporterAddress: unknown; SrcAddr: unknown; DstAddr: unknown; SrcPort: unknown; DstPort: unknown; Proto: unknown }): string =>
  Number(row.Proto) === 1 || Number(row.Proto) === 58
    ? `${String(row.ExporterAddress)} ${String(row.SrcAddr)} ${String(row.DstAddr)} icmp ${String(row.Proto)}`
    : `${String(row.ExporterAddress)} ${String(row.SrcAddr)} ${String(row.DstAddr)} ${String(row.SrcPort)} ${String(row.DstPort)} ${String(row.Proto)}`

const UPTIME_MS = 3 * 86_400_000

interface ExporterSender {
  readonly model: ModelExporter
  readonly address: string
  readonly traffic: TrafficGenerator
  readonly encoder: TemplateExporter | SflowExporter
  readonly socket: Socket
  readonly flows: DemoFlow[]
  lastTemplates: number
}

export interface DemoTrafficOptions {
  /** The demo-exporter section (defaults: the built-in three-router network). */
  readonly config?: Record<string, unknown>
  /** Where NetFlow v9/IPFIX and sFlow go. */
  readonly flowTarget: { host: string; port: number }
  readonly sflowTarget: { host: string; port: number }
  /** Keep the identity of every flow sent (tests); off for benchmarks. */
  readonly remember?: boolean
}

export class DemoTraffic {
  readonly config: DemoExporterConfig
  /** Flow records sent (sFlow: samples). */
  sent = 0
  datagrams = 0
  /** Identities of the flows sent, when remembered. */
  readonly keys = new Set<string>()
  private readonly senders: ExporterSender[] = []

  private constructor(private readonly options: DemoTrafficOptions) {
    this.config = Schema.decodeUnknownSync(DemoExporterConfig)(options.config ?? {})
  }

  static async open(options: DemoTrafficOptions): Promise<DemoTraffic> {
    const traffic = new DemoTraffic(options)
    const network = buildNetwork(traffic.config)
    const bootMs = Date.now() - UPTIME_MS
    for (const model of network.exporters) {
      const e = model.config
      const socket = createSocket({ type: e.address.includes(':') ? 'udp6' : 'udp4', sendBufferSize: 8 << 20 })
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(0, e.address, () => {
          socket.off('error', reject)
          resolve()
        })
      })
      const encoder =
        e.protocol === 'sflow-v5'
          ? new SflowExporter({ agent: model.address, samplingRate: e.samplingRate, bootMs, localAS: traffic.config.localAS, maxDatagramBytes: traffic.config.maxDatagramBytes })
          : new TemplateExporter({ protocol: e.protocol, domain: model.index + 1, samplingRate: e.samplingRate, bootMs, maxDatagramBytes: traffic.config.maxDatagramBytes })
      traffic.senders.push({ model, address: e.address, traffic: new TrafficGenerator(network, model, traffic.config), encoder, socket, flows: [], lastTemplates: Number.NEGATIVE_INFINITY })
    }
    return traffic
  }

  get exporters(): readonly string[] {
    return this.senders.map((s) => s.model.config.name)
  }

  /** Encodes `count` flows per exporter now; returns the datagrams with where they go, unsent. */
  encode(count: number, nowMs = Date.now()): { socket: Socket; datagram: Uint8Array; port: number; host: string }[] {
    const out: { socket: Socket; datagram: Uint8Array; port: number; host: string }[] = []
    for (const s of this.senders) {
      const flows = s.traffic.generate(count, nowMs, s.flows)
      let datagrams: Uint8Array[]
      const sflow = s.encoder instanceof SflowExporter
      if (s.encoder instanceof SflowExporter) datagrams = s.encoder.encode(flows, nowMs).datagrams
      else {
        const templates = nowMs - s.lastTemplates >= this.config.templateInterval
        if (templates) s.lastTemplates = nowMs
        datagrams = s.encoder.encode(flows, nowMs, templates).datagrams
      }
      if (this.options.remember) {
        for (const f of flows) {
          this.keys.add(flowKey({ ExporterAddress: s.address, SrcAddr: formatIP(f.src), DstAddr: formatIP(f.dst), SrcPort: f.srcPort, DstPort: f.dstPort, Proto: f.proto }))
        }
      }
      this.sent += flows.length
      const target = sflow ? this.options.sflowTarget : this.options.flowTarget
      for (const datagram of datagrams) out.push({ socket: s.socket, datagram, port: target.port, host: target.host })
    }
    return out
  }

  /** Sends `count` flows per exporter now; resolves once the sockets took every datagram. */
  async send(count: number, nowMs = Date.now()): Promise<void> {
    const datagrams = this.encode(count, nowMs)
    this.datagrams += datagrams.length
    await sendAll(datagrams)
  }

  close(): void {
    for (const s of this.senders) s.socket.close()
  }
}

export const sendAll = (datagrams: readonly { socket: Socket; datagram: Uint8Array; port: number; host: string }[]): Promise<void> =>
  Promise.all(
    datagrams.map(
      (d) => new Promise<void>((resolve, reject) => d.socket.send(d.datagram, d.port, d.host, (error) => (error ? reject(error) : resolve()))),
    ),
  ).then(() => undefined)
