// The RIB: every BMP peer's routes in two prefix tries (IPv4, IPv6) sharing prefixes, each prefix
// holding a list of compact route slots (peer, path id, attribute set) in typed arrays.
//
// A prefix's value in the trie is the index of its first route slot; slots chain through `next`.
// Attributes are interned (attributes.ts), so a route costs 14 bytes plus its share of the trie.
import { IPV4_INDEX_16, PrefixTrie, WARM_LANES } from '@flowbus/runtime'
import type { Family, PrefixList } from '../bgp/update.js'
import { AttributeTable, type AttributeSet } from './attributes.js'

const NONE = -1
// Fields of a route slot.
const PEER = 0
const PATH_ID = 1
const ATTRIBUTES = 2
const NEXT = 3
const MAX_PEERS = 0xffff
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

const isIPv4Mapped = (b: Uint8Array, o: number): boolean =>
  b[o] === 0 && b[o + 1] === 0 && b[o + 2] === 0 && b[o + 3] === 0 && b[o + 4] === 0 && b[o + 5] === 0 &&
  b[o + 6] === 0 && b[o + 7] === 0 && b[o + 8] === 0 && b[o + 9] === 0 && b[o + 10] === 0xff && b[o + 11] === 0xff

export class Rib {
  readonly attributes = new AttributeTable()
  /**
   * First levels of 2^24 entries (80 MB each): IPv4 by /24 (a descent starts at the /24 itself or
   * the deepest node above it), IPv6 by /27 within 2000::/3, where unicast routes live.
   */
  private readonly tries = {
    ipv4: new PrefixTrie<number>(1 << 16, { ...IPV4_INDEX_16, bits: 24 }),
    ipv6: new PrefixTrie<number>(1 << 12, { base: IPV6_GLOBAL_UNICAST, baseLength: 3, bits: 24 }),
  }
  private readonly peers: (PeerState | undefined)[] = []
  private readonly freePeerIds: number[] = []
  /** Preference among peers for the same prefix (lower first), see `rankPeers`. */
  private peerRank = new Int32Array(16)

  /** Route slots, four int32 each (one cache line holds four routes): peer, path id, attributes, next. */
  private slots = new Int32Array(4 << 16)
  private slotsUsed = 0
  private freeSlot = NONE
  private routeCount = 0

  // Lookup scratch (no allocation per address).
  private readonly matchHeads: (number | undefined)[] = new Array(129)
  private readonly laneValues: (number | undefined)[] = new Array<number | undefined>(WARM_LANES).fill(undefined)
  private readonly laneHeads = new Int32Array(WARM_LANES)
  private readonly laneLengths = new Int32Array(WARM_LANES)
  private readonly laneCursor = new Int32Array(WARM_LANES)
  private readonly laneIPv4 = new Uint8Array(WARM_LANES)
  private routerFlags = new Uint8Array(16)

  /** Routes held, all peers and families. */
  get size(): number {
    return this.routeCount
  }

  get prefixCount(): { ipv4: number; ipv6: number } {
    return { ipv4: this.tries.ipv4.size, ipv6: this.tries.ipv6.size }
  }

