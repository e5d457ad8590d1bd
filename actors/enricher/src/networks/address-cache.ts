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

/**
 * 2^bits slots, each holding one 16-byte address and `width` answers (e.g. one per GeoIP
 * source). A slot is found by hashing the address; a colliding address replaces the previous one.
 */
export class AddressCache<V> {
  readonly #shift: number
  /** Four words per slot; a slot is valid when `used` says so. */
  readonly #keys: Uint32Array
  readonly #used: Uint8Array
  readonly #values: (V | undefined)[]
  /** Words of the last probed address, copied into its slot by `claim`. */
  #w0 = 0
  #w1 = 0
  #w2 = 0
  #w3 = 0

  constructor(
    readonly width = 1,
    bits = 13,
  ) {
    const slots = 1 << bits
    this.#shift = 32 - bits
    this.#keys = new Uint32Array(slots * 4)
    this.#used = new Uint8Array(slots)
    this.#values = new Array(slots * width).fill(undefined)
  }

  /**
   * Looks row r's address up (words from addressWords, or undefined to read the bytes): returns
   * its slot when cached, else the bitwise complement (negative) of the slot to `claim`.
   */
  probe(words: Uint32Array | undefined, column: Uint8Array, r: number): number {
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
    const slot = Math.imul(w0 ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35) ^ w3, 0x9e3779b1) >>> this.#shift
    const k = slot * 4
    const keys = this.#keys
    if (this.#used[slot] === 1 && keys[k] === w0 >>> 0 && keys[k + 1] === w1 >>> 0 && keys[k + 2] === w2 >>> 0 && keys[k + 3] === w3 >>> 0) {
      return slot
    }
    this.#w0 = w0
    this.#w1 = w1
    this.#w2 = w2
    this.#w3 = w3
    return ~slot
  }

  /** Gives the slot to the address of the last probe; its answers are then set with `set`. */
  claim(slot: number): void {
    const k = slot * 4
    this.#keys[k] = this.#w0
    this.#keys[k + 1] = this.#w1
    this.#keys[k + 2] = this.#w2
    this.#keys[k + 3] = this.#w3
    this.#used[slot] = 1
  }

  /** The i-th answer stored in the slot. */
  value(slot: number, i = 0): V | undefined {
    return this.#values[slot * this.width + i]
  }

  set(slot: number, i: number, value: V | undefined): void {
    this.#values[slot * this.width + i] = value
  }

  clear(): void {
    this.#used.fill(0)
    this.#values.fill(undefined)
  }
}
