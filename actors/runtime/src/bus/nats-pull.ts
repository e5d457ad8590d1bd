// Pulls one shard of a stream from its durable JetStream consumer and hands the messages to the
// group's handler one at a time, in order. Pull requests are sized by the member's in-flight budget.
//
// We speak the JetStream pull protocol directly (a JSON request on
// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` answered on our inbox) because nats.js fetch()
// cannot bound a request by messages and bytes at once, and stalls when the next message is larger
// than max_bytes; the raw protocol tells us so (status 409) and we retry with room for it.

import { createInbox } from '@nats-io/transport-node'
import type { Delivery, DeliveryHandler } from './transport.js'
import { BudgetAcquireAborted, type Grant, type InFlightBudget } from './nats-budget.js'
import type { NatsWire, WireMsg } from './nats-wire.js'

/**
 * How long one pull request waits on the server for messages (an idle shard re-pulls this often).
 * Kept short because nats-server 2.9 keeps the pull requests of a dead client until they expire
 * and hands ack-wait redeliveries to them: a message whose ack wait ends while such a request lives
 * is lost for another ack wait and the consumer's order slips. The shorter the expiry, the smaller
 * that window after a member crash; the cost is one empty pull per second per idle shard.
 */
const PULL_EXPIRES_MS = 1_000
/** Margin after which we stop waiting for the server to end a pull request by itself. */
const PULL_GRACE_MS = 2_000
/** After its expiry a pull request may still have messages on the wire: listen this much longer. */
const LINGER_MARGIN_MS = 250
/** Pause before pulling again after the server refused a pull (consumer missing, no JetStream). */
const RETRY_DELAY_MS = 500
/** Bytes an idle shard reserves for its waiting pull: enough for typical batches, small next to the budget. */
const IDLE_PULL_BYTES = 64 * 1024
/** First size tried after a message did not fit: avoids creeping up from tiny sizes. */
const MIN_GROWN_BYTES = 1024

const ACK = '+ACK'
const NAK = '-NAK'
const nakWithDelay = (delayMs: number): string => `-NAK ${JSON.stringify({ delay: Math.round(delayMs * 1e6) })}`

export interface ShardPullerOptions {
  /** The data connection pulls, deliveries and acks go through. */
  readonly wire: NatsWire
  /** JetStream API prefix, `$JS.API` unless a domain is used. */
  readonly apiPrefix: string
  readonly stream: string
  readonly consumer: string
  readonly shard: number
  readonly budget: InFlightBudget
  /** This shard's fair share of the member budget, re-read before every pull. */
  readonly share: () => Grant
  /** max_bytes that fits the largest message the server accepts (subject and headers included). */
  readonly largestMessageBytes: number
  readonly ackWaitMs: number
  readonly keyHeader: string
  readonly handler: DeliveryHandler
  /** Called when the server says the consumer does not exist (deleted by an operator, stream re-created). */
  readonly recreateConsumer: () => Promise<void>
}

interface PullRequest {
  readonly grant: Grant
  coveredMsgs: number
  coveredBytes: number
  received: number
  /** Largest message that arrived for this request. */
  largest: number
  /** The server answered with a status: 409 size, 408 expired, 503 no consumer... */
  status: number
  description: string
  readonly end: () => void
}

/** Owns the pulling and ordered handling of one shard while this member holds its claim. */
export class ShardPuller {
  private readonly inbox = createInbox()
  private sid: number | undefined
  private stopping = false
  private readonly abort = new AbortController()
  private current: PullRequest | undefined
  /** When the server forgets our latest pull request (its expiry), in local time. */
  private pullDeadline = 0
  private readonly queue: NatsDelivery[] = []
  /** Delivered to this puller and not yet acked or naked. */
  private readonly unsettled = new Set<NatsDelivery>()
  private wakeHandler: (() => void) | undefined
  private handlerLoop: Promise<void> = Promise.resolve()
  private pullLoop: Promise<void> = Promise.resolve()

  constructor(private readonly options: ShardPullerOptions) {}

  get shard(): number {
    return this.options.shard
  }

  start(): void {
    this.sid = this.options.wire.subscribe(this.inbox, (msg) => this.onMessage(msg))
    this.handlerLoop = this.runHandler()
    this.pullLoop = this.runPulls()
  }

