// A flowbus KvStore over a NATS KV bucket, with keys escaped so that any string (IPv6 addresses,
// `exporter:ifIndex`, dots in odd places) is a valid NATS key and comes back unchanged.

import type { KV, KvWatchEntry } from '@nats-io/kv'
import type { Closeable, KvEntry, KvStore } from './transport.js'

/**
 * NATS keys allow `[-/_=.A-Za-z0-9]` with dots only between non-empty tokens. We keep letters,
 * digits, `-`, `_`, `/` and well-placed dots, and write any other character (and `=` itself) as
 * `=XX` per UTF-8 byte, which decodes unambiguously.
 */
export function encodeKvKey(key: string): string {
  if (key === '') throw new Error('KV key must not be empty')
  let out = ''
  for (let i = 0; i < key.length; i++) {
    const char = key[i] as string
    if (/[A-Za-z0-9_/-]/.test(char)) out += char
    else if (char === '.' && i > 0 && i < key.length - 1 && key[i + 1] !== '.') out += char
    else {
      // Take the whole code point so surrogate pairs encode as one UTF-8 sequence.
      const codePoint = key.codePointAt(i) as number
      const text = String.fromCodePoint(codePoint)
      i += text.length - 1
      for (const byte of new TextEncoder().encode(text)) out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`
    }
  }
  return out
}

export function decodeKvKey(encoded: string): string {
  if (!encoded.includes('=')) return encoded
  const bytes: number[] = []
  let out = ''
  const flush = (): void => {
    if (bytes.length > 0) out += new TextDecoder().decode(new Uint8Array(bytes.splice(0)))
  }
  for (let i = 0; i < encoded.length; i++) {
    const char = encoded[i] as string
    if (char === '=' && /^[0-9A-Fa-f]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      flush()
      out += char
    }
  }
  flush()
  return out
}

const WATCH_INITIAL_TIMEOUT_MS = 10_000

export class NatsKvStore implements KvStore {
  constructor(private readonly kv: KV) {}

  async get(key: string): Promise<Uint8Array | undefined> {
    const entry = await this.kv.get(encodeKvKey(key))
    if (!entry || entry.operation !== 'PUT') return undefined
    return entry.value
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.kv.put(encodeKvKey(key), value)
  }

  async delete(key: string): Promise<void> {
    await this.kv.delete(encodeKvKey(key))
  }

  async keys(): Promise<string[]> {
    const keys: string[] = []
    for await (const key of await this.kv.keys()) keys.push(decodeKvKey(key))
    return keys
  }

  /**
   * Resolves once the current entries were handed to the handler (so a caller can rely on having
   * seen the state), then keeps delivering changes. Keys deleted before the watch started are not
   * current entries and are skipped; later deletes arrive with value undefined.
   */
  async watch(handler: (entry: KvEntry) => void): Promise<Closeable> {
    const iterator = await this.kv.watch()
    let caughtUp: () => void = () => {}
    const initial = new Promise<void>((resolve) => {
      caughtUp = resolve
    })
    const deliver = (entry: KvWatchEntry): void => {
      const deleted = entry.operation !== 'PUT'
      if (!entry.isUpdate && deleted) return
      try {
        handler({ key: decodeKvKey(entry.key), value: deleted ? undefined : entry.value })
      } catch {
        // A failing handler must not end the watch for the others; the typed layer counts it.
      }
    }
    void (async () => {
      for await (const entry of iterator) {
        deliver(entry)
        // The last current entry has nothing pending after it; any update also means we caught up.
        if (entry.isUpdate || entry.delta === 0) caughtUp()
      }
      caughtUp()
    })().catch(() => caughtUp())
    // An empty bucket sends no initial entry at all: the stream's message count tells us so.
    const status = await this.kv.status()
    if (status.values === 0) caughtUp()
    // Entries expiring (bucket TTL) between the watch start and their delivery would leave us
    // waiting for an entry that never comes: do not wait forever for the initial state.
    const fallback = setTimeout(caughtUp, WATCH_INITIAL_TIMEOUT_MS)
    await initial
    clearTimeout(fallback)
    return {
      async close() {
        iterator.stop()
      },
    }
  }
}
