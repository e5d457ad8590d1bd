// Per-exporter flow rate limit: above the limit, keep a fraction of the flows and make each kept
// flow stand for the dropped ones by scaling its SamplingRate, so traffic totals stay right.

/**
 * The algorithm, per exporter:
 * - time is cut into one-second windows of the datagrams' receive time; the exporter's rate is
 *   estimated as the larger of the previous window's flow count and the current window's count
 *   so far (a burst is caught within its own second, a steady rate from the start of a window);
 * - the keep fraction is `p = min(1, limit / rate)`; flows are kept systematically, not at
 *   random: a credit grows by `p` per flow and a flow is kept when the credit reaches 1;
 * - a kept flow stands for itself and every flow dropped since the previous kept flow of that
 *   exporter: its SamplingRate is multiplied by that count (1 + dropped; a SamplingRate of 0,
 *   unknown, counts as 1).
 * Every flow is therefore accounted for exactly once, whatever `p` was when it came, so the sum
 * of Bytes × SamplingRate (and Packets × SamplingRate) is unbiased; over a window it differs from
 * the true total only by how the kept flows' sizes differ from the dropped ones'. Flows dropped
 * after an exporter's last kept flow are carried into its next kept flow.
 */
export class FlowRateLimiter {
  readonly #limit: number
  readonly #exporters = new Map<string, ExporterRate>()

  /** `flowsPerSecond` 0 disables the limit. */
  constructor(flowsPerSecond: number) {
    this.#limit = flowsPerSecond
  }

  get enabled(): boolean {
    return this.#limit > 0
  }

  /**
   * Decides for one flow of `exporter` received at `second` (Unix seconds): 0 drops it, n ≥ 1
   * keeps it with its SamplingRate multiplied by n.
   */
  admit(exporter: string, second: number): number {
    let state = this.#exporters.get(exporter)
    if (state === undefined) {
      state = { window: second, seen: 0, previous: 0, credit: 0, dropped: 0 }
      this.#exporters.set(exporter, state)
    }
    if (second !== state.window) {
      // A gap of more than one window means the exporter was quiet: the last window says nothing.
      state.previous = second === state.window + 1 ? state.seen : 0
      state.window = second
      state.seen = 0
    }
    state.seen++
    const rate = Math.max(state.previous, state.seen)
    if (rate <= this.#limit) {
      state.credit = 0
      const multiplier = 1 + state.dropped
      state.dropped = 0
      return multiplier
    }
    state.credit += this.#limit / rate
    if (state.credit >= 1) {
      state.credit -= 1
      const multiplier = 1 + state.dropped
      state.dropped = 0
      return multiplier
    }
    state.dropped++
    return 0
  }

  /** Forgets exporters not seen since `second` − `idleSeconds` (their carried drops are lost). */
  forgetIdle(second: number, idleSeconds = 300): void {
    for (const [exporter, state] of this.#exporters) {
      if (second - state.window > idleSeconds) this.#exporters.delete(exporter)
    }
  }
}

interface ExporterRate {
  window: number
  /** Flows seen in the current window. */
  seen: number
  /** Flows seen in the previous window. */
  previous: number
  credit: number
  /** Flows dropped since the last kept one, carried by the next kept one. */
  dropped: number
}

/** Scales a SamplingRate by a rate-limit multiplier, saturating at the column's 32 bits. */
export const scaleSamplingRate = (samplingRate: number, multiplier: number): number =>
  Math.min(0xffffffff, Math.max(1, samplingRate) * multiplier)
