// A path-compressed binary trie (radix tree) of IP prefixes for longest-prefix match, shared by the
// bmp-rib RIB and the enricher's network attributes. Keys are 16-byte addresses (IPv4 mapped).
//
// Nodes live in one Int32Array, eight slots each (the prefix as four 32-bit words, its length, two
// children, a has-value flag), so a node is half a cache line, the table costs no object per node,
// and a lookup allocates nothing. Values sit in a plain array indexed by node.
import { formatIP, isIPv4Mapped, parseIP } from '@flowbus/bus-schemas'

const STRIDE = 8
const LEN = 4
const CHILD0 = 5
const CHILD1 = 6
const FLAGS = 7
const NONE = -1
/** Deepest possible chain of matching prefixes: every length from 0 to 128. */
export const MAX_PREFIX_MATCHES = 129

/** Mask keeping the first `bits` (0..32) bits of a 32-bit word. */
const maskOf = (bits: number): number => (bits <= 0 ? 0 : bits >= 32 ? -1 : (-1 << (32 - bits)) | 0)

const readWord = (bytes: Uint8Array, at: number): number =>
  (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!

const checkPrefix = (address: Uint8Array, offset: number, prefixLength: number): void => {
  if (address.length < offset + 16) throw new RangeError(`a prefix address needs 16 bytes, got ${Math.max(0, address.length - offset)}`)
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 128) {
    throw new RangeError(`prefix length ${prefixLength} is not an integer 0..128`)
  }
}

export class PrefixTrie<T> {
  private nodes: Int32Array
  private values: (T | undefined)[] = []
  private freeHead = NONE
  private used = 1
  private count = 0
  /** The key being looked up or written, as four words (reused: no allocation per call). */
  private readonly key = new Int32Array(4)
  /** Node path of the last descent, for removals (parent links are not stored). */
  private readonly path = new Int32Array(MAX_PREFIX_MATCHES + 1)
  /** Prefix length of the last successful `lookup` (-1 after a miss). */
  lastMatchLength = -1
  /** Prefix lengths of the matches written by the last `matches` call, shortest first. */
  readonly matchLengths = new Uint8Array(MAX_PREFIX_MATCHES)

  constructor(initialCapacity = 1024) {
    this.nodes = new Int32Array(Math.max(2, initialCapacity) * STRIDE)
    // Node 0 is the root, the /0 prefix; it is never freed.
    this.nodes[CHILD0] = NONE
    this.nodes[CHILD1] = NONE
  }

  /** Number of prefixes holding a value. */
  get size(): number {
    return this.count
  }

  /** Nodes in use (prefixes plus branching nodes), for memory metrics. */
  get nodeCount(): number {
    return this.used
  }

  /** Bytes held by the node array (values not counted). */
  get nodeBytes(): number {
    return this.nodes.byteLength
  }

  private loadKey(address: Uint8Array, offset: number, prefixLength: number): void {
    const k = this.key
    for (let i = 0; i < 4; i++) {
      k[i] = readWord(address, offset + 4 * i) & maskOf(prefixLength - 32 * i)
    }
  }

  /** Length of the common prefix of the key and node n, capped at `limit`. */
  private common(n: number, limit: number): number {
    const nodes = this.nodes
    const base = n * STRIDE
    const k = this.key
    for (let i = 0; i < 4; i++) {
      if (32 * i >= limit) return limit
      const diff = nodes[base + i]! ^ k[i]!
      if (diff !== 0) return Math.min(limit, 32 * i + Math.clz32(diff))
    }
    return limit
  }

  private bitOfKey(position: number): number {
    return (this.key[position >>> 5]! >>> (31 - (position & 31))) & 1
  }

  private allocate(prefixLength: number): number {
    let n: number
    if (this.freeHead !== NONE) {
      n = this.freeHead
      this.freeHead = this.nodes[n * STRIDE + CHILD0]!
    } else {
      n = this.used
      if ((n + 1) * STRIDE > this.nodes.length) {
        const grown = new Int32Array(this.nodes.length * 2)
        grown.set(this.nodes)
        this.nodes = grown
      }
    }
    this.used++
    const nodes = this.nodes
    const base = n * STRIDE
    const k = this.key
    for (let i = 0; i < 4; i++) nodes[base + i] = k[i]! & maskOf(prefixLength - 32 * i)
    nodes[base + LEN] = prefixLength
    nodes[base + CHILD0] = NONE
    nodes[base + CHILD1] = NONE
    nodes[base + FLAGS] = 0
    return n
  }

