// The classification stage: exporter rules set exporter group/role/site/region/tenant, interface
// rules set provider/connectivity/boundary (and may rename); results cached per exporter/interface.
import { formatIP, type FlowBatch, type StringColumn, type U32Column, type U8Column } from '@flowbus/bus-schemas'
import { parsePrefix } from '@flowbus/runtime'
import { Schema } from 'effect'
import { addressWords } from '../networks/address-cache.js'
import { batchStrings } from '../strings.js'
import { DropReason, type EnrichContext, type EnrichStage } from '../stages.js'
import { classify, compileRule, RuleError, type CompiledRule, type FieldValue, type RuleDialect } from './rules.js'

const exporterFields = {
  'Exporter.Name': { type: 'string', slot: 0 },
  'Exporter.Address': { type: 'address', slot: 1 },
  'Exporter.Group': { type: 'string', slot: 2 },
  'Exporter.Role': { type: 'string', slot: 3 },
  'Exporter.Site': { type: 'string', slot: 4 },
  'Exporter.Region': { type: 'string', slot: 5 },
  'Exporter.Tenant': { type: 'string', slot: 6 },
} as const

export const exporterDialect: RuleDialect = {
  list: 'exporter',
  fields: exporterFields,
  targets: { group: undefined, role: undefined, site: undefined, region: undefined, tenant: undefined },
}

export const interfaceDialect: RuleDialect = {
  list: 'interface',
  fields: {
    ...exporterFields,
    'Interface.Name': { type: 'string', slot: 7 },
    'Interface.Description': { type: 'string', slot: 8 },
    'Interface.Speed': { type: 'number', slot: 9 },
    'Interface.Index': { type: 'number', slot: 10 },
  },
  targets: { provider: undefined, connectivity: undefined, boundary: ['external', 'internal'], name: undefined, description: undefined },
}

export interface ClassificationOptions {
  /** Rules over exporter fields, in order (see docs/enrichment.md for the language). */
  readonly exporterRules?: readonly string[]
  /** Rules over exporter and interface fields, in order. */
  readonly interfaceRules?: readonly string[]
  /** Cached exporter and interface results at most (each); the cache restarts empty beyond. */
  readonly cacheSize?: number
}

/** Compiles rule lists; throws RuleError naming the list, the rule index and the column. */
export function compileRules(dialect: RuleDialect, rules: readonly string[]): CompiledRule[] {
  return rules.map((text, i) => compileRule(dialect, i, text, parsePrefix))
}

const exporterTargets = ['group', 'role', 'site', 'region', 'tenant'] as const
const exporterColumns = ['ExporterGroup', 'ExporterRole', 'ExporterSite', 'ExporterRegion', 'ExporterTenant'] as const
const BOUNDARY = { '': 0, external: 1, internal: 2 } as Record<string, number>

/** An exporter's classification, with its strings interned for the batch of `generation`. */
interface ExporterResult {
  readonly id: number
  readonly rejected: boolean
  /** Final exporter attributes (flow's own where set, else classified), as interface rules see them. */
  readonly attributes: readonly string[]
  readonly name: string
  readonly address: Uint8Array
  /** Classified values per exporterTargets ('' when no rule set it). */
  readonly classified: readonly string[]
  /** batchStrings ids of `classified`. */
  readonly ids: Uint32Array
  generation: number
  readonly indexes: Uint32Array
  /** Its interfaces' last inputs and results: by ifIndex below DENSE_IFINDEX, else in the Map. */
  readonly dense: (InterfaceEntry | undefined)[]
  readonly sparse: Map<number, InterfaceEntry>
}

/** ifIndexes below this are found in an array per exporter, the others in its Map. */
const DENSE_IFINDEX = 4096

/**
 * The last inputs an exporter's interface was classified with and the result: a row with the
 * same string indexes in the same batch (generation) is a hit without reading any string.
 */
interface InterfaceEntry {
  generation: number
  nameIndex: number
  descriptionIndex: number
  speed: number
  name: string
  description: string
  result: InterfaceResult
}

