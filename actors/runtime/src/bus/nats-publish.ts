// Publishes to JetStream streams and waits for each PubAck, matching acks to publishes through one
// wildcard inbox, as nats.js request() does but without its timer, promise race and Errors per publish.
//
// A JetStream publish is a core NATS publish with a reply subject; the stream answers on it with
// `{"stream":…,"seq":…}` once the message is stored, `{"error":…}` when it refused it, or a 503
// status when no stream listens on the subject. At full rate (hundreds of 100 KB batches a second)
// nats.js spent more CPU on request bookkeeping than on the publish itself.

import { createInbox, NoRespondersError } from '@nats-io/transport-node'
import type { NatsWire, WireMsg } from './nats-wire.js'

/** The stream refused the message (e.g. storage full, message too large for the stream). */
export class PubAckError extends Error {
  constructor(
    readonly subject: string,
    readonly code: number,
    description: string,
  ) {
    super(`JetStream refused the message on ${subject}: ${description} (${code})`)
    this.name = 'PubAckError'
  }
}

/** No acknowledgement arrived in time: the message may or may not be stored. */
export class PubAckTimeout extends Error {
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super(`no JetStream acknowledgement for the message on ${subject} within ${timeoutMs} ms`)
    this.name = 'PubAckTimeout'
  }
}

interface Pending {
  readonly subject: string
  readonly deadline: number
  readonly resolve: () => void
  readonly reject: (error: Error) => void
}

interface PubAckBody {
  readonly error?: { readonly code?: number; readonly err_code?: number; readonly description?: string }
}

/** How often pending publishes are checked against their deadline. */
const SWEEP_MS = 250
const decoder = new TextDecoder()

export class StreamPublisher {
  /** Reply subjects are `<prefix><id>`; one wildcard subscription receives every PubAck. */
  private readonly prefix = `${createInbox()}.`
  private readonly sid: number
  /** In publish order, hence in deadline order (one timeout for all). */
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private sweeper: NodeJS.Timeout | undefined

  constructor(
    private readonly wire: NatsWire,
    private readonly timeoutMs: number,
  ) {
    this.sid = wire.subscribe(`${this.prefix}*`, (msg) => this.onReply(msg))
    void wire.closed().then(() => this.failAll('the NATS connection closed before JetStream acknowledged'))
  }

  /**
   * Resolves once the stream stored the message; rejects with its refusal, a 503 or a timeout.
   * `header` is the message's header block, `headerBytes` its UTF-8 length.
   */
  publish(subject: string, data: Uint8Array, header: string, headerBytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const id = ++this.nextId
      // Throws (connection closed, reconnect buffer full) before anything is pending.
      this.wire.publish(subject, data, `${this.prefix}${id}`, header, headerBytes)
      this.pending.set(id, { subject, deadline: Date.now() + this.timeoutMs, resolve, reject })
      if (!this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(), Math.min(SWEEP_MS, this.timeoutMs))
        this.sweeper.unref()
      }
    })
  }

  /** Stops listening for acknowledgements; publishes still pending fail. */
  close(): void {
    this.failAll('the NATS transport closed before JetStream acknowledged')
    this.wire.unsubscribe(this.sid)
  }

  private onReply(msg: WireMsg): void {
    const id = Number(msg.subject.slice(this.prefix.length))
    const pending = this.pending.get(id)
    if (!pending) return // answered after its timeout
    this.pending.delete(id)
    if (msg.status === 503) {
      pending.reject(new NoRespondersError(pending.subject))
      return
    }
    // A stored message is acknowledged with `{"stream":…,"seq":…}`: only an answer that mentions an
    // error needs reading (a stream named "error" just takes the longer way).
    const answer = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)
    if (answer.length > 0 && answer.indexOf('"error"') < 0) {
      pending.resolve()
      return
    }
    let body: PubAckBody
    try {
      body = JSON.parse(decoder.decode(answer)) as PubAckBody
    } catch (error) {
      pending.reject(new Error(`unreadable JetStream acknowledgement on ${pending.subject}`, { cause: error }))
      return
    }
    if (body.error) {
      const { err_code, code, description } = body.error
      pending.reject(new PubAckError(pending.subject, err_code ?? code ?? 0, description ?? 'no description'))
      return
    }
    pending.resolve()
  }

  private sweep(): void {
    const now = Date.now()
    for (const [id, pending] of this.pending) {
      if (pending.deadline > now) break
      this.pending.delete(id)
      pending.reject(new PubAckTimeout(pending.subject, this.timeoutMs))
    }
    if (this.pending.size === 0) this.stopSweeper()
  }

  private failAll(reason: string): void {
    for (const pending of this.pending.values()) pending.reject(new Error(`${reason} the message on ${pending.subject}`))
    this.pending.clear()
    this.stopSweeper()
  }

  private stopSweeper(): void {
    clearInterval(this.sweeper)
    this.sweeper = undefined
  }
}
