// Consumer-group membership over NATS KV: members heartbeat, agree on who should own each shard
// (rendezvous hashing with bounded load over the live members) and hand shards over through claims.
//
// Keys in the groups bucket, under `<stream>.<group>`:
//   `m.<member>`  heartbeat, rewritten every heartbeatMs; its server timestamp says the member is alive
//   `c.<shard>`   claim: the member that pulls the shard, written with compare-and-set
// A member pulls a shard only while it holds the claim, and deletes the claim only after its handler
// finished, so two live members never pull one shard at once and a handover keeps the shard's order.
// A member that stops heartbeating (crash, SIGKILL) is dead after memberTimeoutMs: its claims are
// taken over with compare-and-set and its unacked messages come back after the consumer's ack_wait.
// Liveness is judged on server timestamps (our own heartbeat echo gives the server clock), so
// clock skew between machines does not matter.

import type { KV, KvWatchEntry } from '@nats-io/kv'

export interface ShardRunner {
  /** Start pulling a shard this member just claimed. */
  startShard(shard: number): Promise<void>
  /** Stop pulling a shard and wait for its handler to finish. */
  stopShard(shard: number): Promise<void>
}

export interface GroupMembershipOptions {
  readonly kv: KV
  /** Key prefix `<stream>.<group>`, made of valid key tokens. */
  readonly prefix: string
  readonly memberId: string
  readonly partitions: number
  readonly heartbeatMs: number
  readonly memberTimeoutMs: number
  readonly runner: ShardRunner
}

interface LocalShard {
  state: 'claiming' | 'running' | 'stopping'
  claimRevision: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export class GroupMembership {
  /** Member id → server time (ms) of its latest heartbeat. */
  private readonly members = new Map<string, number>()
  private readonly claims = new Map<number, { owner: string; revision: number }>()
  private readonly local = new Map<number, LocalShard>()
  /** Server time of our latest heartbeat and the local time we saw it: a server clock. */
  private serverClock: { serverMs: number; localMs: number } | undefined
  private watcher: { stop(): void } | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private leaving = false
  private started = false
  private settled = false
  private settleWaiters: (() => void)[] = []
  private reconciling = false
  private reconcileAgain = false
  private readonly pending = new Set<Promise<void>>()

  private constructor(private readonly options: GroupMembershipOptions) {}

  static async join(options: GroupMembershipOptions): Promise<GroupMembership> {
    const membership = new GroupMembership(options)
    await membership.start()
    return membership
  }

  assignedShards(): number[] {
    return [...this.local.entries()]
      .filter(([, shard]) => shard.state === 'running')
      .map(([shard]) => shard)
      .sort((a, b) => a - b)
  }

  /** Stop every shard (handlers finish), then give the claims and the membership back. */
  async leave(): Promise<void> {
    if (this.leaving) return
    this.leaving = true
    clearInterval(this.heartbeat)
    await Promise.allSettled([...this.pending])
    const owned = [...this.local.entries()]
    await Promise.allSettled(owned.map(([shard]) => this.options.runner.stopShard(shard)))
    const { kv } = this.options
    await ignoreFailure(kv.delete(this.memberKey()))
    await Promise.allSettled(
      owned.map(([shard, state]) => kv.delete(this.claimKey(shard), { previousSeq: state.claimRevision })),
    )
    this.local.clear()
    this.watcher?.stop()
  }

  private async start(): Promise<void> {
    const { kv, prefix } = this.options
    // Heartbeat first: the watch then always has at least one current entry, our own, and the
    // end of its replay tells us we have seen the group's state before deciding anything.
    await this.options.kv.put(this.memberKey(), this.heartbeatValue())
    const iterator = await kv.watch({ key: `${prefix}.>` })
    this.watcher = iterator
    let caughtUp: () => void = () => {}
    const replayed = new Promise<void>((resolve) => {
      caughtUp = resolve
    })
    void (async () => {
      for await (const entry of iterator) {
        this.observe(entry)
        if (entry.isUpdate || entry.delta === 0) caughtUp()
      }
    })()
      .catch(() => {
        // The watch ends with the connection; leave() or transport close follows.
      })
      .finally(caughtUp)
    const fallback = setTimeout(caughtUp, this.options.memberTimeoutMs)
    await replayed
    clearTimeout(fallback)
    this.started = true
    this.scheduleReconcile()
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs)
    this.heartbeat.unref()
  }