  private release(n: number): void {
    this.values[n] = undefined
    this.nodes[n * STRIDE + FLAGS] = 0
    this.nodes[n * STRIDE + CHILD0] = this.freeHead
    this.freeHead = n
    this.used--
  }

  /**
   * Sets the value of a prefix (host bits beyond the length are ignored); returns the previous
   * value. The address is the 16 bytes at `offset`.
   */
  insert(address: Uint8Array, prefixLength: number, value: T, offset = 0): T | undefined {
    checkPrefix(address, offset, prefixLength)
    this.loadKey(address, offset, prefixLength)
    let n = 0
    for (;;) {
      const len = this.nodes[n * STRIDE + LEN]!
      if (len === prefixLength) return this.setValue(n, value)
      const side = this.bitOfKey(len)
      const slot = n * STRIDE + CHILD0 + side
      const c = this.nodes[slot]!
      if (c === NONE) {
        const leaf = this.allocate(prefixLength)
        this.nodes[slot] = leaf
        return this.setValue(leaf, value)
      }
      const childLen = this.nodes[c * STRIDE + LEN]!
      const shared = this.common(c, Math.min(prefixLength, childLen))
      if (shared === childLen) {
        n = c
        continue
      }
      // The key leaves the child's compressed path at `shared`: put a node there.
      const middle = this.allocate(shared)
      this.nodes[slot] = middle
      const childSide = (this.nodes[c * STRIDE + (shared >>> 5)]! >>> (31 - (shared & 31))) & 1
      this.nodes[middle * STRIDE + CHILD0 + childSide] = c
      if (shared === prefixLength) return this.setValue(middle, value)
      const leaf = this.allocate(prefixLength)
      this.nodes[middle * STRIDE + CHILD0 + (childSide ^ 1)] = leaf
      return this.setValue(leaf, value)
    }
  }

  private setValue(n: number, value: T): T | undefined {
    const flag = n * STRIDE + FLAGS
    const previous = this.nodes[flag] === 1 ? this.values[n] : undefined
    if (this.nodes[flag] !== 1) {
      this.nodes[flag] = 1
      this.count++
    }
    this.values[n] = value
    return previous
  }

  /** Node holding exactly this prefix (value or not), recording the path; -1 when absent. */
  private find(address: Uint8Array, prefixLength: number, offset: number): number {
    checkPrefix(address, offset, prefixLength)
    this.loadKey(address, offset, prefixLength)
    let n = 0
    let depth = 0
    for (;;) {
      this.path[depth++] = n
      const len = this.nodes[n * STRIDE + LEN]!
      if (len === prefixLength) return this.common(n, len) === len ? n : NONE
      if (len > prefixLength || this.common(n, len) !== len) return NONE
      n = this.nodes[n * STRIDE + CHILD0 + this.bitOfKey(len)]!
      if (n === NONE) return NONE
    }
  }

  /** Value of exactly this prefix (address: the 16 bytes at `offset`). */
  get(address: Uint8Array, prefixLength: number, offset = 0): T | undefined {
    const n = this.find(address, prefixLength, offset)
    return n !== NONE && this.nodes[n * STRIDE + FLAGS] === 1 ? this.values[n] : undefined
  }

  /** Removes exactly this prefix (address: the 16 bytes at `offset`); returns its value. */
  remove(address: Uint8Array, prefixLength: number, offset = 0): T | undefined {
    const n = this.find(address, prefixLength, offset)
    if (n === NONE || this.nodes[n * STRIDE + FLAGS] !== 1) return undefined
    const previous = this.values[n]
    this.values[n] = undefined
    this.nodes[n * STRIDE + FLAGS] = 0
    this.count--
    let depth = 0
    while (this.path[depth] !== n) depth++
    // Splice out the node, then its parent if that became a value-less node with one child.
    for (let d = depth; d > 0; d--) {
      if (!this.prune(this.path[d]!, this.path[d - 1]!)) break
    }
    return previous
  }

