// A minimal Kafka wire-protocol connection for the transport's write path: frames requests,
// matches responses by correlation id, and reads the few response fields the producer needs.
//
// Why not kafkajs here: its encoder copies every produced byte half a dozen times through
// growing buffers; this connection hands payloads to the socket as they are (see
// kafka-records.ts). Reads, groups and admin stay on kafkajs.

import { connect, type Socket } from 'node:net'

/** The connection failed or closed with requests outstanding; their outcome is unknown. */
export class KafkaConnectionError extends Error {
  constructor(
    readonly address: string,
    detail: string,
  ) {
    super(`kafka broker ${address}: ${detail}`)
    this.name = 'KafkaConnectionError'
  }
}

interface Pending {
  resolve(body: Buffer): void
  reject(error: unknown): void
  timer: NodeJS.Timeout
}

export interface WireConnectionOptions {
  readonly host: string
  readonly port: number
  readonly clientId: string
  readonly connectTimeoutMs: number
  /** A request unanswered this long fails the connection (its outcome is then unknown). */
  readonly requestTimeoutMs: number
}

export class WireConnection {
  private readonly socket: Socket
  private readonly ready: Promise<void>
  private readonly pending = new Map<number, Pending>()
  private readonly clientId: Buffer
  private correlationId = 0
  private chunks: Buffer[] = []
  private buffered = 0
  private failure: Error | undefined
  readonly address: string

  constructor(private readonly options: WireConnectionOptions) {
    this.address = `${options.host}:${options.port}`
    this.clientId = Buffer.from(options.clientId, 'utf8')
    this.socket = connect({ host: options.host, port: options.port, noDelay: true })
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(`no connection within ${options.connectTimeoutMs} ms`), options.connectTimeoutMs)
      this.socket.once('connect', () => {
        clearTimeout(timer)
        resolve()
      })
      this.socket.once('close', () => {
        clearTimeout(timer)
        reject(this.failure ?? new KafkaConnectionError(this.address, 'connection closed'))
      })
    })
    this.ready.catch(() => undefined)
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk))
    this.socket.on('error', (error) => this.fail(error.message))
    this.socket.on('close', () => this.fail('connection closed'))
  }

  get closed(): boolean {
    return this.failure !== undefined
  }

  /**
   * Sends one request (header v1) whose body is the given chunks, written as they are, and
   * resolves with the response body after the correlation id.
   */
  async request(apiKey: number, apiVersion: number, body: readonly Buffer[]): Promise<Buffer> {
    await this.ready
    if (this.failure) throw this.failure
    const id = (this.correlationId = (this.correlationId + 1) & 0x7fffffff)
    const header = Buffer.allocUnsafe(4 + 2 + 2 + 4 + 2 + this.clientId.length)
    let size = header.length - 4
    for (const chunk of body) size += chunk.length
    header.writeInt32BE(size, 0)
    header.writeInt16BE(apiKey, 4)
    header.writeInt16BE(apiVersion, 6)
    header.writeInt32BE(id, 8)
    header.writeInt16BE(this.clientId.length, 12)
    this.clientId.copy(header, 14)
    const response = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(`no response to request ${apiKey} v${apiVersion} within ${this.options.requestTimeoutMs} ms`),
        this.options.requestTimeoutMs,
      )
      this.pending.set(id, { resolve, reject, timer })
    })
    // One writev for the whole request: the payload chunks are not copied in user space.
    this.socket.cork()
    this.socket.write(header)
    for (const chunk of body) if (chunk.length > 0) this.socket.write(chunk)
    this.socket.uncork()
    return response
  }

  close(): void {
    this.fail('connection closed by the client')
  }

  private fail(detail: string): void {
    if (!this.failure) this.failure = new KafkaConnectionError(this.address, detail)
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer)
      pending.reject(this.failure)
      this.pending.delete(id)
    }
    this.socket.destroy()
  }

  private receive(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    for (;;) {
      if (this.buffered < 4) return
      const head = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.flatten()
      const size = head.readInt32BE(0)
      if (this.buffered < 4 + size) return
      const all = this.flatten()
      const frame = all.subarray(4, 4 + size)
      const rest = all.subarray(4 + size)
      this.chunks = rest.length > 0 ? [rest] : []
      this.buffered = rest.length
      const id = frame.readInt32BE(0)
      const pending = this.pending.get(id)
      if (!pending) continue // answered after its request timed out
      this.pending.delete(id)
      clearTimeout(pending.timer)
      pending.resolve(frame.subarray(4))
    }
  }

  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)]
    return this.chunks[0]!
  }
}

/** Sequential reader of a response body. */
export class WireReader {
  private offset = 0
  constructor(private readonly buffer: Buffer) {}

  int16(): number {
    const value = this.buffer.readInt16BE(this.offset)
    this.offset += 2
    return value
  }

  int32(): number {
    const value = this.buffer.readInt32BE(this.offset)
    this.offset += 4
    return value
  }

  int64(): number {
    const value = this.buffer.readBigInt64BE(this.offset)
    this.offset += 8
    return Number(value)
  }

  /** A (non-compact) string; null reads as ''. */
  string(): string {
    const length = this.int16()
    if (length < 0) return ''
    const value = this.buffer.toString('utf8', this.offset, this.offset + length)
    this.offset += length
    return value
  }
}