  /**
   * Resolves once this member runs exactly the shards the group assigns it (the other members
   * have handed them over), or after timeoutMs: consuming goes on in the background either way.
   */
  whenSettled(timeoutMs: number): Promise<void> {
    if (this.settled) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs)
      timer.unref()
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.settleWaiters.push(done)
    })
  }

  private async beat(): Promise<void> {
    if (this.leaving) return
    await ignoreFailure(this.options.kv.put(this.memberKey(), this.heartbeatValue()))
    this.scheduleReconcile()
  }

  private heartbeatValue(): Uint8Array {
    return encoder.encode(JSON.stringify({ pid: process.pid, at: new Date().toISOString() }))
  }

  private observe(entry: KvWatchEntry): void {
    const rest = entry.key.slice(this.options.prefix.length + 1)
    const deleted = entry.operation !== 'PUT'
    if (rest.startsWith('m.')) {
      const member = rest.slice(2)
      if (deleted) this.members.delete(member)
      else {
        this.members.set(member, entry.created.getTime())
        if (member === this.options.memberId) {
          this.serverClock = { serverMs: entry.created.getTime(), localMs: Date.now() }
        }
      }
    } else if (rest.startsWith('c.')) {
      const shard = Number(rest.slice(2))
      if (!Number.isInteger(shard)) return
      if (deleted) this.claims.delete(shard)
      else this.claims.set(shard, { owner: decoder.decode(entry.value), revision: entry.revision })
    } else return
    this.scheduleReconcile()
  }

  private alive(member: string): boolean {
    if (member === this.options.memberId) return !this.leaving
    const seen = this.members.get(member)
    if (seen === undefined) return false
    // Until our own heartbeat came back we do not know the server clock: assume alive.
    if (!this.serverClock) return true
    const serverNow = this.serverClock.serverMs + (Date.now() - this.serverClock.localMs)
    return serverNow - seen <= this.options.memberTimeoutMs
  }

  private scheduleReconcile(): void {
    if (this.reconciling) {
      this.reconcileAgain = true
      return
    }
    this.reconciling = true
    queueMicrotask(() => {
      try {
        this.reconcile()
      } finally {
        this.reconciling = false
        if (this.reconcileAgain) {
          this.reconcileAgain = false
          this.scheduleReconcile()
        }
      }
    })
  }

  /** Compare who should own each shard with who does, and start the moves that close the gap. */
  private reconcile(): void {
    if (this.leaving || !this.started) return
    const me = this.options.memberId
    const live = [...this.members.keys()].filter((member) => this.alive(member))
    if (!live.includes(me)) live.push(me)
    const target = assignShards(live, this.options.partitions)
    let settled = true
    for (let shard = 0; shard < this.options.partitions; shard++) {
      const mine = target[shard] === me
      const local = this.local.get(shard)
      const claim = this.claims.get(shard)
      if (mine !== (local?.state === 'running')) settled = false
      if (local) {
        if (local.state !== 'running') continue
        if (claim && claim.owner !== me && claim.revision > local.claimRevision) {
          // Someone took the claim over: they judged us dead. Stop at once, do not touch the claim.
          this.track(this.stop(shard, undefined))
        } else if (!mine) {
          this.track(this.stop(shard, local.claimRevision))
        }
      } else if (mine) {
        if (!claim) this.track(this.claim(shard, 0))
        else if (claim.owner === me || !this.alive(claim.owner)) this.track(this.claim(shard, claim.revision))
        // Otherwise the live owner is releasing it (it computes the same target): wait for its delete.
      }
    }
    this.forgetDeadMembers(live)
    this.settled = settled
    if (settled) for (const done of this.settleWaiters.splice(0)) done()
  }

  private async claim(shard: number, expectedRevision: number): Promise<void> {
    const { kv, memberId, runner } = this.options
    const local: LocalShard = { state: 'claiming', claimRevision: 0 }
    this.local.set(shard, local)
    const key = this.claimKey(shard)
    try {
      local.claimRevision =
        expectedRevision === 0
          ? await kv.create(key, encoder.encode(memberId))
          : await kv.update(key, encoder.encode(memberId), expectedRevision)
    } catch {
      // Lost the race (or our view was stale): the watch brings the current claim, then we re-evaluate.
      this.local.delete(shard)
      return
    }
    try {
      if (this.leaving) throw new Error('leaving')
      await runner.startShard(shard)
      local.state = 'running'
    } catch {
      this.local.delete(shard)
      await ignoreFailure(kv.delete(key, { previousSeq: local.claimRevision }))
      return
    }
    this.scheduleReconcile()
  }

  /** Stop pulling a shard; give the claim back unless it was already taken from us. */
  private async stop(shard: number, claimRevision: number | undefined): Promise<void> {
    const local = this.local.get(shard)
    if (!local) return
    local.state = 'stopping'
    await ignoreFailure(this.options.runner.stopShard(shard))
    if (claimRevision !== undefined) {
      await ignoreFailure(this.options.kv.delete(this.claimKey(shard), { previousSeq: claimRevision }))
    }
    this.local.delete(shard)
    this.scheduleReconcile()
  }

  /** Heartbeat keys of members dead for long, without claims: delete them so the bucket stays small. */
  private forgetDeadMembers(live: readonly string[]): void {
    if (!this.serverClock) return
    for (const member of this.members.keys()) {
      if (live.includes(member)) continue
      const claimed = [...this.claims.values()].some((claim) => claim.owner === member)
      const seen = this.members.get(member) ?? 0
      const serverNow = this.serverClock.serverMs + (Date.now() - this.serverClock.localMs)
      if (!claimed && serverNow - seen > 3 * this.options.memberTimeoutMs) {
        this.members.delete(member)
        this.track(ignoreFailure(this.options.kv.delete(`${this.options.prefix}.m.${member}`)))
      }
    }
  }

  private track(work: Promise<void>): void {
    this.pending.add(work)
    void work.finally(() => this.pending.delete(work))
  }

  private memberKey(): string {
    return `${this.options.prefix}.m.${this.options.memberId}`
  }

  private claimKey(shard: number): string {
    return `${this.options.prefix}.c.${shard}`
  }
}

