// The BMP collector without sockets: each router's byte stream is framed into BMP messages and
// applied to the RIB; peers going down keep their routes for a grace time, reconnections replace them.
import { formatIP } from '@flowbus/bus-schemas'
import { BgpDecodeError, decodeUpdate, familyOf, type Family, type OpenCapabilities } from '../bgp/update.js'
import { Rib } from '../rib/rib.js'
import { BmpDecodeError, bmpMessageLength, decodeBmpMessage, type PerPeerHeader, PeerType } from './messages.js'

/** Closes a session: the stream cannot be trusted any more (malformed input or termination). */
export class BmpSessionError extends Error {
  readonly reason: string
  constructor(reason: string, message: string) {
    super(message)
    this.name = 'BmpSessionError'
    this.reason = reason
  }
}

export interface CollectorOptions {
  /** How long a peer's routes stay after peer down or session close (0: removed at once). */
  readonly graceMs: number
  /** Runs fn after ms; returns a cancel function. Tests and the actor pass their own. */
  readonly schedule?: (ms: number, fn: () => void) => () => void
  /** Called with each session error (the owner logs it and closes the connection). */
  readonly onSessionError?: (router: string, error: BmpSessionError) => void
}

/** What the collector counted, read by the metrics and the tests. */
export class CollectorTally {
  readonly messages = new Map<string, number>()
  readonly errors = new Map<string, number>()
  /** Address families skipped (MP_REACH/MP_UNREACH of other AFI/SAFI), as "afi/safi". */
  readonly skippedFamilies = new Map<string, number>()
  readonly endOfRib = new Map<Family | string, number>()
  updates = 0
  announced = 0
  withdrawn = 0
  /** Routes flushed by peer removal and by replaced (stale) incarnations. */
  flushed = 0
  sessionsOpened = 0
  sessionsClosed = 0
  add(map: Map<string, number>, key: string, n = 1): void {
    map.set(key, (map.get(key) ?? 0) + n)
  }
}

interface SessionPeer {
  readonly id: number
  /** ADD-PATH receive per family, from the peer up OPEN messages. */
  addPath: Set<Family>
  /** The incarnation this one replaces: flushed family by family as End-of-RIB arrives. */
  replaces: number | undefined
}

const defaultSchedule = (ms: number, fn: () => void): (() => void) => {
  const timer = setTimeout(fn, ms)
  timer.unref?.()
  return () => clearTimeout(timer)
}

/** The families a session may send with path ids: the peer sends them, the router receives them. */
const addPathFamilies = (sent: OpenCapabilities, received: OpenCapabilities): Set<Family> => {
  const out = new Set<Family>()
  for (const family of ['ipv4', 'ipv6'] as const) {
    if (((received.addPath.get(family) ?? 0) & 2) !== 0 && ((sent.addPath.get(family) ?? 0) & 1) !== 0) out.add(family)
  }
  return out
}

export class BmpCollector {
  readonly rib: Rib
  readonly tally = new CollectorTally()
  /** The current incarnation of each peer key, across sessions. */
  private readonly current = new Map<string, number>()
  /** Removal timers of peers that went down. */
  private readonly removals = new Map<number, () => void>()
  private readonly schedule: (ms: number, fn: () => void) => () => void
  readonly sessions = new Set<BmpSession>()

  constructor(
    readonly options: CollectorOptions,
    rib: Rib = new Rib(),
  ) {
    this.rib = rib
    this.schedule = options.schedule ?? defaultSchedule
  }

  /** A session for a router connected from `routerAddress` (16 bytes). */
  openSession(routerAddress: Uint8Array): BmpSession {
    const session = new BmpSession(this, routerAddress)
    this.sessions.add(session)
    this.tally.sessionsOpened++
    return session
  }

  /** @internal A new incarnation of a peer; the previous one (if any) is replaced. */
  peerUp(key: string, routerAddress: Uint8Array, header: PerPeerHeader): { id: number; replaces: number | undefined } {
    const previous = this.current.get(key)
    const id = this.rib.addPeer({
      key,
      routerAddress,
      address: header.address,
      asn: header.asn,
      peerType: header.peerType,
      postPolicy: header.postPolicy,
    })
    this.current.set(key, id)
    if (previous !== undefined) {
      // Its routes stay until the new incarnation's End-of-RIB (or the grace time) says which are stale.
      this.peerDown(previous)
    }
    return { id, replaces: previous }
  }