  /** Frees node n (child of parent) when it holds no value and has at most one child. */
  private prune(n: number, parent: number): boolean {
    const nodes = this.nodes
    const base = n * STRIDE
    if (nodes[base + FLAGS] === 1) return false
    const c0 = nodes[base + CHILD0]!
    const c1 = nodes[base + CHILD1]!
    if (c0 !== NONE && c1 !== NONE) return false
    const pSlot = parent * STRIDE + (nodes[parent * STRIDE + CHILD0] === n ? CHILD0 : CHILD1)
    nodes[pSlot] = c0 !== NONE ? c0 : c1
    this.release(n)
    return true
  }

  /**
   * Longest-prefix match of the 16 bytes at `offset`; the matched length is left in
   * `lastMatchLength` (-1 on a miss). Allocates nothing.
   */
  lookup(address: Uint8Array, offset = 0): T | undefined {
    const found = this.descend(address, offset)
    if (found === 0) {
      this.lastMatchLength = -1
      return undefined
    }
    const n = this.path[found - 1]!
    this.lastMatchLength = this.nodes[n * STRIDE + LEN]!
    return this.values[n]
  }

  /**
   * Every prefix covering the 16 bytes at `offset`, shortest first: values into `out` (which
   * callers reuse, at least MAX_PREFIX_MATCHES long), lengths into `matchLengths`; returns the count.
   */
  matches(address: Uint8Array, offset: number, out: (T | undefined)[]): number {
    const found = this.descend(address, offset)
    for (let i = 0; i < found; i++) {
      const n = this.path[i]!
      out[i] = this.values[n]
      this.matchLengths[i] = this.nodes[n * STRIDE + LEN]!
    }
    return found
  }

  /**
   * Leaves in `path` the value nodes covering the address, shortest first, and returns their
   * count. Descends by one bit per node without comparing the skipped bits, then compares the
   * address once with the last node reached: every node on the way is a prefix of that node, so
   * it covers the address exactly when its length is at most their common prefix length.
   */
  private descend(address: Uint8Array, offset: number): number {
    const nodes = this.nodes
    const path = this.path
    const q0 = readWord(address, offset)
    const q1 = readWord(address, offset + 4)
    const q2 = readWord(address, offset + 8)
    const q3 = readWord(address, offset + 12)
    let found = 0
    let n = 0
    for (;;) {
      const base = n * STRIDE
      if (nodes[base + FLAGS] === 1) path[found++] = n
      const len = nodes[base + LEN]!
      if (len === 128) break
      const word = len < 64 ? (len < 32 ? q0 : q1) : len < 96 ? q2 : q3
      const c = nodes[base + CHILD0 + ((word >>> (31 - (len & 31))) & 1)]!
      if (c === NONE) break
      n = c
    }
    const base = n * STRIDE
    let shared: number
    if (q0 !== nodes[base]) shared = Math.clz32(q0 ^ nodes[base]!)
    else if (q1 !== nodes[base + 1]) shared = 32 + Math.clz32(q1 ^ nodes[base + 1]!)
    else if (q2 !== nodes[base + 2]) shared = 64 + Math.clz32(q2 ^ nodes[base + 2]!)
    else shared = 96 + Math.clz32(q3 ^ nodes[base + 3]!)
    while (found > 0 && nodes[path[found - 1]! * STRIDE + LEN]! > shared) found--
    return found
  }

  /**
   * Replaces every value with `update(value)`, removing the prefixes for which it returns
   * undefined, in one pass without per-prefix descents (a peer's routes flushed at once).
   * Returns the number of prefixes removed.
   */
  updateAll(update: (value: T) => T | undefined): number {
    const nodes = this.nodes
    // Iterative post-order walk: each stack entry is a node; a node is finished (and possibly
    // spliced out of its parent) once both children are.
    const stack: number[] = [0]
    const parents: number[] = [NONE]
    const state: number[] = [0]
    let removed = 0
    while (stack.length > 0) {
      const top = stack.length - 1
      const n = stack[top]!
      const s = state[top]!
      if (s < 2) {
        state[top] = s + 1
        const c = nodes[n * STRIDE + CHILD0 + s]!
        if (c !== NONE) {
          stack.push(c)
          parents.push(n)
          state.push(0)
        }
        continue
      }
      stack.pop()
      state.pop()
      const parent = parents.pop()!
      if (nodes[n * STRIDE + FLAGS] === 1) {
        const next = update(this.values[n] as T)
        if (next === undefined) {
          this.values[n] = undefined
          nodes[n * STRIDE + FLAGS] = 0
          this.count--
          removed++
        } else this.values[n] = next
      }
      if (parent !== NONE) this.prune(n, parent)
    }
    return removed
  }