  /**
   * Stops pulling, waits for the handler call in progress, then gives back (nak, no delay) every
   * message this puller holds unsettled, so whoever owns the shard next gets them at once rather
   * than after ack_wait.
   */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true
      this.abort.abort()
      this.current?.end()
      for (const delivery of this.queue.splice(0)) delivery.giveBack()
      this.wakeHandler?.()
    }
    await Promise.all([this.handlerLoop, this.pullLoop])
    for (const delivery of [...this.unsettled]) delivery.giveBack()
    // The server may still answer our last pull request until it expires: keep listening (and
    // giving back whatever comes) until then, so no message waits out ack_wait for nothing.
    const sid = this.sid
    const linger = this.pullDeadline - Date.now()
    if (sid === undefined) return
    const { wire } = this.options
    if (linger <= 0) wire.unsubscribe(sid)
    else setTimeout(() => wire.unsubscribe(sid), linger).unref()
  }

  private async runPulls(): Promise<void> {
    let idle = false
    // Room one message needs: learnt from what arrives, doubled when the server says a message
    // did not fit (409). Starting small lets a tight byte budget hold several small messages.
    let need = 1
    while (!this.stopping) {
      const share = this.options.share()
      const wantMsgs = idle ? 1 : share.msgs
      const wantBytes = idle ? Math.max(need, Math.min(share.bytes, IDLE_PULL_BYTES)) : Math.max(need, share.bytes)
      let grant: Grant
      try {
        grant = await this.options.budget.acquire(wantMsgs, wantBytes, need, this.abort.signal)
      } catch (error) {
        if (error instanceof BudgetAcquireAborted) return
        throw error
      }
      const request = await this.pull(grant)
      if (this.stopping) return
      idle = request.received === 0
      if (request.received > 0) need = request.largest
      if (request.status === 409 && /exceeds maxbytes/i.test(request.description)) {
        if (request.received === 0) {
          const largest = this.options.largestMessageBytes
          // Already asking for the largest possible message means something else is wrong: do not spin.
          if (grant.bytes >= largest) await sleep(RETRY_DELAY_MS, this.abort.signal)
          need = Math.min(largest, Math.max(2 * grant.bytes, MIN_GROWN_BYTES))
          idle = false
        }
      } else if (request.status === 503 || /consumer (deleted|not found)/i.test(request.description)) {
        await this.recover()
      } else if (request.status >= 400 && request.status !== 408 && request.status !== 404) {
        // Refused for another reason (e.g. too many waiting pulls): back off, then try again.
        await sleep(RETRY_DELAY_MS, this.abort.signal)
      }
    }
  }

  /** Sends one pull request and resolves when the server (or our grace timer) ends it. */
  private pull(grant: Grant): Promise<PullRequest> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const request: PullRequest = {
        grant,
        coveredMsgs: 0,
        coveredBytes: 0,
        received: 0,
        largest: 0,
        status: 0,
        description: '',
        end: () => {
          if (this.current !== request) return
          this.current = undefined
          clearTimeout(timer)
          // What the server did not fill goes back to the member budget.
          this.options.budget.unreserve(grant.msgs - request.coveredMsgs, grant.bytes - request.coveredBytes)
          resolve(request)
        },
      }
      this.current = request
      if (this.stopping) return request.end()
      const { wire, apiPrefix, stream, consumer } = this.options
      try {
        wire.publishText(
          `${apiPrefix}.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
          `{"batch":${grant.msgs},"max_bytes":${grant.bytes},"expires":${PULL_EXPIRES_MS * 1e6}}`,
          this.inbox,
        )
      } catch {
        // Connection closed: nothing more to pull; the handler finishes its queue.
        this.stopping = true
        this.wakeHandler?.()
        return request.end()
      }
      this.pullDeadline = Date.now() + PULL_EXPIRES_MS + LINGER_MARGIN_MS
      timer = setTimeout(() => request.end(), PULL_EXPIRES_MS + PULL_GRACE_MS)
      timer.unref()
    })
  }

  private async recover(): Promise<void> {
    try {
      await this.options.recreateConsumer()
    } catch {
      // The stream itself may be gone; keep retrying slowly until the subscription closes.
    }
    await sleep(RETRY_DELAY_MS, this.abort.signal)
  }

  private onMessage(msg: WireMsg): void {
    const { status } = msg
    const request = this.current
    if (status !== 0) {
      if (status === 100) return // idle heartbeat / flow control: not used by our requests
      if (request) {
        request.status = status
        request.description = msg.description
        request.end()
      }
      return
    }
    const size = msg.size
    const delivery = new NatsDelivery(msg, this.options, size, this.unsettled)
    // The message uses up the reservation of the pull that brought it; when that leaves no room
    // for even an empty message (subject and reply alone), the server has finished the request
    // without telling us (it does so when the bytes run out exactly).
    let coveredMsgs = 0
    let coveredBytes = 0
    if (request) {
      coveredMsgs = Math.min(1, request.grant.msgs - request.coveredMsgs)
      coveredBytes = Math.min(size, request.grant.bytes - request.coveredBytes)
      request.coveredMsgs += coveredMsgs
      request.coveredBytes += coveredBytes
      request.received++
      request.largest = Math.max(request.largest, size)
    }
    this.options.budget.receive(coveredMsgs, coveredBytes, size)
    const noRoomLeft = request !== undefined && request.grant.bytes - request.coveredBytes < msg.subject.length + msg.reply.length
    if (this.stopping) {
      delivery.giveBack()
    } else {
      this.queue.push(delivery)
      this.wakeHandler?.()
    }
    if (request && (request.received >= request.grant.msgs || noRoomLeft)) request.end()
  }

  /** Calls the handler for one delivery at a time, in arrival order (the consumer's order). */
  private async runHandler(): Promise<void> {
    for (;;) {
      const delivery = this.queue.shift()
      if (!delivery) {
        if (this.stopping) return
        await new Promise<void>((resolve) => {
          this.wakeHandler = resolve
        })
        this.wakeHandler = undefined
        continue
      }
      try {
        await this.options.handler(delivery)
      } catch {
        // The handler failed without settling: let the message come back (at-least-once).
        if (!delivery.settled) await delivery.nak()
      }
    }
  }
}

/** One JetStream message as a Delivery; settles once (ack or nak) and frees its budget share. */
class NatsDelivery implements Delivery {
  readonly shard: number
  readonly key: string
  readonly headers: Readonly<Record<string, string>>
  readonly deliveryCount: number
  readonly position: number | undefined
  settled = false
  private readonly expiry: NodeJS.Timeout

  constructor(
    private readonly msg: WireMsg,
    private readonly options: ShardPullerOptions,
    private readonly size: number,
    private readonly unsettled: Set<NatsDelivery>,
  ) {
    unsettled.add(this)
    this.shard = options.shard
    const headers: Record<string, string> = {}
    let key = ''
    if (msg.headers) {
      const keyHeader = options.keyHeader.toLowerCase()
      for (const [name, value] of Object.entries(msg.headers)) {
        if (name.toLowerCase() === keyHeader) key = value
        else headers[name] = value
      }
    }
    this.key = key
    this.headers = headers
    this.deliveryCount = deliveryCountOf(msg.reply)
    this.position = streamSequenceOf(msg.reply)
    // Once ack_wait passes the server redelivers anyway, so the slot must not stay held forever
    // by a handler that never settles.
    this.expiry = setTimeout(() => this.free(), options.ackWaitMs)
    this.expiry.unref()
  }

  get data(): Uint8Array {
    return this.msg.data
  }

  async ack(): Promise<void> {
    this.settle(ACK)
  }

  async nak(delayMs?: number): Promise<void> {
    this.settle(delayMs !== undefined && delayMs > 0 ? nakWithDelay(delayMs) : NAK)
  }

  /** Returned unhandled (shard released): nak without delay so the next owner gets it at once. */
  giveBack(): void {
    this.settle(NAK)
  }

  private settle(reply: string): void {
    if (this.settled) return
    this.settled = true
    this.unsettled.delete(this)
    if (this.msg.reply !== '') {
      try {
        this.options.wire.publishText(this.msg.reply, reply)
      } catch {
        // Connection closed: the server redelivers after ack_wait, which is what a lost ack means.
      }
    }
    this.free()
  }

  private freed = false
  private free(): void {
    if (this.freed) return
    this.freed = true
    clearTimeout(this.expiry)
    this.options.budget.settle(this.size)
  }
}

/**
 * Delivery count from the ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`,
 * or with domain and account hash (`$JS.ACK.<domain>.<hash>.<stream>...`, 12 tokens) on newer servers.
 */
export function deliveryCountOf(reply: string | undefined): number {
  if (!reply) return 1
  const tokens = reply.split('.')
  const index = tokens.length === 9 ? 4 : 6
  const count = Number(tokens[index])
  return Number.isInteger(count) && count > 0 ? count : 1
}

/** Stream sequence from the same ack subject (the token after the delivery count). */
export function streamSequenceOf(reply: string | undefined): number | undefined {
  if (!reply) return undefined
  const tokens = reply.split('.')
  const sequence = Number(tokens[tokens.length === 9 ? 5 : 7])
  return Number.isSafeInteger(sequence) && sequence > 0 ? sequence : undefined
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const onAbort = (): void => {
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
