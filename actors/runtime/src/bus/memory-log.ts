// One shard of an in-memory stream: an append-only log addressed by sequence number, trimmed from
// the head. Entries hold the publisher's bytes as-is (zero-copy); retention policy lives in memory-stream.ts.

export interface LogEntry {
  /** Position in this shard, from 1. */
  readonly seq: number
  /** Position in the whole stream, to find the oldest head across shards. */
  readonly order: number
  readonly key: string
  readonly data: Uint8Array
  readonly headers: Readonly<Record<string, string>>
  readonly size: number
  /** Date.now() when stored, for maxAgeSeconds. */
  readonly storedAt: number
}

export class ShardLog {
  /** Entries from `firstSeq` on, starting at index `head` (a deque without per-trim copying). */
  private items: (LogEntry | undefined)[] = []
  private head = 0
  /** Sequence number of the oldest retained entry (== nextSeq when empty). */
  firstSeq = 1
  /** Sequence number the next append gets. */
  nextSeq = 1

  get length(): number {
    return this.nextSeq - this.firstSeq
  }

  append(entry: Omit<LogEntry, 'seq'>): LogEntry {
    const stored: LogEntry = { ...entry, seq: this.nextSeq++ }
    this.items.push(stored)
    return stored
  }

  /** The entry at `seq`, or undefined when trimmed or not yet written. */
  at(seq: number): LogEntry | undefined {
    if (seq < this.firstSeq || seq >= this.nextSeq) return undefined
    return this.items[this.head + (seq - this.firstSeq)]
  }

  oldest(): LogEntry | undefined {
    return this.length > 0 ? this.items[this.head] : undefined
  }

  /** Removes and returns the oldest entry. */
  dropOldest(): LogEntry | undefined {
    if (this.length === 0) return undefined
    const entry = this.items[this.head]
    this.items[this.head] = undefined
    this.head++
    this.firstSeq++
    // Compact once the dead prefix dominates, so trimming stays O(1) amortised.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return entry
  }
}
