// Sampling normalisation: per-subnet default and override by exporter address, flows keep their
// own rate otherwise, and flows still without one are counted and marked unsampled or dropped.
import { FlowBatch, parseIP } from '@flowbus/bus-schemas'
import { Schema } from 'effect'
import { describe, expect, it } from 'vitest'
import { SamplingConfig, SamplingStage, type SamplingOptions } from '../../src/sampling/stage.js'
import { DropReason, EnrichContext } from '../../src/stages.js'

function run(options: SamplingOptions, flows: [exporter: string, rate: number][]): { rates: number[]; drop: number[]; stage: SamplingStage } {
  const batch = new FlowBatch(flows.length)
  for (const [exporter, rate] of flows) {
    const r = batch.appendRow()
    batch.setIP('ExporterAddress', r, parseIP(exporter))
    batch.u32('SamplingRate')[r] = rate
  }
  const context = new EnrichContext()
  context.reset(batch.count)
  const stage = new SamplingStage(options)
  stage.apply(batch, batch.count, context)
  return { rates: Array.from(batch.view('SamplingRate')!), drop: Array.from(context.drop.subarray(0, batch.count)), stage }
}

const flows: [string, number][] = [
  ['192.0.2.1', 0],
  ['192.0.2.1', 0],
  ['192.0.2.1', 100],
  ['192.0.2.130', 0],
  ['198.51.100.1', 0],
  ['2001:db8::1', 0],
  ['2001:db8::1', 4000],
]

describe('sampling stage', () => {
  it('fills missing rates from the longest matching exporter subnet and keeps the flow’s own', () => {
    const { rates, drop, stage } = run({ defaultSamplingRate: { '192.0.2.0/24': 1000, '192.0.2.128/25': 2000, '2001:db8::/32': 512 } }, flows)
    expect(rates).toEqual([1000, 1000, 100, 2000, 1, 512, 4000])
    expect(drop).toEqual([0, 0, 0, 0, 0, 0, 0])
    expect(stage.counts()).toEqual({ own: 2, default: 4, override: 0, missing: 1 })
  })

  it('overrides rates by subnet, whatever the flow says', () => {
    const { rates, stage } = run({ overrideSamplingRate: { '2001:db8::/32': 10 }, defaultSamplingRate: 300 }, flows)
    expect(rates).toEqual([300, 300, 100, 300, 300, 10, 10])
    expect(stage.counts()).toEqual({ own: 1, default: 4, override: 2, missing: 0 })
  })

  it('drops flows without a rate when asked', () => {
    const { rates, drop, stage } = run({ defaultSamplingRate: { '192.0.2.0/24': 1000 }, missing: 'drop' }, flows)
    expect(rates.slice(0, 4)).toEqual([1000, 1000, 100, 1000])
    expect(drop).toEqual([0, 0, 0, 0, DropReason.noSamplingRate, DropReason.noSamplingRate, 0])
    expect(stage.counts().missing).toBe(2)
  })

  it('marks flows without a rate as unsampled by default', () => {
    expect(run({}, flows).rates).toEqual([1, 1, 100, 1, 1, 1, 4000])
  })

  it('names bad rates and subnets', () => {
    expect(() => new SamplingStage({ defaultSamplingRate: { '192.0.2.0/33': 10 } })).toThrow(/defaultSamplingRate: "192.0.2.0\/33"/)
    expect(() => new SamplingStage({ overrideSamplingRate: { '192.0.2.0/24': 0 } })).toThrow(/overrideSamplingRate: "192.0.2.0\/24": the sampling rate must be an integer/)
    expect(Schema.decodeUnknownSync(SamplingConfig)({ defaultSamplingRate: { '10.0.0.0/8': 100 } })).toEqual({
      defaultSamplingRate: { '10.0.0.0/8': 100 },
      missing: 'unsampled',
    })
    expect(() => Schema.decodeUnknownSync(SamplingConfig)({ defaultSamplingRate: { 'ten/8': 100 } })).toThrow(/"ten\/8"/)
    expect(() => Schema.decodeUnknownSync(SamplingConfig)({ missing: 'keep' })).toThrow(/missing/)
  })
})
