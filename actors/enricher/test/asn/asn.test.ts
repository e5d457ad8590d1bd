// AS numbers and prefix lengths: providers in order, first non-zero wins; private AS ranges.
import { FlowBatch } from '@flowbus/bus-schemas'
import { Schema } from 'effect'
import { describe, expect, it } from 'vitest'
import { ASNConfig, ASNStage, isPrivateAS, type ASNOptions } from '../../src/asn/stage.js'
import { EnrichContext } from '../../src/stages.js'

interface Row {
  flow: number
  routing?: number
  geoip?: number
  networks?: number
  mask?: number
  routingMask?: number
}

/** Runs the stage over rows (source side; destination mirrors it) and returns SrcAS and SrcNetMask. */
function run(options: ASNOptions, rows: Row[], withRouting = true): { as: number[]; mask: number[]; stage: ASNStage } {
  const batch = new FlowBatch(rows.length)
  const context = new EnrichContext()
  batch.appendRows(rows.length)
  context.reset(rows.length)
  const n = rows.length
  if (withRouting) {
    context.routing = { srcAS: new Uint32Array(n), dstAS: new Uint32Array(n), srcNetMask: new Uint8Array(n), dstNetMask: new Uint8Array(n) }
  }
  rows.forEach((row, r) => {
    batch.u32('SrcAS')[r] = row.flow
    batch.u32('DstAS')[r] = row.flow
    batch.u8('SrcNetMask')[r] = row.mask ?? 0
    if (context.routing) {
      context.routing.srcAS[r] = row.routing ?? 0
      context.routing.srcNetMask[r] = row.routingMask ?? 0
    }
    context.geoipSrcAS[r] = row.geoip ?? 0
    context.networkSrcAS[r] = row.networks ?? 0
  })
  const stage = new ASNStage(options)
  stage.apply(batch, n, context)
  return { as: Array.from(batch.view('SrcAS')!), mask: Array.from(batch.view('SrcNetMask')!), stage }
}

describe('private AS numbers', () => {
  it.each([0, 23456, 64496, 64511, 64512, 65000, 65534, 65535, 65551, 4200000000, 4294967294, 4294967295])('%i is private or reserved', (asn) => {
    expect(isPrivateAS(asn)).toBe(true)
  })
  it.each([1, 3215, 15169, 64495, 65552, 399999, 4199999999])('%i is public', (asn) => {
    expect(isPrivateAS(asn)).toBe(false)
  })
})

describe('AS providers', () => {
  const rows: Row[] = [
    { flow: 3215, routing: 1, geoip: 2, networks: 3 },
    { flow: 65001, routing: 0, geoip: 15169, networks: 64500 },
    { flow: 0, routing: 0, geoip: 0, networks: 64500 },
    { flow: 0 },
    { flow: 4200000001, routing: 174 },
  ]

  it('takes the flow first when asked', () => {
    expect(run({ asProviders: ['flow', 'routing', 'geoip'], netProviders: [] }, rows).as).toEqual([3215, 65001, 0, 0, 4200000001])
  })
  it('skips private flow AS numbers with flow-except-private', () => {
    const { as, stage } = run({ asProviders: ['flow-except-private', 'routing', 'geoip', 'networks'], netProviders: [] }, rows)
    expect(as).toEqual([3215, 15169, 64500, 0, 174])
    // Source side as above; the destination side has only the flow's numbers (3215 public, the rest not).
    expect(stage.counts()).toMatchObject({ 'as-flow-except-private': 2, 'as-routing': 1, 'as-geoip': 1, 'as-networks': 1, 'as-none': 5 })
  })
  it('follows the configured order', () => {
    expect(run({ asProviders: ['networks', 'geoip', 'flow'], netProviders: [] }, rows).as).toEqual([3, 64500, 64500, 0, 4200000001])
    expect(run({ asProviders: ['geoip'], netProviders: [] }, rows).as).toEqual([2, 15169, 0, 0, 0])
  })
  it('treats a batch without routing answers as routing saying 0', () => {
    expect(run({ asProviders: ['routing', 'flow'], netProviders: [] }, rows, false).as).toEqual([3215, 65001, 0, 0, 4200000001])
  })
  it('chooses prefix lengths the same way', () => {
    const masks: Row[] = [{ flow: 0, mask: 24, routingMask: 22 }, { flow: 0, mask: 0, routingMask: 19 }, { flow: 0 }]
    expect(run({ asProviders: [], netProviders: ['flow', 'routing'] }, masks).mask).toEqual([24, 19, 0])
    expect(run({ asProviders: [], netProviders: ['routing', 'flow'] }, masks).mask).toEqual([22, 19, 0])
  })
})

describe('ASN config', () => {
  it('has defaults and names a bad provider', () => {
    expect(Schema.decodeUnknownSync(ASNConfig)({})).toEqual({ asProviders: ['flow', 'routing', 'networks', 'geoip'], netProviders: ['flow', 'routing'] })
    expect(() => Schema.decodeUnknownSync(ASNConfig)({ asProviders: ['flow', 'bgp'] })).toThrow(/asProviders[\s\S]*bgp/)
    expect(() => new ASNStage({ asProviders: ['bgp' as never], netProviders: [] })).toThrow('asProviders: unknown provider "bgp"')
  })
})
