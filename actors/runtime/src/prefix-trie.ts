// A path-compressed binary trie (radix tree) of IP prefixes for longest-prefix match, shared by the
// bmp-rib RIB and the enricher's network attributes. Keys are 16-byte addresses (IPv4 mapped).
//
// Nodes live in two Int32Arrays: the topology (length and has-value flag, two children: 16 bytes,
// four nodes per cache line, all a descent reads) and the prefixes (four 32-bit words, read once
// per lookup). No object per node, no allocation per lookup. Values sit in an array by node.
// A direct-indexed first level (by default the IPv4 /16s; the RIB uses /24s, and 2000::/3 to /27
// for IPv6) points each entry at the deepest node of its length or shorter on its path, so a
// longest match starts there instead of at the root (the top levels cost as much as the rest).
import { formatIP, isIPv4Mapped, parseIP } from '@flowbus/bus-schemas'

/** Topology slots per node: META (length | HAS_VALUE), CHILD0, CHILD1, one spare for alignment. */
const TOPO = 4
const META = 0
const CHILD0 = 1
const HAS_VALUE = 0x100
const LENGTH_MASK = 0xff
const NONE = -1
/** Deepest possible chain of matching prefixes: every length from 0 to 128. */
export const MAX_PREFIX_MATCHES = 129
/** Addresses `lookupLanes` descends at once. */
export const LOOKUP_LANES = 16

/**
 * The first level: `bits` bits of the address after the `baseLength` bits of `base` (16 bytes,
 * IPv4 mapped), one entry each. Entries cost 5 bytes: 16 bits take 320 kB, 24 bits 80 MB.
 */
export interface PrefixTrieIndex {
  readonly base: Uint8Array
  readonly baseLength: number
  readonly bits: number
}

