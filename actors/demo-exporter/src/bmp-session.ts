// One exporter's BMP session to the collector: connects from the exporter's address, sends the
// initiation, its neighbours' peer up, routes and End-of-RIB, then stays up; when the collector
// goes away it connects again after a delay and replays the whole table, as routers do.
import { connect, type Socket } from 'node:net'

export type BmpSessionState = 'connecting' | 'up' | 'down' | 'stopped'

export interface BmpSessionOptions {
  readonly name: string
  readonly localAddress: string
  readonly host: string
  readonly port: number
  readonly reconnectDelayMs: number
  /** The messages of a fresh session (built at each connection, so timestamps are current). */
  readonly messages: () => Uint8Array[]
  readonly termination: () => Uint8Array
  readonly onState: (state: BmpSessionState, detail?: string) => void
}

export class BmpSession {
  private socket: Socket | undefined
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  state: BmpSessionState = 'down'
  /** Sessions established so far. */
  established = 0

  constructor(private readonly options: BmpSessionOptions) {}

  start(): void {
    this.connect()
  }

  private setState(state: BmpSessionState, detail?: string): void {
    this.state = state
    this.options.onState(state, detail)
  }

  private connect(): void {
    if (this.stopped) return
    this.setState('connecting')
    const socket = connect({ host: this.options.host, port: this.options.port, localAddress: this.options.localAddress })
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('connect', () => {
      this.established++
      this.setState('up')
      for (const message of this.options.messages()) socket.write(message)
    })
    // A collector sends nothing over BMP; whatever comes is read and dropped.
    socket.on('data', () => {})
    socket.on('error', (error) => {
      if (!this.stopped) this.setState('down', error.message)
    })
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined
      if (this.stopped) return
      if (this.state !== 'down') this.setState('down', 'connection closed')
      this.timer = setTimeout(() => this.connect(), this.options.reconnectDelayMs)
      this.timer.unref()
    })
  }

  /** Sends a termination message when the session is up, and closes it. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    const socket = this.socket
    this.setState('stopped')
    if (!socket) return
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve())
      if (!socket.connecting && socket.writable) socket.end(this.options.termination())
      else socket.destroy()
      setTimeout(() => socket.destroy(), 1_000).unref()
    })
  }
}
