// The metadata chain: providers in priority order merged field by field, answers cached per
// exporter and ifIndex until a provider changes, written into a batch's Exporter*/InIf*/OutIf*
// columns with the strings interned once per batch, and the unknown-metadata policy applied.
import { type FlowBatch, type StringColumn, exporterStateKey, formatIP } from '@flowbus/bus-schemas'
import { addressWords } from '../networks/address-cache.js'
import { batchStrings } from '../strings.js'
import {
  type ExporterMetadata,
  type InterfaceMetadata,
  type MetadataProvider,
  emptyExporter,
  emptyInterface,
  exporterFields,
  interfaceFields,
} from './types.js'

export type UnknownPolicy = 'pass' | 'pass-empty' | 'hold' | 'drop'

/** Non-zero values of the drop array the chain fills: why metadata dropped the row. */
export const METADATA_DROP = 1

export interface ResolvedInterface {
  readonly ifIndex: number
  readonly meta: InterfaceMetadata
  /** A provider (not the defaults) gave a name. */
  readonly known: boolean
  /** Batch stamp of `ordinal`. */
  stamp: number
  /** Its position among the interfaces of the current batch (the chain's per-batch arrays). */
  ordinal: number
  /** batchStrings ids of the name written (the ifIndex for an unnamed unknown one under pass/hold), description, provider, connectivity. */
  readonly ids: Uint32Array
}

export interface ResolvedExporter {
  readonly address: Uint8Array
  readonly key: string
  readonly meta: ExporterMetadata
  readonly known: boolean
  readonly interfaces: Map<number, ResolvedInterface>
  /** The same for ifIndexes below DENSE_IFINDEX, by ifIndex: no hashing per flow. */
  readonly dense: (ResolvedInterface | undefined)[]
  /** `address` as four native-endian words, compared with aligned address columns. */
  readonly words: Uint32Array
  stamp: number
  /** Its position among the exporters of the current batch. */
  ordinal: number
  /** batchStrings ids of name, group, role, site, region, tenant. */
  readonly ids: Uint32Array
}

/** ifIndexes below this are found in an array per exporter, the others in its Map. */
const DENSE_IFINDEX = 4096

/** What one batch met, for counters and metadata requests. */
export interface MetadataTally {
  unknownExporterFlows: number
  unknownInterfaceFlows: number
  droppedFlows: number
}

export interface UnknownEntity {
  readonly address: Uint8Array
  readonly key: string
  /** 0: the exporter itself. */
  readonly ifIndex: number
}

const sameAddress = (column: Uint8Array, offset: number, address: Uint8Array): boolean => {
  for (let i = 15; i >= 0; i--) if (column[offset + i] !== address[i]) return false
  return true
}

/** Whether some row's value is non-zero (values by ordinal, -1 none): an absent column is allocated only then. */
function anyNonZero(values: Uint32Array | Uint8Array, count: number, ordinals: Int32Array, rows: number): boolean {
  let some = false
  for (let o = 0; o < count && !some; o++) some = values[o] !== 0
  if (!some) return false
  for (let r = 0; r < rows; r++) {
    const o = ordinals[r]!
    if (o >= 0 && values[o] !== 0) return true
  }
  return false
}

const exporterColumns = ['ExporterName', 'ExporterGroup', 'ExporterRole', 'ExporterSite', 'ExporterRegion', 'ExporterTenant'] as const
const sideColumns = [
  { index: 'InIf', name: 'InIfName', description: 'InIfDescription', provider: 'InIfProvider', connectivity: 'InIfConnectivity', speed: 'InIfSpeed', boundary: 'InIfBoundary' },
  { index: 'OutIf', name: 'OutIfName', description: 'OutIfDescription', provider: 'OutIfProvider', connectivity: 'OutIfConnectivity', speed: 'OutIfSpeed', boundary: 'OutIfBoundary' },
] as const

/**
 * Per-batch scratch of `apply`, reused: which exporter and interface each row resolved to (as
 * ordinals, -1 none), and per ordinal the values to write, the strings interned once per batch.
 */
