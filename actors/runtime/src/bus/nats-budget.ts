// The in-flight budget of one consumer-group member: messages and bytes delivered but not yet
// acked. Shard pullers reserve before each pull request and give back what the server left unused.

/** What a puller may ask the server for in one pull request. */
export interface Grant {
  readonly msgs: number
  readonly bytes: number
}

interface Waiter {
  readonly wantMsgs: number
  readonly wantBytes: number
  readonly minBytes: number
  readonly resolve: (grant: Grant) => void
  readonly reject: (error: Error) => void
}

/** Thrown to a pending acquire when its puller stops. */
export class BudgetAcquireAborted extends Error {
  constructor() {
    super('in-flight budget wait aborted')
    this.name = 'BudgetAcquireAborted'
  }
}

/**
 * Counting semaphore over (messages, bytes), served first come first served so a puller
 * waiting for room for one large message is not starved by pullers of small ones. It counts
 * reservations of pull requests in flight on the server and messages held (delivered, not yet
 * settled) separately: both use up the budget, but only held messages stop a message larger than
 * the whole budget from being pulled.
 */
export class InFlightBudget {
  private reservedMsgs = 0
  private reservedBytes = 0
  private heldMsgs = 0
  private heldBytes = 0
  private readonly waiters: Waiter[] = []

  constructor(
    readonly maxMsgs: number,
    readonly maxBytes: number,
  ) {}

  /** Messages delivered to the handler side and not yet acked or naked. */
  get inFlightMsgs(): number {
    return this.heldMsgs
  }

  get inFlightBytes(): number {
    return this.heldBytes
  }

  /**
   * Reserves up to wantMsgs messages and wantBytes bytes, waiting until at least one message
   * and minBytes bytes are free. When minBytes exceeds the whole budget (a message larger than
   * maxBytes) it is granted for one message once the member holds none: it must still progress.
   */
  acquire(wantMsgs: number, wantBytes: number, minBytes: number, signal?: AbortSignal): Promise<Grant> {
    if (signal?.aborted) return Promise.reject(new BudgetAcquireAborted())
    return new Promise<Grant>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter)
        if (index >= 0) {
          this.waiters.splice(index, 1)
          reject(new BudgetAcquireAborted())
          this.serve()
        }
      }
      const waiter: Waiter = {
        wantMsgs: Math.max(1, wantMsgs),
        wantBytes: Math.max(minBytes, wantBytes),
        minBytes,
        resolve: (grant) => {
          // One puller acquires thousands of times over its life: do not pile listeners on its signal.
          signal?.removeEventListener('abort', onAbort)
          resolve(grant)
        },
        reject,
      }
      this.waiters.push(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.serve()
    })
  }

  /**
   * A message arrived: the covered part of it leaves the pull's reservation, the whole message
   * is now held. A message the reservation did not cover (late, or counted differently by the
   * server) is held all the same, so the count stays exact.
   */
  receive(coveredMsgs: number, coveredBytes: number, bytes: number): void {
    this.reservedMsgs = Math.max(0, this.reservedMsgs - coveredMsgs)
    this.reservedBytes = Math.max(0, this.reservedBytes - coveredBytes)
    this.heldMsgs += 1
    this.heldBytes += bytes
    this.serve()
  }

  /** A pull request ended: what the server did not fill goes back. */
  unreserve(msgs: number, bytes: number): void {
    this.reservedMsgs = Math.max(0, this.reservedMsgs - msgs)
    this.reservedBytes = Math.max(0, this.reservedBytes - bytes)
    this.serve()
  }

  /** A held message was acked or naked (or its ack wait passed). */
  settle(bytes: number): void {
    this.heldMsgs = Math.max(0, this.heldMsgs - 1)
    this.heldBytes = Math.max(0, this.heldBytes - bytes)
    this.serve()
  }

  private serve(): void {
    for (;;) {
      const head = this.waiters[0]
      if (!head) return
      const freeMsgs = this.maxMsgs - this.reservedMsgs - this.heldMsgs
      const freeBytes = this.maxBytes - this.reservedBytes - this.heldBytes
      if (freeMsgs < 1) return
      let msgs: number
      let bytes: number
      if (freeBytes >= head.minBytes) {
        msgs = Math.min(head.wantMsgs, freeMsgs)
        bytes = Math.max(head.minBytes, Math.min(head.wantBytes, freeBytes))
      } else if (head.minBytes > this.maxBytes && this.heldMsgs === 0) {
        // A message larger than the whole budget: let it through alone, once nothing is held.
        msgs = 1
        bytes = head.minBytes
      } else return
      this.waiters.shift()
      this.reservedMsgs += msgs
      this.reservedBytes += bytes
      head.resolve({ msgs, bytes })
    }
  }
}
