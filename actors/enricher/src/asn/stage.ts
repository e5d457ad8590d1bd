// The AS number and prefix length stage: SrcAS/DstAS and SrcNetMask/DstNetMask from providers
// tried in the configured order, the first non-zero answer winning, as Akvorado users expect.
import type { FlowBatch } from '@flowbus/bus-schemas'
import { Schema } from 'effect'
import type { EnrichContext, EnrichStage } from '../stages.js'

/** Where an AS number can come from. */
export const asProviders = ['flow', 'flow-except-private', 'routing', 'geoip', 'networks'] as const
export type ASProvider = (typeof asProviders)[number]
/** Where a prefix length can come from. */
export const netProviders = ['flow', 'routing'] as const
export type NetProvider = (typeof netProviders)[number]

/**
 * AS numbers that say nothing about who owns an address: 0, AS_TRANS (23456, RFC 6793), the
 * documentation (64496-64511, 65536-65551, RFC 5398), private (64512-65534, 4200000000-4294967294,
 * RFC 6996) and reserved (65535, 4294967295, RFC 7300) ranges. 65552-4199999999 are public.
 */
export function isPrivateAS(asn: number): boolean {
  return asn === 0 || asn === 23456 || (asn >= 64496 && asn <= 65551) || asn >= 4200000000
}

export interface ASNOptions {
  readonly asProviders: readonly ASProvider[]
  readonly netProviders: readonly NetProvider[]
}

const FLOW = 0
const FLOW_EXCEPT_PRIVATE = 1
const ROUTING = 2
const GEOIP = 3
const NETWORKS = 4
const NONE = 5
const outcomes = ['flow', 'flow-except-private', 'routing', 'geoip', 'networks', 'none'] as const

/**
 * One provider's pass: each row no earlier provider answered takes `source`'s value when it is
 * not 0 (nor private, with publicOnly), marked as provider p's. Returns how many rows it took.
 */
function takeUnanswered(source: ArrayLike<number>, p: number, rows: number, value: Uint32Array, from: Uint8Array, publicOnly: boolean): number {
  let n = 0
  for (let r = 0; r < rows; r++) {
    if (from[r] !== NONE) continue
    const v = source[r]!
    if (v === 0 || (publicOnly && isPrivateAS(v))) continue
    value[r] = v
    from[r] = p
    n++
  }
  return n
}

export class ASNStage implements EnrichStage {
  readonly name = 'asn'
  readonly #as: Uint8Array
  readonly #net: Uint8Array
  /** AS numbers chosen per provider (index = provider code, NONE when every provider said 0). */
  readonly #asChosen = new Float64Array(outcomes.length)
  readonly #maskChosen = new Float64Array(outcomes.length)

  constructor(options: ASNOptions) {
    this.#as = Uint8Array.from(options.asProviders, (p) => {
      const code = asProviders.indexOf(p)
      if (code < 0) throw new Error(`asProviders: unknown provider "${p}" (known: ${asProviders.join(', ')})`)
      return code
    })
    this.#net = Uint8Array.from(options.netProviders, (p) => {
      if (!netProviders.includes(p)) throw new Error(`netProviders: unknown provider "${p}" (known: ${netProviders.join(', ')})`)
      return p === 'flow' ? FLOW : ROUTING
    })
  }

  apply(batch: FlowBatch, rows: number, context: EnrichContext): void {
    const routing = context.routing
    this.#side(rows, batch.u32('SrcAS'), routing?.srcAS, context.geoipSrcAS, context.networkSrcAS)
    this.#side(rows, batch.u32('DstAS'), routing?.dstAS, context.geoipDstAS, context.networkDstAS)
    if (this.#net.length > 0) {
      this.#masks(rows, batch.u8('SrcNetMask'), routing?.srcNetMask)
      this.#masks(rows, batch.u8('DstNetMask'), routing?.dstNetMask)
    }
  }

  // Provider by provider over the whole column (not provider by row): each pass is a tight loop
  // over the rows no earlier provider answered, and counts what it chose.

  #side(rows: number, column: Uint32Array, routing: Uint32Array | undefined, geoip: Uint32Array, networks: Uint32Array): void {
    const { value, from } = this.#scratch(rows)
    value.fill(0, 0, rows)
    from.fill(NONE, 0, rows)
    const chosen = this.#asChosen
    let answered = 0
    for (let i = 0; i < this.#as.length; i++) {
      const p = this.#as[i]!
      const source = p === FLOW || p === FLOW_EXCEPT_PRIVATE ? column : p === ROUTING ? routing : p === GEOIP ? geoip : networks
      if (source === undefined) continue
      const n = takeUnanswered(source, p, rows, value, from, p === FLOW_EXCEPT_PRIVATE)
      chosen[p]! += n
      answered += n
    }
    chosen[NONE]! += rows - answered
    column.set(value.subarray(0, rows))
  }

  #masks(rows: number, column: Uint8Array, routing: Uint8Array | undefined): void {
    const { value, from } = this.#scratch(rows)
    value.fill(0, 0, rows)
    from.fill(NONE, 0, rows)
    const chosen = this.#maskChosen
    let answered = 0
    for (let i = 0; i < this.#net.length; i++) {
      const p = this.#net[i]!
      const source = p === FLOW ? column : routing
      if (source === undefined) continue
      const n = takeUnanswered(source, p, rows, value, from, false)
      chosen[p]! += n
      answered += n
    }
    chosen[NONE]! += rows - answered
    for (let r = 0; r < rows; r++) column[r] = value[r]!
  }

  #value = new Uint32Array(0)
  #from = new Uint8Array(0)

  /** Per-row scratch of a pass: the value chosen so far and its provider (NONE: none yet). */
  #scratch(rows: number): { value: Uint32Array; from: Uint8Array } {
    if (this.#value.length < rows) {
      this.#value = new Uint32Array(Math.max(rows, this.#value.length * 2))
      this.#from = new Uint8Array(this.#value.length)
    }
    return { value: this.#value, from: this.#from }
  }

  counts(): Readonly<Record<string, number>> {
    const out: Record<string, number> = {}
    outcomes.forEach((o, i) => {
      out[`as-${o}`] = this.#asChosen[i]!
    })
    out['mask-flow'] = this.#maskChosen[FLOW]!
    out['mask-routing'] = this.#maskChosen[ROUTING]!
    out['mask-none'] = this.#maskChosen[NONE]!
    return out
  }
}

/** Config schema of the stage's options, with Akvorado's defaults plus network attributes. */
export const ASNConfig = Schema.Struct({
  asProviders: Schema.optionalWith(Schema.Array(Schema.Literal(...asProviders)), {
    default: () => ['flow', 'routing', 'networks', 'geoip'] as const,
  }).annotations({
    description:
      'where SrcAS/DstAS come from, tried in order until one is non-zero: flow (as exported), flow-except-private (as exported unless private/reserved/AS_TRANS), routing (bmp-rib), networks (network attributes asn), geoip (ASN database)',
  }),
  netProviders: Schema.optionalWith(Schema.Array(Schema.Literal(...netProviders)), { default: () => ['flow', 'routing'] as const }).annotations({
    description: 'where SrcNetMask/DstNetMask come from, tried in order until one is non-zero: flow (as exported), routing (bmp-rib)',
  }),
})
export type ASNConfig = Schema.Schema.Type<typeof ASNConfig>
