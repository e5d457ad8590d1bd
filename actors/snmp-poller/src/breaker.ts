// The circuit breaker of one exporter: closed while polls succeed; open (no polls) after a run of
// failures, for a time that doubles after each failed probe; half-open lets one probe poll through.

export type BreakerState = 'closed' | 'open' | 'half-open'

/** Gauge values of the breaker state metric. */
export const breakerStateValue: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 1, open: 2 }

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  readonly failures: number
  /** First open period, ms. */
  readonly openFor: number
  /** Longest open period, ms. */
  readonly maxOpenFor: number
}

export class CircuitBreaker {
  private consecutiveFailures = 0
  private openPeriod = 0
  private openUntil = 0
  private current: BreakerState = 'closed'

  constructor(private readonly options: BreakerOptions) {}

  /** The state at `now`: an open breaker whose time is up reads half-open. */
  state(now: number): BreakerState {
    if (this.current === 'open' && now >= this.openUntil) this.current = 'half-open'
    return this.current
  }

  /** Whether a poll may start now (closed, or half-open for its probe). */
  allows(now: number): boolean {
    return this.state(now) !== 'open'
  }

  /** When an open breaker turns half-open (ms since the epoch); 0 when not open. */
  get reopensAt(): number {
    return this.current === 'open' ? this.openUntil : 0
  }

  success(): void {
    this.consecutiveFailures = 0
    this.openPeriod = 0
    this.current = 'closed'
  }

  /** Records a failed poll; returns true when this failure opened the breaker. */
  failure(now: number): boolean {
    this.consecutiveFailures++
    const probeFailed = this.current === 'half-open'
    if (!probeFailed && this.consecutiveFailures < this.options.failures) return false
    this.openPeriod = probeFailed ? Math.min(this.openPeriod * 2, this.options.maxOpenFor) : this.options.openFor
    this.openUntil = now + this.openPeriod
    this.current = 'open'
    return true
  }
}