/**
 * Owner of every shard given the live members: rendezvous hashing (each shard goes to the member
 * with the highest hash of member and shard) with bounded load (no member gets more than
 * ceil(shards/members)), so shards stay evenly spread and few move when a member joins or leaves.
 * Every member computes the same answer from the same member set.
 */
export function assignShards(members: readonly string[], partitions: number): string[] {
  const sorted = [...new Set(members)].sort()
  const owners: string[] = []
  if (sorted.length === 0) return owners
  const capacity = Math.ceil(partitions / sorted.length)
  const load = new Map<string, number>()
  for (let shard = 0; shard < partitions; shard++) {
    let best: string | undefined
    let bestScore = -1
    for (const member of sorted) {
      if ((load.get(member) ?? 0) >= capacity) continue
      const score = hash32(`${member}#${shard}`)
      if (score > bestScore) {
        best = member
        bestScore = score
      }
    }
    // capacity * members >= partitions, so some member always has room.
    const owner = best as string
    owners.push(owner)
    load.set(owner, (load.get(owner) ?? 0) + 1)
  }
  return owners
}

/** FNV-1a over UTF-16 code units, then the murmur3 finalizer to spread nearby inputs. */
export function hash32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

async function ignoreFailure(work: Promise<unknown>): Promise<void> {
  try {
    await work
  } catch {
    // Best effort: the next heartbeat or watch event re-evaluates from the bucket's state.
  }
}
