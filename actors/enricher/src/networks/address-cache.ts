// A direct-mapped cache of address lookups: flows repeat the same hosts, and checking one slot
// is several times cheaper than walking a trie or a GeoIP tree. Shared by networks and GeoIP.
import { endianness } from 'node:os'

const littleEndian = endianness() === 'LE'

/**
 * The address column as 32-bit words when it is 4-byte aligned on a little-endian machine (the
 * usual case), so that a probe reads an address in four word loads; undefined otherwise.
 */
export function addressWords(column: Uint8Array): Uint32Array | undefined {
  if (!littleEndian || column.byteOffset % 4 !== 0) return undefined
  return new Uint32Array(column.buffer, column.byteOffset, column.length >> 2)
}

/**
 * Words per slot: 64 bytes, the address then the answers of every stage sharing the cache. One
 * address's answers for GeoIP and networks then sit in one cache line (the used 44 bytes stay
 * within one line when the array starts 0 or 16 bytes into a line, as large allocations do),
 * where two separate caches cost two memory reads per address.
 */
export const SLOT_WORDS = 16
/** Words at the start of a slot holding its address. */
const ADDRESS_WORDS = 4

/**
 * One stage's words in every slot of a shared AddressCache: a stamp word, then `words` answer
 * words. The answer of slot k is valid when `slots[k + at] === stamp`; `invalidate()` makes
 * every answer of this part stale at once (a database or table changed) without touching the
 * slots, nor the other parts' answers.
 */
export class CachePart {
  /** Non-zero; the value valid answers carry in their stamp word. */
  stamp = 1

  constructor(
    readonly cache: AddressCache,
    /** Offset of the stamp word in a slot; the answer words follow it. */
    readonly at: number,
  ) {}

  invalidate(): void {
    this.stamp = (this.stamp + 1) >>> 0
    if (this.stamp === 0) {
      // After 2^32 - 1 invalidations a stamp would come back: forget every stamp instead.
      const slots = this.cache.slots
      for (let k = this.at; k < slots.length; k += SLOT_WORDS) slots[k] = 0
      this.stamp = 1
    }
  }
}

/**
 * 2^bits slots of 64 bytes in one typed array, shared by the stages that look addresses up
 * (GeoIP, networks): a slot holds an address and each stage's answer for it (numbers, e.g.
 * string ids), so that a hit reads one cache line and no object. A slot is found by hashing the
 * address; a colliding address replaces the previous one and every stage's answer with it.
 */
export class AddressCache {
  readonly #shift: number
  readonly slots: Uint32Array
  /** Stamp word offsets of the parts handed out, zeroed when a slot changes address. */
  #stampWords: number[] = []
  #nextWord = ADDRESS_WORDS
  /** Kept so that the reads of `locate` are not optimized away. */
  #touched = 0

  constructor(bits = 17) {
    this.#shift = 32 - bits
    this.slots = new Uint32Array((1 << bits) * SLOT_WORDS)
  }

  /** Reserves a stamp word and `words` answer words in every slot for one stage. */
  part(words: number): CachePart {
    if (this.#nextWord + 1 + words > SLOT_WORDS) throw new Error(`address cache: no room for ${words} more answer words in a ${SLOT_WORDS}-word slot`)
    const part = new CachePart(this, this.#nextWord)
    this.#stampWords.push(this.#nextWord)
    this.#nextWord += 1 + words
    return part
  }

  /**
   * Slot offsets of the addresses of rows [0, rows) into `into`, reading each slot once: the
   * loads of a batch then overlap, and the probes that follow find their slots in the processor's
   * cache instead of waiting for memory one at a time (the caches are megabytes).
   */
  locate(words: Uint32Array | undefined, column: Uint8Array, rows: number, into: Int32Array): void {
    const slots = this.slots
    const shift = this.#shift
    let touched = 0
    for (let r = 0; r < rows; r++) {
      let w0: number, w1: number, w2: number, w3: number
      if (words !== undefined) {
        const w = r * 4
        w0 = words[w]!
        w1 = words[w + 1]!
        w2 = words[w + 2]!
        w3 = words[w + 3]!
      } else {
        const o = r * 16
        w0 = column[o]! | (column[o + 1]! << 8) | (column[o + 2]! << 16) | (column[o + 3]! << 24)
        w1 = column[o + 4]! | (column[o + 5]! << 8) | (column[o + 6]! << 16) | (column[o + 7]! << 24)
        w2 = column[o + 8]! | (column[o + 9]! << 8) | (column[o + 10]! << 16) | (column[o + 11]! << 24)
        w3 = column[o + 12]! | (column[o + 13]! << 8) | (column[o + 14]! << 16) | (column[o + 15]! << 24)
      }
      const k = (Math.imul(w0 ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35) ^ w3, 0x9e3779b1) >>> shift) * SLOT_WORDS
      into[r] = k
      touched ^= slots[k]!
    }
    this.#touched = touched
  }

  /**
   * Makes the slot at offset k (from `locate`) hold row r's address: when it held another one,
   * it takes this one and every part's answer there becomes stale (stamp words zeroed). The
   * caller then checks its part's stamp word.
   */
  claim(k: number, words: Uint32Array | undefined, column: Uint8Array, r: number): void {
    let w0: number, w1: number, w2: number, w3: number
    if (words !== undefined) {
      const w = r * 4
      w0 = words[w]!
      w1 = words[w + 1]!
      w2 = words[w + 2]!
      w3 = words[w + 3]!
    } else {
      const o = r * 16
      w0 = (column[o]! | (column[o + 1]! << 8) | (column[o + 2]! << 16) | (column[o + 3]! << 24)) >>> 0
      w1 = (column[o + 4]! | (column[o + 5]! << 8) | (column[o + 6]! << 16) | (column[o + 7]! << 24)) >>> 0
      w2 = (column[o + 8]! | (column[o + 9]! << 8) | (column[o + 10]! << 16) | (column[o + 11]! << 24)) >>> 0
      w3 = (column[o + 12]! | (column[o + 13]! << 8) | (column[o + 14]! << 16) | (column[o + 15]! << 24)) >>> 0
    }
    const slots = this.slots
    if (slots[k] === w0 && slots[k + 1] === w1 && slots[k + 2] === w2 && slots[k + 3] === w3) return
    slots[k] = w0
    slots[k + 1] = w1
    slots[k + 2] = w2
    slots[k + 3] = w3
    const stamps = this.#stampWords
    for (let i = 0; i < stamps.length; i++) slots[k + stamps[i]!] = 0
  }
}
