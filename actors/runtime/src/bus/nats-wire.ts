// A lean NATS protocol connection for the JetStream data path (stream publishes, pull requests,
// acks): payloads go to the socket without being copied and are copied once out of the socket.
//
// nats.js copies every outgoing message into one buffer with its protocol line, and reassembles
// incoming ones in a growing buffer, zero-filling and copying a 100 KB batch several times; at a few
// hundred batches a second that was a third of the transport's CPU and most of its garbage. This
// connection speaks only what the data path needs (INFO, CONNECT, PING/PONG, SUB/UNSUB, PUB/HPUB,
// MSG/HMSG, +OK/-ERR), reconnects forever like the nats.js connection beside it, and leaves the
// control plane (JetStream API, KV, request/reply) to nats.js.

import { connect as netConnect, type Socket } from 'node:net'

export interface WireOptions {
  /** Server URLs (`nats://[user:pass@]host[:port]`, `host:port`); tried in order. */
  readonly servers: readonly string[]
  readonly name?: string
  readonly user?: string
  readonly pass?: string
  readonly token?: string
  readonly connectTimeoutMs: number
  /** Pause between reconnection rounds over the server list. */
  readonly reconnectWaitMs: number
  /** A connection whose server stops answering pings for about twice this long is replaced. */
  readonly pingIntervalMs?: number
  /** Size of the socket read buffer (default 1 MiB); tests make it tiny to split every frame. */
  readonly readBufferBytes?: number
}

/**
 * A message delivered to a subscription: payload copied out of the socket, headers parsed.
 * Subjects are read as ASCII, which every flowbus subject, inbox and JetStream ack subject is.
 */
export interface WireMsg {
  readonly subject: string
  /** Reply subject, '' when none. */
  readonly reply: string
  /** Status of a status message (e.g. 404, 408, 409 on pull requests, 503 no responders), else 0. */
  readonly status: number
  readonly description: string
  /** Header name → value (first value of repeated names), undefined without headers. */
  readonly headers: Readonly<Record<string, string>> | undefined
  readonly data: Uint8Array
  /** What the server counts against a pull's max_bytes: subject, reply, headers and payload. */
  readonly size: number
}

export type WireHandler = (msg: WireMsg) => void

export interface ServerAddress {
  readonly host: string
  readonly port: number
  readonly user?: string
  readonly pass?: string
  readonly token?: string
  readonly text: string
}

/** Thrown by publish once the connection is closed. */
export class WireClosedError extends Error {
  constructor() {
    super('the NATS data connection is closed')
    this.name = 'WireClosedError'
  }
}

const CRLF = '\r\n'
const LF = 0x0a
/** Size of the socket read buffer: several batches per read, reused for every read. */
const READ_BUFFER_BYTES = 1024 * 1024
/** Longest protocol line we accept (INFO of a large cluster fits). */
const MAX_LINE_BYTES = 64 * 1024
/** Bytes of publishes kept while disconnected, sent after reconnecting (as nats.js does). */
const RECONNECT_BUFFER_BYTES = 8 * 1024 * 1024
const DEFAULT_PING_INTERVAL_MS = 120_000
const MAX_PINGS_OUT = 2

export class NatsWire {
  private socket: Socket | undefined
  private connected = false
  private closing = false
  private readonly closedPromise: Promise<void>
  private resolveClosed: () => void = () => {}
  /** Server INFO of the current connection. */
  info: { readonly max_payload?: number; readonly headers?: boolean; readonly tls_required?: boolean } = {}

  private readonly subs = new Map<number, { readonly subject: string; readonly handler: WireHandler }>()
  private nextSid = 0

  /** Outgoing protocol, in order: text runs (protocol lines, small payloads) and payloads by reference. */
  private chunks: (string | Uint8Array)[] = []
  private text = ''
  private queuedBytes = 0
  private flushScheduled = false

  /** Resolvers of PINGs in flight, in order; keep-alive pings push undefined. */
  private readonly pongWaiters: ((() => void) | undefined)[] = []
  private pingTimer: NodeJS.Timeout | undefined
  private reconnectTimer: NodeJS.Timeout | undefined

  // Parser state: a protocol line being gathered, or a message payload being filled.
  private readonly readBuffer: Buffer
  private line: Buffer | undefined
  private message:
    | { subject: string; sid: number; reply: string; headerBytes: number; payload: Buffer; filled: number }
    | undefined
  /** CR LF still to skip after a payload. */
  private trailer = 0

