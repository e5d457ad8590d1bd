// The distinct addresses of one address column of a batch, found once per batch and shared by
// the geoip and networks stages: each looks every distinct address up once, then scatters.
import { addressWords } from './address-cache.js'

/**
 * Rows mapped to distinct addresses: row r holds distinct address `unique[r]`, first seen at row
 * `firstRow[u]`. A batch of flows repeats its busy hosts, so stages that look addresses up do
 * `count` lookups instead of one per row. Arrays grow with the largest batch and are reused.
 */
export class AddressSet {
  unique = new Int32Array(0)
  firstRow = new Int32Array(0)
  count = 0
  /** Open addressing, slot → distinct index + 1; 0 is empty. At least twice the rows, a power of two. */
  #slots = new Int32Array(0)
  #batch: object | undefined = undefined
  #rows = -1

  /** Forgets the current batch (its column may be rewritten). */
  clear(): void {
    this.#batch = undefined
    this.#rows = -1
  }

  /**
   * Maps rows [0, rows) of the batch's address column (16 bytes per row); a no-op when already
   * done for this batch since the last `clear`.
   */
  build(batch: object, column: Uint8Array, rows: number): this {
    if (this.#batch === batch && this.#rows === rows) return this
    this.#batch = batch
    this.#rows = rows
    if (this.unique.length < rows) {
      this.unique = new Int32Array(rows)
      this.firstRow = new Int32Array(rows)
    }
    let bits = 6
    while (1 << bits < rows * 2) bits++
    const size = 1 << bits
    if (this.#slots.length !== size) this.#slots = new Int32Array(size)
    else this.#slots.fill(0)
    const shift = 32 - bits
    const slots = this.#slots
    const mask = size - 1
    const unique = this.unique
    const firstRow = this.firstRow
    const words = addressWords(column)
    let count = 0
    if (words !== undefined) {
      for (let r = 0; r < rows; r++) {
        const w = r * 4
        const w0: number = words[w]!
        const w1: number = words[w + 1]!
        const w2: number = words[w + 2]!
        const w3: number = words[w + 3]!
        let slot: number = (Math.imul(w0 ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35) ^ w3, 0x9e3779b1) >>> shift)
        for (;;) {
          const u: number = slots[slot]! - 1
          if (u < 0) {
            slots[slot] = count + 1
            firstRow[count] = r
            unique[r] = count++
            break
          }
          const o = firstRow[u]! * 4
          if (words[o] === w0 && words[o + 1] === w1 && words[o + 2] === w2 && words[o + 3] === w3) {
            unique[r] = u
            break
          }
          slot = (slot + 1) & mask
        }
      }
    } else {
      // Unaligned column (or a big-endian machine): compare bytes.
      for (let r = 0; r < rows; r++) {
        const b = r * 16
        let h = 0x811c9dc5
        for (let i = 0; i < 16; i++) h = Math.imul(h ^ column[b + i]!, 0x01000193)
        let slot: number = Math.imul(h, 0x9e3779b1) >>> shift
        for (;;) {
          const u: number = slots[slot]! - 1
          if (u < 0) {
            slots[slot] = count + 1
            firstRow[count] = r
            unique[r] = count++
            break
          }
          const o = firstRow[u]! * 16
          let same = true
          for (let i = 0; i < 16 && same; i++) same = column[o + i] === column[b + i]
          if (same) {
            unique[r] = u
            break
          }
          slot = (slot + 1) & mask
        }
      }
    }
    this.count = count
    return this
  }
}
