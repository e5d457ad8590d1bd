// Sequence-number tracking per export stream (exporter + observation domain / source id / sFlow
// agent): how many export packets or records were lost before they reached the collector.

/**
 * What a sequence number counts differs by protocol: NetFlow v5 `flow_sequence` counts flows,
 * NetFlow v9 counts export packets, IPFIX counts data records, sFlow counts datagrams per agent
 * and sub-agent. The tracker is told how many units the current datagram carries.
 */
export interface SequenceVerdict {
  /** Units missing between the previous datagram and this one (0 when in order). */
  readonly lost: number
  /** This datagram came later than a newer one (or repeats one): not counted as a gap. */
  readonly reordered: boolean
  /** The exporter restarted its sequence (or jumped too far to be loss): tracking starts over. */
  readonly reset: boolean
}

const IN_ORDER: SequenceVerdict = { lost: 0, reordered: false, reset: false }
const FIRST: SequenceVerdict = IN_ORDER
const REORDERED: SequenceVerdict = { lost: 0, reordered: true, reset: false }
const RESET: SequenceVerdict = { lost: 0, reordered: false, reset: true }

export interface SequenceTrackerOptions {
  /**
   * A datagram this many units or fewer behind the expected number is a late (reordered or
   * duplicated) one; further behind is an exporter restart. Default 4096.
   */
  readonly reorderWindow?: number
  /** A forward jump larger than this is a restart, not loss. Default 2^24 units. */
  readonly maxGap?: number
  /** Streams tracked at most; beyond, the oldest tracked stream is forgotten (it starts over). Default 65536. */
  readonly maxStreams?: number
}

const TWO_32 = 0x1_0000_0000

/**
 * Expected next sequence number per stream (a string or number naming it), 32-bit arithmetic (wrap-around is not a reset).
 * Loss is only ever counted forward: a late datagram does not move the expectation back, so a
 * packet that was counted as lost and then arrives late is counted in both `lost` (before) and
 * `reordered` (now) — gaps overcount by the reordered units, never undercount.
 */
export class SequenceTracker {
  /** Mutable cells: the hot path updates a number, it does not re-insert a key. */
  readonly #expected = new Map<string | number, { next: number }>()
  readonly #reorderWindow: number
  readonly #maxGap: number
  readonly #maxStreams: number

  constructor(options: SequenceTrackerOptions = {}) {
    this.#reorderWindow = options.reorderWindow ?? 4096
    this.#maxGap = options.maxGap ?? 1 << 24
    this.#maxStreams = options.maxStreams ?? 65536
  }

  get streams(): number {
    return this.#expected.size
  }

  /** Records a datagram with sequence number `sequence` carrying `units` units. */
  observe(stream: string | number, sequence: number, units: number): SequenceVerdict {
    const next = (sequence + units) % TWO_32
    const cell = this.#expected.get(stream)
    if (cell === undefined) {
      this.#expected.set(stream, { next })
      // Forgetting the oldest stream only makes it start over: no gap is invented.
      if (this.#expected.size > this.#maxStreams) this.#expected.delete(this.#expected.keys().next().value!)
      return FIRST
    }
    const ahead = (sequence - cell.next + TWO_32) % TWO_32
    if (ahead === 0) {
      cell.next = next
      return IN_ORDER
    }
    const behind = TWO_32 - ahead
    if (behind <= this.#reorderWindow) return REORDERED
    cell.next = next
    if (ahead > this.#maxGap) return RESET
    return { lost: ahead, reordered: false, reset: false }
  }
}
