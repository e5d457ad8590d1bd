// Classification rules: accepted rules and their effects on flows, reject rules, positioned
// errors for bad rules, regexes that could backtrack catastrophically, and the result caches.
import { readFileSync } from 'node:fs'
import { FlowBatch, parseIP } from '@flowbus/bus-schemas'
import { Schema } from 'effect'
import { describe, expect, it } from 'vitest'
import { unsafeRegexReason, RuleError } from '../../src/classification/rules.js'
import { ClassificationConfig, ClassificationStage, compileRules, exporterDialect, interfaceDialect } from '../../src/classification/stage.js'
import { DropReason, EnrichContext } from '../../src/stages.js'

const rules = JSON.parse(readFileSync(new URL('../fixtures/classification.json', import.meta.url), 'utf8')) as {
  exporterRules: string[]
  interfaceRules: string[]
}

interface Flow {
  exporter: string
  name: string
  inIf?: [index: number, name: string, description: string, speed: number]
  outIf?: [index: number, name: string, description: string, speed: number]
  group?: string
}

function batchOf(flows: Flow[]): FlowBatch {
  const batch = new FlowBatch(flows.length)
  for (const f of flows) {
    const r = batch.appendRow()
    batch.setIP('ExporterAddress', r, parseIP(f.exporter))
    batch.setString('ExporterName', r, f.name)
    if (f.group !== undefined) batch.setString('ExporterGroup', r, f.group)
    if (f.inIf) {
      batch.u32('InIf')[r] = f.inIf[0]
      batch.setString('InIfName', r, f.inIf[1])
      batch.setString('InIfDescription', r, f.inIf[2])
      batch.u32('InIfSpeed')[r] = f.inIf[3]
    }
    if (f.outIf) {
      batch.u32('OutIf')[r] = f.outIf[0]
      batch.setString('OutIfName', r, f.outIf[1])
      batch.setString('OutIfDescription', r, f.outIf[2])
      batch.u32('OutIfSpeed')[r] = f.outIf[3]
    }
  }
  return batch
}

function run(stage: ClassificationStage, batch: FlowBatch): number[] {
  const context = new EnrichContext()
  context.reset(batch.count)
  stage.apply(batch, batch.count, context)
  return Array.from(context.drop.subarray(0, batch.count))
}

const row = (batch: FlowBatch, r: number) => ({
  group: batch.getString('ExporterGroup', r),
  role: batch.getString('ExporterRole', r),
  site: batch.getString('ExporterSite', r),
  region: batch.getString('ExporterRegion', r),
  tenant: batch.getString('ExporterTenant', r),
  in: [batch.getString('InIfName', r), batch.getString('InIfProvider', r), batch.getString('InIfConnectivity', r), batch.getNumber('InIfBoundary', r)],
  out: [batch.getString('OutIfName', r), batch.getString('OutIfProvider', r), batch.getString('OutIfConnectivity', r), batch.getNumber('OutIfBoundary', r)],
})

