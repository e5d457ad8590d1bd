// A direct-mapped cache of address lookups: flows repeat the same hosts, and checking one slot
// is several times cheaper than walking a trie or a GeoIP tree. Used by networks and GeoIP.
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

/** Words per slot: the address as four words, then four answer words. */
export const SLOT_WORDS = 8
/** Offset of the first answer word in a slot. */
export const ANSWER = 4
/** Bit of the first answer word marking a slot in use: answers keep that word below 2^31. */
export const USED = 0x80000000

/**
 * 2^bits slots of 32 bytes in one typed array: the address, then four answer words the stage
 * defines (numbers, e.g. string ids), so that a hit reads one cache line and no object. A slot
 * is found by hashing the address; a colliding address replaces the previous one.
 */
export class AddressCache {
  readonly #shift: number
  /** SLOT_WORDS words per slot; a slot is valid when its first answer word has USED. */
  readonly slots: Uint32Array
  /** Kept so that the reads of `locate` are not optimized away. */
  #touched = 0

  constructor(bits = 13) {
    this.#shift = 32 - bits
    this.slots = new Uint32Array((1 << bits) * SLOT_WORDS)
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
   * Looks row r's address up in its slot at offset k (from `locate`): returns k when cached.
   * Otherwise the slot now holds this address without an answer, and the result is the bitwise
   * complement (negative) of k: the caller stores the answer there, its first word or-ed with USED.
   */
  probe(k: number, words: Uint32Array | undefined, column: Uint8Array, r: number): number {
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
    if (slots[k] === w0 && slots[k + 1] === w1 && slots[k + 2] === w2 && slots[k + 3] === w3 && slots[k + ANSWER]! >= USED) return k
    slots[k] = w0
    slots[k + 1] = w1
    slots[k + 2] = w2
    slots[k + 3] = w3
    slots[k + ANSWER] = 0
    return ~k
  }

  clear(): void {
    this.slots.fill(0)
  }
}
