// The contract between the enricher actor and its pure enrichment stages (GeoIP, networks,
// AS numbers, classification, sampling): a stage rewrites columns of a FlowBatch in place.
//
// API in short (the actor composes; stages never touch the bus, Effect or the network):
//
//   const context = new EnrichContext()
//   const stages: EnrichStage[] = [classification, sampling, geoip, networks, asn]   // order below
//   context.reset(batch.count)                       // once per batch, before the stages
//   context.routing = routingLookupResult            // optional, before the `asn` stage
//   for (const s of stages) s.apply(batch, batch.count, context)
//   // then drop rows whose context.drop[r] !== 0 (reason = DropReason), e.g. with appendRowsFrom
//   stage.counts()                                   // monotonic totals per outcome, for metrics
//
// Order matters: classification needs the exporter/interface metadata the actor sets first
// (ExporterName, InIfName, InIfDescription, InIfSpeed…); `geoip` and `networks` leave their AS
// numbers in the context for the `asn` stage; `networks` runs after `geoip` so a configured
// network's country overrides GeoIP's (as in Akvorado).
//
// Stages and their constructors (each module also exports an Effect Schema of its options,
// with defaults, for the actor's config section; see docs/enrichment.md):
//   classification/stage.ts  new ClassificationStage({ exporterRules, interfaceRules, cacheSize })
//                            (throws RuleError at config load)              ClassificationConfig
//   sampling/stage.ts        new SamplingStage({ defaultSamplingRate, overrideSamplingRate, missing })
//                                                                           SamplingConfig
//   geoip/stage.ts           GeoIPStage.open({ geoDatabases, asnDatabases, embedded, optional,
//                            pollInterval, watchEvents, onEvent, cache }); close() stops watching  GeoIPConfig
//   networks/table.ts        parseNetworks(entries, source) → NetworkTable (throws NetworkEntryError)
//   networks/stage.ts        new NetworkStage(table, cache); stage.replace(table)    NetworksConfig
//   networks/address-cache.ts  new AddressCache(): pass one to both geoip and networks (optional)
//   asn/stage.ts             new ASNStage({ asProviders, netProviders })      ASNConfig
import type { FlowBatch } from '@flowbus/bus-schemas'

/** Why a stage asked for a row to be dropped (the values of `EnrichContext.drop`). */
export const DropReason = {
  keep: 0,
  /** A classification reject rule matched the exporter or an interface. */
  rejected: 1,
  /** No SamplingRate in the flow nor from the configured defaults, and `missing: drop`. */
  noSamplingRate: 2,
} as const
export type DropReason = (typeof DropReason)[keyof typeof DropReason]

/**
 * The routing lookup's answers for the rows of one batch (row r at index r), as the actor's
 * routing client gets them from bmp-rib; 0 means unknown. Masks count as in flows (0-32 for
 * IPv4, 0-128 for IPv6). Only the `asn` stage reads them.
 */
export interface RoutingColumns {
  srcAS: Uint32Array
  dstAS: Uint32Array
  srcNetMask: Uint8Array
  dstNetMask: Uint8Array
}

/**
 * Per-batch scratch shared by the stages: rows to drop and the AS numbers found by lookups that
 * are not flow columns of their own. Arrays grow with the largest batch and are reused, so the
 * hot path allocates nothing.
 */
export class EnrichContext {
  /** Rows in the current batch. */
  rows = 0
  /** Non-zero: drop row r, the value says why (DropReason). */
  drop = new Uint8Array(0)
  /** AS numbers from the GeoIP ASN database (0 unknown), written by the geoip stage. */
  geoipSrcAS = new Uint32Array(0)
  geoipDstAS = new Uint32Array(0)
  /** AS numbers from network attributes (0 unknown), written by the networks stage. */
  networkSrcAS = new Uint32Array(0)
  networkDstAS = new Uint32Array(0)
  /** Set by the actor for this batch when the routing lookup answered; undefined otherwise. */
  routing: RoutingColumns | undefined = undefined

  /** Prepares for a batch of `rows` rows: everything zero, no routing answers. */
  reset(rows: number): void {
    if (this.drop.length < rows) {
      const capacity = Math.max(rows, this.drop.length * 2, 64)
      this.drop = new Uint8Array(capacity)
      this.geoipSrcAS = new Uint32Array(capacity)
      this.geoipDstAS = new Uint32Array(capacity)
      this.networkSrcAS = new Uint32Array(capacity)
      this.networkDstAS = new Uint32Array(capacity)
    } else {
      this.drop.fill(0, 0, rows)
      this.geoipSrcAS.fill(0, 0, rows)
      this.geoipDstAS.fill(0, 0, rows)
      this.networkSrcAS.fill(0, 0, rows)
      this.networkDstAS.fill(0, 0, rows)
    }
    this.rows = rows
    this.routing = undefined
  }

  /** Rows marked for dropping in the current batch. */
  dropped(): number {
    let n = 0
    for (let r = 0; r < this.rows; r++) if (this.drop[r] !== 0) n++
    return n
  }
}

/** One enrichment step over a batch, in place. */
export interface EnrichStage {
  /** Short name for logs and the `stage` label of metrics: `geoip`, `networks`, `asn`, … */
  readonly name: string
  /** Enriches rows [0, rows) of `batch`; never throws on flow data (bad values are counted). */
  apply(batch: FlowBatch, rows: number, context: EnrichContext): void
  /**
   * Monotonic totals since construction by outcome (e.g. `{ hits: 10, misses: 2 }`), for the
   * actor's metrics: export each as a counter labelled stage/outcome. Keys are fixed per stage.
   */
  counts(): Readonly<Record<string, number>>
}
