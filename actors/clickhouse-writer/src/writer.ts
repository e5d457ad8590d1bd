// Groups encoded flow batches per shard into inserts, sends them one at a time, and settles the
// bus messages only once ClickHouse accepted them: retried with backoff while it is unavailable,
// split message by message when it refuses the data, so only the bad messages are set aside.
import { createHash } from 'node:crypto'
import { describeError, isRejectedData } from './errors.js'
import type { BlockColumn } from './encode/native.js'
import type { BlockInserter } from './inserter.js'

/** A bus message the writer holds until its rows are stored. */
export interface HeldMessage {
  /** Identity of the message's contents (hash of its encoded block): stable across redeliveries. */
  readonly hash: string
  readonly block: Uint8Array
  readonly rows: number
  readonly shard: number
  readonly arrivedMs: number
  readonly ack: () => Promise<void>
  readonly nak: (delayMs: number) => Promise<void>
}

interface Held {
  readonly message: HeldMessage
  /** Every delivery of this message still unsettled (a redelivery while held adds one). */
  readonly deliveries: { ack: () => Promise<void>; nak: (delayMs: number) => Promise<void> }[]
}

interface Group {
  readonly shard: number
  readonly held: Held[]
  rows: number
  timer: ReturnType<typeof setTimeout> | undefined
}

/** What the writer reports, for metrics, logs and readiness. */
export interface WriterEvents {
  readonly inserted: (rows: number, messages: number, seconds: number) => void
  readonly retrying: (reason: string, attempt: number, delayMs: number) => void
  readonly rejected: (reason: string, rows: number) => void
  readonly available: (ok: boolean, detail?: string) => void
}

export interface WriterOptions {
  readonly table: string
  readonly columns: readonly BlockColumn[]
  readonly inserter: BlockInserter
  readonly maxRows: number
  readonly maxDelayMs: number
  readonly retryMinMs: number
  readonly retryMaxMs: number
  /** Sealed groups waiting for their insert before accept() makes the bus wait. */
  readonly maxQueuedGroups?: number
  readonly events: WriterEvents
}

/** Outcome of handing a message to the writer. */
export type Accepted = { readonly held: true } | { readonly held: false; readonly rejected: string }

const REJECTED_MEMORY = 10_000

export const blockHash = (block: Uint8Array): string => createHash('md5').update(block).digest('hex')

export class FlowWriter {
  readonly #options: WriterOptions
  readonly #groups = new Map<number, Group>()
  readonly #byHash = new Map<string, Held>()
  readonly #queue: Group[] = []
  /** Messages ClickHouse refused, by hash: their redeliveries fail so the bus dead-letters them. */
  readonly #rejected = new Map<string, string>()
  #running: Promise<void> | undefined
  #closing = false
  #roomWaiters: (() => void)[] = []
  #drainWaiters: (() => void)[] = []

  constructor(options: WriterOptions) {
    this.#options = options
  }

