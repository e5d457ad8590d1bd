// The strings the enricher writes into flow batches (metadata, classification, GeoIP and network
// attributes), each with a process-wide id, and their index in the string table of the batch at hand.
import type { FlowBatch } from '@flowbus/bus-schemas'

/** Distinct strings kept at most; beyond, the ids start over at the next batch (`epoch` changes). */
const LIMIT = 1 << 22

/**
 * Interning without a hash lookup per batch: a writer registers each string once (`id`), then
 * per batch asks for the id's index (`index`), a stamp check, the string being appended to the
 * table on its first use in the batch. Strings the batch came with, or that others added, are
 * found by scanning the table's new entries once. Writers call `prepare(batch)` before any
 * `index` and drop the ids they hold when `epoch` changed.
 */
export class BatchStrings {
  #ids = new Map<string, number>([['', 0]])
  #strings: string[] = ['']
  /** Per id: the batch generation its index is for, and the index. */
  #stamps = new Uint32Array(1024)
  #indexes = new Uint32Array(1024)
  #generation = 0
  #batch: FlowBatch | undefined
  /** The batch's string table when last seen, and how many of its entries were scanned or added here. */
  #table: readonly string[] | undefined
  #seen = 0
  /** Ids below this were registered when the batch's first entries were scanned; -1: no scan yet. */
  #scannedBelow = -1
  /** Changes when ids start over: ids obtained before are meaningless. */
  epoch = 0

  /** The id of a string (0 for ''), stable until `epoch` changes. */
  id(text: string): number {
    if (text === '') return 0
    let id = this.#ids.get(text)
    if (id === undefined) {
      id = this.#strings.length
      this.#strings.push(text)
      this.#ids.set(text, id)
      if (id >= this.#stamps.length) {
        const stamps = new Uint32Array(this.#stamps.length * 2)
        stamps.set(this.#stamps)
        this.#stamps = stamps
        const indexes = new Uint32Array(this.#indexes.length * 2)
        indexes.set(this.#indexes)
        this.#indexes = indexes
      }
    }
    return id
  }

  /** Makes `batch` the one `index` answers for (a no-op for the current one). */
  prepare(batch: FlowBatch): void {
    if (batch === this.#batch && batch.strings === this.#table) return
    if (this.#strings.length > LIMIT) {
      this.#ids = new Map([['', 0]])
      this.#strings = ['']
      this.epoch++
    }
    this.#batch = batch
    this.#table = batch.strings
    this.#seen = 0
    this.#scannedBelow = -1
    this.#generation++
    this.#stamps[0] = this.#generation
    this.#indexes[0] = 0
  }

  /** Index of the id's string in the prepared batch, added to its table on first use. */
  index(id: number): number {
    return this.#stamps[id] === this.#generation ? this.#indexes[id]! : this.#add(id)
  }

  #add(id: number): number {
    const batch = this.#batch!
    // Entries someone else added (or the batch came with) may hold the string already.
    const table = batch.strings
    if (table !== this.#table) this.prepare(batch)
    if (this.#scannedBelow < 0) this.#scannedBelow = this.#strings.length
    if (table.length > this.#seen) {
      const generation = this.#generation
      for (let i = this.#seen; i < table.length; i++) {
        const known = this.#ids.get(table[i]!)
        if (known !== undefined && this.#stamps[known] !== generation) {
          this.#stamps[known] = generation
          this.#indexes[known] = i
        }
      }
      this.#seen = table.length
      if (this.#stamps[id] === generation) return this.#indexes[id]!
    }
    let index: number
    if (id >= this.#scannedBelow) {
      // Registered after the batch's entries were scanned: one of them may hold it.
      index = batch.intern(this.#strings[id]!)
      if (index >= this.#seen) this.#seen = index + 1
    } else {
      index = batch.appendString(this.#strings[id]!)
      this.#seen = index + 1
    }
    this.#stamps[id] = this.#generation
    this.#indexes[id] = index
    return index
  }
}

/** Shared by every writer of the process: a string written by two stages is added once per batch. */
export const batchStrings = new BatchStrings()
