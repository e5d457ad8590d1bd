// The RIB: every BMP peer's routes in two prefix tries (IPv4, IPv6) sharing prefixes, each prefix
// holding its routes (peer, path id, attribute set) in blocks of four, one cache line, in typed arrays.
//
// A prefix's value in the trie is its first block, fixed for the prefix's life; more than four
// routes chain further blocks. IPv4 lookups read a table by /24 first (the route block and length
// of the longest prefix covering the whole /24), the trie only when longer prefixes lie inside.
// Attributes are interned (attributes.ts), so a route costs 16 bytes plus its share of the trie.
import { PrefixTrie, LOOKUP_LANES, clearHostBits } from '@flowbus/runtime'
import type { Family, PrefixList } from '../bgp/update.js'
import { AttributeTable, type AttributeSet } from './attributes.js'

const NONE = -1
const MAX_PEERS = 0xffff
/**
 * A block: 16 int32 (64 bytes), the routes of one prefix in four slots. Slot `s` is slot `s & 3`
 * of block `s >> 2`; the fields a lookup reads (peers, then attribute sets) come first, so they
 * share a cache line even when the array is not 64-byte aligned.
 */
const BLOCK = 16
const PEER = 0 // + slot: the slot's peer id, EMPTY when unused
const ATTRIBUTES = 4 // + slot
const PATH_ID = 8 // + slot
const NEXT_BLOCK = 12 // the prefix's next block (NONE: last)
const HEAD_BLOCK = 13 // the prefix's first block (NONE: the block is free)
const META = 14 // prefix length | IPV6_FLAG (the family, for flushes by family)
const IPV6_FLAG = 0x100
const EMPTY = -1
/** Blocks are numbered below 2^26: a /24 entry packs a block number, a length and a flag. */
const MAX_BLOCKS = (1 << 26) - 2
// A /24 entry (IPv4): bit 31 set when longer prefixes lie inside the /24 (look up the trie), bits
// 26-30 the length (0-24) of the longest prefix covering the /24, bits 0-25 its block + 1 (0: none).
const DEEPER = 1 << 31
const COVER_BLOCK = (1 << 26) - 1
/** Mask of the bits of an address's second word within its /48. */
const SITE_MASK = 0xffff0000 | 0
const IPV6_GLOBAL_UNICAST = Uint8Array.of(0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

/** A peer as the RIB knows it: one RIB view (pre/post-policy, Loc-RIB) of one BGP neighbor. */
export interface PeerInfo {
  /** Identifies the view across reconnections: router, peer type, distinguisher, address, policy. */
  readonly key: string
  /** Address of the router whose BMP session announced the peer (16 bytes, IPv4 mapped). */
  readonly routerAddress: Uint8Array
  /** The neighbor's address (16 bytes; zero for Loc-RIB). */
  readonly address: Uint8Array
  readonly asn: number
  readonly peerType: number
  readonly postPolicy: boolean
}

interface PeerState extends PeerInfo {
  readonly id: number
  up: boolean
  routes: { ipv4: number; ipv6: number }
}

/** The route a lookup chose, read through the RIB until the next change. */
export interface RouteChoice {
  readonly attributes: AttributeSet
  /** On the address's own form: 0-32 for IPv4, 0-128 for IPv6. */
  readonly prefixLength: number
  readonly peer: PeerInfo
  readonly pathId: number
}

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

const readWord = (bytes: Uint8Array, at: number): number =>
  (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!

const isIPv4Mapped = (b: Uint8Array, o: number): boolean =>
  b[o] === 0 && b[o + 1] === 0 && b[o + 2] === 0 && b[o + 3] === 0 && b[o + 4] === 0 && b[o + 5] === 0 &&
  b[o + 6] === 0 && b[o + 7] === 0 && b[o + 8] === 0 && b[o + 9] === 0 && b[o + 10] === 0xff && b[o + 11] === 0xff

export class Rib {
  readonly attributes = new AttributeTable()
  /**
   * IPv4 keeps the trie's default first level (the /16s): the /24 table below answers most
   * lookups. IPv6 indexes 2000::/3 down to /27 (2^24 entries, 80 MB), where unicast routes live.
   */
  private readonly tries = {
    ipv4: new PrefixTrie<number>(1 << 16),
    ipv6: new PrefixTrie<number>(1 << 12, { base: IPV6_GLOBAL_UNICAST, baseLength: 3, bits: 24 }),
  }
  /** Per IPv4 /24: the longest prefix covering all of it, or a flag sending lookups to the trie (64 MB). */
  private readonly covers = new Int32Array(1 << 24)
  /** Per IPv4 /24: prefixes longer than /24 inside it (32 MB). */
  private readonly deeper = new Uint16Array(1 << 24)
  /**
   * IPv6 /48 prefixes (the most common IPv6 length) by their 48 bits, open addressing with linear
   * probing: three int32 per entry (the two words, the block + 1, or DEEPER with it when longer
   * prefixes lie inside the /48: the trie answers then). A lookup inside one reads one entry.
   */
  private sites = new Int32Array(3 << 4)
  private siteCount = 0
  /** Per /48 holding prefixes longer than /48: how many (rare; they send its lookups to the trie). */
  private readonly insideSites = new Map<string, number>()
  private readonly peers: (PeerState | undefined)[] = []
  private readonly freePeerIds: number[] = []
  /** Preference among peers for the same prefix (lower first), see `rankPeers`. */
  private peerRank = new Int32Array(16)

  /** Route blocks, BLOCK int32 each. */
  private blocks = new Int32Array(BLOCK << 14)
  /** Per block heading a prefix: the prefix's 16 bytes (to remove it without a trie walk). */
  private prefixBytes = new Uint8Array(16 << 14)
  private blocksUsed = 0
  private freeBlock = NONE
  private routeCount = 0

  // Lookup scratch (no allocation per address).
  private readonly matchHeads: (number | undefined)[] = new Array(129)
  private readonly laneValues: (number | undefined)[] = new Array<number | undefined>(LOOKUP_LANES).fill(undefined)
  private readonly laneHeads = new Int32Array(LOOKUP_LANES)
  private readonly laneLengths = new Int32Array(LOOKUP_LANES)
  /** The addresses of a group's lanes that need a trie descent, side by side. */
  private readonly laneAddresses = new Uint8Array(16 * LOOKUP_LANES)
  /** A batch's address indexes, IPv4 first. */
  private order = new Int32Array(1024)
  private routerFlags = new Uint8Array(16)
  private touched = 0

  /** Routes held, all peers and families. */
  get size(): number {
    return this.routeCount
  }

  get prefixCount(): { ipv4: number; ipv6: number } {
    return { ipv4: this.tries.ipv4.size, ipv6: this.tries.ipv6.size }
  }

  /** Bytes of the typed arrays holding tries, the /24 table and route blocks (attributes not counted). */
  get structureBytes(): number {
    return (
      this.tries.ipv4.nodeBytes +
      this.tries.ipv6.nodeBytes +
      this.covers.byteLength +
      this.deeper.byteLength +
      this.sites.byteLength +
      this.blocks.byteLength +
      this.prefixBytes.byteLength
    )
  }

  addPeer(info: PeerInfo): number {
    const id = this.freePeerIds.pop() ?? this.peers.length
    if (id >= MAX_PEERS) throw new Error(`the RIB holds at most ${MAX_PEERS} peers`)
    this.peers[id] = { ...info, id, up: true, routes: { ipv4: 0, ipv6: 0 } }
    this.rankPeers()
    return id
  }

  peer(id: number): (PeerInfo & { readonly up: boolean; readonly routes: { readonly ipv4: number; readonly ipv6: number } }) | undefined {
    return this.peers[id]
  }

  /** Ids of the peers held. */
  peerIds(): number[] {
    const out: number[] = []
    this.peers.forEach((p, i) => p && out.push(i))
    return out
  }

  /** A peer going down keeps its routes (grace time) but loses to live peers in lookups. */
  setPeerUp(id: number, up: boolean): void {
    const peer = this.peers[id]
    if (!peer || peer.up === up) return
    peer.up = up
    this.rankPeers()
  }

  /**
   * Orders peers for choosing among routes of one prefix: live before down, then by router
   * address, neighbor address and newest incarnation, so the choice is stable across lookups.
   */
  private rankPeers(): void {
    const live = this.peers.filter((p): p is PeerState => p !== undefined)
    live.sort(
      (a, b) =>
        Number(b.up) - Number(a.up) ||
        compareBytes(a.address, b.address) ||
        compareBytes(a.routerAddress, b.routerAddress) ||
        b.id - a.id,
    )
    if (this.peerRank.length < this.peers.length) this.peerRank = new Int32Array(this.peers.length * 2)
    live.forEach((p, rank) => (this.peerRank[p.id] = rank))
  }

  /** A block with four empty slots, chained to nothing, belonging to the prefix headed by `head` (itself: NONE). */
  private allocateBlock(head: number, meta: number): number {
    let b = this.freeBlock
    if (b !== NONE) this.freeBlock = this.blocks[BLOCK * b + NEXT_BLOCK]!
    else {
      if (this.blocksUsed >= MAX_BLOCKS) throw new RangeError(`the RIB holds at most ${MAX_BLOCKS} route blocks (${4 * MAX_BLOCKS} routes)`)
      if (BLOCK * (this.blocksUsed + 1) > this.blocks.length) {
        const grown = new Int32Array(this.blocks.length * 2)
        grown.set(this.blocks)
        this.blocks = grown
        const bytes = new Uint8Array(this.prefixBytes.length * 2)
        bytes.set(this.prefixBytes)
        this.prefixBytes = bytes
      }
      b = this.blocksUsed++
    }
    const at = BLOCK * b
    const blocks = this.blocks
    blocks[at + PEER] = blocks[at + PEER + 1] = blocks[at + PEER + 2] = blocks[at + PEER + 3] = EMPTY
    blocks[at + NEXT_BLOCK] = NONE
    blocks[at + HEAD_BLOCK] = head === NONE ? b : head
    blocks[at + META] = meta
    return b
  }

  /** Frees a block; its slots read as empty (flushes scan free blocks too). */
  private releaseBlock(b: number): void {
    const at = BLOCK * b
    const blocks = this.blocks
    blocks[at + PEER] = blocks[at + PEER + 1] = blocks[at + PEER + 2] = blocks[at + PEER + 3] = EMPTY
    blocks[at + HEAD_BLOCK] = NONE
    this.blocks[at + NEXT_BLOCK] = this.freeBlock
    this.freeBlock = b
  }

  private blockEmpty(b: number): boolean {
    const at = BLOCK * b + PEER
    const blocks = this.blocks
    return blocks[at] === EMPTY && blocks[at + 1] === EMPTY && blocks[at + 2] === EMPTY && blocks[at + 3] === EMPTY
  }

  /** Empties a slot, releasing its attribute set. */
  private clearSlot(slot: number): void {
    const at = BLOCK * (slot >> 2) + (slot & 3)
    this.attributes.release(this.blocks[at + ATTRIBUTES]!)
    this.blocks[at + PEER] = EMPTY
    this.routeCount--
  }

  /**
   * Adds or replaces the peer's routes to these prefixes with one attribute set (the caller's
   * reference to `attributes` is kept by the RIB or released here).
   */
  announce(peerId: number, prefixes: PrefixList, attributes: number): void {
    const peer = this.peers[peerId]!
    const family = prefixes.family
    const trie = this.tries[family]
    const { addresses, lengths, pathIds } = prefixes
    for (let i = 0; i < prefixes.count; i++) {
      const pathId = pathIds ? pathIds[i]! | 0 : 0
      const length = lengths[i]!
      const head = this.headOf(family, addresses, length, 16 * i)
      this.attributes.retain(attributes)
      let slot = NONE
      if (head === undefined) {
        const b = this.allocateBlock(NONE, length | (family === 'ipv6' ? IPV6_FLAG : 0))
        const bytes = this.prefixBytes
        bytes.set(addresses.subarray(16 * i, 16 * i + 16), 16 * b)
        clearHostBits(bytes.subarray(16 * b, 16 * b + 16), length)
        trie.insert(bytes, length, b, 16 * b)
        if (family === 'ipv4') this.coverAdded(b, length)
        else if (length >= 48) this.siteAdded(b, length)
        slot = 4 * b
      } else {
        // The peer's route with this path id, else the first empty slot, else a new block at the end.
        const blocks = this.blocks
        let free = NONE
        let last = head
        for (let b = head; b !== NONE; b = blocks[BLOCK * b + NEXT_BLOCK]!) {
          last = b
          for (let k = 0; k < 4; k++) {
            const peerOf = blocks[BLOCK * b + PEER + k]!
            if (peerOf === EMPTY) {
              if (free === NONE) free = 4 * b + k
            } else if (peerOf === peerId && blocks[BLOCK * b + PATH_ID + k] === pathId) {
              slot = 4 * b + k
              break
            }
          }
          if (slot !== NONE) break
        }
        if (slot !== NONE) {
          const at = BLOCK * (slot >> 2) + ATTRIBUTES + (slot & 3)
          this.attributes.release(blocks[at]!)
          blocks[at] = attributes
          continue
        }
        if (free === NONE) {
          const b = this.allocateBlock(head, blocks[BLOCK * head + META]!)
          this.blocks[BLOCK * last + NEXT_BLOCK] = b
          free = 4 * b
        }
        slot = free
      }
      const at = BLOCK * (slot >> 2) + (slot & 3)
      this.blocks[at + PEER] = peerId
      this.blocks[at + PATH_ID] = pathId
      this.blocks[at + ATTRIBUTES] = attributes
      this.routeCount++
      peer.routes[family]++
    }
    this.attributes.release(attributes)
  }

  /** Removes the peer's routes to these prefixes (absent ones are ignored). */
  withdraw(peerId: number, prefixes: PrefixList): number {
    const peer = this.peers[peerId]!
    const { addresses, lengths, pathIds } = prefixes
    const blocks = this.blocks
    let removed = 0
    for (let i = 0; i < prefixes.count; i++) {
      const pathId = pathIds ? pathIds[i]! | 0 : 0
      const head = this.headOf(prefixes.family, addresses, lengths[i]!, 16 * i)
      if (head === undefined) continue
      let slot = NONE
      for (let b = head; b !== NONE && slot === NONE; b = blocks[BLOCK * b + NEXT_BLOCK]!) {
        for (let k = 0; k < 4; k++) {
          if (blocks[BLOCK * b + PEER + k] === peerId && blocks[BLOCK * b + PATH_ID + k] === pathId) {
            slot = 4 * b + k
            break
          }
        }
      }
      if (slot === NONE) continue
      this.clearSlot(slot)
      if (this.blockEmpty(slot >> 2)) this.tidy(head)
      peer.routes[prefixes.family]--
      removed++
    }
    return removed
  }

  /**
   * First block of a prefix, undefined when absent. An IPv4 prefix up to /24 is settled by the
   * /24 table most of the time (one read instead of a trie descent): the longest prefix covering
   * its first /24 is the prefix itself when of its length, and if shorter, the prefix is absent.
   */
  private headOf(family: Family, addresses: Uint8Array, length: number, at: number): number | undefined {
    if (family === 'ipv4' && length <= 120) {
      const v = this.covers[(addresses[at + 12]! << 16) | (addresses[at + 13]! << 8) | addresses[at + 14]!]!
      const coverLength = 96 + ((v >>> 26) & 31)
      if ((v & COVER_BLOCK) === 0 || coverLength < length) return undefined
      if (coverLength === length) return (v & COVER_BLOCK) - 1
    }
    return this.tries[family].get(addresses, length, at)
  }

  /**
   * Frees the empty blocks of a prefix's chain: those after the first are unlinked; an empty first
   * block takes the next one's routes (the first block is the prefix's value in the trie and in
   * the /24 table, so it stays), or, when it was the last, the prefix goes.
   */
  private tidy(head: number): void {
    const blocks = this.blocks
    let previous = head
    for (let b = blocks[BLOCK * head + NEXT_BLOCK]!; b !== NONE; ) {
      const next = blocks[BLOCK * b + NEXT_BLOCK]!
      if (this.blockEmpty(b)) {
        blocks[BLOCK * previous + NEXT_BLOCK] = next
        this.releaseBlock(b)
      } else previous = b
      b = next
    }
    if (!this.blockEmpty(head)) return
    const next = blocks[BLOCK * head + NEXT_BLOCK]!
    if (next === NONE) {
      this.removePrefix(head)
      return
    }
    // Slot fields only: peers, attribute sets, path ids (the first twelve int32).
    blocks.copyWithin(BLOCK * head, BLOCK * next, BLOCK * next + NEXT_BLOCK)
    blocks[BLOCK * head + NEXT_BLOCK] = blocks[BLOCK * next + NEXT_BLOCK]!
    this.releaseBlock(next)
  }

  /** Removes the prefix whose first (and only, empty) block is `head`. */
  private removePrefix(head: number): void {
    const meta = this.blocks[BLOCK * head + META]!
    const length = meta & 0xff
    if ((meta & IPV6_FLAG) !== 0) {
      this.tries.ipv6.remove(this.prefixBytes, length, 16 * head)
      if (length >= 48) this.siteRemoved(head, length)
    } else {
      this.tries.ipv4.remove(this.prefixBytes, length, 16 * head)
      this.coverRemoved(head, length)
    }
    this.releaseBlock(head)
  }

  /** First /24 of an IPv4 prefix (its bytes at the block's place in prefixBytes). */
  private entryOf(b: number): number {
    const at = 16 * b
    const bytes = this.prefixBytes
    return (bytes[at + 12]! << 16) | (bytes[at + 13]! << 8) | bytes[at + 14]!
  }

  /** An IPv4 prefix was added: it covers the /24s where nothing longer (up to /24) does. */
  private coverAdded(b: number, length: number): void {
    const e = this.entryOf(b)
    if (length > 120) {
      this.deeper[e] = this.deeper[e]! + 1
      this.covers[e] = this.covers[e]! | DEEPER
      return
    }
    const bits = length - 96
    const entry = (bits << 26) | (b + 1)
    const covers = this.covers
    for (let i = e, end = e + (1 << (24 - bits)); i < end; i++) {
      const v = covers[i]!
      if ((v & COVER_BLOCK) === 0 || ((v >>> 26) & 31) < bits) covers[i] = (v & DEEPER) | entry
    }
  }

  /** An IPv4 prefix was removed from the trie: its /24s fall back to the prefix covering it. */
  private coverRemoved(b: number, length: number): void {
    const e = this.entryOf(b)
    if (length > 120) {
      this.deeper[e] = this.deeper[e]! - 1
      if (this.deeper[e] === 0) this.covers[e] = this.covers[e]! & ~DEEPER
      return
    }
    const trie = this.tries.ipv4
    const found = trie.matches(this.prefixBytes, 16 * b, this.matchHeads)
    let entry = 0
    for (let k = found - 1; k >= 0; k--) {
      if (trie.matchLengths[k]! < length) {
        entry = ((trie.matchLengths[k]! - 96) << 26) | (this.matchHeads[k]! + 1)
        break
      }
    }
    const covers = this.covers
    for (let i = e, end = e + (1 << (120 - length)); i < end; i++) {
      const v = covers[i]!
      if ((v & COVER_BLOCK) === b + 1) covers[i] = (v & DEEPER) | entry
    }
  }

  private siteSlot(k0: number, k1: number): number {
    return Math.imul(k0 ^ Math.imul(k1, 0x9e3779b1), 0x85ebca6b) >>> (Math.clz32(this.sites.length / 3) + 1)
  }

  /** Entry of the /48 (k0, k1) in `sites`, or of the empty place where it would go. */
  private siteEntry(k0: number, k1: number): number {
    const sites = this.sites
    const mask = sites.length / 3 - 1
    let i = this.siteSlot(k0, k1)
    while (sites[3 * i + 2] !== 0 && (sites[3 * i] !== k0 || sites[3 * i + 1] !== k1)) i = (i + 1) & mask
    return i
  }

  /** An IPv6 prefix of /48 or longer was added: a /48 gets its entry, a longer one flags its /48. */
  private siteAdded(b: number, length: number): void {
    const k0 = readWord(this.prefixBytes, 16 * b)
    const k1 = readWord(this.prefixBytes, 16 * b + 4) & SITE_MASK
    const key = `${k0}:${k1}`
    if (length > 48) {
      const inside = (this.insideSites.get(key) ?? 0) + 1
      this.insideSites.set(key, inside)
      const i = this.siteEntry(k0, k1)
      if (this.sites[3 * i + 2] !== 0) this.sites[3 * i + 2] = this.sites[3 * i + 2]! | DEEPER
      return
    }
    if (2 * (this.siteCount + 1) > this.sites.length / 3) this.growSites()
    const i = this.siteEntry(k0, k1)
    this.sites[3 * i] = k0
    this.sites[3 * i + 1] = k1
    this.sites[3 * i + 2] = (b + 1) | (this.insideSites.has(key) ? DEEPER : 0)
    this.siteCount++
  }

  private siteRemoved(b: number, length: number): void {
    const k0 = readWord(this.prefixBytes, 16 * b)
    const k1 = readWord(this.prefixBytes, 16 * b + 4) & SITE_MASK
    const sites = this.sites
    let i = this.siteEntry(k0, k1)
    if (length > 48) {
      const key = `${k0}:${k1}`
      const inside = this.insideSites.get(key)! - 1
      if (inside > 0) this.insideSites.set(key, inside)
      else {
        this.insideSites.delete(key)
        if (sites[3 * i + 2] !== 0) sites[3 * i + 2] = sites[3 * i + 2]! & ~DEEPER
      }
      return
    }
    // Backward-shift deletion: entries after it move up unless their home slot lies after the hole.
    const mask = sites.length / 3 - 1
    for (let j = (i + 1) & mask; sites[3 * j + 2] !== 0; j = (j + 1) & mask) {
      const home = this.siteSlot(sites[3 * j]!, sites[3 * j + 1]!)
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue
      sites.copyWithin(3 * i, 3 * j, 3 * j + 3)
      i = j
    }
    sites[3 * i + 2] = 0
    this.siteCount--
  }

  private growSites(): void {
    const old = this.sites
    this.sites = new Int32Array(old.length * 2)
    for (let i = 0; i < old.length; i += 3) {
      if (old[i + 2] === 0) continue
      const j = this.siteEntry(old[i]!, old[i + 1]!)
      this.sites.set(old.subarray(i, i + 3), 3 * j)
    }
  }

  /**
   * Removes the peer's routes of one family (or all) in one sequential pass over the route
   * blocks (no trie walk: the prefixes left without routes are removed afterwards).
   */
  flush(peerId: number, family?: Family): number {
    const peer = this.peers[peerId]
    if (!peer) return 0
    const families = family ? [family] : (['ipv4', 'ipv6'] as const)
    if (families.every((f) => peer.routes[f] === 0)) return 0
    const blocks = this.blocks
    const attributes = this.attributes
    // -1: both families; else the META family bit wanted.
    const wanted = family === undefined ? -1 : family === 'ipv6' ? IPV6_FLAG : 0
    const emptied: number[] = []
    let removed = 0
    for (let b = 0; b < this.blocksUsed; b++) {
      const at = BLOCK * b
      if (blocks[at + PEER] !== peerId && blocks[at + PEER + 1] !== peerId && blocks[at + PEER + 2] !== peerId && blocks[at + PEER + 3] !== peerId) continue
      if (wanted !== -1 && (blocks[at + META]! & IPV6_FLAG) !== wanted) continue
      for (let k = 0; k < 4; k++) {
        if (blocks[at + PEER + k] !== peerId) continue
        attributes.release(blocks[at + ATTRIBUTES + k]!)
        blocks[at + PEER + k] = EMPTY
        removed++
      }
      if (this.blockEmpty(b)) emptied.push(blocks[at + HEAD_BLOCK]!)
    }
    this.routeCount -= removed
    // A head freed by an earlier tidy (its prefix gone) has no HEAD_BLOCK of its own any more.
    for (const head of emptied) if (blocks[BLOCK * head + HEAD_BLOCK] === head) this.tidy(head)
    for (const f of families) peer.routes[f] = 0
    return removed
  }

  /** Removes the peer and its routes; its id may be reused. */
  removePeer(peerId: number): number {
    const removed = this.flush(peerId)
    if (this.peers[peerId]) {
      this.peers[peerId] = undefined
      this.freePeerIds.push(peerId)
      this.rankPeers()
    }
    return removed
  }

  /**
   * Chooses a route for each of `count` addresses (16 bytes each in `addresses`), writing the
   * chosen slot (or -1) to `chosen` and the prefix length (address form) to `prefixLengths`.
   *
   * Preference, the first rule that finds a route wins:
   *   1. the longest prefix with a route from a peer of the exporter's own router (a BMP session
   *      whose router address is `exporter`): the exporter's own view of the path;
   *   2. the longest prefix with a route whose next hop is the flow's next hop (`nextHops`, when
   *      given: 16 bytes per address, all-zero for unknown);
   *   3. the longest prefix overall.
   * Among routes of the chosen prefix: the flow's next hop first, then live peers before peers
   * going down, the lowest neighbor address, router address, newest incarnation, lowest path id.
   */
  lookup(
    exporter: Uint8Array,
    addresses: Uint8Array,
    count: number,
    nextHops: Uint8Array | undefined,
    chosen: Int32Array,
    prefixLengths: Uint8Array,
  ): void {
    const routerFlags = this.markRouter(exporter)
    const ownRouter = routerFlags !== undefined
    const heads = this.laneHeads
    const lengths = this.laneLengths
    const covers = this.covers
    const blocks = this.blocks
    const sites = this.sites
    const siteMask = sites.length / 3 - 1
    let touched = 0
    // IPv4 addresses first, then IPv6: a group of IPv4 addresses then mostly needs the /24 table
    // alone, instead of waiting on the longer trie descents of an IPv6 address among them.
    if (this.order.length < count) this.order = new Int32Array(count)
    const order = this.order
    let ipv4Count = 0
    for (let i = 0; i < count; i++) if (isIPv4Mapped(addresses, 16 * i)) order[ipv4Count++] = i
    for (let i = 0, k = ipv4Count; i < count; i++) if (!isIPv4Mapped(addresses, 16 * i)) order[k++] = i
    const traced = this.laneAddresses
    for (let first = 0; first < count; first += LOOKUP_LANES) {
      const lanes = Math.min(LOOKUP_LANES, count - first)
      // Passes over a group of addresses, so that the cache misses of one address overlap those
      // of the others: /24 table entries, trie descents (of the addresses gathered in `traced`),
      // then the route blocks.
      let ipv4Lanes = 0
      let ipv6Lanes = 0
      for (let l = 0; l < lanes; l++) {
        const at = 16 * order[first + l]!
        if (first + l >= ipv4Count) {
          const k0 = readWord(addresses, at)
          const k1 = readWord(addresses, at + 4) & SITE_MASK
          let e = this.siteSlot(k0, k1)
          while (sites[3 * e + 2] !== 0 && (sites[3 * e] !== k0 || sites[3 * e + 1] !== k1)) e = (e + 1) & siteMask
          const v = sites[3 * e + 2]!
          if (v > 0) {
            heads[l] = v - 1
            lengths[l] = 48
            continue
          }
          ipv6Lanes |= 1 << l
        } else {
          const v = covers[(addresses[at + 12]! << 16) | (addresses[at + 13]! << 8) | addresses[at + 14]!]!
          if (v >= 0) {
            heads[l] = (v & COVER_BLOCK) - 1
            lengths[l] = 96 + (v >>> 26)
            continue
          }
          ipv4Lanes |= 1 << l
        }
        for (let j = 0; j < 16; j++) traced[16 * l + j] = addresses[at + j]!
      }
      // Each trie descends its own family's lanes together.
      const found = this.laneValues
      if (ipv4Lanes !== 0) this.tries.ipv4.lookupLanes(traced, 0, lanes, ipv4Lanes, found, lengths)
      if (ipv6Lanes !== 0) this.tries.ipv6.lookupLanes(traced, 0, lanes, ipv6Lanes, found, lengths)
      const fromTrie = ipv4Lanes | ipv6Lanes
      for (let l = 0; l < lanes; l++) {
        if (((fromTrie >>> l) & 1) !== 0) heads[l] = found[l] ?? NONE
        if (heads[l] !== NONE) touched += blocks[BLOCK * heads[l]!]!
      }
      for (let l = 0; l < lanes; l++) {
        const i = order[first + l]!
        const offset = 16 * i
        const ipv4 = first + l < ipv4Count
        const hops = nextHops !== undefined && !this.zero(nextHops, offset) ? nextHops : undefined
        const head = heads[l]!
        let best = NONE
        let length = lengths[l]!
        if (head !== NONE) {
          // Each rule tries the longest prefix first (enough when it has a route the rule
          // accepts), then the shorter ones, before the next rule is tried.
          const trie = ipv4 ? this.tries.ipv4 : this.tries.ipv6
          let shorter = -1
          if (ownRouter) {
            best = this.bestOf(head, routerFlags, hops, offset, false)
            if (best === NONE) {
              // The longest match is the head already tried (the shorter ones precede it).
              shorter = trie.matches(addresses, offset, this.matchHeads) - 1
              for (let k = shorter - 1; k >= 0 && best === NONE; k--) {
                best = this.bestOf(this.matchHeads[k]!, routerFlags, hops, offset, false)
                length = trie.matchLengths[k]!
              }
            }
          }
          if (best === NONE && hops !== undefined) {
            length = lengths[l]!
            best = this.bestOf(head, undefined, hops, offset, true)
            if (best === NONE) {
              if (shorter < 0) shorter = trie.matches(addresses, offset, this.matchHeads) - 1
              for (let k = shorter - 1; k >= 0 && best === NONE; k--) {
                best = this.bestOf(this.matchHeads[k]!, undefined, hops, offset, true)
                length = trie.matchLengths[k]!
              }
            }
          }
          if (best === NONE) {
            length = lengths[l]!
            best = this.bestOf(head, undefined, undefined, 0, false)
          }
        }
        chosen[i] = best
        prefixLengths[i] = best === NONE ? 0 : length - (ipv4 ? 96 : 0)
      }
    }
    // Kept, so the reads of the route blocks ahead of their use cannot be optimised away.
    this.touched = touched
  }

  private zero(bytes: Uint8Array, offset: number): boolean {
    for (let i = 0; i < 16; i++) if (bytes[offset + i] !== 0) return false
    return true
  }

  /** Flags, per peer id, the peers of BMP sessions from this router; undefined when none. */
  private markRouter(exporter: Uint8Array): Uint8Array | undefined {
    if (this.routerFlags.length < this.peers.length) this.routerFlags = new Uint8Array(this.peers.length * 2)
    const flags = this.routerFlags
    let any = false
    for (let id = 0; id < this.peers.length; id++) {
      const p = this.peers[id]
      const mine = p !== undefined && compareBytes(p.routerAddress, exporter) === 0
      flags[id] = mine ? 1 : 0
      any ||= mine
    }
    return any ? flags : undefined
  }

  /**
   * Best slot of a prefix's routes among those of the flagged peers (all when undefined): a route
   * whose next hop is the flow's first (required when `requireHop`), then peer rank, then path id.
   */
  private bestOf(head: number, routerFlags: Uint8Array | undefined, nextHops: Uint8Array | undefined, offset: number, requireHop: boolean): number {
    const blocks = this.blocks
    let best = NONE
    let bestScore = 0
    for (let b = head; b !== NONE; b = blocks[BLOCK * b + NEXT_BLOCK]!) {
      const at = BLOCK * b
      for (let k = 0; k < 4; k++) {
        const peer = blocks[at + PEER + k]!
        if (peer === EMPTY) continue
        if (routerFlags !== undefined && routerFlags[peer] === 0) continue
        let hopMatches = false
        if (nextHops !== undefined) {
          const hop = this.attributes.get(blocks[at + ATTRIBUTES + k]!).nextHop
          hopMatches = hop !== undefined
          for (let j = 0; j < 16 && hopMatches; j++) hopMatches = hop![j] === nextHops[offset + j]
          if (requireHop && !hopMatches) continue
        }
        const score = (hopMatches ? 0 : MAX_PEERS) + this.peerRank[peer]!
        if (best === NONE || score < bestScore || (score === bestScore && blocks[at + PATH_ID + k]! >>> 0 < this.pathIdOf(best))) {
          best = 4 * b + k
          bestScore = score
        }
      }
    }
    return best
  }

  private pathIdOf(slot: number): number {
    return this.blocks[BLOCK * (slot >> 2) + PATH_ID + (slot & 3)]! >>> 0
  }

  /** The route in a slot returned by `lookup`. */
  route(slot: number, prefixLength: number): RouteChoice {
    const at = BLOCK * (slot >> 2) + (slot & 3)
    return {
      attributes: this.attributes.get(this.blocks[at + ATTRIBUTES]!),
      prefixLength,
      peer: this.peers[this.blocks[at + PEER]!]!,
      pathId: this.blocks[at + PATH_ID]! >>> 0,
    }
  }

  /** Routes of the prefix whose first block is `head`: peer id, path id, attributes. */
  private routesFrom(head: number): { peer: number; pathId: number; attributes: AttributeSet }[] {
    const out: { peer: number; pathId: number; attributes: AttributeSet }[] = []
    for (let b = head; b !== NONE; b = this.blocks[BLOCK * b + NEXT_BLOCK]!) {
      for (let k = 0; k < 4; k++) {
        const at = BLOCK * b + k
        if (this.blocks[at + PEER] === EMPTY) continue
        out.push({ peer: this.blocks[at + PEER]!, pathId: this.blocks[at + PATH_ID]! >>> 0, attributes: this.attributes.get(this.blocks[at + ATTRIBUTES]!) })
      }
    }
    return out
  }

  /** Every route of a prefix (for tests and the debug view): peer id, path id, attributes. */
  routesOf(address: Uint8Array, prefixLength: number): { peer: number; pathId: number; attributes: AttributeSet }[] {
    const trie = isIPv4Mapped(address, 0) && prefixLength >= 96 ? this.tries.ipv4 : this.tries.ipv6
    const head = trie.get(address, prefixLength)
    return head === undefined ? [] : this.routesFrom(head)
  }

  /** Every prefix with its routes' peers, in address order (tests). */
  prefixes(family: Family): { address: Uint8Array; prefixLength: number; peers: number[] }[] {
    const out: { address: Uint8Array; prefixLength: number; peers: number[] }[] = []
    this.tries[family].forEach((head, address, prefixLength) => {
      out.push({ address: address.slice(), prefixLength, peers: this.routesFrom(head).map((r) => r.peer) })
    })
    return out
  }
}
