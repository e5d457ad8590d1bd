// Messages between the receiver's main thread and its socket threads: the setup a thread starts
// with, what it reports (sockets bound, finished batches as transferred buffers, counts), and stop.
import type { ListenerConfig } from './config.js'
import type { ExporterCounts } from './wire-batcher.js'

/** What a socket thread is started with (`workerData`): plain data only. */
export interface SocketThreadSetup {
  readonly listeners: readonly ListenerConfig[]
  readonly receiveBuffer: number
  readonly maxPackets: number
  readonly maxBytes: number
  readonly flushIntervalMs: number
  readonly idleMs: number
  /** `receiver` field of the messages, by listener name. */
  readonly receiverNames: Readonly<Record<string, string>>
}

/** A socket a thread has bound, as the main thread reports it (endpoints, gauges, /proc lookups). */
export interface BoundSocketInfo {
  readonly listener: string
  /** The configured address, e.g. `[::]:2055`. */
  readonly configured: string
  readonly host: string
  /** The bound port (the configured one, or the kernel's pick for port 0). */
  readonly port: number
  readonly family: 4 | 6
  /** SO_RCVBUF as read back from the kernel (Linux reports twice the usable size). */
  readonly receiveBuffer: number
}

export type FromSocketThread =
  | { readonly type: 'bound'; readonly sockets: readonly BoundSocketInfo[] }
  | { readonly type: 'warn'; readonly message: string }
  /** Binding failed; the thread exits after this. */
  | { readonly type: 'failed'; readonly message: string }
  /** A finished RawPacketBatch: bytes `[0, length)` of `buffer`, transferred (not copied). */
  | { readonly type: 'batch'; readonly key: string; readonly buffer: ArrayBuffer; readonly length: number; readonly packets: number }
  | { readonly type: 'counts'; readonly counts: readonly ExporterCounts[]; readonly socketErrors: readonly SocketErrorReport[] }
  /** Sockets closed and everything read has been posted. */
  | { readonly type: 'stopped' }

export interface SocketErrorReport {
  readonly listener: string
  readonly message: string
}

export type ToSocketThread = { readonly type: 'stop' }
