// Opens the UDP sockets of the receiver's listeners: one per address and worker, SO_RCVBUF set
// and read back, SO_REUSEPORT where Node.js has it; I/O only, datagrams go to a callback.
import dgram from 'node:dgram'
import { parseListenAddress, type ListenerConfig } from './config.js'
import type { BoundSocketInfo } from './worker-protocol.js'

/** One bound socket and what the kernel granted it. */
export interface BoundSocket extends BoundSocketInfo {
  readonly socket: dgram.Socket
}

/** Makes the datagram callback of one listener's sockets. */
export type DatagramHandler = (listener: string) => (payload: Buffer, address: string, port: number) => void

export interface OpenOptions {
  readonly listeners: readonly ListenerConfig[]
  readonly receiveBuffer: number
  readonly onDatagram: DatagramHandler
  /** Warnings an operator should see (IPv6 unavailable, buffer capped, no SO_REUSEPORT). */
  readonly warn: (message: string) => void
  /** Socket errors after binding (rare on UDP); counted by the caller. */
  readonly onSocketError: (listener: string, error: Error) => void
}

/** A listener address that could not be bound; names the listener and the address. */
export class ListenerBindError extends Error {
  constructor(listener: string, address: string, cause: Error) {
    super(`receiver listener "${listener}" cannot bind UDP ${address}: ${cause.message}`)
    this.name = 'ListenerBindError'
  }
}

/** SO_REUSEPORT for dgram came with Node.js 22.12 and 23.1. */
export function nodeHasReusePort(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number)
  return major >= 24 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}

/** Errors meaning "this host has no IPv6" rather than a configuration mistake. */
const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT'])

/**
 * Binds every configured address; resolves once all are bound. A wildcard IPv6 address the host
 * cannot bind is skipped with a warning; any other failure closes what was opened and rejects.
 */
export async function openSockets(options: OpenOptions): Promise<BoundSocket[]> {
  const reusePort = nodeHasReusePort()
  const bound: BoundSocket[] = []
  let warnedReusePort = false
  try {
    for (const listener of options.listeners) {
      let workers = listener.workers
      if (workers > 1 && !reusePort) {
        if (!warnedReusePort) {
          options.warn(
            `listener "${listener.name}" asks for ${workers} workers, but Node.js ${process.versions.node} has no SO_REUSEPORT for UDP (22.12+ has): using one socket per address`,
          )
          warnedReusePort = true
        }
        workers = 1
      }
      for (const configured of listener.listen) {
        const address = parseListenAddress(configured)
        if (typeof address === 'string') throw new Error(`receiver listener "${listener.name}": ${address}`)
        let port = address.port
        for (let worker = 0; worker < workers; worker++) {
          let socket: BoundSocket
          try {
            socket = await bindOne(listener.name, configured, address.host, port, address.family, workers > 1, options)
          } catch (error) {
            const code = (error as NodeJS.ErrnoException).code ?? ''
            if (address.family === 6 && address.host === '::' && NO_IPV6.has(code)) {
              options.warn(`listener "${listener.name}": IPv6 is not available on this host (${code}), not listening on ${configured}`)
              break
            }
            throw new ListenerBindError(listener.name, configured, error as Error)
          }
          bound.push(socket)
          // Port 0 lets the kernel pick; the other workers share the port it picked.
          port = socket.port
        }
      }
    }
  } catch (error) {
    await closeSockets(bound)
    throw error
  }
  const granted = bound.filter((s) => s.receiveBuffer < options.receiveBuffer)
  if (granted.length > 0) {
    const got = Math.min(...granted.map((s) => s.receiveBuffer))
    options.warn(
      `the kernel capped the UDP receive buffer at ${got} bytes (asked ${options.receiveBuffer}): bursts may be dropped; raise it with sysctl -w net.core.rmem_max=${options.receiveBuffer}`,
    )
  }
  return bound
}

function bindOne(
  listener: string,
  configured: string,
  host: string,
  port: number,
  family: 4 | 6,
  reusePort: boolean,
  options: OpenOptions,
): Promise<BoundSocket> {
  return new Promise((resolve, reject) => {
    const socketOptions: dgram.SocketOptions & { reusePort?: boolean } = {
      type: family === 6 ? 'udp6' : 'udp4',
      ipv6Only: family === 6,
      recvBufferSize: options.receiveBuffer,
      reusePort,
    }
    const socket = dgram.createSocket(socketOptions)
    const onBindError = (error: Error): void => {
      socket.close()
      reject(error)
    }
    socket.once('error', onBindError)
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', onBindError)
      socket.on('error', (error) => options.onSocketError(listener, error))
      const onDatagram = options.onDatagram(listener)
      socket.on('message', (payload, rinfo) => onDatagram(payload, rinfo.address, rinfo.port))
      // Linux doubles the requested size for its bookkeeping and reports the doubled value.
      const receiveBuffer = Math.floor(socket.getRecvBufferSize() / 2)
      resolve({ listener, configured, host, port: socket.address().port, family, receiveBuffer, socket })
    })
  })
}

/** Closes sockets; datagrams already read were handed to the callback, the rest is left to the kernel. */
export async function closeSockets(sockets: readonly BoundSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          try {
            s.socket.close(() => resolve())
          } catch {
            resolve()
          }
        }),
    ),
  )
}