  private constructor(
    private readonly options: WireOptions,
    private readonly servers: readonly ServerAddress[],
  ) {
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve))
    this.readBuffer = Buffer.allocUnsafe(options.readBufferBytes ?? READ_BUFFER_BYTES)
  }

  /** Connects to the first server of the list that answers; throws naming them all otherwise. */
  static async connect(options: WireOptions): Promise<NatsWire> {
    const wire = new NatsWire(options, options.servers.map(parseServer))
    const failures: string[] = []
    for (const server of wire.servers) {
      try {
        await wire.open(server)
        wire.startPings()
        return wire
      } catch (error) {
        failures.push(`${server.text}: ${error instanceof Error ? error.message : String(error)}`)
      }
    }
    throw new Error(`cannot open the NATS data connection (${failures.join('; ')})`)
  }

  /** Resolves once close() finished. */
  closed(): Promise<void> {
    return this.closedPromise
  }

  isClosed(): boolean {
    return this.closing
  }

  subscribe(subject: string, handler: WireHandler): number {
    if (this.closing) throw new WireClosedError()
    const sid = ++this.nextSid
    this.subs.set(sid, { subject, handler })
    if (this.connected) this.queueText(`SUB ${subject} ${sid}${CRLF}`)
    return sid
  }

  unsubscribe(sid: number): void {
    if (!this.subs.delete(sid)) return
    if (this.connected && !this.closing) this.queueText(`UNSUB ${sid}${CRLF}`)
  }

  /**
   * Publishes `data` (kept by reference until written: do not change it) with an optional reply
   * subject and header block (`NATS/1.0\r\n...\r\n\r\n`, `headerBytes` long in UTF-8).
   */
  publish(subject: string, data: Uint8Array, reply = '', header = '', headerBytes = 0): void {
    if (this.closing) throw new WireClosedError()
    if (!this.connected && this.queuedBytes + data.length > RECONNECT_BUFFER_BYTES) {
      throw new Error(`the NATS data connection is down and its reconnect buffer is full: not publishing to ${subject}`)
    }
    const replyPart = reply === '' ? '' : ` ${reply}`
    this.text +=
      headerBytes > 0
        ? `HPUB ${subject}${replyPart} ${headerBytes} ${headerBytes + data.length}${CRLF}${header}`
        : `PUB ${subject}${replyPart} ${data.length}${CRLF}`
    if (data.length > 0) {
      this.chunks.push(this.text, data)
      this.text = CRLF
    } else {
      this.text += CRLF
    }
    this.queuedBytes += data.length
    this.scheduleFlush()
  }

  /** Publishes a short text payload (acks, pull requests); kept even while disconnected. */
  publishText(subject: string, payload: string, reply = ''): void {
    if (this.closing) throw new WireClosedError()
    const replyPart = reply === '' ? '' : ` ${reply}`
    this.queueText(`PUB ${subject}${replyPart} ${Buffer.byteLength(payload)}${CRLF}${payload}${CRLF}`)
  }

  /** Resolves once the server processed everything sent before (PING/PONG round trip). */
  flush(): Promise<void> {
    if (this.closing) return Promise.reject(new WireClosedError())
    return new Promise((resolve) => {
      this.pongWaiters.push(resolve)
      if (this.connected) this.queueText(`PING${CRLF}`)
    })
  }

  /** Sends what is queued, then closes; later publishes throw. */
  async close(): Promise<void> {
    if (this.closing) return this.closedPromise
    this.closing = true
    clearInterval(this.pingTimer)
    clearTimeout(this.reconnectTimer)
    const socket = this.socket
    if (socket && this.connected) {
      this.writeQueued()
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve())
        socket.end()
        setTimeout(() => socket.destroy(), 5_000).unref()
      })
    } else {
      socket?.destroy()
    }
    this.connected = false
    for (const waiter of this.pongWaiters.splice(0)) waiter?.()
    this.resolveClosed()
  }

  private queueText(line: string): void {
    this.text += line
    this.scheduleFlush()
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    // Everything published in this turn of the event loop goes out in one writev.
    queueMicrotask(() => {
      this.flushScheduled = false
      if (this.connected) this.writeQueued()
    })
  }

  private writeQueued(): void {
    const socket = this.socket
    if (!socket) return
    if (this.text !== '') {
      this.chunks.push(this.text)
      this.text = ''
    }
    const chunks = this.chunks
    if (chunks.length === 0) return
    this.chunks = []
    this.queuedBytes = 0
    if (chunks.length === 1) {
      socket.write(chunks[0]!)
      return
    }
    socket.cork()
    for (const chunk of chunks) socket.write(chunk)
    socket.uncork()
  }

  /** Opens a socket to `server`, does the INFO/CONNECT/PING handshake, resolves once PONG came. */
  private open(server: ServerAddress): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let handshaking = true
      const socket = netConnect({
        host: server.host,
        port: server.port,
        noDelay: true,
        onread: {
          buffer: this.readBuffer,
          callback: (bytes: number): boolean => {
            try {
              this.parse(this.readBuffer.subarray(0, bytes))
            } catch (error) {
              // A protocol error: this connection cannot be trusted any more.
              socket.destroy(error instanceof Error ? error : new Error(String(error)))
            }
            return true
          },
        },
      })
      const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${this.options.connectTimeoutMs} ms`)), this.options.connectTimeoutMs)
      const fail = (error: Error): void => {
        if (!handshaking) return
        handshaking = false
        clearTimeout(timer)
        this.onHandshake = undefined
        socket.destroy()
        reject(error)
      }
      this.resetParser()
      this.socket = socket
      this.onHandshake = (event, detail) => {
        if (event === 'info') {
          if (this.info.headers === false) return fail(new Error('the server does not support headers (nats-server 2.2 or newer needed)'))
          if (this.info.tls_required) return fail(new Error('the server requires TLS, which the flowbus NATS transport does not speak'))
          const connectOptions = {
            verbose: false,
            pedantic: false,
            headers: true,
            no_responders: true,
            protocol: 1,
            lang: 'flowbus-wire',
            version: '1',
            name: this.options.name,
            user: server.user ?? this.options.user,
            pass: server.pass ?? this.options.pass,
            auth_token: server.token ?? this.options.token,
          }
          socket.write(`CONNECT ${JSON.stringify(connectOptions)}${CRLF}PING${CRLF}`)
        } else if (event === 'pong') {
          handshaking = false
          clearTimeout(timer)
          this.onHandshake = undefined
          this.connected = true
          // Subscriptions first, then whatever was published while we were away.
          let subs = ''
          for (const [sid, sub] of this.subs) subs += `SUB ${sub.subject} ${sid}${CRLF}`
          if (subs !== '') socket.write(subs)
          this.writeQueued()
          resolve()
        } else if (event === 'error') {
          fail(new Error(`server refused the connection: ${detail}`))
        }
      }
      socket.on('error', (error) => fail(error))
      socket.on('close', () => {
        fail(new Error('connection closed during the handshake'))
        if (this.socket === socket) this.onSocketClosed()
      })
    })
  }

  /** Handshake progress, set while a connection is being opened. */
  private onHandshake: ((event: 'info' | 'pong' | 'error', detail?: string) => void) | undefined

  private onSocketClosed(): void {
    const wasConnected = this.connected
    this.connected = false
    this.socket = undefined
    if (this.closing || !wasConnected) return
    // Pongs of the lost connection will not come: flush() waiters resolve after the reconnect's
    // own round trip instead, keep-alive pings are forgotten.
    const waiting = this.pongWaiters.splice(0).filter((waiter) => waiter !== undefined)
    this.pongWaiters.push(...waiting)
    this.scheduleReconnect(0)
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.closing) return
    this.reconnectTimer = setTimeout(() => void this.reconnect(), delayMs)
  }

  private async reconnect(): Promise<void> {
    for (const server of this.servers) {
      if (this.closing) return
      try {
        await this.open(server)
      } catch {
        continue
      }
      if (this.pongWaiters.length > 0) this.queueText(`PING${CRLF}`.repeat(this.pongWaiters.length))
      return
    }
    this.scheduleReconnect(this.options.reconnectWaitMs)
  }

  private startPings(): void {
    const interval = this.options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS
    this.pingTimer = setInterval(() => {
      if (!this.connected) return
      const outstanding = this.pongWaiters.filter((waiter) => waiter === undefined).length
      if (outstanding >= MAX_PINGS_OUT) {
        this.socket?.destroy(new Error('the server stopped answering pings'))
        return
      }
      this.pongWaiters.push(undefined)
      this.queueText(`PING${CRLF}`)
    }, interval)
    this.pingTimer.unref()
  }

  private resetParser(): void {
    this.line = undefined
    this.message = undefined
    this.trailer = 0
  }

  /** Consumes what one read brought (a view of the shared read buffer: nothing may keep it). */
  private parse(buffer: Buffer): void {
    const length = buffer.length
    let at = 0
    while (at < length) {
      if (this.trailer > 0) {
        const skip = Math.min(this.trailer, length - at)
        this.trailer -= skip
        at += skip
        continue
      }
      const message = this.message
      if (message) {
        const take = Math.min(message.payload.length - message.filled, length - at)
        message.payload.set(buffer.subarray(at, at + take), message.filled)
        message.filled += take
        at += take
        if (message.filled === message.payload.length) {
          this.message = undefined
          this.trailer = 2
          this.dispatch(message.subject, message.sid, message.reply, message.headerBytes, message.payload)
        }
        continue
      }
      const end = buffer.indexOf(LF, at)
      if (end < 0) {
        const rest = Buffer.from(buffer.subarray(at, length))
        this.line = this.line ? Buffer.concat([this.line, rest]) : rest
        if (this.line.length > MAX_LINE_BYTES) throw new Error('protocol line too long')
        return
      }
      let lineText: string
      if (this.line) {
        lineText = Buffer.concat([this.line, buffer.subarray(at, end + 1)]).toString('latin1')
        this.line = undefined
      } else {
        lineText = buffer.toString('latin1', at, end + 1)
      }
      at = end + 1
      this.onLine(lineText.endsWith('\r\n') ? lineText.slice(0, -2) : lineText.slice(0, -1))
    }
  }

  private onLine(line: string): void {
    const op = line.charCodeAt(0) | 0x20 // lower case first letter
    if (op === 0x6d /* m */ || op === 0x68 /* h */) {
      const parts = line.split(' ')
      const withHeaders = op === 0x68
      // MSG <subject> <sid> [reply] <size> / HMSG <subject> <sid> [reply] <header size> <total size>
      const fields = parts.length - (withHeaders ? 5 : 4)
      if (fields !== 0 && fields !== 1) throw new Error(`malformed message line: ${line}`)
      const reply = fields === 1 ? parts[3]! : ''
      const total = Number(parts[parts.length - 1])
      const headerBytes = withHeaders ? Number(parts[parts.length - 2]) : 0
      if (!Number.isInteger(total) || !Number.isInteger(headerBytes) || total < headerBytes) {
        throw new Error(`malformed message line: ${line}`)
      }
      const payload = Buffer.allocUnsafe(total)
      const message = { subject: parts[1]!, sid: Number(parts[2]), reply, headerBytes, payload, filled: 0 }
      if (total === 0) {
        this.trailer = 2
        this.dispatch(message.subject, message.sid, reply, 0, payload)
      } else {
        this.message = message
      }
    } else if (line === 'PING') {
      this.queueText(`PONG${CRLF}`)
    } else if (line === 'PONG') {
      if (this.onHandshake) return this.onHandshake('pong')
      this.pongWaiters.shift()?.()
    } else if (line.startsWith('INFO ')) {
      this.info = JSON.parse(line.slice(5)) as typeof this.info
      this.onHandshake?.('info')
    } else if (line.startsWith('-ERR')) {
      const reason = line.slice(4).trim().replace(/^'|'$/g, '')
      if (this.onHandshake) return this.onHandshake('error', reason)
      // Errors that do not end the connection (e.g. a permissions violation on one subject) show up
      // as the publish timing out; the server closes the connection after the others.
    }
    // +OK: not requested (verbose false), ignored.
  }

  private dispatch(subject: string, sid: number, reply: string, headerBytes: number, payload: Buffer): void {
    const sub = this.subs.get(sid)
    if (!sub) return // unsubscribed meanwhile
    let status = 0
    let description = ''
    let headers: Record<string, string> | undefined
    if (headerBytes > 0) {
      const lines = payload.toString('utf8', 0, headerBytes).split(CRLF)
      // `NATS/1.0[ <status>[ <description>]]`
      const first = lines[0]!
      if (first.length > 8) {
        const rest = first.slice(9)
        const space = rest.indexOf(' ')
        status = Number(space < 0 ? rest : rest.slice(0, space)) || 0
        description = space < 0 ? '' : rest.slice(space + 1)
      }
      headers = {}
      for (let i = 1; i < lines.length; i++) {
        const header = lines[i]!
        const colon = header.indexOf(':')
        if (colon <= 0) continue
        const name = header.slice(0, colon)
        if (name in headers) continue
        headers[name] = header.charCodeAt(colon + 1) === 0x20 ? header.slice(colon + 2) : header.slice(colon + 1)
      }
    }
    const msg: WireMsg = {
      subject,
      reply,
      status,
      description,
      headers,
      data: headerBytes > 0 ? payload.subarray(headerBytes) : payload,
      size: subject.length + reply.length + payload.length,
    }
    try {
      sub.handler(msg)
    } catch (error) {
      // A handler's failure is its own: the connection and the other subscriptions carry on.
      process.emitWarning(error instanceof Error ? error : new Error(String(error)), {
        code: 'FLOWBUS_NATS_HANDLER',
        detail: `subscription to ${sub.subject} failed on a message for ${subject}`,
      })
    }
  }
}

/** `nats://user:pass@host:port`, `nats://token@host`, `host:port` or `host`. */
export function parseServer(text: string): ServerAddress {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `nats://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new Error(`NATS server URL ${JSON.stringify(text)} is not a valid URL`)
  }
  if (url.protocol !== 'nats:') {
    throw new Error(`NATS server URL ${JSON.stringify(text)}: only nats:// (plain TCP) is supported by the data connection`)
  }
  const user = url.username === '' ? undefined : decodeURIComponent(url.username)
  const pass = url.password === '' ? undefined : decodeURIComponent(url.password)
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? 4222 : Number(url.port),
    // A user without password in the URL is a token, as nats.js reads it.
    ...(user !== undefined && pass === undefined ? { token: user } : { user, pass }),
    text,
  }
}
