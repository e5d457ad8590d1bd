// Consumer groups of the memory bus: shards shared among live members, per-shard sequential delivery,
// bounded in-flight per member, and redelivery after nak, ack wait, or when a member leaves.
import type { ConsumeOptions, Delivery, DeliveryHandler, Subscription } from './transport.js'
import type { MemoryStream } from './memory-stream.js'

/** A message delivered at least once and not acked yet, as the group tracks it. */
interface Unacked {
  readonly shard: GroupShard
  readonly seq: number
  deliveries: number
  /** inflight: a member holds it; waiting: to be redelivered from `availableAt` on. */
  state: 'inflight' | 'waiting'
  attempt: Attempt | undefined
  availableAt: number
}

/** One delivery of one message to one member. */
interface Attempt {
  readonly member: GroupMember
  readonly shard: GroupShard
  readonly seq: number
  readonly size: number
  /** The member's in-flight budget was given back (ack, nak, timeout or leave). */
  released: boolean
  /** The delivery's ack() or nak() was called. */
  settled: boolean
  timer: NodeJS.Timeout | undefined
}

/** The group's position in one shard. */
class GroupShard {
  /** Next never-delivered sequence number. */
  next = 1
  /** Delivered but unacked, in increasing seq order (fresh deliveries are inserted in order). */
  readonly unacked = new Map<number, Unacked>()
  waitingCount = 0
  /** A handler is running for this shard: nobody gets its next message until it returns. */
  busy = false
  owner: GroupMember | undefined

  constructor(
    readonly index: number,
    firstSeq: number,
  ) {
    this.next = firstSeq
  }

  /** Every message below this has been acked (or expired). */
  ackFloor(): number {
    for (const seq of this.unacked.keys()) return seq
    return this.next
  }
}

const validate = (base: string, o: ConsumeOptions): void => {
  const bad = (field: string, value: unknown, rule: string) =>
    new RangeError(`consume on ${base}: ${field} must be ${rule}, got ${JSON.stringify(value)}`)
  if (typeof o.group !== 'string' || o.group === '') throw bad('group', o.group, 'a non-empty name')
  if (!Number.isInteger(o.maxInFlight) || o.maxInFlight < 1) throw bad('maxInFlight', o.maxInFlight, 'an integer ≥ 1')
  if (!(o.maxInFlightBytes >= 1)) throw bad('maxInFlightBytes', o.maxInFlightBytes, 'a number ≥ 1')
  if (!(o.ackWaitMs > 0)) throw bad('ackWaitMs', o.ackWaitMs, 'a positive number of milliseconds')
}

export class ConsumerGroup {
  private readonly members: GroupMember[] = []
  private readonly shards: GroupShard[] = []
  private pumpScheduled = false
  private rotor = 0
  private retryTimer: NodeJS.Timeout | undefined
  private retryAt = Infinity

  constructor(
    readonly name: string,
    private readonly stream: MemoryStream,
  ) {
    this.resize(stream.shards.length)
  }

  /** A new group starts at the oldest retained message: nothing published before it joined is skipped. */
  resize(partitions: number): void {
    while (this.shards.length < partitions) {
      const index = this.shards.length
      this.shards.push(new GroupShard(index, this.stream.shards[index]!.firstSeq))
    }
    this.rebalance()
  }

  ackFloor(shard: number): number {
    return this.shards[shard]?.ackFloor() ?? 0
  }

  join(options: ConsumeOptions, handler: DeliveryHandler): GroupMember {
    validate(this.stream.spec.base, options)
    const member = new GroupMember(this, options, handler)
    this.members.push(member)
    this.rebalance()
    return member
  }

  /** Shard s goes to live member s mod n (join order): stable, even, recomputed on join and leave. */
  private rebalance(): void {
    const n = this.members.length
    for (const shard of this.shards) shard.owner = n > 0 ? this.members[shard.index % n] : undefined
    this.wake()
  }

  assigned(member: GroupMember): number[] {
    return this.shards.filter((s) => s.owner === member).map((s) => s.index)
  }

