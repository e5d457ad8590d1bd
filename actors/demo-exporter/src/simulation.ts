// The simulation without I/O: at each clock tick, every exporter's due flows encoded in its
// protocol (templates and sampling options again when due). Same seed and ticks, same datagrams.
import type { DemoExporterConfig, FlowProtocol } from './config.js'
import { TemplateExporter } from './encode/netflow.js'
import { SflowExporter } from './encode/sflow.js'
import { type ModelExporter, type NetworkModel, buildNetwork } from './network.js'
import { type DemoFlow, TrafficGenerator } from './traffic.js'

export interface ExporterOutput {
  readonly exporter: ModelExporter
  readonly protocol: FlowProtocol
  readonly datagrams: Uint8Array[]
  readonly flows: number
  readonly packets: number
  readonly bytes: number
}

interface ExporterState {
  readonly model: ModelExporter
  readonly traffic: TrafficGenerator
  readonly share: number
  readonly encoder: TemplateExporter | SflowExporter
  readonly flows: DemoFlow[]
  lastTemplates: number
  lastCounters: number
}

// Routers have been up for a while: flows never start before the boot time.
const UPTIME_AT_START_MS = 3 * 86_400_000
// After a stall (a suspended laptop, a blocked event loop) only this much is caught up at once.
const MAX_CATCH_UP_MS = 1_000

export class DemoSimulation {
  readonly network: NetworkModel
  private readonly states: ExporterState[]
  private lastTick: number

  constructor(
    private readonly config: DemoExporterConfig,
    startMs: number,
  ) {
    this.network = buildNetwork(config)
    const totalWeight = config.exporters.reduce((n, e) => n + e.weight, 0)
    this.lastTick = startMs
    this.states = this.network.exporters.map((model) => {
      const e = model.config
      const bootMs = startMs - UPTIME_AT_START_MS
      const encoder =
        e.protocol === 'sflow-v5'
          ? new SflowExporter({ agent: model.address, samplingRate: e.samplingRate, bootMs, localAS: config.localAS, maxDatagramBytes: config.maxDatagramBytes })
          : new TemplateExporter({ protocol: e.protocol, domain: model.index + 1, samplingRate: e.samplingRate, bootMs, maxDatagramBytes: config.maxDatagramBytes })
      return {
        model,
        traffic: new TrafficGenerator(this.network, model, config),
        share: e.weight / totalWeight,
        encoder,
        flows: [],
        lastTemplates: Number.NEGATIVE_INFINITY,
        lastCounters: startMs,
      }
    })
  }

  /** Everything due between the previous tick and nowMs. */
  tick(nowMs: number): ExporterOutput[] {
    const from = Math.max(this.lastTick, nowMs - MAX_CATCH_UP_MS)
    this.lastTick = Math.max(nowMs, this.lastTick)
    return this.states.map((s) => this.produce(s, s.traffic.countFor(from, this.lastTick, s.share), nowMs))
  }

  /** Exactly `count` flows per exporter now, whatever the rate (benchmarks, tests). */
  burst(count: number, nowMs: number): ExporterOutput[] {
    return this.states.map((s) => this.produce(s, count, nowMs))
  }

  private produce(s: ExporterState, count: number, nowMs: number): ExporterOutput {
    const flows = s.traffic.generate(count, nowMs, s.flows)
    let packets = 0
    let bytes = 0
    for (const f of flows) {
      // sFlow samples one packet per record; NetFlow/IPFIX records carry the sampled counters.
      packets += s.encoder instanceof SflowExporter ? 1 : f.packets
      bytes += s.encoder instanceof SflowExporter ? Math.max(64, Math.round(f.bytes / f.packets)) : f.bytes
    }
    let datagrams: Uint8Array[]
    if (s.encoder instanceof SflowExporter) {
      datagrams = s.encoder.encode(flows, nowMs).datagrams
      if (nowMs - s.lastCounters >= this.config.counterInterval) {
        s.lastCounters = nowMs
        datagrams.push(...s.encoder.encodeCounters(s.model.config.interfaces, nowMs))
      }
    } else {
      const templates = nowMs - s.lastTemplates >= this.config.templateInterval
      if (templates) s.lastTemplates = nowMs
      datagrams = s.encoder.encode(flows, nowMs, templates).datagrams
    }
    return { exporter: s.model, protocol: s.model.config.protocol, datagrams, flows: flows.length, packets, bytes }
  }
}
