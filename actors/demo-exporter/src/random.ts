// A small seeded pseudo-random generator (mulberry32) so the same seed replays the same flows;
// Math.random cannot be seeded, and the simulation needs nothing cryptographic.

/** FNV-1a of a string mixed with a seed: one independent stream per exporter from one seed. */
export function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

export class SeededRandom {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  /** 32 random bits. */
  u32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0
  }
}

/** Cumulative weights for picking an index in proportion to its weight. */
export class WeightedChoice {
  private readonly cumulative: Float64Array
  readonly total: number

  constructor(weights: readonly number[]) {
    this.cumulative = new Float64Array(weights.length)
    let sum = 0
    weights.forEach((w, i) => {
      sum += Math.max(0, w)
      this.cumulative[i] = sum
    })
    this.total = sum
  }

  pick(random: SeededRandom): number {
    const x = random.next() * this.total
    const c = this.cumulative
    let lo = 0
    let hi = c.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (c[mid]! > x) hi = mid
      else lo = mid + 1
    }
    return lo
  }
}
