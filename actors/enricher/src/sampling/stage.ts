// The sampling stage: SamplingRate from the exporter's subnet when the flow has none (default)
// or always (override); flows left without one are counted and dropped or marked unsampled.
import type { FlowBatch } from '@flowbus/bus-schemas'
import { PrefixTrie, parsePrefix } from '@flowbus/runtime'
import { Schema } from 'effect'
import { DropReason, type EnrichContext, type EnrichStage } from '../stages.js'

/** One rate for every exporter, or rates by exporter subnet (longest prefix wins). */
export type SamplingRates = number | Readonly<Record<string, number>>

export interface SamplingOptions {
  /** Used when the flow carries no SamplingRate (0). */
  readonly defaultSamplingRate?: SamplingRates
  /** Replaces the flow's SamplingRate whatever it says. */
  readonly overrideSamplingRate?: SamplingRates
  /** What to do with a flow still without a rate: `unsampled` sets 1, `drop` drops it. */
  readonly missing?: 'unsampled' | 'drop'
}

const MAX_RATE = 4294967295

/** Builds the subnet → rate trie; throws naming the option and the bad entry. */
function ratesTrie(option: string, rates: SamplingRates | undefined): PrefixTrie<number> | undefined {
  if (rates === undefined) return undefined
  const entries: [string, unknown][] = typeof rates === 'number' ? [['::/0', rates], ['0.0.0.0/0', rates]] : Object.entries(rates)
  if (entries.length === 0) return undefined
  const trie = new PrefixTrie<number>(entries.length * 2 + 2)
  for (const [key, rate] of entries) {
    if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 1 || rate > MAX_RATE) {
      throw new Error(`${option}: "${key}": the sampling rate must be an integer 1-${MAX_RATE}, got ${JSON.stringify(rate)}`)
    }
    let prefix: ReturnType<typeof parsePrefix>
    try {
      prefix = parsePrefix(key)
    } catch (e) {
      throw new Error(`${option}: "${key}": ${(e as Error).message}`)
    }
    trie.insert(prefix.address, prefix.prefixLength, rate)
  }
  return trie
}

/** Rate for the exporter at `offset`, remembering the last exporter (batches are per exporter). */
class RateLookup {
  readonly #last = new Uint8Array(16)
  #lastRate = -1
  constructor(readonly trie: PrefixTrie<number>) {}

  rate(addresses: Uint8Array, offset: number): number {
    const last = this.#last
    if (this.#lastRate >= 0) {
      let same = true
      for (let i = 15; i >= 0; i--) {
        if (addresses[offset + i] !== last[i]) {
          same = false
          break
        }
      }
      if (same) return this.#lastRate
    }
    for (let i = 0; i < 16; i++) last[i] = addresses[offset + i]!
    this.#lastRate = this.trie.lookup(addresses, offset) ?? 0
    return this.#lastRate
  }
}

const NO_EXPORTER = new Uint8Array(16)

export class SamplingStage implements EnrichStage {
  readonly name = 'sampling'
  readonly #default: RateLookup | undefined
  readonly #override: RateLookup | undefined
  readonly #drop: boolean
  #own = 0
  #defaulted = 0
  #overridden = 0
  #missing = 0

  constructor(options: SamplingOptions = {}) {
    const d = ratesTrie('defaultSamplingRate', options.defaultSamplingRate)
    const o = ratesTrie('overrideSamplingRate', options.overrideSamplingRate)
    this.#default = d && new RateLookup(d)
    this.#override = o && new RateLookup(o)
    this.#drop = (options.missing ?? 'unsampled') === 'drop'
  }

  apply(batch: FlowBatch, rows: number, context: EnrichContext): void {
    const rates = batch.u32('SamplingRate')
    const view = batch.view('ExporterAddress')
    const exporters = view ?? NO_EXPORTER
    const stride = view === undefined ? 0 : 16
    const byDefault = this.#default
    const byOverride = this.#override
    const drop = context.drop
    for (let r = 0; r < rows; r++) {
      if (byOverride !== undefined) {
        const rate = byOverride.rate(exporters, r * stride)
        if (rate !== 0) {
          rates[r] = rate
          this.#overridden++
          continue
        }
      }
      if (rates[r] !== 0) {
        this.#own++
        continue
      }
      if (byDefault !== undefined) {
        const rate = byDefault.rate(exporters, r * stride)
        if (rate !== 0) {
          rates[r] = rate
          this.#defaulted++
          continue
        }
      }
      this.#missing++
      if (this.#drop) drop[r] = DropReason.noSamplingRate
      else rates[r] = 1
    }
  }

  counts(): Readonly<Record<string, number>> {
    return { own: this.#own, default: this.#defaulted, override: this.#overridden, missing: this.#missing }
  }
}

const Rate = Schema.Number.pipe(Schema.int(), Schema.between(1, MAX_RATE))
const Rates = Schema.Union(Rate, Schema.Record({ key: Schema.String, value: Rate })).pipe(
  Schema.filter((rates) => {
    try {
      ratesTrie('rates', rates)
      return true
    } catch (e) {
      return (e as Error).message.replace(/^rates: /, '')
    }
  }),
)

/** Config schema of the sampling options. */
export const SamplingConfig = Schema.Struct({
  defaultSamplingRate: Schema.optional(Rates).annotations({
    description: 'sampling rate of flows that carry none: one number, or exporter subnet → rate (longest prefix wins)',
  }),
  overrideSamplingRate: Schema.optional(Rates).annotations({
    description: 'sampling rate replacing whatever the flow says: one number, or exporter subnet → rate',
  }),
  missing: Schema.optionalWith(Schema.Literal('unsampled', 'drop'), { default: () => 'unsampled' as const }).annotations({
    description:
      'flows still without a sampling rate: unsampled (SamplingRate = 1, counted as missing) or drop (counted as missing, dropped)',
  }),
})
export type SamplingConfig = Schema.Schema.Type<typeof SamplingConfig>