describe('classification rules', () => {
  it('classify exporters and interfaces', () => {
    const stage = new ClassificationStage(rules)
    const batch = batchOf([
      { exporter: '192.0.2.1', name: 'par01-edge.example.net', inIf: [10, 'Te0/0/1', 'Transit: Cogent [AS174]', 10000], outIf: [20, 'Hu0/1', 'core link', 100000] },
      { exporter: '192.0.2.1', name: 'par01-edge.example.net', inIf: [11, 'Te0/0/2', 'IX: FranceIX', 10000], outIf: [12, 'Te0/0/3', 'pni: google', 10000] },
      { exporter: '192.0.2.130', name: 'nyc2-core.example.net', inIf: [1, 'Hu0/0', 'to par01', 100000], outIf: [30, 'Te1/1', '', 10000], group: 'backbone' },
      { exporter: '2001:db8::7', name: 'fra3-edge.example.net', inIf: [2, 'Gi0/1', '', 1000] },
    ])
    expect(run(stage, batch)).toEqual([0, 0, 0, 0])
    expect(row(batch, 0)).toEqual({
      group: 'default', role: 'edge', site: 'par', region: 'eu-west', tenant: 'acme',
      in: ['Te-0/0/1', 'Cogent', 'transit', 1],
      out: ['Hu-0/1', '', '', 2],
    })
    expect(row(batch, 1).in).toEqual(['Te-0/0/2', 'FranceIX', 'IX', 1])
    expect(row(batch, 1).out).toEqual(['Te-0/0/3', 'google', 'pni', 1])
    // Values set before classification (metadata) stay; rules see them.
    expect(row(batch, 2)).toMatchObject({ group: 'backbone', role: 'core', site: 'nyc', region: 'us-east', tenant: '' })
    // Interface.Index 1 is excluded from renaming; core role + speed ≥ 100G is backbone.
    expect(row(batch, 2).in).toEqual(['Hu0/0', '', 'backbone', 2])
    expect(row(batch, 3)).toMatchObject({ site: 'fra', region: 'eu-west', in: ['Gi0/1', '', '', 2], out: ['', '', '', 0] })
  })

  it('reject rules mark flows for dropping', () => {
    const stage = new ClassificationStage(rules)
    const batch = batchOf([
      { exporter: '192.0.2.9', name: 'lab-r1', inIf: [1, 'Te0/1', 'Transit: X', 10] },
      { exporter: '192.0.2.1', name: 'par01-edge.example.net', inIf: [5, 'mgmt0', '', 1000] },
      { exporter: '192.0.2.1', name: 'par01-edge.example.net', inIf: [6, 'Te0/6', 'x', 10], outIf: [7, 'Te0/7', 'spare [ignore]', 10] },
      { exporter: '192.0.2.1', name: 'par01-edge.example.net', inIf: [6, 'Te0/6', 'x', 10] },
    ])
    expect(run(stage, batch)).toEqual([DropReason.rejected, DropReason.rejected, DropReason.rejected, 0])
    expect(stage.counts()).toMatchObject({ rejectedExporter: 1, rejectedInterface: 2 })
  })

  it('caches results per exporter and interface across batches', () => {
    const stage = new ClassificationStage(rules)
    const flows: Flow[] = Array.from({ length: 50 }, (_, i) => ({
      exporter: '192.0.2.1',
      name: 'par01-edge.example.net',
      inIf: [10 + (i % 3), 'Te0/0/1', 'Transit: Cogent', 10000],
    }))
    run(stage, batchOf(flows))
    run(stage, batchOf(flows))
    const counts = stage.counts() as Record<'exporterHits' | 'exporterMisses' | 'interfaceHits' | 'interfaceMisses', number>
    expect(counts.exporterMisses).toBe(1)
    expect(counts.interfaceMisses).toBe(3)
    expect(counts.exporterHits + counts.exporterMisses).toBe(100)
    expect(counts.interfaceHits + counts.interfaceMisses).toBe(100)
  })

  it('answers each row for its own inputs when an interface’s inputs change within a run, exporters alternate, or ifIndexes are large', () => {
    const stage = new ClassificationStage({
      interfaceRules: [
        'Interface.Description matches "^drop" -> reject',
        'Interface.Description matches "^Transit: (\\S+)" -> provider = $1, boundary = external',
        'Interface.Speed == 10 -> connectivity = "slow"',
        'Interface.Index > 70000 -> connectivity = "big"',
        'Exporter.Name == "b" -> provider = "from-b"',
      ],
    })
    const flows: Flow[] = []
    const expected: [string, string, number, string, string][] = []
    // The same ifIndexes (small and beyond the dense range, with the same name) on two exporters
    // in runs of 8 rows; a description holds for three rows (one of each ifIndex), then changes.
    // Then rows of one interface with the same inputs, the exporter changing on every row.
    for (let i = 0; i < 252; i++) {
      const exporterB = i < 240 ? (i >> 3) % 2 === 1 : i % 2 === 1
      const ifIndex = i < 240 ? [3, 70000, 70001][i % 3]! : 3
      const description = i < 240 && Math.floor(i / 3) % 2 === 1 ? `Transit: T${Math.floor(i / 6) % 5}` : 'core'
      const speed = i % 5 === 0 ? 10 : 100
      const outDescription = i % 11 === 0 ? 'drop this' : description
      flows.push({ exporter: exporterB ? '192.0.2.2' : '192.0.2.1', name: exporterB ? 'b' : 'a', inIf: [ifIndex, 'port', description, speed], outIf: [ifIndex, 'port', outDescription, speed] })
      // The first rule setting a target wins.
      const provider = description.startsWith('Transit: ') ? description.slice(9) : exporterB ? 'from-b' : ''
      const rejected = outDescription.startsWith('drop')
      expected.push([rejected ? 'drop' : provider, speed === 10 ? 'slow' : ifIndex > 70000 ? 'big' : '', description.startsWith('Transit') ? 1 : 0, `${ifIndex}`, rejected ? 'drop' : provider])
    }
    for (let pass = 0; pass < 2; pass++) {
      const batch = batchOf(flows)
      const drop = run(stage, batch)
      const got = flows.map((_, r) => {
        const out = batch.getString('OutIfProvider', r)
        return [drop[r] === DropReason.rejected ? 'drop' : row(batch, r).in[1], row(batch, r).in[2], row(batch, r).in[3], `${batch.getNumber('InIf', r)}`, drop[r] === DropReason.rejected ? 'drop' : out]
      })
      expect(got).toEqual(expected)
    }
  })

  it('tests strings and numbers against lists, endsWith and inequalities', () => {
    const stage = new ClassificationStage({
      interfaceRules: [
        'Interface.Name in ["ae0", "ae1"] -> connectivity = "lag"',
        'Interface.Name endsWith ".100" && Interface.Speed != 0 -> connectivity = "vlan"',
        'Interface.Index in [7, 8] || Interface.Speed < 1000 -> connectivity = "slow"',
        'Exporter.Address == "2001:db8::7" -> provider = "v6-edge"',
      ],
    })
    const batch = batchOf([
      { exporter: '192.0.2.1', name: 'r1', inIf: [1, 'ae1', '', 100000], outIf: [2, 'xe-0/0/1.100', '', 10000] },
      { exporter: '2001:db8::7', name: 'r2', inIf: [7, 'xe-0/0/7', '', 10000], outIf: [3, 'ge-0/0/3', '', 100] },
    ])
    run(stage, batch)
    expect([row(batch, 0).in[2], row(batch, 0).out[2], row(batch, 1).in[2], row(batch, 1).out[2]]).toEqual(['lag', 'vlan', 'slow', 'slow'])
    expect([row(batch, 0).in[1], row(batch, 1).in[1]]).toEqual(['', 'v6-edge'])
  })

  it('does nothing without rules', () => {
    const batch = batchOf([{ exporter: '192.0.2.1', name: 'r1', inIf: [1, 'a', 'Transit: b', 1] }])
    run(new ClassificationStage({}), batch)
    expect(batch.has('InIfProvider')).toBe(false)
  })
})