  /** The member has stopped: what it still holds goes back to the group for the new owners. */
  leave(member: GroupMember): void {
    const index = this.members.indexOf(member)
    if (index < 0) return
    this.members.splice(index, 1)
    for (const attempt of [...member.attempts]) {
      const unacked = attempt.shard.unacked.get(attempt.seq)
      if (unacked && unacked.attempt === attempt && unacked.state === 'inflight') this.requeue(unacked, Date.now())
      this.release(attempt)
    }
    if (this.members.length === 0 && this.retryTimer) {
      // Nobody to redeliver to: the next member's first delivery round re-arms the timer.
      clearTimeout(this.retryTimer)
      this.retryTimer = undefined
      this.retryAt = Infinity
    }
    this.rebalance()
  }

  /** Schedules a delivery round; rounds run on setImmediate so a busy consumer never starves I/O. */
  wake(): void {
    if (this.pumpScheduled) return
    this.pumpScheduled = true
    setImmediate(() => this.pump())
  }

  private pump(): void {
    this.pumpScheduled = false
    const now = Date.now()
    this.stream.expire(now)
    const n = this.shards.length
    // Rotate the starting shard so a tight member budget is shared fairly among its shards.
    for (let k = 0; k < n; k++) this.deliverNext(this.shards[(this.rotor + k) % n]!, now)
    this.rotor = n > 0 ? (this.rotor + 1) % n : 0
  }

  private deliverNext(shard: GroupShard, now: number): void {
    const member = shard.owner
    if (!member || member.closing || shard.busy) return
    const log = this.stream.shards[shard.index]!
    let unacked = shard.waitingCount > 0 ? this.dueRedelivery(shard, now) : undefined
    const seq = unacked ? unacked.seq : Math.max(shard.next, log.firstSeq)
    const entry = log.at(seq)
    if (!entry) {
      shard.next = Math.max(shard.next, log.firstSeq)
      return
    }
    if (!member.hasRoomFor(entry.size)) return
    if (!unacked) {
      unacked = { shard, seq, deliveries: 0, state: 'inflight', attempt: undefined, availableAt: 0 }
      shard.unacked.set(seq, unacked)
      shard.next = seq + 1
    } else {
      shard.waitingCount--
    }
    unacked.deliveries++
    unacked.state = 'inflight'
    const attempt: Attempt = { member, shard, seq, size: entry.size, released: false, settled: false, timer: undefined }
    unacked.attempt = attempt
    member.take(attempt)
    attempt.timer = setTimeout(() => this.ackWaitExpired(attempt), member.options.ackWaitMs)

    const delivery: Delivery = {
      shard: shard.index,
      key: entry.key,
      data: entry.data,
      headers: entry.headers,
      deliveryCount: unacked.deliveries,
      position: seq,
      ack: async () => this.ack(attempt),
      nak: async (delayMs?: number) => this.nak(attempt, delayMs ?? 0),
    }
    shard.busy = true
    member.run(delivery, attempt, () => {
      shard.busy = false
      this.wake()
    })
  }

  /** The lowest waiting message whose redelivery time has come; arms a timer for later ones. */
  private dueRedelivery(shard: GroupShard, now: number): Unacked | undefined {
    const firstSeq = this.stream.shards[shard.index]!.firstSeq
    let later = Infinity
    for (const unacked of shard.unacked.values()) {
      if (unacked.state !== 'waiting') continue
      if (unacked.seq < firstSeq) {
        // Expired from the stream while waiting: nothing left to redeliver.
        shard.unacked.delete(unacked.seq)
        shard.waitingCount--
        continue
      }
      if (unacked.availableAt <= now) return unacked
      later = Math.min(later, unacked.availableAt)
    }
    if (later < Infinity) this.wakeAt(later)
    return undefined
  }

