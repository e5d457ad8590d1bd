// A durable stream of the memory bus: per-shard logs, retention by age/bytes/count, and publisher
// backpressure when the stream is full of messages some consumer group has not acked yet.
import type { StreamSpec } from './transport.js'
import { ShardLog, type LogEntry } from './memory-log.js'
import { ConsumerGroup } from './memory-group.js'

/** Caps applied to every stream of one memory bus. */
export interface StreamLimits {
  readonly maxStreamBytes: number
  readonly maxStreamMessages: number
}

interface PendingPublish {
  readonly shard: number
  readonly key: string
  readonly data: Uint8Array
  readonly headers: Readonly<Record<string, string>>
  readonly resolve: () => void
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

export class MemoryStream {
  spec: StreamSpec
  readonly shards: ShardLog[] = []
  readonly groups = new Map<string, ConsumerGroup>()
  private bytes = 0
  private count = 0
  private order = 0
  /** Publishes waiting for room, admitted strictly in arrival order (keeps per-key order). */
  private readonly waiting: PendingPublish[] = []
  private ageTimer: NodeJS.Timeout | undefined

  constructor(
    spec: StreamSpec,
    private readonly limits: StreamLimits,
  ) {
    this.spec = spec
    this.resize(spec.partitions)
  }

  /** Provisioning again with a different spec: caps and age apply at once, shards can only grow. */
  update(spec: StreamSpec): void {
    if (spec.partitions < this.shards.length) {
      throw new Error(
        `stream ${spec.base} has ${this.shards.length} shards on the memory bus and cannot shrink to ${spec.partitions}`,
      )
    }
    this.spec = spec
    this.resize(spec.partitions)
    this.admitWaiting()
  }

  private resize(partitions: number): void {
    while (this.shards.length < partitions) this.shards.push(new ShardLog())
    for (const group of this.groups.values()) group.resize(partitions)
  }

  get maxBytes(): number {
    return this.spec.maxBytes > 0 ? Math.min(this.spec.maxBytes, this.limits.maxStreamBytes) : this.limits.maxStreamBytes
  }

  group(name: string): ConsumerGroup {
    let group = this.groups.get(name)
    if (!group) {
      group = new ConsumerGroup(name, this)
      this.groups.set(name, group)
    }
    return group
  }

  /** Resolves once stored; waits while the stream is full of messages a group still needs. */
  publish(shard: number, key: string, data: Uint8Array, headers: Readonly<Record<string, string>> | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting.push({ shard, key, data, headers: headers ?? NO_HEADERS, resolve })
      this.admitWaiting()
    })
  }

  /** Called by groups whenever an ack may have freed room. */
  admitWaiting(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!
      if (!this.makeRoom(next.data.byteLength)) {
        this.retryWhenOldestExpires()
        return
      }
      this.waiting.shift()
      this.append(next)
      next.resolve()
    }
  }

  private append(p: PendingPublish): void {
    this.shards[p.shard]!.append({
      order: this.order++,
      key: p.key,
      data: p.data,
      headers: p.headers,
      size: p.data.byteLength,
      storedAt: Date.now(),
    })
    this.bytes += p.data.byteLength
    this.count++
    for (const group of this.groups.values()) group.wake()
  }

  private fits(size: number): boolean {
    // An empty stream always takes one message, so a cap below one message cannot wedge a publisher.
    return this.count === 0 || (this.count + 1 <= this.limits.maxStreamMessages && this.bytes + size <= this.maxBytes)
  }

  /** Expires old messages, then drops the oldest messages every group has acked until `size` fits. */
  private makeRoom(size: number): boolean {
    this.expire(Date.now())
    while (!this.fits(size)) {
      const victim = this.oldestDroppable()
      if (victim === undefined) return false
      this.drop(victim)
    }
    return true
  }

  /** Drops messages older than maxAgeSeconds, acked or not (age wins, as in JetStream). */
  expire(now: number): void {
    if (this.spec.maxAgeSeconds <= 0) return
    const cutoff = now - this.spec.maxAgeSeconds * 1000
    for (let shard = 0; shard < this.shards.length; shard++) {
      const log = this.shards[shard]!
      for (let oldest = log.oldest(); oldest && oldest.storedAt < cutoff; oldest = log.oldest()) this.drop(shard)
    }
  }

  /** The shard whose head is oldest among heads that every group has acked (all heads if no group). */
  private oldestDroppable(): number | undefined {
    let best: number | undefined
    let bestEntry: LogEntry | undefined
    for (let shard = 0; shard < this.shards.length; shard++) {
      const head = this.shards[shard]!.oldest()
      if (!head || (bestEntry && bestEntry.order < head.order)) continue
      let ackedByAll = true
      for (const group of this.groups.values()) {
        if (head.seq >= group.ackFloor(shard)) {
          ackedByAll = false
          break
        }
      }
      if (ackedByAll) {
        best = shard
        bestEntry = head
      }
    }
    return best
  }

  private drop(shard: number): void {
    const entry = this.shards[shard]!.dropOldest()
    if (!entry) return
    this.bytes -= entry.size
    this.count--
  }

  /** A blocked publisher also gets room when the oldest message ages out; wake it then. */
  private retryWhenOldestExpires(): void {
    if (this.spec.maxAgeSeconds <= 0 || this.ageTimer) return
    let oldest = Infinity
    for (const log of this.shards) oldest = Math.min(oldest, log.oldest()?.storedAt ?? Infinity)
    if (oldest === Infinity) return
    const delay = Math.max(0, oldest + this.spec.maxAgeSeconds * 1000 - Date.now()) + 1
    this.ageTimer = setTimeout(() => {
      this.ageTimer = undefined
      this.admitWaiting()
    }, delay)
  }

  /** Stored size, for tests and metrics. */
  stats(): { messages: number; bytes: number; waitingPublishes: number } {
    return { messages: this.count, bytes: this.bytes, waitingPublishes: this.waiting.length }
  }
}
