// The networks stage: source and destination network attributes (name, role, site, region,
// tenant, country, state, city, AS number) from the longest configured prefix holding the address.
import type { FlowBatch, StringColumn } from '@flowbus/bus-schemas'
import type { EnrichContext, EnrichStage } from '../stages.js'
import { AddressCache, addressWords } from './address-cache.js'
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
  /** Recent answers of the current table (null: no network holds the address). */
  readonly #cache = new AddressCache<NetworkRecord | null>()
  /** Positions (in networkStringAttributes) of the attributes some network of the table sets. */
  #present: Int32Array = new Int32Array(0)
  // Reused per batch: the column arrays of the present attributes, in #present order.
  readonly #src: Uint32Array[] = []
  readonly #dst: Uint32Array[] = []

  /** Per table string: the batch generation it was interned for, and its index there. */
  #stamps: Uint32Array
  #indexes: Uint32Array

  constructor(table: NetworkTable = NetworkTable.empty) {
    this.#table = table
    this.#stamps = new Uint32Array(table.strings.length)
    this.#indexes = new Uint32Array(table.strings.length)
    this.#present = presentOf(table)
  }

  get table(): NetworkTable {
    return this.#table
  }

  /** Swaps the networks at once (a remote source refreshed): the next batch sees only the new table. */
  replace(table: NetworkTable): void {
    this.#table = table
    this.#stamps = new Uint32Array(table.strings.length)
    this.#indexes = new Uint32Array(table.strings.length)
    this.#present = presentOf(table)
    this.#cache.clear()
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

  #columns(batch: FlowBatch, _table: NetworkTable, names: readonly StringColumn[], out: Uint32Array[]): void {
    const present = this.#present
    out.length = present.length
    for (let j = 0; j < present.length; j++) out[j] = batch.stringIndexes(names[present[j]!]!)
  }

  #side(
    batch: FlowBatch,
    rows: number,
    table: NetworkTable,
    addresses: Uint8Array,
    columns: Uint32Array[],
    asns: Uint32Array,
    gen: number,
  ): void {
    let hits = 0
    const cache = this.#cache
    const words = addressWords(addresses)
    const present = this.#present
    for (let r = 0; r < rows; r++) {
      const probe = cache.probe(words, addresses, r)
      let record: NetworkRecord | null | undefined
      if (probe >= 0) record = cache.value(probe)
      else {
        record = table.lookup(addresses, r * 16) ?? null
        cache.claim(~probe)
        cache.set(~probe, 0, record)
      }
      if (record === undefined || record === null) continue
      hits++
      const indexes = record.generation === gen ? record.indexes : this.#intern(batch, record, gen)
      for (let j = 0; j < present.length; j++) {
        const index = indexes[present[j]!]!
        // An unset attribute leaves the column alone: GeoIP's country stays when a network has none.
        if (index !== 0) columns[j]![r] = index
      }
      if (record.asn !== 0) asns[r] = record.asn
    }
    this.#hits += hits
    this.#misses += rows - hits
  }

  /** Fills the record's batch indexes, interning each distinct value once per batch. */
  #intern(batch: FlowBatch, record: NetworkRecord, gen: number): Uint32Array {
    const indexes = record.indexes
    const ids = record.ids
    const stamps = this.#stamps
    const known = this.#indexes
    const strings = record.strings
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      if (id === 0) indexes[i] = 0
      else if (stamps[id] === gen) indexes[i] = known[id]!
      else {
        indexes[i] = known[id] = batch.intern(strings[i]!)
        stamps[id] = gen
      }
    }
    record.generation = gen
    return indexes
  }

  counts(): Readonly<Record<string, number>> {
    return { hits: this.#hits, misses: this.#misses, replaced: this.#replaced }
  }
}


function presentOf(table: NetworkTable): Int32Array {
  const positions: number[] = []
  networkStringAttributes.forEach((a, i) => {
    if (table.present.has(a)) positions.push(i)
  })
  return Int32Array.from(positions)
}