  /** One timer per group, for the earliest delayed redelivery. */
  private wakeAt(at: number): void {
    if (this.retryTimer && this.retryAt <= at) return
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryAt = at
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.retryAt = Infinity
      this.wake()
    }, Math.max(0, at - Date.now()))
  }

  private requeue(unacked: Unacked, availableAt: number): void {
    unacked.state = 'waiting'
    unacked.attempt = undefined
    unacked.availableAt = availableAt
    unacked.shard.waitingCount++
    if (availableAt > Date.now()) this.wakeAt(availableAt)
    this.wake()
  }

  /** Gives the member's budget back and stops the ack-wait timer; idempotent. */
  private release(attempt: Attempt): void {
    if (attempt.released) return
    attempt.released = true
    if (attempt.timer) clearTimeout(attempt.timer)
    attempt.member.give(attempt)
    this.wake()
  }

  /** An ack from any delivery of the message counts, even a late one after redelivery or leave. */
  private ack(attempt: Attempt): void {
    if (attempt.settled) return
    attempt.settled = true
    const shard = attempt.shard
    const unacked = shard.unacked.get(attempt.seq)
    if (!unacked) {
      this.release(attempt)
      return
    }
    if (unacked.state === 'waiting') shard.waitingCount--
    else if (unacked.attempt) this.release(unacked.attempt)
    this.release(attempt)
    shard.unacked.delete(attempt.seq)
    this.stream.admitWaiting()
  }

  /** A nak from a superseded delivery is ignored: the message is already on its way again. */
  private nak(attempt: Attempt, delayMs: number): void {
    if (attempt.settled) return
    attempt.settled = true
    const unacked = attempt.shard.unacked.get(attempt.seq)
    this.release(attempt)
    if (!unacked || unacked.attempt !== attempt || unacked.state !== 'inflight') return
    this.requeue(unacked, Date.now() + Math.max(0, delayMs))
  }

  /** Not acked in time: redeliver, but still honour a late ack from the slow holder. */
  private ackWaitExpired(attempt: Attempt): void {
    attempt.timer = undefined
    if (attempt.settled || attempt.released) return
    const unacked = attempt.shard.unacked.get(attempt.seq)
    this.release(attempt)
    if (unacked && unacked.attempt === attempt && unacked.state === 'inflight') this.requeue(unacked, Date.now())
  }
}

/** One member of a group: the Subscription handed to the caller. */
export class GroupMember implements Subscription {
  readonly attempts = new Set<Attempt>()
  private readonly running = new Set<Promise<void>>()
  private inFlight = 0
  private inFlightBytes = 0
  closing = false
  private closed: Promise<void> | undefined

  constructor(
    private readonly group: ConsumerGroup,
    readonly options: ConsumeOptions,
    private readonly handler: DeliveryHandler,
  ) {}

  /** One message always fits when nothing is in flight, so an oversized message cannot wedge a shard. */
  hasRoomFor(size: number): boolean {
    if (this.inFlight === 0) return true
    return this.inFlight < this.options.maxInFlight && this.inFlightBytes + size <= this.options.maxInFlightBytes
  }

  take(attempt: Attempt): void {
    this.attempts.add(attempt)
    this.inFlight++
    this.inFlightBytes += attempt.size
  }

  give(attempt: Attempt): void {
    if (!this.attempts.delete(attempt)) return
    this.inFlight--
    this.inFlightBytes -= attempt.size
  }

  run(delivery: Delivery, attempt: Attempt, done: () => void): void {
    const handled = (async () => {
      try {
        await this.handler(delivery)
      } catch (error) {
        // The typed layer acks or naks itself; a handler that throws instead gets its message back later.
        process.emitWarning(
          `handler of group ${this.group.name} threw on shard ${delivery.shard}: ${String(error)}; the message will be redelivered`,
        )
        if (!attempt.settled) await delivery.nak()
      }
    })()
    this.running.add(handled)
    void handled.finally(() => {
      this.running.delete(handled)
      done()
    })
  }

  assignedShards(): readonly number[] {
    return this.group.assigned(this)
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closing = true
      this.closed = (async () => {
        // Handlers already called finish (and ack what they completed) before the shards move on.
        while (this.running.size > 0) await Promise.allSettled([...this.running])
        this.group.leave(this)
      })()
    }
    return this.closed
  }
}
