// The networks stage: source and destination network attributes (name, role, site, region,
// tenant, country, state, city, AS number) from the longest configured prefix holding the address.
import type { FlowBatch, StringColumn } from '@flowbus/bus-schemas'
import type { EnrichContext, EnrichStage } from '../stages.js'
import { batchStrings } from '../strings.js'
import { AddressCache, type CachePart, addressWords } from './address-cache.js'
import { NetworkTable, networkStringAttributes } from './table.js'

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
  /** Recent answers of the current table in the address cache: the record's serial (0: no network holds the address). */
  readonly #part: CachePart
  /** Positions (in networkStringAttributes) of the attributes some network of the table sets. */
  #present: Int32Array = new Int32Array(0)
  // Reused per batch: the column arrays of the present attributes, in #present order.
  readonly #src: Uint32Array[] = []
  readonly #dst: Uint32Array[] = []
  /** Cache slot of each row's address, per side (see AddressCache.locate). */
  #located = new Int32Array(0)

  /** Per table string id, its batchStrings id (of that epoch). */
  #ids: Uint32Array
  #epoch = -1
  /** Per record serial: the batch generation, and its present attributes' batch indexes (#present order). */
  #recordStamps: Uint32Array
  #recordIndexes: Uint32Array

  /** `cache`: the answer cache to share with the GeoIP stage (one cache line per address for both); one of its own otherwise. */
  constructor(table: NetworkTable = NetworkTable.empty, cache: AddressCache = new AddressCache()) {
    this.#part = cache.part(1)
    this.#table = table
    this.#ids = new Uint32Array(table.strings.length)
    this.#present = presentOf(table)
    this.#recordStamps = new Uint32Array(table.records.length + 1)
    this.#recordIndexes = new Uint32Array((table.records.length + 1) * this.#present.length)
  }

  get table(): NetworkTable {
    return this.#table
  }

  /** Swaps the networks at once (a remote source refreshed): the next batch sees only the new table. */
  replace(table: NetworkTable): void {
    this.#table = table
    this.#ids = new Uint32Array(table.strings.length)
    this.#epoch = -1
    this.#present = presentOf(table)
    this.#recordStamps = new Uint32Array(table.records.length + 1)
    this.#recordIndexes = new Uint32Array((table.records.length + 1) * this.#present.length)
    this.#part.invalidate()
    this.#replaced++
  }

  apply(batch: FlowBatch, rows: number, context: EnrichContext): void {
    const table = this.#table
    if (table.size === 0) return
    const gen = ++generation
    batchStrings.prepare(batch)
    if (this.#epoch !== batchStrings.epoch) {
      this.#epoch = batchStrings.epoch
      table.strings.forEach((text, i) => (this.#ids[i] = batchStrings.id(text)))
    }
    const src = batch.view('SrcAddr')
    const dst = batch.view('DstAddr')
    if (src !== undefined) {
      this.#columns(batch, srcColumns, this.#src)
      this.#side(rows, table, src, this.#src, context.networkSrcAS, gen)
    }
    if (dst !== undefined) {
      this.#columns(batch, dstColumns, this.#dst)
      this.#side(rows, table, dst, this.#dst, context.networkDstAS, gen)
    }
  }

  #columns(batch: FlowBatch, names: readonly StringColumn[], out: Uint32Array[]): void {
    const present = this.#present
    out.length = present.length
    for (let j = 0; j < present.length; j++) out[j] = batch.stringIndexes(names[present[j]!]!)
  }

  #side(
    rows: number,
    table: NetworkTable,
    addresses: Uint8Array,
    columns: Uint32Array[],
    asns: Uint32Array,
    gen: number,
  ): void {
    let hits = 0
    const cache = this.#part.cache
    const slots = cache.slots
    const at = this.#part.at
    const stamp = this.#part.stamp
    const words = addressWords(addresses)
    if (this.#located.length < rows) this.#located = new Int32Array(Math.max(rows, 2 * this.#located.length))
    const located = this.#located
    cache.locate(words, addresses, rows, located)
    const width = columns.length
    const recordStamps = this.#recordStamps
    const recordIndexes = this.#recordIndexes
    const tableASNs = table.asns
    for (let r = 0; r < rows; r++) {
      const k = located[r]! + at
      cache.claim(k - at, words, addresses, r)
      if (slots[k] !== stamp) {
        slots[k + 1] = table.lookup(addresses, r * 16)?.serial ?? 0
        slots[k] = stamp
      }
      const serial = slots[k + 1]!
      if (serial === 0) continue
      hits++
      if (recordStamps[serial] !== gen) this.#intern(table, serial, gen)
      const base = serial * width
      for (let j = 0; j < width; j++) {
        const index = recordIndexes[base + j]!
        // An unset attribute leaves the column alone: GeoIP's country stays when a network has none.
        if (index !== 0) columns[j]![r] = index
      }
      const asn = tableASNs[serial]!
      if (asn !== 0) asns[r] = asn
    }
    this.#hits += hits
    this.#misses += rows - hits
  }

  /** Fills the record's batch indexes, interning each distinct value once per batch. */
  #intern(table: NetworkTable, serial: number, gen: number): void {
    const present = this.#present
    const ids = table.ids
    const strings = this.#ids
    const from = serial * networkStringAttributes.length
    const to = serial * present.length
    for (let j = 0; j < present.length; j++) this.#recordIndexes[to + j] = batchStrings.index(strings[ids[from + present[j]!]!]!)
    this.#recordStamps[serial] = gen
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