class Scratch {
  exporterOf: Int32Array = new Int32Array(0)
  interfaceOf: [Int32Array, Int32Array] = [new Int32Array(0), new Int32Array(0)]
  unknownInterface: Uint8Array = new Uint8Array(0)
  /** Per exporter ordinal, one array per exporterColumns entry. */
  exporterValues: Uint32Array[] = exporterColumns.map(() => new Uint32Array(8))
  // Per interface ordinal.
  names: Uint32Array = new Uint32Array(64)
  descriptions: Uint32Array = new Uint32Array(64)
  providers: Uint32Array = new Uint32Array(64)
  connectivities: Uint32Array = new Uint32Array(64)
  speeds: Uint32Array = new Uint32Array(64)
  boundaries: Uint8Array = new Uint8Array(64)
  known: Uint8Array = new Uint8Array(64)
  /** Where rows write the values of a column that stays absent. */
  sink: Uint32Array = new Uint32Array(0)
  sink8: Uint8Array = new Uint8Array(0)

  /** Room for a batch of `rows` rows. */
  rows(rows: number): void {
    if (this.exporterOf.length >= rows) return
    const size = Math.max(rows, this.exporterOf.length * 2)
    this.exporterOf = new Int32Array(size)
    this.interfaceOf = [new Int32Array(size), new Int32Array(size)]
    this.unknownInterface = new Uint8Array(size)
    this.sink = new Uint32Array(size)
    this.sink8 = new Uint8Array(size)
  }

  /** Room for `count` exporter ordinals, keeping the values set so far. */
  exporters(count: number): void {
    if (this.exporterValues[0]!.length < count) this.exporterValues = this.exporterValues.map((a) => grown(a, count))
  }

  /** Room for `count` interface ordinals, keeping the values set so far. */
  interfaces(count: number): void {
    if (this.names.length >= count) return
    this.names = grown(this.names, count)
    this.descriptions = grown(this.descriptions, count)
    this.providers = grown(this.providers, count)
    this.connectivities = grown(this.connectivities, count)
    this.speeds = grown(this.speeds, count)
    this.boundaries = grown(this.boundaries, count)
    this.known = grown(this.known, count)
  }
}

/** A copy of a at least twice as long and of `size`. */
function grown<A extends Uint32Array | Uint8Array>(a: A, size: number): A {
  const b = new (a.constructor as new (n: number) => A)(Math.max(size, a.length * 2))
  b.set(a)
  return b
}

export class MetadataChain {
  readonly #providers: readonly MetadataProvider[]
  readonly #defaults: { exporter: Partial<ExporterMetadata>; iface: Partial<InterfaceMetadata> }
  readonly #exporters = new Map<string, ResolvedExporter>()
  #generation = -1
  #stamp = 0
  /** The batchStrings epoch of the ids of the resolved exporters and interfaces. */
  #epoch = batchStrings.epoch
  readonly #scratch = new Scratch()

  constructor(
    providers: readonly MetadataProvider[],
    defaults: { exporter: Partial<ExporterMetadata>; iface: Partial<InterfaceMetadata> },
    readonly policy: UnknownPolicy,
  ) {
    this.#providers = providers
    this.#defaults = defaults
  }

  /** Sum of the providers' generations: any change drops every cached answer. */
  #currentGeneration(): number {
    let g = 0
    for (const p of this.#providers) g += p.generation
    return g
  }