  /** Bytes of the typed arrays holding tries and route slots (attributes not counted). */
  get structureBytes(): number {
    return (
      this.tries.ipv4.nodeBytes +
      this.tries.ipv6.nodeBytes +
      this.slots.byteLength
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

  private allocateSlot(): number {
    if (this.freeSlot !== NONE) {
      const slot = this.freeSlot
      this.freeSlot = this.slots[4 * slot + NEXT]!
      return slot
    }
    if (4 * this.slotsUsed === this.slots.length) {
      const grown = new Int32Array(this.slots.length * 2)
      grown.set(this.slots)
      this.slots = grown
    }
    return this.slotsUsed++
  }

  private releaseSlot(slot: number): void {
    this.attributes.release(this.slots[4 * slot + ATTRIBUTES]!)
    this.slots[4 * slot + NEXT] = this.freeSlot
    this.freeSlot = slot
    this.routeCount--
  }

  /**
   * Adds or replaces the peer's routes to these prefixes with one attribute set (the caller's
   * reference to `attributes` is kept by the RIB or released here).
   */
  announce(peerId: number, prefixes: PrefixList, attributes: number): void {
    const peer = this.peers[peerId]!
    const trie = this.tries[prefixes.family]
    const { addresses, lengths, pathIds } = prefixes
    for (let i = 0; i < prefixes.count; i++) {
      const pathId = pathIds ? pathIds[i]! : 0
      const head = trie.get(addresses, lengths[i]!, 16 * i)
      let slot = head ?? NONE
      while (slot !== NONE && (this.slots[4 * slot + PEER] !== peerId || this.slots[4 * slot + PATH_ID] !== (pathId | 0))) slot = this.slots[4 * slot + NEXT]!
      this.attributes.retain(attributes)
      if (slot !== NONE) {
        this.attributes.release(this.slots[4 * slot + ATTRIBUTES]!)
        this.slots[4 * slot + ATTRIBUTES] = attributes
        continue
      }
      const fresh = this.allocateSlot()
      this.slots[4 * fresh + PEER] = peerId
      this.slots[4 * fresh + PATH_ID] = pathId
      this.slots[4 * fresh + ATTRIBUTES] = attributes
      this.routeCount++
      peer.routes[prefixes.family]++
      // After the head, so the trie keeps its value for a known prefix.
      if (head === undefined) {
        this.slots[4 * fresh + NEXT] = NONE
        trie.insert(addresses, lengths[i]!, fresh, 16 * i)
      } else {
        this.slots[4 * fresh + NEXT] = this.slots[4 * head + NEXT]!
        this.slots[4 * head + NEXT] = fresh
      }
    }
    this.attributes.release(attributes)
  }

  /** Removes the peer's routes to these prefixes (absent ones are ignored). */
  withdraw(peerId: number, prefixes: PrefixList): number {
    const peer = this.peers[peerId]!
    const trie = this.tries[prefixes.family]
    const { addresses, lengths, pathIds } = prefixes
    let removed = 0
    for (let i = 0; i < prefixes.count; i++) {
      const pathId = pathIds ? pathIds[i]! : 0
      const head = trie.get(addresses, lengths[i]!, 16 * i)
      if (head === undefined) continue
      let previous = NONE
      let slot = head
      while (slot !== NONE && (this.slots[4 * slot + PEER] !== peerId || this.slots[4 * slot + PATH_ID] !== (pathId | 0))) {
        previous = slot
        slot = this.slots[4 * slot + NEXT]!
      }
      if (slot === NONE) continue
      const next = this.slots[4 * slot + NEXT]!
      if (previous !== NONE) this.slots[4 * previous + NEXT] = next
      else if (next === NONE) trie.remove(addresses, lengths[i]!, 16 * i)
      else trie.insert(addresses, lengths[i]!, next, 16 * i)
      this.releaseSlot(slot)
      peer.routes[prefixes.family]--
      removed++
    }
    return removed
  }

  /** Removes the peer's routes of one family (or all), in one pass over the trie. */
  flush(peerId: number, family?: Family): number {
    const peer = this.peers[peerId]
    if (!peer) return 0
    let removed = 0
    for (const f of family ? [family] : (['ipv4', 'ipv6'] as const)) {
      if (peer.routes[f] === 0) continue
      this.tries[f].updateAll((head) => {
        let first = head
        let previous = NONE
        let slot = head
        while (slot !== NONE) {
          const next = this.slots[4 * slot + NEXT]!
          if (this.slots[4 * slot + PEER] === peerId) {
            if (previous === NONE) first = next
            else this.slots[4 * previous + NEXT] = next
            this.releaseSlot(slot)
            removed++
          } else previous = slot
          slot = next
        }
        return first === NONE ? undefined : first
      })
      peer.routes[f] = 0
    }
    return removed
  }

  /**
   * Rewrites the route slots so that each prefix's routes sit side by side, prefixes in address
   * order: a lookup then reads one or two cache lines of routes instead of one per peer (peers
   * load their tables one after the other, so a prefix's slots lie a table apart). One pass over
   * each trie; returns the routes moved. Slot numbers from before are void.
   */
  compact(): number {
    const old = this.slots
    const fresh = new Int32Array(old.length)
    let used = 0
    for (const family of ['ipv4', 'ipv6'] as const) {
      this.tries[family].updateAll((head) => {
        const first = used
        for (let slot = head; slot !== NONE; slot = old[4 * slot + NEXT]!) {
          const at = 4 * used
          fresh[at + PEER] = old[4 * slot + PEER]!
          fresh[at + PATH_ID] = old[4 * slot + PATH_ID]!
          fresh[at + ATTRIBUTES] = old[4 * slot + ATTRIBUTES]!
          fresh[at + NEXT] = old[4 * slot + NEXT] === NONE ? NONE : used + 1
          used++
        }
        return first
      })
    }
    this.slots = fresh
    this.slotsUsed = used
    this.freeSlot = NONE
    return used
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
    const cursor = this.laneCursor
    for (let first = 0; first < count; first += WARM_LANES) {
      const lanes = Math.min(WARM_LANES, count - first)
      // Three passes over a group of addresses, so that the cache misses of one address overlap
      // those of the others: trie paths, then longest matches, then route lists in lockstep.
      const family = this.laneIPv4
      let ipv4Lanes = 0
      for (let l = 0; l < lanes; l++) {
        family[l] = isIPv4Mapped(addresses, 16 * (first + l)) ? 1 : 0
        ipv4Lanes |= family[l]! << l
      }
      const all = (1 << lanes) - 1
      // Each trie descends its own family's lanes together.
      const found = this.laneValues
      if (ipv4Lanes !== 0) this.tries.ipv4.lookupLanes(addresses, 16 * first, lanes, ipv4Lanes, found, lengths)
      if (ipv4Lanes !== all) this.tries.ipv6.lookupLanes(addresses, 16 * first, lanes, all & ~ipv4Lanes, found, lengths)
      for (let l = 0; l < lanes; l++) heads[l] = cursor[l] = found[l] ?? NONE
      for (let active = lanes; active > 0; ) {
        active = 0
        for (let l = 0; l < lanes; l++) {
          if (cursor[l] === NONE) continue
          cursor[l] = this.slots[4 * cursor[l]! + NEXT]!
          active++
        }
      }
      for (let l = 0; l < lanes; l++) {
        const i = first + l
        const offset = 16 * i
        const ipv4 = family[l] === 1
        const trie = ipv4 ? this.tries.ipv4 : this.tries.ipv6
        const hops = nextHops !== undefined && !this.zero(nextHops, offset) ? nextHops : undefined
        const head = heads[l]!
        let best = NONE
        let length = lengths[l]!
        if (head !== NONE) {
          // The longest prefix alone is enough when it has a route the rules accept.
          if (ownRouter) best = this.bestOf(head, routerFlags, hops, offset, false)
          if (best === NONE && hops !== undefined) best = this.bestOf(head, undefined, hops, offset, true)
          if (best === NONE && (ownRouter || hops !== undefined)) {
            // Rules 1 and 2 may find their route on a shorter prefix.
            const found = trie.matches(addresses, offset, this.matchHeads)
            if (ownRouter) {
              for (let k = found - 2; k >= 0 && best === NONE; k--) {
                best = this.bestOf(this.matchHeads[k]!, routerFlags, hops, offset, false)
                length = trie.matchLengths[k]!
              }
            }
            if (best === NONE && hops !== undefined) {
              for (let k = found - 2; k >= 0 && best === NONE; k--) {
                best = this.bestOf(this.matchHeads[k]!, undefined, hops, offset, true)
                length = trie.matchLengths[k]!
              }
            }
            if (best === NONE) length = lengths[l]!
          }
          if (best === NONE) best = this.bestOf(head, undefined, undefined, 0, false)
        }
        chosen[i] = best
        prefixLengths[i] = best === NONE ? 0 : length - (ipv4 ? 96 : 0)
      }
    }
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
   * Best slot of a prefix's list among routes of the flagged peers (all when undefined): a route
   * whose next hop is the flow's first (required when `requireHop`), then peer rank, then path id.
   */
  private bestOf(head: number, routerFlags: Uint8Array | undefined, nextHops: Uint8Array | undefined, offset: number, requireHop: boolean): number {
    let best = NONE
    let bestScore = 0
    for (let slot = head; slot !== NONE; slot = this.slots[4 * slot + NEXT]!) {
      const peer = this.slots[4 * slot + PEER]!
      if (routerFlags !== undefined && routerFlags[peer] === 0) continue
      let hopMatches = false
      if (nextHops !== undefined) {
        const hop = this.attributes.get(this.slots[4 * slot + ATTRIBUTES]!).nextHop
        hopMatches = hop !== undefined
        for (let j = 0; j < 16 && hopMatches; j++) hopMatches = hop![j] === nextHops[offset + j]
        if (requireHop && !hopMatches) continue
      }
      const score = (hopMatches ? 0 : MAX_PEERS) + this.peerRank[peer]!
      if (best === NONE || score < bestScore || (score === bestScore && this.slots[4 * slot + PATH_ID]! >>> 0 < this.slots[4 * best + PATH_ID]! >>> 0)) {
        best = slot
        bestScore = score
      }
    }
    return best
  }

  /** The route in a slot returned by `lookup`. */
  route(slot: number, prefixLength: number): RouteChoice {
    return {
      attributes: this.attributes.get(this.slots[4 * slot + ATTRIBUTES]!),
      prefixLength,
      peer: this.peers[this.slots[4 * slot + PEER]!]!,
      pathId: this.slots[4 * slot + PATH_ID]! >>> 0,
    }
  }

  /** Every route of a prefix (for tests and the debug view): peer id, path id, attributes. */
  routesOf(address: Uint8Array, prefixLength: number): { peer: number; pathId: number; attributes: AttributeSet }[] {
    const trie = isIPv4Mapped(address, 0) && prefixLength >= 96 ? this.tries.ipv4 : this.tries.ipv6
    const out: { peer: number; pathId: number; attributes: AttributeSet }[] = []
    for (let slot = trie.get(address, prefixLength) ?? NONE; slot !== NONE; slot = this.slots[4 * slot + NEXT]!) {
      out.push({ peer: this.slots[4 * slot + PEER]!, pathId: this.slots[4 * slot + PATH_ID]! >>> 0, attributes: this.attributes.get(this.slots[4 * slot + ATTRIBUTES]!) })
    }
    return out
  }

  /** Every prefix with its routes' peers, in address order (tests). */
  prefixes(family: Family): { address: Uint8Array; prefixLength: number; peers: number[] }[] {
    const out: { address: Uint8Array; prefixLength: number; peers: number[] }[] = []
    this.tries[family].forEach((head, address, prefixLength) => {
      const peers: number[] = []
      for (let slot = head; slot !== NONE; slot = this.slots[4 * slot + NEXT]!) peers.push(this.slots[4 * slot + PEER]!)
      out.push({ address: address.slice(), prefixLength, peers })
    })
    return out
  }
}
