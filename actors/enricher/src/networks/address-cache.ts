// A direct-mapped cache of IPv4 lookups: flows repeat the same hosts, and checking one slot is
// several times cheaper than walking a trie or a GeoIP tree. IPv6 addresses are not cached.
import { endianness } from 'node:os'
import { isIPv4Mapped } from '@flowbus/bus-schemas'

const BITS = 12

/** The IPv4 address at offset as a u32, or -1 for other addresses. */
export function ipv4Key(address: Uint8Array, offset: number): number {
  if (!isIPv4Mapped(address, offset)) return -1
  return ((address[offset + 12]! << 24) | (address[offset + 13]! << 16) | (address[offset + 14]! << 8) | address[offset + 15]!) >>> 0
}

const littleEndian = endianness() === 'LE'

/**
 * The address column as 32-bit words when it is 4-byte aligned on a little-endian machine (the
 * usual case), so that `ipv4KeyAt` tests and reads an address in four word loads.
 */
export function addressWords(column: Uint8Array): Uint32Array | undefined {
  if (!littleEndian || column.byteOffset % 4 !== 0) return undefined
  return new Uint32Array(column.buffer, column.byteOffset, column.length >> 2)
}

/** Like ipv4Key for row r, from addressWords (or from the bytes when words is undefined). */
export function ipv4KeyAt(words: Uint32Array | undefined, column: Uint8Array, r: number): number {
  if (words === undefined) return ipv4Key(column, r * 16)
  const w = r * 4
  // Little-endian words of ::ffff:a.b.c.d are 0, 0, 0xffff0000, d.c.b.a.
  if (words[w] !== 0 || words[w + 1] !== 0 || words[w + 2] !== 0xffff0000) return -1
  const v = words[w + 3]!
  return ((v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0
}

/**
 * 4096 slots, each holding one address and `width` answers (e.g. one per GeoIP source). A slot
 * is found by hashing the address; a colliding address simply replaces it.
 */
export class AddressCache<V> {
  readonly #keys = new Float64Array(1 << BITS).fill(-1)
  readonly #values: (V | undefined)[]

  constructor(readonly width = 1) {
    this.#values = new Array((1 << BITS) * width).fill(undefined)
  }

  /** Slot of an IPv4 key (from ipv4Key). */
  slot(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> (32 - BITS)
  }

  /** Whether the slot holds this key's answers. */
  holds(slot: number, key: number): boolean {
    return this.#keys[slot] === key
  }

  /** The i-th answer stored in the slot. */
  value(slot: number, i = 0): V | undefined {
    return this.#values[slot * this.width + i]
  }

  /** Claims the slot for a key; its answers are then set with `set`. */
  claim(slot: number, key: number): void {
    this.#keys[slot] = key
  }

  set(slot: number, i: number, value: V | undefined): void {
    this.#values[slot * this.width + i] = value
  }

  clear(): void {
    this.#keys.fill(-1)
    this.#values.fill(undefined)
  }
}