interface InterfaceResult {
  readonly rejected: boolean
  readonly provider: string
  readonly connectivity: string
  readonly boundary: number
  /** Undefined when no rule renames. */
  readonly name: string | undefined
  readonly description: string | undefined
  /** batchStrings ids of provider, connectivity, name, description (0 for an undefined one). */
  readonly ids: Uint32Array
  generation: number
  /** provider, connectivity, name, description. */
  readonly indexes: Uint32Array
}

let generation = 0

interface Side {
  index: U32Column
  name: StringColumn
  description: StringColumn
  speed: U32Column
  provider: StringColumn
  connectivity: StringColumn
  boundary: U8Column
}
const sides: readonly Side[] = [
  { index: 'InIf', name: 'InIfName', description: 'InIfDescription', speed: 'InIfSpeed', provider: 'InIfProvider', connectivity: 'InIfConnectivity', boundary: 'InIfBoundary' },
  { index: 'OutIf', name: 'OutIfName', description: 'OutIfDescription', speed: 'OutIfSpeed', provider: 'OutIfProvider', connectivity: 'OutIfConnectivity', boundary: 'OutIfBoundary' },
]

const ZERO_ADDRESS = new Uint8Array(16)

/** One side's columns in the batch at hand: inputs (undefined when absent) and the columns written (undefined when no rule sets them). */
interface SideArrays {
  index: Uint32Array | undefined
  name: Uint32Array | undefined
  description: Uint32Array | undefined
  speed: Uint32Array | undefined
  provider: Uint32Array | undefined
  connectivity: Uint32Array | undefined
  boundary: Uint8Array | undefined
  rename: Uint32Array | undefined
  redescribe: Uint32Array | undefined
}

/**
 * Words per ifIndex in the memo: stamp, name index, description index, speed, then the batch
 * indexes of provider, connectivity, new name, new description, and the flags word (boundary,
 * REJECTS, RENAMES, REDESCRIBES).
 */
const MEMO_WORDS = 9
const BOUNDARY_MASK = 0xff
const REJECTS = 0x100
const RENAMES = 0x200
const REDESCRIBES = 0x400

export class ClassificationStage implements EnrichStage {
  readonly name = 'classification'
  readonly #exporterRules: CompiledRule[]
  readonly #interfaceRules: CompiledRule[]
  readonly #cacheSize: number
  readonly #exporters = new Map<string, ExporterResult>()
  readonly #interfaces = new Map<string, InterfaceResult>()
  readonly #values: FieldValue[] = ['', ZERO_ADDRESS, '', '', '', '', '', '', '', 0, 0]
  readonly #seen = new ExporterInputs()
  /** Per ifIndex below DENSE_IFINDEX (and one shared entry for the others): the last inputs and result of the side and run being classified. */
  readonly #memo = new Uint32Array((DENSE_IFINDEX + 1) * MEMO_WORDS)
  /** Identifies a (run, side) pass in the memo. */
  #memoStamp = 0
  /** Rows of the current run an interface rejected. */
  #rejectedRows = new Uint8Array(0)
  #zeroColumn = new Uint32Array(0)
  /** Which exporter targets and interface targets some rule sets: only those columns are written. */
  readonly #setsExporter: boolean[]
  readonly #setsInterface: Set<string>
  #nextId = 1
  /** The batchStrings epoch of the cached results' ids. */
  #epoch = batchStrings.epoch
  #counts = { exporterHits: 0, exporterMisses: 0, interfaceHits: 0, interfaceMisses: 0, rejectedExporter: 0, rejectedInterface: 0 }

