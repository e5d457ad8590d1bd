// Starts and stops one receiver socket thread (worker_threads) from the main thread: resolves the
// worker module from sources (tests, tsx) or from dist, and turns a crash into an error, never a hang.
import { Worker } from 'node:worker_threads'
import type { BoundSocketInfo, FromSocketThread, SocketErrorReport, SocketThreadSetup, ToSocketThread } from './worker-protocol.js'
import type { ExporterCounts } from './wire-batcher.js'

/** Longest wait for a thread to close its sockets and post its last batches at stop. */
const STOP_TIMEOUT_MS = 5_000

export interface SocketThreadEvents {
  /** A finished RawPacketBatch; `bytes` views a buffer the thread gave away. */
  readonly onBatch: (key: string, bytes: Uint8Array, packets: number) => void
  readonly onCounts: (counts: readonly ExporterCounts[], socketErrors: readonly SocketErrorReport[]) => void
  readonly onWarning: (message: string) => void
  /** The thread died after it had bound its sockets (uncaught error or unexpected exit). */
  readonly onCrash: (error: Error) => void
}

export interface SocketThread {
  readonly sockets: readonly BoundSocketInfo[]
  /** Stops reading, waits for the last batches and counts; resolves once the thread is gone. */
  stop(): Promise<void>
  /** Ends the thread at once, as a crash would (tests of the restart). */
  kill(): Promise<void>
}

/** A socket thread that failed before its sockets were bound, or died while running. */
export class SocketThreadError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SocketThreadError'
  }
}

/**
 * Compiled, this module sits next to `socket-worker.js`, which a worker runs as it is. Run from
 * TypeScript sources (vitest, `node --import tsx`), the worker is `socket-worker.ts`; hooks
 * registered by `--import tsx` in this thread do not reach a worker on Node.js 20, so a small
 * bootstrap registers tsx inside the worker first, and the `source` condition picks workspace sources.
 */
function workerModule(): { script: string | URL; eval: boolean; execArgv: string[] | undefined } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./socket-worker.js', import.meta.url), eval: false, execArgv: undefined }
  const worker = new URL('./socket-worker.ts', import.meta.url).href
  const tsx = import.meta.resolve('tsx/esm/api')
  const script = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(worker)}) })`
  return { script, eval: true, execArgv: ['--conditions=source'] }
}

/** Starts a thread with `setup`; resolves once its sockets are bound, rejects with the bind error. */
export function startSocketThread(setup: SocketThreadSetup, events: SocketThreadEvents, name: string): Promise<SocketThread> {
  const module = workerModule()
  const worker = new Worker(module.script, { eval: module.eval, workerData: setup, execArgv: module.execArgv, name })
  let state: 'starting' | 'running' | 'stopping' | 'gone' = 'starting'
  let stopped: (() => void) | undefined

  return new Promise<SocketThread>((resolve, reject) => {
    const fail = (error: Error): void => {
      const was = state
      state = 'gone'
      if (was === 'starting') reject(error)
      else if (was === 'running') events.onCrash(error)
      else stopped?.()
    }
    worker.on('message', (message: FromSocketThread) => {
      switch (message.type) {
        case 'batch':
          events.onBatch(message.key, new Uint8Array(message.buffer, 0, message.length), message.packets)
          break
        case 'counts':
          events.onCounts(message.counts, message.socketErrors)
          break
        case 'warn':
          events.onWarning(message.message)
          break
        case 'failed':
          fail(new SocketThreadError(message.message))
          void worker.terminate()
          break
        case 'stopped':
          state = 'gone'
          stopped?.()
          break
        case 'bound': {
          state = 'running'
          const thread: SocketThread = {
            sockets: message.sockets,
            kill: () => worker.terminate().then(() => undefined),
            stop: () =>
              new Promise<void>((done) => {
                if (state === 'gone') {
                  void worker.terminate().then(() => done())
                  return
                }
                state = 'stopping'
                const timer = setTimeout(() => {
                  events.onWarning(`socket thread ${name} did not stop within ${STOP_TIMEOUT_MS} ms: terminated`)
                  stopped?.()
                }, STOP_TIMEOUT_MS)
                stopped = () => {
                  stopped = undefined
                  clearTimeout(timer)
                  void worker.terminate().then(() => done())
                }
                worker.postMessage({ type: 'stop' } satisfies ToSocketThread)
              }),
          }
          resolve(thread)
          break
        }
      }
    })
    worker.on('error', (error) => fail(new SocketThreadError(`socket thread ${name} failed: ${error.stack ?? error.message}`)))
    worker.on('exit', (code) => {
      if (state !== 'gone') fail(new SocketThreadError(`socket thread ${name} exited unexpectedly (code ${code})`))
    })
  })
}
