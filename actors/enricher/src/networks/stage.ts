// The networks stage: source and destination network attributes (name, role, site, region,
// tenant, country, state, city, AS number) from the longest configured prefix holding the address.
import type { FlowBatch, StringColumn } from '@flowbus/bus-schemas'
import type { EnrichContext, EnrichStage } from '../stages.js'
import { NetworkTable, networkStringAttributes, type NetworkRecord } from './table.js'

const srcColumns = ['SrcNetName', 'SrcNetRole', 'SrcNetSite', 'SrcNetRegion', 'SrcNetTenant', 'SrcCountry', 'SrcGeoState', 'SrcGeoCity'] as const
const dstColumns = ['DstNetName', 'DstNetRole', 'DstNetSite', 'DstNetRegion', 'DstNetTenant', 'DstCountry', 'DstGeoState', 'DstGeoCity'] as const

/** Increases on every apply of any NetworkStage: a record's cached indexes are for one batch only. */
let generation = 0

export class NetworkStage implements EnrichStage {
  readonly name = 'networks'
  #table: NetworkTable
  #hits = 0
  #misses = 0
  #replaced = 0
  // Reused per batch: the column arrays to write, undefined for attributes no network sets.
  readonly #src: (Uint32Array | undefined)[] = new Array(networkStringAttributes.length).fill(undefined)
  readonly #dst: (Uint32Array | undefined)[] = new Array(networkStringAttributes.length).fill(undefined)

  constructor(table: NetworkTable = NetworkTable.empty) {
    this.#table = table
  }

  get table(): NetworkTable {
    return this.#table
  }

  /** Swaps the networks at once (a remote source refreshed): the next batch sees only the new table. */
  replace(table: NetworkTable): void {
    this.#table = table
    this.#replaced++
  }

  apply(batch: FlowBatch, rows: number, context: EnrichContext): void {
    const table = this.#table
    if (table.size === 0) return
    const gen = ++generation
    const src = batch.view('SrcAddr')
    const dst = batch.view('DstAddr')
    if (src !== undefined) {
      this.#columns(batch, table, srcColumns, this.#src)
      this.#side(batch, rows, table, src, this.#src, context.networkSrcAS, gen)
    }
    if (dst !== undefined) {
      this.#columns(batch, table, dstColumns, this.#dst)
      this.#side(batch, rows, table, dst, this.#dst, context.networkDstAS, gen)
    }
  }

  #columns(batch: FlowBatch, table: NetworkTable, names: readonly StringColumn[], out: (Uint32Array | undefined)[]): void {
    for (let i = 0; i < names.length; i++) {
      out[i] = table.present.has(networkStringAttributes[i]!) ? batch.stringIndexes(names[i]!) : undefined
    }
  }

  #side(
    batch: FlowBatch,
    rows: number,
    table: NetworkTable,
    addresses: Uint8Array,
    columns: (Uint32Array | undefined)[],
    asns: Uint32Array,
    gen: number,
  ): void {
    let hits = 0
    for (let r = 0; r < rows; r++) {
      const record = table.lookup(addresses, r * 16)
      if (record === undefined) continue
      hits++
      const indexes = record.generation === gen ? record.indexes : internRecord(batch, record, gen)
      for (let i = 0; i < columns.length; i++) {
        const column = columns[i]
        // An unset attribute leaves the column alone: GeoIP's country stays when a network has none.
        if (column !== undefined && indexes[i] !== 0) column[r] = indexes[i]!
      }
      if (record.asn !== 0) asns[r] = record.asn
    }
    this.#hits += hits
    this.#misses += rows - hits
  }

  counts(): Readonly<Record<string, number>> {
    return { hits: this.#hits, misses: this.#misses, replaced: this.#replaced }
  }
}

function internRecord(batch: FlowBatch, record: NetworkRecord, gen: number): Uint32Array {
  const indexes = record.indexes
  for (let i = 0; i < networkStringAttributes.length; i++) indexes[i] = batch.intern(record[networkStringAttributes[i]!])
  record.generation = gen
  return indexes
}