/** The IPv4 /16s (::ffff:a.b.0.0/112), the default. */
export const IPV4_INDEX_16: PrefixTrieIndex = {
  base: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0),
  baseLength: 96,
  bits: 16,
}

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
  private topo: Int32Array
  private words: Int32Array
  private values: (T | undefined)[] = []
  private freeHead = NONE
  private used = 1
  private count = 0
  /** The key being looked up or written, as four words (reused: no allocation per call). */
  private readonly key = new Int32Array(4)
  /** Node path of the last descent (parent links are not stored). */
  private readonly path = new Int32Array(MAX_PREFIX_MATCHES + 1)
  /** Lanes of `lookupLanes`: current node and address words of each. */
  private readonly laneNode = new Int32Array(LOOKUP_LANES)
  private readonly laneWords = new Int32Array(4 * LOOKUP_LANES)
  /** Per first-level entry: node where a descent for addresses in it may start (0: the root). */
  private readonly index: Int32Array
  /** Per entry: the length of its node (kept apart: updates scan it sequentially). */
  private readonly indexLengths: Uint8Array
  /** The indexed space: words of the base prefix, masks of its bits, its length, the entries' length. */
  private readonly baseWords = new Int32Array(4)
  private readonly baseMasks = new Int32Array(4)
  private readonly baseLength: number
  private readonly indexLength: number
  /** Lanes of `lookupLanes`: index node each started from, value nodes met, their count. */
  private readonly laneStart = new Int32Array(LOOKUP_LANES)
  private readonly lanePath = new Int32Array(LOOKUP_LANES * MAX_PREFIX_MATCHES)
  private readonly laneFound = new Int32Array(LOOKUP_LANES)
  /** updateAll's walk: node and children visited, per depth. */
  private readonly walkStack = new Int32Array(MAX_PREFIX_MATCHES + 2)
  private readonly walkState = new Uint8Array(MAX_PREFIX_MATCHES + 2)
  /** Prefix length of the last successful `lookup` (-1 after a miss). */
  lastMatchLength = -1
  /** Prefix lengths of the matches written by the last `matches` call, shortest first. */
  readonly matchLengths = new Uint8Array(MAX_PREFIX_MATCHES)

  constructor(initialCapacity = 1024, index: PrefixTrieIndex = IPV4_INDEX_16) {
    const { base, baseLength, bits } = index
    if (base.length !== 16 || !Number.isInteger(baseLength) || !Number.isInteger(bits) || bits < 1 || bits > 24 || baseLength < 0 || baseLength + bits > 128) {
      throw new RangeError(`a trie index needs a 16-byte base, a length and 1..24 bits within 128, got /${baseLength} + ${bits}`)
    }
    this.baseLength = baseLength
    this.indexLength = baseLength + bits
    for (let i = 0; i < 4; i++) {
      this.baseMasks[i] = maskOf(baseLength - 32 * i)
      this.baseWords[i] = readWord(base, 4 * i) & this.baseMasks[i]!
    }
    this.index = new Int32Array(1 << bits)
    this.indexLengths = new Uint8Array(1 << bits)
    const capacity = Math.max(2, initialCapacity)
    this.topo = new Int32Array(capacity * TOPO)
    this.words = new Int32Array(capacity * 4)
    // Node 0 is the root, the /0 prefix; it is never freed.
    this.topo[CHILD0] = NONE
    this.topo[CHILD0 + 1] = NONE
  }

  /** Number of prefixes holding a value. */
  get size(): number {
    return this.count
  }

  /** Nodes in use (prefixes plus branching nodes), for memory metrics. */
  get nodeCount(): number {
    return this.used
  }

  /** Bytes held by the node arrays (values not counted). */
  get nodeBytes(): number {
    return this.topo.byteLength + this.words.byteLength
  }

  private lengthOf(n: number): number {
    return this.topo[n * TOPO + META]! & LENGTH_MASK
  }

  private hasValue(n: number): boolean {
    return (this.topo[n * TOPO + META]! & HAS_VALUE) !== 0
  }

  private loadKey(address: Uint8Array, offset: number, prefixLength: number): void {
    const k = this.key
    for (let i = 0; i < 4; i++) {
      k[i] = readWord(address, offset + 4 * i) & maskOf(prefixLength - 32 * i)
    }
  }

  /** Length of the common prefix of the key and node n, capped at `limit`. */
  private common(n: number, limit: number): number {
    const words = this.words
    const base = n * 4
    const k = this.key
    for (let i = 0; i < 4; i++) {
      if (32 * i >= limit) return limit
      const diff = words[base + i]! ^ k[i]!
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
      this.freeHead = this.topo[n * TOPO + CHILD0]!
    } else {
      n = this.used
      if ((n + 1) * TOPO > this.topo.length) {
        const topo = new Int32Array(this.topo.length * 2)
        topo.set(this.topo)
        this.topo = topo
        const words = new Int32Array(this.words.length * 2)
        words.set(this.words)
        this.words = words
      }
    }
    this.used++
    // Keeps the values array dense (a write past its end would make it holey, or a dictionary).
    this.values[n] = undefined
    const k = this.key
    for (let i = 0; i < 4; i++) this.words[n * 4 + i] = k[i]! & maskOf(prefixLength - 32 * i)
    const base = n * TOPO
    this.topo[base + META] = prefixLength
    this.topo[base + CHILD0] = NONE
    this.topo[base + CHILD0 + 1] = NONE
    return n
  }

  private release(n: number): void {
    this.values[n] = undefined
    this.topo[n * TOPO + META] = 0
    this.topo[n * TOPO + CHILD0] = this.freeHead
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
      const len = this.lengthOf(n)
      if (len === prefixLength) return this.setValue(n, value)
      const slot = n * TOPO + CHILD0 + this.bitOfKey(len)
      const c = this.topo[slot]!
      if (c === NONE) {
        const leaf = this.allocate(prefixLength)
        this.topo[slot] = leaf
        this.indexAdded(leaf)
        return this.setValue(leaf, value)
      }
      const childLen = this.lengthOf(c)
      const shared = this.common(c, Math.min(prefixLength, childLen))
      if (shared === childLen) {
        n = c
        continue
      }
      // The key leaves the child's compressed path at `shared`: put a node there.
      const middle = this.allocate(shared)
      this.topo[slot] = middle
      const childSide = (this.words[c * 4 + (shared >>> 5)]! >>> (31 - (shared & 31))) & 1
      this.topo[middle * TOPO + CHILD0 + childSide] = c
      if (shared === prefixLength) {
        this.indexAdded(middle)
        return this.setValue(middle, value)
      }
      const leaf = this.allocate(prefixLength)
      this.topo[middle * TOPO + CHILD0 + (childSide ^ 1)] = leaf
      this.indexAdded(middle)
      this.indexAdded(leaf)
      return this.setValue(leaf, value)
    }
  }

  private setValue(n: number, value: T): T | undefined {
    const meta = n * TOPO + META
    const had = (this.topo[meta]! & HAS_VALUE) !== 0
    const previous = had ? this.values[n] : undefined
    if (!had) {
      this.topo[meta]! |= HAS_VALUE
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
      const len = this.lengthOf(n)
      if (len === prefixLength) return this.common(n, len) === len ? n : NONE
      if (len > prefixLength || this.common(n, len) !== len) return NONE
      n = this.topo[n * TOPO + CHILD0 + this.bitOfKey(len)]!
      if (n === NONE) return NONE
    }
  }

  /** Value of exactly this prefix (address: the 16 bytes at `offset`). */
  get(address: Uint8Array, prefixLength: number, offset = 0): T | undefined {
    const n = this.find(address, prefixLength, offset)
    return n !== NONE && this.hasValue(n) ? this.values[n] : undefined
  }

  /** Removes exactly this prefix (address: the 16 bytes at `offset`); returns its value. */
  remove(address: Uint8Array, prefixLength: number, offset = 0): T | undefined {
    const n = this.find(address, prefixLength, offset)
    if (n === NONE || !this.hasValue(n)) return undefined
    const previous = this.values[n]
    this.values[n] = undefined
    this.topo[n * TOPO + META]! &= ~HAS_VALUE
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
    const topo = this.topo
    const base = n * TOPO
    if ((topo[base + META]! & HAS_VALUE) !== 0) return false
    const c0 = topo[base + CHILD0]!
    const c1 = topo[base + CHILD0 + 1]!
    if (c0 !== NONE && c1 !== NONE) return false
    const pSlot = parent * TOPO + (topo[parent * TOPO + CHILD0] === n ? CHILD0 : CHILD0 + 1)
    topo[pSlot] = c0 !== NONE ? c0 : c1
    // Read before release: a released node's words are stale but its length is gone.
    const length = topo[base + META]! & LENGTH_MASK
    const k0 = this.words[n * 4]!
    const k1 = this.words[n * 4 + 1]!
    const k2 = this.words[n * 4 + 2]!
    const k3 = this.words[n * 4 + 3]!
    this.release(n)
    this.indexRemoved(n, parent, length, k0, k1, k2, k3)
    return true
  }

  /**
   * First entry of the index range a node of this length and key covers, with the count in
   * `rangeCount` (0: none, the node is deeper than the index or outside its base).
   */
  private rangeOf(length: number, k0: number, k1: number, k2: number, k3: number): number {
    this.rangeCount = 0
    if (length > this.indexLength) return 0
    const b = this.baseWords
    if (length < this.baseLength) {
      // Above the base: it covers every entry when the base starts with it.
      if (((k0 ^ b[0]!) & maskOf(length)) !== 0 || ((k1 ^ b[1]!) & maskOf(length - 32)) !== 0) return 0
      if (((k2 ^ b[2]!) & maskOf(length - 64)) !== 0 || ((k3 ^ b[3]!) & maskOf(length - 96)) !== 0) return 0
      this.rangeCount = this.index.length
      return 0
    }
    const m = this.baseMasks
    if ((k0 & m[0]!) !== b[0] || (k1 & m[1]!) !== b[1] || (k2 & m[2]!) !== b[2] || (k3 & m[3]!) !== b[3]) return 0
    this.rangeCount = 1 << (this.indexLength - length)
    return this.entryOf(k0, k1, k2, k3)
  }

  private rangeCount = 0

  /** Index entry of an address inside the base (its bits after the base's). */
  private entryOf(q0: number, q1: number, q2: number, q3: number): number {
    const at = this.baseLength
    const bits = this.indexLength - at
    const i = at >>> 5
    const shift = at & 31
    const word = i === 0 ? q0 : i === 1 ? q1 : i === 2 ? q2 : q3
    if (shift + bits <= 32) return (word << shift) >>> (32 - bits)
    // The entry's bits straddle two words.
    const next = i === 0 ? q1 : i === 1 ? q2 : q3
    return (((word << shift) >>> (32 - bits)) | (next >>> (64 - shift - bits))) >>> 0
  }

  /** Node n was added: it becomes the start of the entries it covers that had a shorter one. */
  private indexAdded(n: number): void {
    const w = n * 4
    const length = this.lengthOf(n)
    const first = this.rangeOf(length, this.words[w]!, this.words[w + 1]!, this.words[w + 2]!, this.words[w + 3]!)
    const end = first + this.rangeCount
    const index = this.index
    const lengths = this.indexLengths
    for (let e = first; e < end; e++) {
      if (lengths[e]! < length) {
        index[e] = n
        lengths[e] = length
      }
    }
  }

  /** Node n (this length and key) was spliced out from under `parent`: its entries start there. */
  private indexRemoved(n: number, parent: number, length: number, k0: number, k1: number, k2: number, k3: number): void {
    const first = this.rangeOf(length, k0, k1, k2, k3)
    const end = first + this.rangeCount
    const index = this.index
    const parentLength = this.lengthOf(parent)
    for (let e = first; e < end; e++) {
      if (index[e] === n) {
        index[e] = parent
        this.indexLengths[e] = parentLength
      }
    }
  }

  /**
   * Longest-prefix match of the 16 bytes at `offset`; the matched length is left in
   * `lastMatchLength` (-1 on a miss). Allocates nothing.
   */
  lookup(address: Uint8Array, offset = 0): T | undefined {
    const q0 = readWord(address, offset)
    const q1 = readWord(address, offset + 4)
    const q2 = readWord(address, offset + 8)
    const q3 = readWord(address, offset + 12)
    const start = this.startOfWords(q0, q1, q2, q3)
    let found = this.descendWords(q0, q1, q2, q3, start)
    // Nothing at or below the index node: the match, if any, is one of its ancestors.
    if (found === 0 && start !== 0) found = this.descendWords(q0, q1, q2, q3, 0)
    if (found === 0) {
      this.lastMatchLength = -1
      return undefined
    }
    const n = this.path[found - 1]!
    this.lastMatchLength = this.lengthOf(n)
    return this.values[n]
  }

  /**
   * Every prefix covering the 16 bytes at `offset`, shortest first: values into `out` (which
   * callers reuse, at least MAX_PREFIX_MATCHES long), lengths into `matchLengths`; returns the count.
   */
  matches(address: Uint8Array, offset: number, out: (T | undefined)[]): number {
    const found = this.descend(address, offset, 0)
    for (let i = 0; i < found; i++) {
      const n = this.path[i]!
      out[i] = this.values[n]
      this.matchLengths[i] = this.lengthOf(n)
    }
    return found
  }

  /** Where a descent for the address may start: its index entry's node, else the root. */
  private startOf(address: Uint8Array, offset: number): number {
    return this.startOfWords(readWord(address, offset), readWord(address, offset + 4), readWord(address, offset + 8), readWord(address, offset + 12))
  }

  private startOfWords(q0: number, q1: number, q2: number, q3: number): number {
    const m = this.baseMasks
    const b = this.baseWords
    if ((q0 & m[0]!) !== b[0] || (q1 & m[1]!) !== b[1] || (q2 & m[2]!) !== b[2] || (q3 & m[3]!) !== b[3]) return 0
    return this.index[this.entryOf(q0, q1, q2, q3)]!
  }

  /**
   * Leaves in `path` the value nodes covering the address from `start` down (the root: all of
   * them), shortest first, and returns their count. Descends by one bit per node without comparing the skipped bits, then compares the
   * address once with the last node reached: every node on the way is a prefix of that node, so
   * it covers the address exactly when its length is at most their common prefix length.
   */
  private descend(address: Uint8Array, offset: number, start: number): number {
    return this.descendWords(readWord(address, offset), readWord(address, offset + 4), readWord(address, offset + 8), readWord(address, offset + 12), start)
  }

  private descendWords(q0: number, q1: number, q2: number, q3: number, start: number): number {
    const topo = this.topo
    const path = this.path
    let found = 0
    let n = start
    for (;;) {
      const base = n * TOPO
      const meta = topo[base + META]!
      if ((meta & HAS_VALUE) !== 0) path[found++] = n
      const len = meta & LENGTH_MASK
      if (len === 128) break
      const word = len < 64 ? (len < 32 ? q0 : q1) : len < 96 ? q2 : q3
      const c = topo[base + CHILD0 + ((word >>> (31 - (len & 31))) & 1)]!
      if (c === NONE) break
      n = c
    }
    const words = this.words
    const w = n * 4
    let shared: number
    if (q0 !== words[w]) shared = Math.clz32(q0 ^ words[w]!)
    else if (q1 !== words[w + 1]) shared = 32 + Math.clz32(q1 ^ words[w + 1]!)
    else if (q2 !== words[w + 2]) shared = 64 + Math.clz32(q2 ^ words[w + 2]!)
    else shared = 96 + Math.clz32(q3 ^ words[w + 3]!)
    while (found > 0 && this.lengthOf(path[found - 1]!) > shared) found--
    return found
  }

  /**
   * Longest-prefix match of up to LOOKUP_LANES addresses (16 bytes each from `offset`) at once: the
   * descents go one node of each per step, so their cache misses overlap instead of queueing
   * as `lookup` one address at a time would. For each lane with its bit set in `lanes` (leave out
   * addresses of the other family: they would wander this trie for nothing), writes the value to
   * `values[l]` (undefined on a miss) and the matched length to `lengths[l]` (-1 on a miss).
   */
  lookupLanes(addresses: Uint8Array, offset: number, count: number, lanes: number, values: (T | undefined)[], lengths: Int32Array): void {
    const groupSize = Math.min(count, LOOKUP_LANES)
    const topo = this.topo
    const node = this.laneNode
    const q = this.laneWords
    const path = this.lanePath
    const found = this.laneFound
    let active = 0
    for (let l = 0; l < groupSize; l++) {
      if (((lanes >>> l) & 1) === 0) {
        node[l] = -1
        continue
      }
      const at = offset + 16 * l
      const q0 = (q[4 * l] = readWord(addresses, at))
      const q1 = (q[4 * l + 1] = readWord(addresses, at + 4))
      const q2 = (q[4 * l + 2] = readWord(addresses, at + 8))
      const q3 = (q[4 * l + 3] = readWord(addresses, at + 12))
      node[l] = this.laneStart[l] = this.startOfWords(q0, q1, q2, q3)
      found[l] = 0
      active++
    }
    while (active > 0) {
      active = 0
      for (let l = 0; l < groupSize; l++) {
        const n = node[l]!
        if (n < 0) continue
        const base = n * TOPO
        const meta = topo[base + META]!
        if ((meta & HAS_VALUE) !== 0) path[l * MAX_PREFIX_MATCHES + found[l]!++] = n
        const len = meta & LENGTH_MASK
        // A finished lane keeps its last node, encoded negative.
        if (len === 128) {
          node[l] = -2 - n
          continue
        }
        const word = q[4 * l + (len >>> 5)]!
        const c = topo[base + CHILD0 + ((word >>> (31 - (len & 31))) & 1)]!
        if (c === NONE) node[l] = -2 - n
        else {
          node[l] = c
          active++
        }
      }
    }
    const words = this.words
    for (let l = 0; l < groupSize; l++) {
      if (node[l] === -1) continue
      // As in `descend`: the nodes met cover the address up to its common length with the last.
      const w = (-2 - node[l]!) * 4
      const q0 = q[4 * l]!
      const q1 = q[4 * l + 1]!
      const q2 = q[4 * l + 2]!
      let shared: number
      if (q0 !== words[w]) shared = Math.clz32(q0 ^ words[w]!)
      else if (q1 !== words[w + 1]) shared = 32 + Math.clz32(q1 ^ words[w + 1]!)
      else if (q2 !== words[w + 2]) shared = 64 + Math.clz32(q2 ^ words[w + 2]!)
      else shared = 96 + Math.clz32(q[4 * l + 3]! ^ words[w + 3]!)
      const first = l * MAX_PREFIX_MATCHES
      let k = found[l]!
      while (k > 0 && (topo[path[first + k - 1]! * TOPO + META]! & LENGTH_MASK) > shared) k--
      if (k > 0) {
        const m = path[first + k - 1]!
        values[l] = this.values[m]
        lengths[l] = topo[m * TOPO + META]! & LENGTH_MASK
      } else if (this.laneStart[l] !== 0) {
        // Nothing at or below the index node: the match, if any, is one of its ancestors.
        values[l] = this.lookup(addresses, offset + 16 * l)
        lengths[l] = this.lastMatchLength
      } else {
        values[l] = undefined
        lengths[l] = -1
      }
    }
  }

  /**
   * Replaces every value with `update(value)`, removing the prefixes for which it returns
   * undefined, in one pass without per-prefix descents (a peer's routes flushed at once).
   * Returns the number of prefixes removed.
   */
  updateAll(update: (value: T) => T | undefined): number {
    const topo = this.topo
    // Iterative post-order walk: a node is finished (and possibly spliced out of its parent)
    // once both children are. The stack is never deeper than the trie (129 nodes + the root).
    const stack = this.walkStack
    const state = this.walkState
    stack[0] = 0
    state[0] = 0
    let top = 0
    let removed = 0
    while (top >= 0) {
      const n = stack[top]!
      const s = state[top]!
      if (s < 2) {
        state[top] = s + 1
        const c = topo[n * TOPO + CHILD0 + s]!
        if (c !== NONE) {
          top++
          stack[top] = c
          state[top] = 0
        }
        continue
      }
      top--
      const meta = topo[n * TOPO + META]!
      if ((meta & HAS_VALUE) !== 0) {
        const next = update(this.values[n] as T)
        if (next === undefined) {
          this.values[n] = undefined
          topo[n * TOPO + META] = meta & ~HAS_VALUE
          this.count--
          removed++
        } else this.values[n] = next
      }
      if (top >= 0) this.prune(n, stack[top]!)
    }
    return removed
  }

  /** Calls `visit` for every prefix in address order, with a scratch address (valid during the call only). */
  forEach(visit: (value: T, address: Uint8Array, prefixLength: number) => void): void {
    const topo = this.topo
    const scratch = new Uint8Array(16)
    const stack: number[] = [0]
    while (stack.length > 0) {
      const n = stack.pop()!
      const base = n * TOPO
      const c1 = topo[base + CHILD0 + 1]!
      const c0 = topo[base + CHILD0]!
      if (c1 !== NONE) stack.push(c1)
      if (c0 !== NONE) stack.push(c0)
      if ((topo[base + META]! & HAS_VALUE) === 0) continue
      for (let i = 0; i < 4; i++) {
        const w = this.words[n * 4 + i]!
        scratch[4 * i] = w >>> 24
        scratch[4 * i + 1] = (w >>> 16) & 0xff
        scratch[4 * i + 2] = (w >>> 8) & 0xff
        scratch[4 * i + 3] = w & 0xff
      }
      visit(this.values[n] as T, scratch, topo[base + META]! & LENGTH_MASK)
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
    this.topo = new Int32Array(1024 * TOPO)
    this.words = new Int32Array(1024 * 4)
    this.topo[CHILD0] = NONE
    this.topo[CHILD0 + 1] = NONE
    this.values = []
    this.freeHead = NONE
    this.used = 1
    this.count = 0
    this.index.fill(0)
    this.indexLengths.fill(0)
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
