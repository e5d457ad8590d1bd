// A durable consumer on Kafka: a kafkajs group consumer whose offsets move only with acks.
// Partitions are shards; each is handled in order, acked out of order, committed as a prefix.
//
// How the contract maps onto Kafka:
// - ack marks the delivery done; the contiguous acked prefix of each partition is committed
//   (autoCommit is off), so a member that dies leaves its unacked messages to the next owner.
//   Acks are committed together every commitIntervalMs (default 100 ms), not one by one;
//   close, rebalance and nak commit at once. A member that dies loses at most that much of
//   acked-but-uncommitted progress, which is delivered again (at-least-once).
// - nak(delay) pauses the partition, waits, then seeks back to the nak'ed offset: Kafka keeps
//   order per partition, so that message and everything after it are delivered again.
// - deliveryCount is counted per offset in memory, and each commit carries a small "delivery
//   mark" in the offset metadata (head offset, its attempts, highest offset delivered) so a
//   member taking a partition over from a crashed one still counts redeliveries (best effort:
//   a crash between a delivery and the next commit loses that mark).
// - backpressure pauses fetching while unacked messages or bytes reach maxInFlight /
//   maxInFlightBytes; a message that would overflow is not delivered but fetched again later.

import type { Admin, Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs'
import type { ConsumeOptions, Delivery, DeliveryHandler, Subscription } from './transport.js'

export interface GroupConsumerSettings {
  readonly kafka: Kafka
  readonly admin: () => Promise<Admin>
  readonly groupId: string
  readonly topic: string
  readonly partitions: number
  readonly options: ConsumeOptions
  readonly handler: DeliveryHandler
  readonly sessionTimeoutMs: number
  readonly heartbeatIntervalMs: number
  readonly rebalanceTimeoutMs: number
  readonly maxWaitMs: number
  readonly maxBytesPerPartition: number
  /** Longest an ack waits to be committed (acks arriving meanwhile share the commit). */
  readonly commitIntervalMs: number
  readonly onError: (error: unknown, context: string) => void
}

type EntryState = 'outstanding' | 'acked' | 'dropped'

/** One delivered message, tracked until it is acked, nak'ed or made stale by a seek. */
interface Entry {
  readonly offset: number
  readonly size: number
  state: EntryState
  /** Released from the in-flight budget (once, whatever ends the delivery). */
  released: boolean
  ackTimer: NodeJS.Timeout | undefined
}

/** What the previous owner of a partition recorded about deliveries it made. */
interface DeliveryMark {
  readonly head: number
  readonly attempts: number
  readonly delivered: number
}

const MARK_PREFIX = 'flowbus/1'

const encodeMark = (mark: DeliveryMark): string =>
  `${MARK_PREFIX} head=${mark.head} attempts=${mark.attempts} delivered=${mark.delivered}`

const decodeMark = (metadata: string | null | undefined): DeliveryMark | undefined => {
  const match = /^flowbus\/1 head=(\d+) attempts=(\d+) delivered=(-?\d+)$/.exec(metadata ?? '')
  if (!match) return undefined
  return { head: Number(match[1]), attempts: Number(match[2]), delivered: Number(match[3]) }
}

/** Per-partition bookkeeping for the current assignment. */
class ShardLedger {
  /** Delivered and not yet part of the committed prefix, in offset order. */
  pending: Entry[] = []
  /** Next offset after the acked prefix; the commit position when nothing is pending. */
  floor: number | undefined
  /** Highest offset delivered so far (-1: none). */
  delivered = -1
  /** Highest offset recorded as delivered in the delivery mark, ahead of the actual deliveries. */
  announced = -1
  readonly attempts = new Map<number, number>()
  mark: DeliveryMark | undefined
  ready: Promise<void> = Promise.resolve()
  /** Waiting out a nak delay; the partition stays paused until the seek back. */
  nakOffset: number | undefined
  nakTimer: NodeJS.Timeout | undefined
  /** Last offset+metadata written, so unchanged marks are not committed again. */
  written = ''

  constructor(readonly partition: number) {}

  /** The commit position: the first delivered offset not acked yet. */
  head(): number | undefined {
    return this.pending[0]?.offset ?? this.floor
  }

  /** Attempts already made for an offset before this member saw it (from the delivery mark). */
  previousAttempts(offset: number): number {
    const mark = this.mark
    if (!mark) return 0
    if (offset === mark.head && mark.attempts > 0) return mark.attempts
    return offset <= mark.delivered ? 1 : 0
  }
}

export async function startGroupConsumer(settings: GroupConsumerSettings): Promise<Subscription> {
  const consumer = new GroupConsumer(settings)
  await consumer.start()
  return consumer
}

class GroupConsumer implements Subscription {
  private readonly consumer: Consumer
  private readonly shards = new Map<number, ShardLedger>()
  private assigned: number[] = []
  private memberId: string | undefined
  private readonly handlers = new Set<Promise<void>>()
  private inFlight = 0
  private inFlightBytes = 0
  private backpressure = false
  private closing = false
  /** Acks arriving after this are too late to commit: the next owner redelivers. */
  private disconnected = false
  private closed: Promise<void> | undefined
  private paused = new Set<number>()
  private committing: Promise<void> | undefined
  private commitAgain = false
  /** A commit of acks is due: acks are committed together, at most every commitIntervalMs. */
  private commitTimer: NodeJS.Timeout | undefined

  constructor(private readonly settings: GroupConsumerSettings) {
    this.consumer = settings.kafka.consumer({
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
      maxWaitTimeInMs: settings.maxWaitMs,
      maxBytesPerPartition: settings.maxBytesPerPartition,
      maxBytes: Math.max(10 * 1024 * 1024, settings.maxBytesPerPartition),
      allowAutoTopicCreation: false,
    })
  }

  async start(): Promise<void> {
    const { consumer, settings } = this
    consumer.on(consumer.events.GROUP_JOIN, (event) => this.onJoin(event.payload.memberId, event.payload.memberAssignment))
    consumer.on(consumer.events.REBALANCING, () => void this.commit())
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) settings.onError(event.payload.error, `consumer of ${settings.topic} stopped`)
    })
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: [settings.topic], fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: Math.max(1, settings.partitions),
        eachBatchAutoResolve: false,
        eachBatch: (payload) => this.onBatch(payload),
      })
    } catch (error) {
      await consumer.disconnect().catch(() => undefined)
      throw error
    }
  }

  assignedShards(): readonly number[] {
    return this.closing ? [] : this.assigned
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown()
    return this.closed
  }

  private async shutdown(): Promise<void> {
    this.closing = true
    this.applyPauses()
    while (this.handlers.size > 0) await Promise.allSettled([...this.handlers])
    for (const shard of this.shards.values()) {
      clearTimeout(shard.nakTimer)
      for (const entry of shard.pending) clearTimeout(entry.ackTimer)
    }
    await this.commit()
    await this.consumer.disconnect()
    this.disconnected = true
    this.assigned = []
  }

  // --- assignment -------------------------------------------------------------------------

  /**
   * Runs synchronously inside kafkajs's join, before the first fetch of the new generation, so
   * seeks and pauses set here apply to that fetch. A partition kept across a rebalance keeps
   * its outstanding deliveries (nobody else owned it meanwhile); a new member id means this
   * member was expelled, so everything it held may have been delivered elsewhere.
   */
  private onJoin(memberId: string, assignment: Record<string, number[]>): void {
    const partitions = [...(assignment[this.settings.topic] ?? [])].sort((a, b) => a - b)
    const sameMember = this.memberId === memberId
    this.memberId = memberId
    this.assigned = partitions
    for (const [partition, shard] of this.shards) {
      if (sameMember && partitions.includes(partition)) continue
      this.dropShard(shard)
      this.shards.delete(partition)
    }
    const fresh: ShardLedger[] = []
    for (const partition of partitions) {
      const shard = this.shards.get(partition)
      if (shard) {
        // kafkajs restarts a rejoined partition at the committed offset; continue after what
        // was delivered instead (a pending nak seeks back to its own offset later).
        if (shard.delivered >= 0 && shard.nakOffset === undefined) this.seek(partition, shard.delivered + 1)
      } else {
        const ledger = new ShardLedger(partition)
        this.shards.set(partition, ledger)
        fresh.push(ledger)
      }
    }
    if (fresh.length > 0) {
      const marks = this.loadMarks()
      for (const ledger of fresh) {
        ledger.ready = marks.then((found) => {
          ledger.mark = found.get(ledger.partition)
        })
      }
    }
    // kafkajs keeps its paused set across rebalances but not across a restart after a crash:
    // state every partition's wanted state explicitly.
    this.applyPauses(true)
  }

  private async loadMarks(): Promise<Map<number, DeliveryMark>> {
    const found = new Map<number, DeliveryMark>()
    try {
      const admin = await this.settings.admin()
      const offsets = await admin.fetchOffsets({ groupId: this.settings.groupId, topics: [this.settings.topic] })
      for (const topic of offsets) {
        for (const partition of topic.partitions) {
          const mark = decodeMark(partition.metadata)
          if (mark) found.set(partition.partition, mark)
        }
      }
    } catch (error) {
      this.settings.onError(error, `reading delivery marks of group ${this.settings.groupId}`)
    }
    return found
  }

  private dropShard(shard: ShardLedger): void {
    clearTimeout(shard.nakTimer)
    shard.nakOffset = undefined
    for (const entry of shard.pending) this.drop(entry)
    shard.pending = []
  }

  // --- delivery ---------------------------------------------------------------------------

  /**
   * One fetched batch of one partition. Offsets are resolved (kafkajs's fetch position) only
   * for messages handed out, so stopping early makes the rest come back in a later fetch.
   */
  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload
    const partition = batch.partition
    const shard = this.shards.get(partition)
    if (!shard || this.closing) return
    await shard.ready
    // Record the whole batch as delivered before handing any of it out: a member killed
    // mid-batch then never leaves a delivered message uncounted (at worst one not yet handed
    // out counts one delivery more).
    const last = Number(batch.lastOffset())
    if (last > shard.announced) {
      shard.announced = last
      await this.commitWithin(this.settings.heartbeatIntervalMs)
    }
    for (const message of batch.messages) {
      if (!payload.isRunning() || payload.isStale() || this.closing) return
      if (this.shards.get(partition) !== shard || shard.nakOffset !== undefined) return
      const offset = Number(message.offset)
      const size = message.value?.length ?? 0
      const { maxInFlight, maxInFlightBytes } = this.settings.options
      if (this.inFlight >= maxInFlight || (this.inFlight > 0 && this.inFlightBytes + size > maxInFlightBytes)) {
        this.setBackpressure(true)
        return
      }
      if (offset <= shard.delivered && shard.pending.some((entry) => entry.offset === offset)) {
        // Still outstanding from before a rejoin: never hand out one offset twice at once.
        payload.resolveOffset(message.offset)
        continue
      }
      const delivery = this.admit(shard, offset, size, message)
      payload.resolveOffset(message.offset)
      // A redelivery of the head changes its attempt count in the mark: record it first.
      if (delivery.delivery.deliveryCount > 1 && shard.head() === offset) await this.commitWithin(this.settings.heartbeatIntervalMs)
      // Keep the membership alive through a slow handler; a rebalance it reveals is rethrown
      // below so kafkajs rejoins now instead of after the next throttled heartbeat.
      let heartbeatError: unknown
      const keepAlive = setInterval(() => {
        payload.heartbeat().catch((error: unknown) => {
          heartbeatError ??= error
        })
      }, this.settings.heartbeatIntervalMs)
      const running = this.run(delivery.delivery, delivery.entry)
      this.handlers.add(running)
      try {
        await running
      } finally {
        clearInterval(keepAlive)
        this.handlers.delete(running)
      }
      if (heartbeatError !== undefined) throw heartbeatError
      await payload.heartbeat()
    }
  }

  /** Books a message as delivered to this member and builds its Delivery. */
  private admit(shard: ShardLedger, offset: number, size: number, message: KafkaMessage): { delivery: Delivery; entry: Entry } {
    const attempts = (shard.attempts.get(offset) ?? shard.previousAttempts(offset)) + 1
    shard.attempts.set(offset, attempts)
    if (shard.pending.length === 0 && shard.floor === undefined) shard.floor = offset
    shard.delivered = Math.max(shard.delivered, offset)
    const entry: Entry = { offset, size, state: 'outstanding', released: false, ackTimer: undefined }
    shard.pending.push(entry)
    this.inFlight++
    this.inFlightBytes += size
    const { maxInFlight, maxInFlightBytes, ackWaitMs } = this.settings.options
    if (this.inFlight >= maxInFlight || this.inFlightBytes >= maxInFlightBytes) this.setBackpressure(true)
    if (ackWaitMs > 0) {
      entry.ackTimer = setTimeout(() => this.nak(shard, entry, 0), ackWaitMs)
      entry.ackTimer.unref?.()
    }
    return { delivery: this.delivery(shard, entry, message, attempts), entry }
  }

  private async run(delivery: Delivery, entry: Entry): Promise<void> {
    try {
      await this.settings.handler(delivery)
    } catch (error) {
      // The typed layer settles deliveries itself; a throwing handler must not stall the shard.
      if (entry.state === 'outstanding') await delivery.nak()
      this.settings.onError(error, `handler of ${this.settings.topic} shard ${delivery.shard}`)
    }
  }

  private delivery(shard: ShardLedger, entry: Entry, message: KafkaMessage, deliveryCount: number): Delivery {
    const value = message.value
    return {
      shard: shard.partition,
      key: message.key?.toString('utf8') ?? '',
      data: value ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(0),
      headers: decodeHeaders(message.headers),
      deliveryCount,
      position: entry.offset,
      ack: async () => this.ack(shard, entry),
      nak: async (delayMs?: number) => this.nak(shard, entry, delayMs ?? 0),
    }
  }

  private ack(shard: ShardLedger, entry: Entry): void {
    if (entry.state !== 'outstanding') return
    entry.state = 'acked'
    this.release(entry)
    let advanced = false
    while (shard.pending[0]?.state === 'acked') {
      const done = shard.pending.shift()!
      shard.floor = done.offset + 1
      advanced = true
    }
    if (advanced) {
      for (const offset of shard.attempts.keys()) if (offset < shard.floor!) shard.attempts.delete(offset)
      this.scheduleCommit()
    }
  }

  private nak(shard: ShardLedger, entry: Entry, delayMs: number): void {
    if (entry.state !== 'outstanding' || this.shards.get(shard.partition) !== shard) return
    entry.state = 'dropped'
    this.release(entry)
    // Kafka redelivers by position: this message and every later one of the partition.
    const from = entry.offset
    const kept: Entry[] = []
    for (const other of shard.pending) {
      if (other.offset >= from) this.drop(other)
      else kept.push(other)
    }
    shard.pending = kept
    if (kept.length === 0) shard.floor = Math.min(shard.floor ?? from, from)
    shard.nakOffset = Math.min(shard.nakOffset ?? from, from)
    clearTimeout(shard.nakTimer)
    this.pause(shard.partition)
    shard.nakTimer = setTimeout(() => {
      if (this.shards.get(shard.partition) !== shard || shard.nakOffset === undefined || this.closing) return
      this.seek(shard.partition, shard.nakOffset)
      shard.nakOffset = undefined
      this.applyPauses()
    }, Math.max(0, delayMs))
    void this.commit()
  }

  private drop(entry: Entry): void {
    if (entry.state === 'outstanding') entry.state = 'dropped'
    this.release(entry)
  }

  private release(entry: Entry): void {
    clearTimeout(entry.ackTimer)
    if (entry.released) return
    entry.released = true
    this.inFlight--
    this.inFlightBytes -= entry.size
    if (this.backpressure) {
      const { maxInFlight, maxInFlightBytes } = this.settings.options
      // Resume with some room to spare, so fetching is not toggled on every single ack.
      if (this.inFlight <= Math.floor(maxInFlight * 0.75) && this.inFlightBytes <= maxInFlightBytes * 0.75) {
        this.setBackpressure(false)
      }
    }
  }

  // --- pausing and seeking ----------------------------------------------------------------

  private setBackpressure(on: boolean): void {
    if (this.backpressure === on) return
    this.backpressure = on
    this.applyPauses()
  }

  /** Brings kafkajs's paused set in line with what closing, backpressure and naks require. */
  private applyPauses(force = false): void {
    const topic = this.settings.topic
    const pause: number[] = []
    const resume: number[] = []
    if (force) this.paused.clear()
    for (const partition of this.assigned) {
      const shard = this.shards.get(partition)
      const wanted = this.closing || this.backpressure || shard?.nakOffset !== undefined
      if (wanted && !this.paused.has(partition)) pause.push(partition)
      if (!wanted && (force || this.paused.has(partition))) resume.push(partition)
    }
    try {
      if (pause.length > 0) this.consumer.pause([{ topic, partitions: pause }])
      if (resume.length > 0) this.consumer.resume([{ topic, partitions: resume }])
    } catch (error) {
      this.settings.onError(error, `pausing ${topic}`)
      return
    }
    for (const partition of pause) this.paused.add(partition)
    for (const partition of resume) this.paused.delete(partition)
  }

  private pause(partition: number): void {
    if (this.paused.has(partition)) return
    try {
      this.consumer.pause([{ topic: this.settings.topic, partitions: [partition] }])
      this.paused.add(partition)
    } catch (error) {
      this.settings.onError(error, `pausing ${this.settings.topic}`)
    }
  }

  private seek(partition: number, offset: number): void {
    try {
      this.consumer.seek({ topic: this.settings.topic, partition, offset: String(offset) })
    } catch (error) {
      this.settings.onError(error, `seeking ${this.settings.topic} shard ${partition}`)
    }
  }

  // --- commits ----------------------------------------------------------------------------

  /**
   * Acks are committed in groups: a commit per ack would be a round trip (and a write to the
   * offsets topic) per message. Waiting costs nothing in safety: work acked but not yet
   * committed when a member dies is delivered again, which at-least-once allows, and closing,
   * rebalancing and naks commit at once.
   */
  private scheduleCommit(): void {
    if (this.commitTimer || this.disconnected) return
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined
      void this.commit()
    }, this.settings.commitIntervalMs)
  }

  /**
   * Commits the acked prefix and delivery mark of every owned partition that changed. One
   * commit is in flight at a time; changes made meanwhile go into one more commit after it.
   */
  private commit(): Promise<void> {
    clearTimeout(this.commitTimer)
    this.commitTimer = undefined
    if (this.disconnected) return Promise.resolve()
    if (this.committing) {
      this.commitAgain = true
      return this.committing
    }
    this.committing = (async () => {
      do {
        this.commitAgain = false
        await new Promise((resolve) => setImmediate(resolve))
        const offsets = this.changedOffsets()
        if (offsets.length === 0) continue
        try {
          await this.consumer.commitOffsets(offsets.map(({ write: _, ...offset }) => offset))
          for (const { partition, write } of offsets) {
            const shard = this.shards.get(partition)
            if (shard) shard.written = write
          }
        } catch (error) {
          if (!isRebalanceError(error)) this.settings.onError(error, `committing offsets of ${this.settings.topic}`)
        }
      } while (this.commitAgain)
    })().finally(() => {
      this.committing = undefined
    })
    return this.committing
  }

  /**
   * Waits for a commit of the delivery marks, but not for long: kafkajs retries a commit
   * refused during a rebalance for seconds, and the rebalance needs this batch to end first.
   */
  private async commitWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.commit(), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))])
    clearTimeout(timer)
  }

  private changedOffsets(): Array<{ topic: string; partition: number; offset: string; metadata: string; write: string }> {
    const out: Array<{ topic: string; partition: number; offset: string; metadata: string; write: string }> = []
    for (const partition of this.assigned) {
      const shard = this.shards.get(partition)
      const head = shard?.head()
      if (!shard || head === undefined) continue
      // Keep what the previous owner recorded too, in case this member dies before passing it on.
      const delivered = Math.max(shard.delivered, shard.announced, shard.mark?.delivered ?? -1)
      const metadata = encodeMark({ head, attempts: shard.attempts.get(head) ?? 0, delivered })
      const write = `${head} ${metadata}`
      if (write === shard.written) continue
      out.push({ topic: this.settings.topic, partition, offset: String(head), metadata, write })
    }
    return out
  }
}

export const decodeHeaders = (headers: IHeaders | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  if (!headers) return out
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    const first = Array.isArray(value) ? value[value.length - 1] : value
    if (first !== undefined) out[name] = typeof first === 'string' ? first : first.toString('utf8')
  }
  return out
}

const isRebalanceError = (error: unknown): boolean => {
  const type = (error as { type?: string } | undefined)?.type
  return type === 'REBALANCE_IN_PROGRESS' || type === 'ILLEGAL_GENERATION' || type === 'UNKNOWN_MEMBER_ID' || type === 'NOT_COORDINATOR'
}