  #checkGeneration(): void {
    const g = this.#currentGeneration()
    if (g !== this.#generation) {
      this.#exporters.clear()
      this.#generation = g
    }
  }

  /** The exporter's merged metadata (cached); address is 16 bytes. */
  exporter(address: Uint8Array): ResolvedExporter {
    this.#checkGeneration()
    const key = exporterStateKey(address)
    let resolved = this.#exporters.get(key)
    if (resolved) return resolved
    const meta = emptyExporter()
    for (const provider of this.#providers) {
      const found = provider.exporter(address, key)
      if (found) for (const f of exporterFields) if (meta[f] === '' && found[f]) meta[f] = found[f]
    }
    for (const f of exporterFields) if (meta[f] === '' && this.#defaults.exporter[f]) meta[f] = this.#defaults.exporter[f]
    // Named by a provider or by the configured default: known. Otherwise the policy decides.
    const known = meta.name !== ''
    if (!known && (this.policy === 'pass' || this.policy === 'hold')) meta.name = formatIP(address)
    const copy = address.slice()
    const ids = Uint32Array.from(exporterFields, (f) => batchStrings.id(meta[f]))
    resolved = { address: copy, key, meta, known, interfaces: new Map(), dense: [], words: new Uint32Array(copy.buffer, copy.byteOffset, 4), stamp: -1, ordinal: 0, ids }
    this.#exporters.set(key, resolved)
    return resolved
  }

  /** The interface's merged metadata (cached on the exporter). */
  iface(exporter: ResolvedExporter, ifIndex: number): ResolvedInterface {
    let resolved = exporter.interfaces.get(ifIndex)
    if (resolved) return resolved
    const meta = emptyInterface()
    for (const provider of this.#providers) {
      const found = provider.iface(exporter.address, exporter.key, ifIndex)
      if (!found) continue
      for (const f of interfaceFields) {
        const value = found[f]
        if (meta[f] === '' || meta[f] === 0) if (value !== undefined && value !== '' && value !== 0) (meta as unknown as Record<string, unknown>)[f] = value
      }
    }
    const known = meta.name !== '' || this.#defaults.iface.name !== undefined
    for (const f of interfaceFields) {
      const value = this.#defaults.iface[f]
      if ((meta[f] === '' || meta[f] === 0) && value !== undefined) (meta as unknown as Record<string, unknown>)[f] = value
    }
    // Unknown and unnamed under pass/hold: the ifIndex itself is the name, never an empty one.
    const name = !known && meta.name === '' && (this.policy === 'pass' || this.policy === 'hold') ? String(ifIndex) : meta.name
    const ids = Uint32Array.of(batchStrings.id(name), batchStrings.id(meta.description), batchStrings.id(meta.provider), batchStrings.id(meta.connectivity))
    resolved = { ifIndex, meta, known, stamp: -1, ordinal: 0, ids }
    exporter.interfaces.set(ifIndex, resolved)
    return resolved
  }

  /** `iface` through the exporter's array for the usual small ifIndexes. */
  #ifaceOf(exporter: ResolvedExporter, ifIndex: number): ResolvedInterface {
    if (ifIndex >= DENSE_IFINDEX) return this.iface(exporter, ifIndex)
    const dense = exporter.dense
    const found = ifIndex < dense.length ? dense[ifIndex] : undefined
    if (found !== undefined) return found
    const resolved = this.iface(exporter, ifIndex)
    while (dense.length <= ifIndex) dense.push(undefined)
    dense[ifIndex] = resolved
    return resolved
  }

  /** Exporters and interfaces of the rows that no provider names (each once), without writing anything. */
  unknownIn(batch: FlowBatch, rows: number, fallbackAddress: Uint8Array): UnknownEntity[] {
    const found = new Map<string, UnknownEntity>()
    this.#eachRow(batch, rows, fallbackAddress, (exporter, inIf, outIf) => {
      if (!exporter.known && !found.has(exporter.key)) found.set(exporter.key, { address: exporter.address, key: exporter.key, ifIndex: 0 })
      for (const ifIndex of [inIf, outIf]) {
        if (ifIndex === 0) continue
        const id = `${exporter.key}.${ifIndex}`
        if (!found.has(id) && !this.iface(exporter, ifIndex).known) found.set(id, { address: exporter.address, key: exporter.key, ifIndex })
      }
    })
    return [...found.values()]
  }

  #eachRow(batch: FlowBatch, rows: number, fallbackAddress: Uint8Array, visit: (e: ResolvedExporter, inIf: number, outIf: number) => void): void {
    const addresses = batch.view('ExporterAddress')
    const inIfs = batch.view('InIf')
    const outIfs = batch.view('OutIf')
    let current: ResolvedExporter | undefined
    for (let r = 0; r < rows; r++) {
      if (current === undefined || (addresses !== undefined && !sameAddress(addresses, r * 16, current.address))) {
        current = this.exporter(addresses !== undefined ? addresses.subarray(r * 16, r * 16 + 16) : fallbackAddress)
      }
      visit(current, inIfs?.[r] ?? 0, outIfs?.[r] ?? 0)
    }
  }

  /**
   * Writes the metadata columns of rows [0, rows). `drop[r]` is set to METADATA_DROP for rows
   * the drop policy removes; `onUnknown` is called once per batch for each exporter or interface
   * no provider names. Flows keep interface names they carry (NetFlow options data) when no
   * provider has one.
   *
   * Columns are allocated only when some row gets a non-empty value: fields no provider sets
   * cost nothing in memory, on the wire or in the JSON export (absent reads as empty). A column
   * the flow already has is written in full.
   */
  apply(batch: FlowBatch, rows: number, fallbackAddress: Uint8Array, drop: Uint8Array, onUnknown: (entity: UnknownEntity) => void): MetadataTally {
    const stamp = ++this.#stamp
    batchStrings.prepare(batch)
    if (batchStrings.epoch !== this.#epoch) {
      this.#epoch = batchStrings.epoch
      this.#exporters.clear()
    }
    const tally: MetadataTally = { unknownExporterFlows: 0, unknownInterfaceFlows: 0, droppedFlows: 0 }
    const dropUnknown = this.policy === 'drop'
    const scratch = this.#scratch
    scratch.rows(rows)
    const exporterOf = scratch.exporterOf
    const inOf = scratch.interfaceOf[0]
    const outOf = scratch.interfaceOf[1]
    const inIfs = batch.view('InIf')
    const outIfs = batch.view('OutIf')
    const addresses = batch.view('ExporterAddress')
    const words = addresses === undefined ? undefined : addressWords(addresses)
    this.#exporterCount = 0
    this.#interfaceCount = 0
    this.#anyUnknownInterface = false
    // First the exporter and interfaces of every row, in row order (strings are interned and
    // unknown entities reported on first sight); then the columns.
    let current: ResolvedExporter | undefined
    let a0 = 0
    let a1 = 0
    let a2 = 0
    let a3 = 0
    for (let r = 0; r < rows; r++) {
      // Batches come per exporter: compare the address with the last one, as words when aligned.
      if (
        current === undefined ||
        (addresses !== undefined &&
          (words !== undefined
            ? words[4 * r] !== a0 || words[4 * r + 1] !== a1 || words[4 * r + 2] !== a2 || words[4 * r + 3] !== a3
            : !sameAddress(addresses, r * 16, current.address)))
      ) {
        current = this.exporter(addresses !== undefined ? addresses.subarray(r * 16, r * 16 + 16) : fallbackAddress)
        if (current.stamp !== stamp) this.#firstSight(current, stamp, onUnknown)
        a0 = current.words[0]!
        a1 = current.words[1]!
        a2 = current.words[2]!
        a3 = current.words[3]!
      }
      if (!current.known) {
        tally.unknownExporterFlows++
        if (dropUnknown) {
          drop[r] = METADATA_DROP
          tally.droppedFlows++
          exporterOf[r] = -1
          inOf[r] = -1
          outOf[r] = -1
          continue
        }
      }
      exporterOf[r] = current.ordinal
      const inIf = inIfs === undefined ? 0 : inIfs[r]!
      inOf[r] = inIf === 0 ? -1 : this.#ordinalOf(current, inIf, stamp, onUnknown)
      const outIf = outIfs === undefined ? 0 : outIfs[r]!
      outOf[r] = outIf === 0 ? -1 : this.#ordinalOf(current, outIf, stamp, onUnknown)
    }
    this.#writeExporters(batch, rows)
    const unknownInterface = scratch.unknownInterface
    const anyUnknown = this.#anyUnknownInterface
    if (anyUnknown) unknownInterface.fill(0, 0, rows)
    for (let s = 0; s < 2; s++) {
      const c = sideColumns[s]!
      const ordinals = s === 0 ? inOf : outOf
      this.#writeInterfaces(batch, rows, ordinals, c, !anyUnknown)
      if (anyUnknown) this.#names(batch, rows, ordinals, c.name, c.description, unknownInterface)
    }
    if (anyUnknown) {
      for (let r = 0; r < rows; r++) {
        if (unknownInterface[r] === 0) continue
        tally.unknownInterfaceFlows++
        if (dropUnknown) {
          drop[r] = METADATA_DROP
          tally.droppedFlows++
        }
      }
    }
    return tally
  }

  #exporterCount = 0
  #interfaceCount = 0
  #anyUnknownInterface = false

  /** An exporter's first row in the batch: its ordinal, its strings interned, reported if unknown. */
  #firstSight(exporter: ResolvedExporter, stamp: number, onUnknown: (entity: UnknownEntity) => void): void {
    const scratch = this.#scratch
    exporter.stamp = stamp
    const o = (exporter.ordinal = this.#exporterCount++)
    scratch.exporters(this.#exporterCount)
    const m = exporter.meta
    const values = scratch.exporterValues
    for (let f = 0; f < exporterColumns.length; f++) values[f]![o] = batchStrings.index(exporter.ids[f]!)
    if (!exporter.known) onUnknown({ address: exporter.address, key: exporter.key, ifIndex: 0 })
  }

  /** The batch ordinal of the exporter's interface; on its first row, its values are set and it is reported if unknown. */
  #ordinalOf(exporter: ResolvedExporter, ifIndex: number, stamp: number, onUnknown: (entity: UnknownEntity) => void): number {
    const resolved = this.#ifaceOf(exporter, ifIndex)
    if (resolved.stamp === stamp) return resolved.ordinal
    const scratch = this.#scratch
    resolved.stamp = stamp
    const o = (resolved.ordinal = this.#interfaceCount++)
    scratch.interfaces(this.#interfaceCount)
    const m = resolved.meta
    const ids = resolved.ids
    scratch.names[o] = batchStrings.index(ids[0]!)
    scratch.descriptions[o] = batchStrings.index(ids[1]!)
    scratch.providers[o] = batchStrings.index(ids[2]!)
    scratch.connectivities[o] = batchStrings.index(ids[3]!)
    scratch.speeds[o] = m.speed
    scratch.boundaries[o] = m.boundary
    scratch.known[o] = resolved.known ? 1 : 0
    if (!resolved.known) {
      this.#anyUnknownInterface = true
      onUnknown({ address: exporter.address, key: exporter.key, ifIndex })
    }
    return o
  }

  /** The exporter columns, by runs of rows of the same exporter (a whole batch, usually). */
  #writeExporters(batch: FlowBatch, rows: number): void {
    const exporterOf = this.#scratch.exporterOf
    const count = this.#exporterCount
    for (let f = 0; f < exporterColumns.length; f++) {
      const values = this.#scratch.exporterValues[f]!
      const name = exporterColumns[f]!
      const column = batch.view(name) ?? (anyNonZero(values, count, exporterOf, rows) ? batch.stringIndexes(name) : undefined)
      if (column === undefined) continue
      for (let r = 0; r < rows; ) {
        const o = exporterOf[r]!
        let end = r + 1
        while (end < rows && exporterOf[end] === o) end++
        if (o >= 0) column.fill(values[o]!, r, end)
        r = end
      }
    }
  }

  /** One side's interface columns; name and description too when `names` (no unknown interface). */
  #writeInterfaces(batch: FlowBatch, rows: number, ordinals: Int32Array, c: (typeof sideColumns)[number], names: boolean): void {
    const scratch = this.#scratch
    const count = this.#interfaceCount
    const sink = scratch.sink
    // Columns no row sets and the flow lacks stay absent: rows write into a scratch array instead.
    const needed = (values: Uint32Array | Uint8Array) => anyNonZero(values, count, ordinals, rows)
    const text = (column: StringColumn, values: Uint32Array) => batch.view(column) ?? (needed(values) ? batch.stringIndexes(column) : sink)
    const name = names ? text(c.name, scratch.names) : sink
    const description = names ? text(c.description, scratch.descriptions) : sink
    const provider = text(c.provider, scratch.providers)
    const connectivity = text(c.connectivity, scratch.connectivities)
    const speed = batch.view(c.speed) ?? (needed(scratch.speeds) ? batch.u32(c.speed) : sink)
    const boundary = batch.view(c.boundary) ?? (needed(scratch.boundaries) ? batch.u8(c.boundary) : scratch.sink8)
    const { names: nameValues, descriptions, providers, connectivities, speeds, boundaries } = scratch
    for (let r = 0; r < rows; r++) {
      const o = ordinals[r]!
      if (o < 0) continue
      name[r] = nameValues[o]!
      description[r] = descriptions[o]!
      provider[r] = providers[o]!
      connectivity[r] = connectivities[o]!
      speed[r] = speeds[o]!
      boundary[r] = boundaries[o]!
    }
  }

  /**
   * Interface name and description of one side when some interface is unknown: flows keep the
   * name they carry (options data) for an interface no provider names, and then their own
   * description too when they have one; rows left with an unknown interface are marked.
   */
  #names(batch: FlowBatch, rows: number, ordinals: Int32Array, nameColumn: StringColumn, descriptionColumn: StringColumn, unknown: Uint8Array): void {
    const { names: nameValues, descriptions: descriptionValues, known } = this.#scratch
    let names = batch.view(nameColumn)
    let descriptions = batch.view(descriptionColumn)
    for (let r = 0; r < rows; r++) {
      const o = ordinals[r]!
      if (o < 0) continue
      let name = nameValues[o]!
      let description = descriptionValues[o]!
      if (known[o] === 0) {
        const carried = names === undefined ? 0 : names[r]!
        if (carried !== 0) {
          name = carried
          if (descriptions !== undefined && descriptions[r] !== 0) description = descriptions[r]!
        } else unknown[r] = 1
      }
      if (names !== undefined || name !== 0) (names ??= batch.stringIndexes(nameColumn))[r] = name
      if (descriptions !== undefined || description !== 0) (descriptions ??= batch.stringIndexes(descriptionColumn))[r] = description
    }
  }
}