  /** Calls `visit` for every prefix, with a scratch address (valid during the call only). */
  forEach(visit: (value: T, address: Uint8Array, prefixLength: number) => void): void {
    const nodes = this.nodes
    const scratch = new Uint8Array(16)
    const stack: number[] = [0]
    while (stack.length > 0) {
      const n = stack.pop()!
      const base = n * STRIDE
      const c1 = nodes[base + CHILD1]!
      const c0 = nodes[base + CHILD0]!
      if (c1 !== NONE) stack.push(c1)
      if (c0 !== NONE) stack.push(c0)
      if (nodes[base + FLAGS] !== 1) continue
      for (let i = 0; i < 4; i++) {
        const w = nodes[base + i]!
        scratch[4 * i] = w >>> 24
        scratch[4 * i + 1] = (w >>> 16) & 0xff
        scratch[4 * i + 2] = (w >>> 8) & 0xff
        scratch[4 * i + 3] = w & 0xff
      }
      visit(this.values[n] as T, scratch, nodes[base + LEN]!)
    }
  }

  /** Every prefix in address order (shorter first on ties), as fresh addresses. */
  *entries(): IterableIterator<[address: Uint8Array, prefixLength: number, value: T]> {
    const out: [Uint8Array, number, T][] = []
    this.forEach((value, address, prefixLength) => out.push([address.slice(), prefixLength, value]))
    yield* out
  }

  /** Removes every prefix. */
  clear(): void {
    this.nodes = new Int32Array(1024 * STRIDE)
    this.nodes[CHILD0] = NONE
    this.nodes[CHILD1] = NONE
    this.values = []
    this.freeHead = NONE
    this.used = 1
    this.count = 0
  }
}

/** A prefix as the trie takes it: 16-byte address (IPv4 mapped) and a length 0..128. */
export interface IPPrefix {
  address: Uint8Array
  /** On the 16-byte form: an IPv4 /24 is 120. */
  prefixLength: number
}

/**
 * Parses `192.0.2.0/24` or `2001:db8::/32` (a bare address is a host prefix); IPv4 lengths are
 * moved onto the 16-byte form (+96). Host bits are cleared. Throws naming the input.
 */
export function parsePrefix(text: string): IPPrefix {
  const slash = text.indexOf('/')
  const addressText = slash < 0 ? text : text.slice(0, slash)
  const ipv4 = !addressText.includes(':')
  const address = parseIP(addressText)
  let prefixLength = ipv4 ? 32 : 128
  if (slash >= 0) {
    const lengthText = text.slice(slash + 1)
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lengthText) || Number(lengthText) > prefixLength) {
      throw new Error(`invalid prefix "${text}": the length must be 0..${prefixLength}`)
    }
    prefixLength = Number(lengthText)
  }
  if (ipv4) prefixLength += 96
  clearHostBits(address, prefixLength)
  return { address, prefixLength }
}

/** Clears the bits of the 16-byte address beyond the prefix length, in place. */
export function clearHostBits(address: Uint8Array, prefixLength: number): void {
  for (let i = 0; i < 16; i++) {
    const keep = prefixLength - 8 * i
    if (keep >= 8) continue
    address[i] = keep <= 0 ? 0 : address[i]! & (0xff << (8 - keep))
  }
}

/** Text form of a prefix: IPv4-mapped prefixes of length ≥ 96 print as IPv4 (`192.0.2.0/24`). */
export function formatPrefix(address: Uint8Array, prefixLength: number, offset = 0): string {
  if (prefixLength >= 96 && isIPv4Mapped(address, offset)) return `${formatIP(address, offset)}/${prefixLength - 96}`
  return `${formatIP(address, offset)}/${prefixLength}`
}