  /**
   * @internal Whether the id is still the current incarnation of the key: a session's entry goes
   * stale when another session of the same router replaced the peer (its id may be reused).
   */
  isCurrent(key: string, id: number): boolean {
    return this.current.get(key) === id
  }

  /** @internal The peer keeps its routes for the grace time, ranked after live peers. */
  peerDown(id: number): void {
    const peer = this.rib.peer(id)
    if (!peer || this.removals.has(id)) return
    this.rib.setPeerUp(id, false)
    if (this.options.graceMs <= 0) {
      this.removePeer(id)
      return
    }
    this.removals.set(
      id,
      this.schedule(this.options.graceMs, () => {
        this.removals.delete(id)
        this.removePeer(id)
      }),
    )
  }

  /** @internal Removes a peer and its routes now. */
  removePeer(id: number): void {
    const peer = this.rib.peer(id)
    if (!peer) return
    this.removals.get(id)?.()
    this.removals.delete(id)
    if (this.current.get(peer.key) === id) this.current.delete(peer.key)
    this.tally.flushed += this.rib.removePeer(id)
  }

  /** @internal End-of-RIB from a new incarnation: what its predecessor still holds in that family is stale. */
  flushReplaced(key: string, previous: number, family: Family): void {
    const peer = this.rib.peer(previous)
    // Gone already (grace time), or its id now belongs to another peer: nothing of it is left.
    if (!peer || peer.key !== key || this.isCurrent(key, previous)) return
    this.tally.flushed += this.rib.flush(previous, family)
    if (peer.routes.ipv4 === 0 && peer.routes.ipv6 === 0) this.removePeer(previous)
  }

  /** @internal */
  sessionClosed(session: BmpSession): void {
    if (this.sessions.delete(session)) this.tally.sessionsClosed++
  }

  /** Removes every peer now and cancels timers (actor stop). */
  close(): void {
    for (const session of [...this.sessions]) session.close()
    for (const id of this.rib.peerIds()) this.removePeer(id)
  }
}

/**
 * One router's BMP session: `feed` takes bytes as they arrive, applies whole messages, and throws
 * BmpSessionError when the stream is malformed or terminated (the owner then closes the socket
 * and calls `close`). An UPDATE is decoded completely before any of it touches the RIB.
 */
export class BmpSession {
  readonly router: string
  sysName = ''
  private buffer = new Uint8Array(64 * 1024)
  private start = 0
  private end = 0
  private readonly peers = new Map<string, SessionPeer>()
  private closed = false

  constructor(
    private readonly collector: BmpCollector,
    readonly routerAddress: Uint8Array,
  ) {
    this.router = formatIP(routerAddress)
  }

  /** Peers of this session (current incarnations), for tests and the debug view. */
  peerIds(): number[] {
    return [...this.peers.values()].map((p) => p.id)
  }

  feed(chunk: Uint8Array): void {
    if (this.closed) return
    this.append(chunk)
    try {
      for (;;) {
        const length = bmpMessageLength(this.buffer, this.start, this.end)
        if (length < 0 || this.end - this.start < length) break
        const message = this.buffer.subarray(this.start, this.start + length)
        this.start += length
        this.handle(message)
      }
    } catch (error) {
      throw this.fail(error)
    }
  }

  private fail(error: unknown): BmpSessionError {
    const tally = this.collector.tally
    const sessionError =
      error instanceof BmpSessionError
        ? error
        : error instanceof BmpDecodeError || error instanceof BgpDecodeError
          ? new BmpSessionError(error.reason, `BMP session from ${this.router}: ${error.message}`)
          : new BmpSessionError('internal-error', `BMP session from ${this.router}: ${(error as Error)?.stack ?? String(error)}`)
    tally.add(tally.errors, sessionError.reason)
    this.collector.options.onSessionError?.(this.router, sessionError)
    this.close()
    return sessionError
  }

