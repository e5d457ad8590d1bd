// Key/value buckets of the memory bus: a map per bucket plus its watchers, shared by every client
// of the bus. Values are stored and handed out as the caller's bytes (zero-copy).
import type { Closeable, KvEntry } from './transport.js'

type Watcher = (entry: KvEntry) => void

export class MemoryBucket {
  private readonly entries = new Map<string, Uint8Array>()
  private readonly watchers = new Set<Watcher>()

  constructor(readonly name: string) {}

  get(key: string): Uint8Array | undefined {
    return this.entries.get(key)
  }

  put(key: string, value: Uint8Array): void {
    this.entries.set(key, value)
    this.notify({ key, value })
  }

  delete(key: string): void {
    if (this.entries.delete(key)) this.notify({ key, value: undefined })
  }

  keys(): string[] {
    return [...this.entries.keys()]
  }

  /** Replays current entries synchronously, then reports changes: no gap, no duplicate. */
  watch(watcher: Watcher): Closeable {
    for (const [key, value] of this.entries) this.call(watcher, { key, value })
    this.watchers.add(watcher)
    return {
      close: async () => {
        this.watchers.delete(watcher)
      },
    }
  }

  private notify(entry: KvEntry): void {
    for (const watcher of [...this.watchers]) this.call(watcher, entry)
  }

  private call(watcher: Watcher, entry: KvEntry): void {
    try {
      watcher(entry)
    } catch (error) {
      // A broken watcher must not fail the writer's put; it is reported, not hidden.
      process.emitWarning(`watcher of bucket ${this.name} threw on key ${entry.key}: ${String(error)}`)
    }
  }
}