  constructor(options: ClassificationOptions) {
    this.#exporterRules = compileRules(exporterDialect, options.exporterRules ?? [])
    this.#interfaceRules = compileRules(interfaceDialect, options.interfaceRules ?? [])
    this.#cacheSize = options.cacheSize ?? 100_000
    const set = new Set(this.#exporterRules.flatMap((r) => r.actions.map((a) => a.target)))
    this.#setsExporter = exporterTargets.map((t) => set.has(t))
    this.#setsInterface = new Set(this.#interfaceRules.flatMap((r) => r.actions.map((a) => a.target)))
  }

  apply(batch: FlowBatch, rows: number, context: EnrichContext): void {
    if (this.#exporterRules.length === 0 && this.#interfaceRules.length === 0) return
    batchStrings.prepare(batch)
    if (batchStrings.epoch !== this.#epoch) {
      // The cached results' string ids are from before: classify again.
      this.#epoch = batchStrings.epoch
      this.#exporters.clear()
      this.#interfaces.clear()
    }
    const gen = ++generation
    const strings = batch.strings
    const addresses = batch.view('ExporterAddress')
    const words = addresses === undefined ? undefined : addressWords(addresses)
    const names = batch.view('ExporterName')
    const attributeColumns = exporterColumns.map((c) => batch.view(c))
    const writeExporter = exporterColumns.map((c, i) => (this.#setsExporter[i] ? batch.stringIndexes(c) : undefined))
    const drop = context.drop
    const classifyInterfaces = this.#interfaceRules.length > 0
    const sideArrays: SideArrays[] = sides.map((s) => ({
      index: batch.view(s.index),
      name: batch.view(s.name),
      description: batch.view(s.description),
      speed: batch.view(s.speed),
      provider: this.#setsInterface.has('provider') ? batch.stringIndexes(s.provider) : undefined,
      connectivity: this.#setsInterface.has('connectivity') ? batch.stringIndexes(s.connectivity) : undefined,
      boundary: this.#setsInterface.has('boundary') ? batch.u8(s.boundary) : undefined,
      rename: this.#setsInterface.has('name') ? batch.stringIndexes(s.name) : undefined,
      redescribe: this.#setsInterface.has('description') ? batch.stringIndexes(s.description) : undefined,
    }))
    const seen = this.#seen
    const counts = this.#counts
    if (this.#rejectedRows.length < rows) this.#rejectedRows = new Uint8Array(Math.max(rows, 2 * this.#rejectedRows.length))
    // Batches come per exporter: rows are taken in runs sharing the exporter inputs (as read
    // before this stage wrote any exporter column), classified and written run by run.
    for (let start = 0; start < rows; ) {
      seen.remember(start, addresses, names, attributeColumns)
      const exporter = this.#exporter(strings, addresses, names, attributeColumns, start)
      let end = start + 1
      while (end < rows && seen.matches(end, addresses, words, names, attributeColumns)) end++
      counts.exporterHits += end - start - 1
      if (exporter.rejected) {
        drop.fill(DropReason.rejected, start, end)
        counts.rejectedExporter += end - start
        start = end
        continue
      }
      if (exporter.generation !== gen) {
        for (let i = 0; i < exporterTargets.length; i++) exporter.indexes[i] = batchStrings.index(exporter.ids[i]!)
        exporter.generation = gen
      }
      for (let i = 0; i < writeExporter.length; i++) {
        const column = writeExporter[i]
        if (column === undefined) continue
        const index = exporter.indexes[i]!
        for (let r = start; r < end; r++) if (column[r] === 0) column[r] = index
      }
      if (classifyInterfaces) {
        // A row an interface rejects is not classified further (its other side skipped).
        this.#rejectedRows.fill(0, start, end)
        for (let s = 0; s < 2; s++) this.#interfacesOfRun(sideArrays[s]!, exporter, strings, start, end, gen, drop)
      }
      start = end
    }
  }

  /**
   * Classifies one side's interfaces over rows [start, end) of one exporter and writes the
   * results. Per row, the memo (by ifIndex, for this run and side) answers when the row's inputs
   * are the previous ones of its interface: typed-array reads only, no object.
   */
  #interfacesOfRun(a: SideArrays, exporter: ExporterResult, strings: readonly string[], start: number, end: number, gen: number, drop: Uint8Array): void {
    const memo = this.#memo
    let stamp = ++this.#memoStamp
    if (stamp > 0x3fffffff) {
      // Stamps would wrap: forget every memo entry instead.
      memo.fill(0)
      stamp = this.#memoStamp = 1
    }
    const zeros = this.#zeros(end)
    const indexes = a.index ?? zeros
    const names = a.name ?? zeros
    const descriptions = a.description ?? zeros
    const speeds = a.speed ?? zeros
    const rejectedRows = this.#rejectedRows
    let hits = 0
    let rejected = 0
    for (let r = start; r < end; r++) {
      if (rejectedRows[r] !== 0) continue
      const ifIndex = indexes[r]!
      const nameIdx = names[r]!
      const descIdx = descriptions[r]!
      if (ifIndex === 0 && nameIdx === 0 && descIdx === 0) continue
      const speed = speeds[r]!
      // ifIndexes beyond the dense range share the last memo entry, filled anew on every row.
      const m = (ifIndex < DENSE_IFINDEX ? ifIndex : DENSE_IFINDEX) * MEMO_WORDS
      if (ifIndex < DENSE_IFINDEX && memo[m] === stamp && memo[m + 1] === nameIdx && memo[m + 2] === descIdx && memo[m + 3] === speed) hits++
      else {
        const entry = ifIndex < DENSE_IFINDEX ? (ifIndex < exporter.dense.length ? exporter.dense[ifIndex] : undefined) : exporter.sparse.get(ifIndex)
        let result: InterfaceResult
        if (entry !== undefined && entry.generation === gen && entry.nameIndex === nameIdx && entry.descriptionIndex === descIdx && entry.speed === speed) {
          result = entry.result
          hits++
        } else result = this.#interfaceEntry(exporter, entry, ifIndex, strings, nameIdx, descIdx, speed, gen)
        // A rejecting result writes nothing: its strings are not added to the batch.
        if (!result.rejected && result.generation !== gen) {
          for (let i = 0; i < 4; i++) result.indexes[i] = batchStrings.index(result.ids[i]!)
          result.generation = gen
        }
        memo[m] = stamp
        memo[m + 1] = nameIdx
        memo[m + 2] = descIdx
        memo[m + 3] = speed
        memo[m + 4] = result.indexes[0]!
        memo[m + 5] = result.indexes[1]!
        memo[m + 6] = result.indexes[2]!
        memo[m + 7] = result.indexes[3]!
        memo[m + 8] = result.boundary | (result.rejected ? REJECTS : 0) | (result.name !== undefined ? RENAMES : 0) | (result.description !== undefined ? REDESCRIBES : 0)
      }
      const flags = memo[m + 8]!
      if ((flags & REJECTS) !== 0) {
        drop[r] = DropReason.rejected
        rejectedRows[r] = 1
        rejected++
        continue
      }
      if (a.provider !== undefined && a.provider[r] === 0) a.provider[r] = memo[m + 4]!
      if (a.connectivity !== undefined && a.connectivity[r] === 0) a.connectivity[r] = memo[m + 5]!
      if (a.boundary !== undefined && a.boundary[r] === 0) a.boundary[r] = flags & BOUNDARY_MASK
      if (a.rename !== undefined && (flags & RENAMES) !== 0) a.rename[r] = memo[m + 6]!
      if (a.redescribe !== undefined && (flags & REDESCRIBES) !== 0) a.redescribe[r] = memo[m + 7]!
    }
    this.#counts.interfaceHits += hits
    this.#counts.rejectedInterface += rejected
  }

  /** A zeroed array of at least `rows` entries, standing for an absent input column. */
  #zeros(rows: number): Uint32Array {
    if (this.#zeroColumn.length < rows) this.#zeroColumn = new Uint32Array(Math.max(rows, 2 * this.#zeroColumn.length))
    return this.#zeroColumn
  }

  /** An interface's result when the exporter's entry for it is from another batch or other inputs. */
  #interfaceEntry(
    exporter: ExporterResult,
    entry: InterfaceEntry | undefined,
    ifIndex: number,
    strings: readonly string[],
    nameIndex: number,
    descriptionIndex: number,
    speed: number,
    gen: number,
  ): InterfaceResult {
    const name = strings[nameIndex]!
    const description = strings[descriptionIndex]!
    if (entry !== undefined && entry.speed === speed && entry.name === name && entry.description === description) {
      this.#counts.interfaceHits++
    } else {
      const result = this.#interface(exporter, ifIndex, name, description, speed)
      if (entry === undefined) {
        entry = { generation: 0, nameIndex: 0, descriptionIndex: 0, speed, name, description, result }
        if (ifIndex < DENSE_IFINDEX) {
          while (exporter.dense.length <= ifIndex) exporter.dense.push(undefined)
          exporter.dense[ifIndex] = entry
        } else exporter.sparse.set(ifIndex, entry)
      }
      entry.speed = speed
      entry.name = name
      entry.description = description
      entry.result = result
    }
    entry.generation = gen
    entry.nameIndex = nameIndex
    entry.descriptionIndex = descriptionIndex
    return entry.result
  }

  #exporter(
    strings: readonly string[],
    addresses: Uint8Array | undefined,
    names: Uint32Array | undefined,
    attributeColumns: (Uint32Array | undefined)[],
    r: number,
  ): ExporterResult {
    const address = addresses === undefined ? ZERO_ADDRESS : addresses.subarray(r * 16, r * 16 + 16)
    const name = names === undefined ? '' : strings[names[r]!]!
    const attributes = attributeColumns.map((c) => (c === undefined ? '' : strings[c[r]!]!))
    const key = `${formatIP(address)}\u0000${name}\u0000${attributes.join('\u0000')}`
    const cached = this.#exporters.get(key)
    if (cached !== undefined) {
      this.#counts.exporterHits++
      return cached
    }
    this.#counts.exporterMisses++
    const values = this.#values
    values[0] = name
    values[1] = address
    for (let i = 0; i < 5; i++) values[2 + i] = attributes[i]!
    const outcome = classify(this.#exporterRules, values)
    const classified = exporterTargets.map((t) => outcome.values.get(t) ?? '')
    const result: ExporterResult = {
      id: this.#nextId++,
      rejected: outcome.rejected,
      attributes: attributes.map((a, i) => (a !== '' ? a : classified[i]!)),
      name,
      address: address.slice(),
      classified,
      ids: Uint32Array.from(classified, (c) => batchStrings.id(c)),
      generation: 0,
      indexes: new Uint32Array(exporterTargets.length),
      dense: [],
      sparse: new Map(),
    }
    if (this.#exporters.size >= this.#cacheSize) this.#exporters.clear()
    this.#exporters.set(key, result)
    return result
  }

  #interface(exporter: ExporterResult, index: number, name: string, description: string, speed: number): InterfaceResult {
    const key = `${exporter.id}\u0000${index}\u0000${speed}\u0000${name}\u0000${description}`
    const cached = this.#interfaces.get(key)
    if (cached !== undefined) {
      this.#counts.interfaceHits++
      return cached
    }
    this.#counts.interfaceMisses++
    const values = this.#values
    values[0] = exporter.name
    values[1] = exporter.address
    for (let i = 0; i < 5; i++) values[2 + i] = exporter.attributes[i]!
    values[7] = name
    values[8] = description
    values[9] = speed
    values[10] = index
    const outcome = classify(this.#interfaceRules, values)
    const provider = outcome.values.get('provider') ?? ''
    const connectivity = outcome.values.get('connectivity') ?? ''
    const rename = outcome.values.get('name')
    const redescribe = outcome.values.get('description')
    const result: InterfaceResult = {
      rejected: outcome.rejected,
      provider,
      connectivity,
      boundary: BOUNDARY[outcome.values.get('boundary') ?? ''] ?? 0,
      name: rename,
      description: redescribe,
      ids: Uint32Array.of(batchStrings.id(provider), batchStrings.id(connectivity), batchStrings.id(rename ?? ''), batchStrings.id(redescribe ?? '')),
      generation: 0,
      indexes: new Uint32Array(4),
    }
    if (this.#interfaces.size >= this.#cacheSize) {
      this.#interfaces.clear()
      // The entries per exporter hold results too: the size bound is for both.
      for (const e of this.#exporters.values()) {
        e.dense.length = 0
        e.sparse.clear()
      }
    }
    this.#interfaces.set(key, result)
    return result
  }

  counts(): Readonly<Record<string, number>> {
    return { ...this.#counts }
  }
}

/** The exporter inputs of the last row classified: address, name and attribute string indexes. */
class ExporterInputs {
  readonly #address = new Uint8Array(16)
  /** The address as native-endian words, compared with an aligned column's words. */
  readonly #words = new Uint32Array(this.#address.buffer)
  readonly #indexes = new Uint32Array(1 + exporterColumns.length)

  remember(r: number, addresses: Uint8Array | undefined, names: Uint32Array | undefined, attributeColumns: (Uint32Array | undefined)[]): void {
    if (addresses !== undefined) this.#address.set(addresses.subarray(r * 16, r * 16 + 16))
    this.#indexes[0] = names === undefined ? 0 : names[r]!
    for (let i = 0; i < attributeColumns.length; i++) {
      const c = attributeColumns[i]
      this.#indexes[1 + i] = c === undefined ? 0 : c[r]!
    }
  }

  matches(
    r: number,
    addresses: Uint8Array | undefined,
    words: Uint32Array | undefined,
    names: Uint32Array | undefined,
    attributeColumns: (Uint32Array | undefined)[],
  ): boolean {
    if (words !== undefined) {
      const a = this.#words
      const w = r * 4
      if (words[w] !== a[0] || words[w + 1] !== a[1] || words[w + 2] !== a[2] || words[w + 3] !== a[3]) return false
    } else if (addresses !== undefined) {
      const a = this.#address
      const b = r * 16
      for (let i = 15; i >= 0; i--) if (a[i] !== addresses[b + i]) return false
    }
    const indexes = this.#indexes
    if (names !== undefined && names[r] !== indexes[0]) return false
    for (let i = 0; i < attributeColumns.length; i++) {
      const c = attributeColumns[i]
      if (c !== undefined && c[r] !== indexes[1 + i]) return false
    }
    return true
  }
}

/** Config schema of the rules; compiling them at decode time gives the rule's positioned error. */
export const ClassificationConfig = Schema.Struct({
  exporterRules: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }).annotations({
    description:
      'ordered rules over Exporter.Name/Address/Group/Role/Site/Region/Tenant setting group, role, site, region, tenant or reject, e.g. `Exporter.Name matches "^(\\w+)-edge" -> site = $1, role = "edge"`',
  }),
  interfaceRules: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }).annotations({
    description:
      'ordered rules over exporter fields and Interface.Name/Description/Speed/Index setting provider, connectivity, boundary (external/internal), name, description or reject, e.g. `Interface.Description matches "^Transit: (\\S+)" -> provider = $1, connectivity = "transit", boundary = external`',
  }),
  cacheSize: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.positive()), { default: () => 100_000 }).annotations({
    description: 'classification results cached per exporter and per interface (each) before the cache restarts empty',
  }),
}).pipe(
  Schema.filter((c) => {
    try {
      compileRules(exporterDialect, c.exporterRules)
      compileRules(interfaceDialect, c.interfaceRules)
      return true
    } catch (e) {
      if (e instanceof RuleError) return { path: [e.list === 'exporter' ? 'exporterRules' : 'interfaceRules', e.rule], message: e.message }
      throw e
    }
  }),
)
export type ClassificationConfig = Schema.Schema.Type<typeof ClassificationConfig>