  /** Holds a message for insertion; waits while enough inserts are queued (backpressure on the bus). */
  async accept(message: HeldMessage): Promise<Accepted> {
    const rejected = this.#rejected.get(message.hash)
    if (rejected !== undefined) return { held: false, rejected }
    const known = this.#byHash.get(message.hash)
    if (known !== undefined) {
      // Redelivered while held (ack wait expired during an outage): settle both deliveries later.
      known.deliveries.push({ ack: message.ack, nak: message.nak })
      return { held: true }
    }
    if (this.#closing) {
      await message.nak(0)
      return { held: true }
    }
    const held: Held = { message, deliveries: [{ ack: message.ack, nak: message.nak }] }
    this.#byHash.set(message.hash, held)
    let group = this.#groups.get(message.shard)
    if (group === undefined) {
      group = { shard: message.shard, held: [], rows: 0, timer: undefined }
      this.#groups.set(message.shard, group)
      const sealing = group
      group.timer = setTimeout(() => this.#seal(sealing), this.#options.maxDelayMs)
    }
    group.held.push(held)
    group.rows += message.rows
    if (group.rows >= this.#options.maxRows) this.#seal(group)
    while (this.#queue.length >= (this.#options.maxQueuedGroups ?? 2) && !this.#closing) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve))
    }
    return { held: true }
  }

  /** Rows and messages held, and the age of the oldest (lag behind the bus). */
  pending(nowMs: number): { messages: number; oldestAgeMs: number } {
    let oldest = nowMs
    for (const held of this.#byHash.values()) oldest = Math.min(oldest, held.message.arrivedMs)
    return { messages: this.#byHash.size, oldestAgeMs: nowMs - oldest }
  }

  /** Inserts everything held now and waits for it (or, closing, for ClickHouse to give up). */
  async flush(): Promise<void> {
    for (const group of [...this.#groups.values()]) this.#seal(group)
    if (this.#queue.length === 0 && this.#running === undefined) return
    await new Promise<void>((resolve) => this.#drainWaiters.push(resolve))
  }

  /** Stops taking messages, flushes what ClickHouse takes; unstored messages stay unacknowledged. */
  async close(): Promise<void> {
    this.#closing = true
    for (const wake of this.#roomWaiters.splice(0)) wake()
    await this.flush()
  }

  #seal(group: Group): void {
    if (this.#groups.get(group.shard) !== group) return
    this.#groups.delete(group.shard)
    if (group.timer !== undefined) clearTimeout(group.timer)
    this.#queue.push(group)
    this.#kick()
  }

  /** Runs the insert loop unless it runs already; groups sealed while it winds down restart it. */
  #kick(): void {
    if (this.#running !== undefined) return
    this.#running = this.#drain().finally(() => {
      this.#running = undefined
      if (this.#queue.length > 0) this.#kick()
      else for (const wake of this.#drainWaiters.splice(0)) wake()
    })
  }

  async #drain(): Promise<void> {
    for (let group = this.#queue.shift(); group !== undefined; group = this.#queue.shift()) {
      for (const wake of this.#roomWaiters.splice(0)) wake()
      await this.#insertGroup(group)
    }
  }

  /** The deduplication token of a set of messages: the same messages give the same token. */
  #token(held: readonly Held[]): string {
    const hash = createHash('md5').update(this.#options.table)
    for (const h of held) hash.update(h.message.hash)
    return hash.digest('hex')
  }

  async #insertGroup(group: Group): Promise<void> {
    const outcome = await this.#insertWithRetries(group.held)
    if (outcome === 'stored') return this.#settle(group.held, 'ack')
    if (outcome === 'abandoned') return this.#forget(group.held)
    // Refused: find the bad messages by inserting each alone (each under its own token).
    for (const held of group.held) {
      const alone = group.held.length === 1 ? outcome : await this.#insertWithRetries([held])
      if (alone === 'stored') await this.#settle([held], 'ack')
      else if (alone === 'abandoned') this.#forget([held])
      else {
        this.#remember(held.message.hash, alone.rejected)
        this.#options.events.rejected(alone.rejected, held.message.rows)
        await this.#settle([held], 'nak')
      }
    }
  }

  async #insertWithRetries(held: readonly Held[]): Promise<'stored' | 'abandoned' | { rejected: string }> {
    const { inserter, table, columns, events } = this.#options
    const token = this.#token(held)
    const blocks = held.map((h) => h.message.block)
    const rows = held.reduce((n, h) => n + h.message.rows, 0)
    for (let attempt = 1; ; attempt++) {
      const started = performance.now()
      try {
        await inserter.insertNative(table, columns, blocks, token)
        events.inserted(rows, held.length, (performance.now() - started) / 1000)
        events.available(true)
        return 'stored'
      } catch (error) {
        const reason = describeError(error)
        if (isRejectedData(error)) return { rejected: reason }
        events.available(false, reason)
        if (this.#closing) return 'abandoned'
        const delayMs = Math.min(this.#options.retryMaxMs, this.#options.retryMinMs * 2 ** (attempt - 1))
        events.retrying(reason, attempt, delayMs)
        await new Promise((resolve) => setTimeout(resolve, delayMs))
      }
    }
  }

  async #settle(held: readonly Held[], how: 'ack' | 'nak'): Promise<void> {
    for (const h of held) {
      this.#byHash.delete(h.message.hash)
      for (const delivery of h.deliveries) await (how === 'ack' ? delivery.ack() : delivery.nak(0))
    }
  }

  /** Closing with ClickHouse away: leave the messages unacknowledged for the bus to redeliver. */
  #forget(held: readonly Held[]): void {
    for (const h of held) this.#byHash.delete(h.message.hash)
  }

  #remember(hash: string, reason: string): void {
    if (this.#rejected.size >= REJECTED_MEMORY) this.#rejected.delete(this.#rejected.keys().next().value!)
    this.#rejected.set(hash, reason)
  }
}