describe('rule errors point at the rule and column', () => {
  it.each([
    ['interface', 'Interface.Descr matches "x" -> provider = "a"', 1, /unknown field "Interface.Descr" \(known: .*Interface.Description/],
    ['interface', 'Interface.Description matches 12 -> provider = "a"', 31, /expected a string for Interface.Description, got "12"/],
    ['interface', 'Interface.Speed > "fast" -> provider = "a"', 19, /expected a number for Interface.Speed/],
    ['interface', 'Interface.Speed matches "1" -> provider = "a"', 17, /expected an operator for Interface.Speed/],
    ['interface', 'Interface.Name == "a" provider = "x"', 23, /expected "->"/],
    ['interface', 'Interface.Name == "a -> provider = "x"', 38, /unterminated string: a closing " is missing/],
    ['interface', 'Interface.Name == "a" -> provider = $1', 37, /\$1 refers to a capture, but the condition has no "matches"/],
    ['interface', 'Interface.Name matches "^(a)" -> provider = $2', 45, /\$2 refers to group 2, but the regexes have 1 group/],
    ['interface', 'Interface.Name matches "^(a)" -> provider = "${x}"', 46, /\$\{x\} names no group/],
    ['interface', 'Interface.Name == "a" -> boundary = outside', 37, /boundary takes one of external, internal, got "outside"/],
    ['interface', 'Interface.Name == "a" -> site = "x"', 26, /expected an action \(reject, or one of provider, connectivity, boundary, name, description/],
    ['interface', 'Interface.Name == "a" -> reject, provider = "x"', 48, /"reject" cannot be combined/],
    ['interface', 'Interface.Name matches "([a-z]+" -> reject', 24, /regex "\(\[a-z\]\+" does not compile/],
    ['interface', '(Interface.Name == "a" -> reject', 24, /expected "\)"/],
    ['interface', 'Interface.Name == "a" -> provider = "x", provider = "y"', 42, /provider is set twice/],
    ['interface', 'Interface.Name == "a" # -> reject', 23, /unexpected character "#"/],
    ['exporter', 'Exporter.Address == "192.0.2.0/24" -> role = "x"', 21, /use "in"/],
    ['exporter', 'Exporter.Address in "192.0.2.0/40" -> role = "x"', 21, /0\.\.32/],
    ['exporter', 'Interface.Name == "a" -> role = "x"', 1, /unknown field "Interface.Name"/],
  ])('%s rule %j', (list, text, column, reason) => {
    let error: unknown
    try {
      compileRules(list === 'exporter' ? exporterDialect : interfaceDialect, ['true -> reject', text])
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RuleError)
    const e = error as RuleError
    expect([e.list, e.rule, e.column]).toEqual([list, 1, column])
    expect(e.message).toMatch(reason)
    expect(e.message).toContain(`${list} rule 1 ("${text}"), column ${column}:`)
  })

  it('config decoding fails on a bad rule with its path and position', () => {
    const decode = Schema.decodeUnknownSync(ClassificationConfig)
    expect(decode(rules).interfaceRules).toHaveLength(rules.interfaceRules.length)
    expect(() => decode({ interfaceRules: ['true -> boundary = internal', 'Interface.Speed >> 3 -> reject'] })).toThrow(
      /interfaceRules[\s\S]*interface rule 1 \("Interface.Speed >> 3 -> reject"\), column 18/,
    )
  })
})

describe('regexes that could backtrack catastrophically are rejected', () => {
  it.each(['(?:a+)+$', '(?<x>a|aa)*b', '(a+)+$', '(a|aa)*b', '(\\w+\\s?)*$', '(.*a){2,}', '((ab)*c)+', '^(x+x+)+y', '(a)\\1', '(?<x>a)\\k<x>'])('%s', (pattern) => {
    expect(unsafeRegexReason(pattern)).toBeDefined()
    expect(() => compileRules(interfaceDialect, [`Interface.Description matches "${pattern.replace(/\\/g, '\\\\')}" -> reject`])).toThrow(RuleError)
  })
  it.each(['^Transit: (\\S+)', '^(ix|pni): ([^ ]+)', '(ab){2}', '[(+*)]+', '^\\(+x', '^(?:AS)?(\\d+)$', '(a|b)?c', '(?:ab)+', '^(?<peer>[a-z]+)-(?:ix)+$', '(?=x)y+'])('%s is fine', (pattern) => {
    expect(unsafeRegexReason(pattern)).toBeUndefined()
  })
})
