// Inserts bus messages into ClickHouse, one insert per message under a deduplication token that
// is the hash of the message's block, and settles each message only once ClickHouse accepted it:
// retried with backoff while ClickHouse is unavailable, set aside when ClickHouse refuses it.
//
// Why one message per insert: a redelivered message must be recognised whatever it arrives with.
// After a crash the bus redelivers from its last committed position (Kafka commits acknowledged
// offsets every second or so), so messages come back grouped differently than first inserted;
// ClickHouse identifies inserted blocks by token or by the whole insert, never by a part of one,
// so only a message inserted alone keeps the same identity. Bus messages are batches of
// thousands of flows: size them for ClickHouse (tens of thousands of flows) at the producer.
import { createHash } from 'node:crypto'
import type { BlockColumn } from './encode/native.js'
import { describeError, isRejectedData } from './errors.js'
import type { BlockInserter } from './inserter.js'

/** A bus message the writer holds until its rows are stored. */
export interface HeldMessage {
  /** Identity of the message's contents (hash of its encoded block): stable across redeliveries. */
  readonly hash: string
  readonly block: Uint8Array
  readonly rows: number
  readonly arrivedMs: number
  readonly ack: () => Promise<void>
  readonly nak: (delayMs: number) => Promise<void>
}

interface Held {
  readonly message: HeldMessage
  /** Every delivery of this message still unsettled (a redelivery while held adds one). */
  readonly deliveries: { ack: () => Promise<void>; nak: (delayMs: number) => Promise<void> }[]
}

/** What the writer reports, for metrics, logs and readiness. */
export interface WriterEvents {
  readonly inserted: (rows: number, seconds: number) => void
  readonly retrying: (reason: string, attempt: number, delayMs: number) => void
  readonly rejected: (reason: string, rows: number) => void
  readonly available: (ok: boolean, detail?: string) => void
}

export interface WriterOptions {
  readonly table: string
  readonly columns: readonly BlockColumn[]
  readonly inserter: BlockInserter
  /** Inserts running at once (the engine overlaps them with encoding and staging). */
  readonly concurrency: number
  /** 0: one message per insert. Else messages waiting are inserted together up to this many rows. */
  readonly batchRows?: number
  readonly retryMinMs: number
  readonly retryMaxMs: number
  readonly events: WriterEvents
}

/** Outcome of handing a message to the writer. */
export type Accepted = { readonly held: true } | { readonly held: false; readonly rejected: string }

const REJECTED_MEMORY = 10_000

export const blockHash = (block: Uint8Array): string => createHash('md5').update(block).digest('hex')

export class FlowWriter {
  readonly #options: WriterOptions
  readonly #byHash = new Map<string, Held>()
  readonly #queue: Held[] = []
  /** Messages ClickHouse refused, by hash: their redeliveries fail so the bus dead-letters them. */
  readonly #rejected = new Map<string, string>()
  #running = 0
  #closing = false
  #idleWaiters: (() => void)[] = []

  constructor(options: WriterOptions) {
    this.#options = options
  }

  /**
   * Takes a message for insertion and returns at once (the bus bounds how many are held). A
   * message ClickHouse refused earlier is answered with the reason instead.
   */
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
    this.#queue.push(held)
    this.#pump()
    return { held: true }
  }

  /** Messages held, and the age of the oldest (how far the writer is behind the bus). */
  pending(nowMs: number): { messages: number; oldestAgeMs: number } {
    let oldest = nowMs
    for (const held of this.#byHash.values()) oldest = Math.min(oldest, held.message.arrivedMs)
    return { messages: this.#byHash.size, oldestAgeMs: nowMs - oldest }
  }

  /** Waits until every message taken so far is stored, refused or (closing) given up. */
  async flush(): Promise<void> {
    if (this.#queue.length === 0 && this.#running === 0) return
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve))
  }

  /** Stops taking messages and waits for the inserts under way; unstored messages stay unacknowledged. */
  async close(): Promise<void> {
    this.#closing = true
    await this.flush()
  }

  #pump(): void {
    while (this.#running < this.#options.concurrency && this.#queue.length > 0) {
      const batch = [this.#queue.shift()!]
      let rows = batch[0]!.message.rows
      const limit = this.#options.batchRows ?? 0
      while (this.#queue.length > 0 && rows + this.#queue[0]!.message.rows <= limit) {
        const next = this.#queue.shift()!
        rows += next.message.rows
        batch.push(next)
      }
      this.#running++
      void this.#store(batch).finally(() => {
        this.#running--
        this.#pump()
        if (this.#running === 0 && this.#queue.length === 0) for (const wake of this.#idleWaiters.splice(0)) wake()
      })
    }
  }

  async #store(batch: readonly Held[]): Promise<void> {
    const outcome = await this.#insertWithRetries(batch)
    if (outcome !== 'stored' && outcome !== 'abandoned' && batch.length > 1) {
      // Refused: find the bad messages by inserting each alone (already stored ones are skipped).
      for (const held of batch) await this.#store([held])
      return
    }
    for (const held of batch) {
      this.#byHash.delete(held.message.hash)
      if (outcome === 'abandoned') continue
      if (outcome !== 'stored') {
        this.#remember(held.message.hash, outcome.rejected)
        this.#options.events.rejected(outcome.rejected, held.message.rows)
      }
      for (const delivery of held.deliveries) await (outcome === 'stored' ? delivery.ack() : delivery.nak(0))
    }
  }

  /** The token of a set of messages: a message alone is its own hash, whatever the setting. */
  #token(batch: readonly Held[]): string {
    if (batch.length === 1) return batch[0]!.message.hash
    const hash = createHash('md5')
    for (const held of batch) hash.update(held.message.hash)
    return hash.digest('hex')
  }

  async #insertWithRetries(batch: readonly Held[]): Promise<'stored' | 'abandoned' | { rejected: string }> {
    const { inserter, table, columns, events } = this.#options
    const block = batch.length === 1 ? batch[0]!.message.block : Buffer.concat(batch.map((h) => h.message.block))
    const rows = batch.reduce((n, h) => n + h.message.rows, 0)
    const token = this.#token(batch)
    for (let attempt = 1; ; attempt++) {
      const started = performance.now()
      try {
        await inserter.insertNative(table, columns, block, token)
        events.inserted(rows, (performance.now() - started) / 1000)
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

  #remember(hash: string, reason: string): void {
    if (this.#rejected.size >= REJECTED_MEMORY) this.#rejected.delete(this.#rejected.keys().next().value!)
    this.#rejected.set(hash, reason)
  }
}
