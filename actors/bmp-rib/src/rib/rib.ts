// The RIB: every BMP peer's routes in two prefix tries (IPv4, IPv6) sharing prefixes, each prefix
// holding a list of compact route slots (peer, path id, attribute set) in typed arrays.
//
// A prefix's value in the trie is the index of its first route slot; slots chain through `next`.
// Attributes are interned (attributes.ts), so a route costs 14 bytes plus its share of the trie.
import { PrefixTrie } from '@flowbus/runtime'
import type { Family, PrefixList } from '../bgp/update.js'
import { AttributeTable, type AttributeSet } from './attributes.js'

const NONE = -1
const MAX_PEERS = 0xffff

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
  private readonly tries = { ipv4: new PrefixTrie<number>(1 << 16), ipv6: new PrefixTrie<number>(1 << 12) }
  private readonly peers: (PeerState | undefined)[] = []
  private readonly freePeerIds: number[] = []
  /** Preference among peers for the same prefix (lower first), see `rankPeers`. */
  private peerRank = new Int32Array(16)

  // Route slots.
  private slotPeer = new Uint16Array(1 << 16)
  private slotPathId = new Uint32Array(1 << 16)
  private slotAttributes = new Int32Array(1 << 16)
  private slotNext = new Int32Array(1 << 16)
  private slotsUsed = 0
  private freeSlot = NONE
  private routeCount = 0

  // Lookup scratch (no allocation per address).
  private readonly matchHeads: (number | undefined)[] = new Array(129)
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
      this.slotPeer.byteLength +
      this.slotPathId.byteLength +
      this.slotAttributes.byteLength +
      this.slotNext.byteLength
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
      this.freeSlot = this.slotNext[slot]!
      return slot
    }
    if (this.slotsUsed === this.slotNext.length) {
      const size = this.slotNext.length * 2
      const grow = <A extends Uint16Array | Uint32Array | Int32Array>(a: A, make: (n: number) => A): A => {
        const b = make(size)
        b.set(a)
        return b
      }
      this.slotPeer = grow(this.slotPeer, (n) => new Uint16Array(n))
      this.slotPathId = grow(this.slotPathId, (n) => new Uint32Array(n))
      this.slotAttributes = grow(this.slotAttributes, (n) => new Int32Array(n))
      this.slotNext = grow(this.slotNext, (n) => new Int32Array(n))
    }
    return this.slotsUsed++
  }

  private releaseSlot(slot: number): void {
    this.attributes.release(this.slotAttributes[slot]!)
    this.slotNext[slot] = this.freeSlot
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
      while (slot !== NONE && (this.slotPeer[slot] !== peerId || this.slotPathId[slot] !== pathId)) slot = this.slotNext[slot]!
      this.attributes.retain(attributes)
      if (slot !== NONE) {
        this.attributes.release(this.slotAttributes[slot]!)
        this.slotAttributes[slot] = attributes
        continue
      }
      const fresh = this.allocateSlot()
      this.slotPeer[fresh] = peerId
      this.slotPathId[fresh] = pathId
      this.slotAttributes[fresh] = attributes
      this.routeCount++
      peer.routes[prefixes.family]++
      // After the head, so the trie keeps its value for a known prefix.
      if (head === undefined) {
        this.slotNext[fresh] = NONE
        trie.insert(addresses, lengths[i]!, fresh, 16 * i)
      } else {
        this.slotNext[fresh] = this.slotNext[head]!
        this.slotNext[head] = fresh
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
      while (slot !== NONE && (this.slotPeer[slot] !== peerId || this.slotPathId[slot] !== pathId)) {
        previous = slot
        slot = this.slotNext[slot]!
      }
      if (slot === NONE) continue
      const next = this.slotNext[slot]!
      if (previous !== NONE) this.slotNext[previous] = next
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
          const next = this.slotNext[slot]!
          if (this.slotPeer[slot] === peerId) {
            if (previous === NONE) first = next
            else this.slotNext[previous] = next
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
   * chosen slot (or -1) to `slots` and the prefix length (address form) to `prefixLengths`.
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
    slots: Int32Array,
    prefixLengths: Uint8Array,
  ): void {
    const routerFlags = this.markRouter(exporter)
    const ownRouter = routerFlags !== undefined
    for (let i = 0; i < count; i++) {
      const offset = 16 * i
      const ipv4 = isIPv4Mapped(addresses, offset)
      const trie = ipv4 ? this.tries.ipv4 : this.tries.ipv6
      const found = trie.matches(addresses, offset, this.matchHeads)
      let best = NONE
      let bestDepth = -1
      const hops = nextHops !== undefined && !this.zero(nextHops, offset) ? nextHops : undefined
      if (found > 0 && ownRouter) {
        for (let k = found - 1; k >= 0 && best === NONE; k--) {
          best = this.bestOf(this.matchHeads[k]!, routerFlags, hops, offset, false)
          bestDepth = k
        }
      }
      if (best === NONE && found > 0 && hops !== undefined) {
        for (let k = found - 1; k >= 0 && best === NONE; k--) {
          best = this.bestOf(this.matchHeads[k]!, undefined, hops, offset, true)
          bestDepth = k
        }
      }
      if (best === NONE && found > 0) {
        best = this.bestOf(this.matchHeads[found - 1]!, undefined, undefined, 0, false)
        bestDepth = found - 1
      }
      slots[i] = best
      prefixLengths[i] = best === NONE ? 0 : trie.matchLengths[bestDepth]! - (ipv4 ? 96 : 0)
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
    for (let slot = head; slot !== NONE; slot = this.slotNext[slot]!) {
      const peer = this.slotPeer[slot]!
      if (routerFlags !== undefined && routerFlags[peer] === 0) continue
      let hopMatches = false
      if (nextHops !== undefined) {
        const hop = this.attributes.get(this.slotAttributes[slot]!).nextHop
        hopMatches = hop !== undefined
        for (let j = 0; j < 16 && hopMatches; j++) hopMatches = hop![j] === nextHops[offset + j]
        if (requireHop && !hopMatches) continue
      }
      const score = (hopMatches ? 0 : MAX_PEERS) + this.peerRank[peer]!
      if (best === NONE || score < bestScore || (score === bestScore && this.slotPathId[slot]! < this.slotPathId[best]!)) {
        best = slot
        bestScore = score
      }
    }
    return best
  }

  /** The route in a slot returned by `lookup`. */
  route(slot: number, prefixLength: number): RouteChoice {
    return {
      attributes: this.attributes.get(this.slotAttributes[slot]!),
      prefixLength,
      peer: this.peers[this.slotPeer[slot]!]!,
      pathId: this.slotPathId[slot]!,
    }
  }

  /** Every route of a prefix (for tests and the debug view): peer id, path id, attributes. */
  routesOf(address: Uint8Array, prefixLength: number): { peer: number; pathId: number; attributes: AttributeSet }[] {
    const trie = isIPv4Mapped(address, 0) && prefixLength >= 96 ? this.tries.ipv4 : this.tries.ipv6
    const out: { peer: number; pathId: number; attributes: AttributeSet }[] = []
    for (let slot = trie.get(address, prefixLength) ?? NONE; slot !== NONE; slot = this.slotNext[slot]!) {
      out.push({ peer: this.slotPeer[slot]!, pathId: this.slotPathId[slot]!, attributes: this.attributes.get(this.slotAttributes[slot]!) })
    }
    return out
  }

  /** Every prefix with its routes' peers, in address order (tests). */
  prefixes(family: Family): { address: Uint8Array; prefixLength: number; peers: number[] }[] {
    const out: { address: Uint8Array; prefixLength: number; peers: number[] }[] = []
    this.tries[family].forEach((head, address, prefixLength) => {
      const peers: number[] = []
      for (let slot = head; slot !== NONE; slot = this.slotNext[slot]!) peers.push(this.slotPeer[slot]!)
      out.push({ address: address.slice(), prefixLength, peers })
    })
    return out
  }
}
