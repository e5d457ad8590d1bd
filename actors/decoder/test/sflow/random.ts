// Test helper: a small seeded random source (xorshift32), so generated and mutated inputs are
// the same on every run.

/** Returns next(n): a pseudo-random integer in [0, n). */
export function seededRandom(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1
  return (n: number): number => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return Math.floor((state / 4294967296) * n)
  }
}
