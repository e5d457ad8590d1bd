// Checksums produced record batches on a worker thread, so the event loop that encodes,
// publishes and consumes does not spend a tenth of its time in the CRC-32C loop.
//
// The batch bytes are copied once into a transferable buffer (a memcpy, some twenty times
// cheaper than the checksum itself) and the worker answers with four bytes. Small batches are
// checksummed in place: a round trip to the worker costs more than they do. If the worker
// fails, everything falls back to checksumming in place.
//
// The worker runs from source text (eval) rather than a file: a TypeScript module cannot be a
// worker entry point under every way this code runs (tsx, vitest, compiled dist), and the
// loop is small. Unit tests check it against crc32c.

import { Worker } from 'node:worker_threads'
import { crc32cFinish, crc32cUpdate, CRC32C_START } from './kafka-crc32c.js'

/** Below this many bytes a batch is checksummed on the calling thread. */
const OFFLOAD_BYTES = 64 * 1024

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const T = new Int32Array(4096)
for (let b = 0; b < 256; b++) {
  let c = b
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  T[b] = c
}
for (let k = 1; k < 16; k++) for (let b = 0; b < 256; b++) { const p = T[(k - 1) * 256 + b]; T[k * 256 + b] = (p >>> 8) ^ T[p & 0xff] }
function crc32c(x) {
  const n = x.length, end = n - (n & 15)
  let c = -1, i = 0
  for (; i < end; i += 16) {
    const a = c ^ (x[i] | (x[i + 1] << 8) | (x[i + 2] << 16) | (x[i + 3] << 24))
    c = T[3840 + (a & 0xff)] ^ T[3584 + ((a >>> 8) & 0xff)] ^ T[3328 + ((a >>> 16) & 0xff)] ^ T[3072 + (a >>> 24)] ^
      T[2816 + x[i + 4]] ^ T[2560 + x[i + 5]] ^ T[2304 + x[i + 6]] ^ T[2048 + x[i + 7]] ^
      T[1792 + x[i + 8]] ^ T[1536 + x[i + 9]] ^ T[1280 + x[i + 10]] ^ T[1024 + x[i + 11]] ^
      T[768 + x[i + 12]] ^ T[512 + x[i + 13]] ^ T[256 + x[i + 14]] ^ T[x[i + 15]]
  }
  for (; i < n; i++) c = T[(c ^ x[i]) & 0xff] ^ (c >>> 8)
  return (c ^ -1) >>> 0
}
parentPort.on('message', ({ id, bytes }) => parentPort.postMessage({ id, crc: crc32c(bytes) }))
`

/** CRC-32C of chunks taken as one run of bytes, in place. */
export const checksumInPlace = (chunks: readonly Uint8Array[]): number => {
  let state = CRC32C_START
  for (const chunk of chunks) state = crc32cUpdate(state, chunk)
  return crc32cFinish(state)
}

export class ChecksumWorker {
  private worker: Worker | undefined
  private failed = false
  private nextId = 0
  private readonly pending = new Map<number, { resolve(crc: number): void; chunks: readonly Uint8Array[] }>()

  /** CRC-32C of chunks taken as one run of bytes. */
  checksum(chunks: readonly Uint8Array[]): Promise<number> {
    let size = 0
    for (const chunk of chunks) size += chunk.length
    const worker = size < OFFLOAD_BYTES ? undefined : this.start()
    if (!worker) return Promise.resolve(checksumInPlace(chunks))
    const bytes = new Uint8Array(new ArrayBuffer(size))
    let offset = 0
    for (const chunk of chunks) {
      bytes.set(chunk, offset)
      offset += chunk.length
    }
    const id = this.nextId++
    return new Promise<number>((resolve) => {
      this.pending.set(id, { resolve, chunks })
      worker.ref() // answers are awaited: keep the process alive until they come
      worker.postMessage({ id, bytes }, [bytes.buffer])
    })
  }

  async close(): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    this.failed = true
    this.fallBack()
    await worker?.terminate()
  }

  private start(): Worker | undefined {
    if (this.failed) return undefined
    if (this.worker) return this.worker
    try {
      const worker = new Worker(WORKER_SOURCE, { eval: true })
      worker.unref()
      worker.on('message', ({ id, crc }: { id: number; crc: number }) => {
        const pending = this.pending.get(id)
        if (!pending) return
        this.pending.delete(id)
        if (this.pending.size === 0) worker.unref()
        pending.resolve(crc)
      })
      const fail = (): void => {
        if (this.worker !== worker) return
        this.worker = undefined
        this.failed = true
        this.fallBack()
      }
      worker.on('error', fail)
      worker.on('exit', fail)
      this.worker = worker
      return worker
    } catch {
      this.failed = true
      return undefined
    }
  }

  /** Answers whatever the worker left unanswered, in place. */
  private fallBack(): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id)
      pending.resolve(checksumInPlace(pending.chunks))
    }
  }
}
