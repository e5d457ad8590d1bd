// One batch through the enricher, synchronously: exporter/interface metadata, then the stages in
// their fixed order (classification, sampling, geoip, networks, asn), then dropped rows removed.
// Pure and deterministic for the same batch, metadata and routing answer; no I/O.
import { FlowBatch } from '@flowbus/bus-schemas'
import { type MetadataChain, type MetadataTally, type UnknownEntity } from './metadata/chain.js'
import { DropReason, EnrichContext, type EnrichStage, type RoutingColumns } from './stages.js'

/** Rows removed from one batch, by reason. */
export interface DropTally {
  unknownMetadata: number
  rejected: number
  noSamplingRate: number
  /** A stage's reason this actor does not know by name. */
  other: number
}

export interface EnrichResult {
  /** The enriched flows: the input batch itself when nothing was dropped. */
  readonly batch: FlowBatch
  readonly metadata: MetadataTally
  readonly dropped: DropTally
}

export class EnrichPipeline {
  readonly #context = new EnrichContext()
  #metadataDrop = new Uint8Array(0)

  constructor(
    readonly chain: MetadataChain,
    readonly stages: readonly EnrichStage[],
  ) {}

  run(batch: FlowBatch, fallbackExporter: Uint8Array, routing: RoutingColumns | undefined, onUnknown: (entity: UnknownEntity) => void): EnrichResult {
    const rows = batch.count
    const context = this.#context
    context.reset(rows)
    if (this.#metadataDrop.length < rows) this.#metadataDrop = new Uint8Array(Math.max(rows, 64))
    else this.#metadataDrop.fill(0, 0, rows)
    const metadata = this.chain.apply(batch, rows, fallbackExporter, this.#metadataDrop, onUnknown)
    context.routing = routing
    for (const stage of this.stages) stage.apply(batch, rows, context)
    const dropped: DropTally = { unknownMetadata: 0, rejected: 0, noSamplingRate: 0, other: 0 }
    for (let r = 0; r < rows; r++) {
      if (this.#metadataDrop[r] !== 0) dropped.unknownMetadata++
      else if (context.drop[r] === DropReason.rejected) dropped.rejected++
      else if (context.drop[r] === DropReason.noSamplingRate) dropped.noSamplingRate++
      else if (context.drop[r] !== 0) dropped.other++
    }
    if (dropped.unknownMetadata + dropped.rejected + dropped.noSamplingRate + dropped.other === 0) return { batch, metadata, dropped }
    const keep: number[] = []
    for (let r = 0; r < rows; r++) if (this.#metadataDrop[r] === 0 && context.drop[r] === 0) keep.push(r)
    const kept = new FlowBatch(keep.length)
    kept.appendRowsFrom(batch, keep)
    return { batch: kept, metadata, dropped }
  }

  /** Every stage's totals, labelled for the stage counter. */
  stageTotals(): { labels: Record<string, string>; value: number }[] {
    return this.stages.flatMap((stage) => Object.entries(stage.counts()).map(([outcome, value]) => ({ labels: { stage: stage.name, outcome }, value })))
  }
}
