// Typed failures of the Bus service, so callers can tell a full broker from a missing
// responder from a message that can never be sent.
import { Data } from 'effect'

/** The transport failed (broker unreachable, stream missing…); usually worth retrying. */
export class BusError extends Data.TaggedError('BusError')<{
  readonly subject: string
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `bus ${this.operation} on ${this.subject} failed: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/** The encoded message is larger than the bus accepts: split the batch. Never retried. */
export class MessageTooLarge extends Data.TaggedError('MessageTooLarge')<{
  readonly subject: string
  readonly size: number
  readonly limit: number
}> {
  override get message(): string {
    return `message of ${this.size} bytes on ${this.subject} exceeds the bus limit of ${this.limit} bytes (bus.maxMessageBytes): publish smaller batches`
  }
}

/** Nobody answered a request in time. */
export class RequestTimeout extends Data.TaggedError('RequestTimeout')<{
  readonly subject: string
  readonly timeoutMs: number
}> {
  override get message(): string {
    return `no reply on ${this.subject} within ${this.timeoutMs} ms`
  }
}

/** No responder serves the subject (on Kafka: the responder group has no member; a crashed responder shows as a timeout until its session expires). */
export class NoResponders extends Data.TaggedError('NoResponders')<{ readonly subject: string }> {
  override get message(): string {
    return `no responder is serving ${this.subject}`
  }
}

/** A message could not be decoded as the subject's type. */
export class MalformedMessage extends Data.TaggedError('MalformedMessage')<{
  readonly subject: string
  readonly typeName: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `malformed ${this.typeName} on ${this.subject}: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}
