// The BMP TCP listener: accepts router connections and feeds each one's bytes to its session;
// socket code only, the protocol lives in bmp/ and bgp/.
import { createServer, type Server, type Socket } from 'node:net'
import { parseIP } from '@flowbus/bus-schemas'
import type { BmpCollector } from './bmp/collector.js'

export interface BmpListener {
  readonly server: Server
  /** The bound port (the configured one, or the OS's pick for port 0). */
  readonly port: number
  /** Connections refused because maxSessions were open. */
  refused(): number
  close(): Promise<void>
}

const remoteAddress = (socket: Socket): Uint8Array => {
  try {
    return parseIP(socket.remoteAddress ?? '::')
  } catch {
    return new Uint8Array(16)
  }
}

export async function listenBmp(
  collector: BmpCollector,
  options: { host: string; port: number; maxSessions: number; onConnection?: (router: string, event: 'open' | 'close') => void },
): Promise<BmpListener> {
  const sockets = new Set<Socket>()
  let refused = 0
  const server = createServer((socket) => {
    if (sockets.size >= options.maxSessions) {
      refused++
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 60_000)
    const session = collector.openSession(remoteAddress(socket))
    options.onConnection?.(session.router, 'open')
    socket.on('data', (chunk: Buffer) => {
      try {
        session.feed(chunk)
      } catch {
        // The session counted and reported the reason; the connection cannot be trusted any more.
        socket.destroy()
      }
    })
    // A router only sends; errors (resets) end the session like a close.
    socket.on('error', () => socket.destroy())
    socket.on('close', () => {
      sockets.delete(socket)
      session.close()
      options.onConnection?.(session.router, 'close')
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  return {
    server,
    port: address && typeof address === 'object' ? address.port : options.port,
    refused: () => refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