  private append(chunk: Uint8Array): void {
    if (this.start === this.end) this.start = this.end = 0
    if (this.end + chunk.length > this.buffer.length) {
      const pending = this.end - this.start
      const needed = pending + chunk.length
      if (needed > this.buffer.length) {
        const next = new Uint8Array(Math.max(needed, this.buffer.length * 2))
        next.set(this.buffer.subarray(this.start, this.end))
        this.buffer = next
      } else this.buffer.copyWithin(0, this.start, this.end)
      this.start = 0
      this.end = pending
    }
    this.buffer.set(chunk, this.end)
    this.end += chunk.length
  }

  private peerKey(header: PerPeerHeader): string {
    return [this.router, header.peerType, header.distinguisher, formatIP(header.address), header.postPolicy ? 'post' : 'pre', header.adjRibOut ? 'out' : 'in'].join('|')
  }

  private handle(bytes: Uint8Array): void {
    const message = decodeBmpMessage(bytes)
    const tally = this.collector.tally
    tally.add(tally.messages, message.type)
    switch (message.type) {
      case 'initiation':
        this.sysName = message.sysName
        return
      case 'termination':
        throw new BmpSessionError('terminated', `BMP session from ${this.router} terminated by the router (reason ${message.reason ?? 'none'})`)
      case 'peer-up': {
        const key = this.peerKey(message.peer)
        const { id, replaces } = this.collector.peerUp(key, this.routerAddress, message.peer)
        this.peers.set(key, { id, addPath: addPathFamilies(message.sent, message.received), replaces })
        return
      }
      case 'peer-down': {
        const key = this.peerKey(message.peer)
        const peer = this.peers.get(key)
        if (peer) {
          this.peers.delete(key)
          if (this.collector.isCurrent(key, peer.id)) this.collector.peerDown(peer.id)
        }
        return
      }
      case 'route-monitoring':
        this.routeMonitoring(message.peer, message.update)
        return
      default:
        // Statistics reports and route mirroring are counted, not kept.
        return
    }
  }

  private routeMonitoring(header: PerPeerHeader, bytes: Uint8Array): void {
    const key = this.peerKey(header)
    let peer = this.peers.get(key)
    const update = decodeUpdate(bytes, 0, bytes.length, {
      asn4: !header.legacyAsPath,
      addPath: (family) => peer?.addPath.has(family) ?? false,
    })
    const tally = this.collector.tally
    tally.updates++
    for (const family of update.skippedFamilies) tally.add(tally.skippedFamilies, family)
    if (header.peerType === PeerType.locRib && header.filtered) return
    if (!peer || !this.collector.isCurrent(key, peer.id)) {
      // Route monitoring before (or without) peer up: the peer is known from its header alone.
      // Or another session of this router replaced it: this session's routes make a new one.
      const { id, replaces } = this.collector.peerUp(key, this.routerAddress, header)
      peer = { id, addPath: peer?.addPath ?? new Set(), replaces }
      this.peers.set(key, peer)
    }
    const rib = this.collector.rib
    for (const list of update.withdrawn) tally.withdrawn += rib.withdraw(peer.id, list)
    if (update.announced.length > 0) {
      const a = update.attributes
      for (const list of update.announced) {
        // IPv4 prefixes in the UPDATE's NLRI use NEXT_HOP; MP_REACH ones (and RFC 8950 IPv4
        // over an IPv6 next hop) use the MP_REACH next hop.
        const nextHop = list.family === 'ipv4' ? (a.nextHop ?? a.mpNextHop) : a.mpNextHop
        rib.announce(peer.id, list, rib.attributes.intern(a.asPath, a.communities, a.largeCommunities, nextHop))
        tally.announced += list.count
      }
    }
    if (update.endOfRib) {
      const family = familyOf(update.endOfRib.afi, update.endOfRib.safi)
      tally.add(tally.endOfRib, family ?? `${update.endOfRib.afi}/${update.endOfRib.safi}`)
      if (family && peer.replaces !== undefined) this.collector.flushReplaced(key, peer.replaces, family)
    }
  }

  /** The connection is gone: this session's peers go down (their routes stay for the grace time). */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const [key, peer] of this.peers) if (this.collector.isCurrent(key, peer.id)) this.collector.peerDown(peer.id)
    this.peers.clear()
    this.collector.sessionClosed(this)
  }
}
