// The metadata chain: providers in priority order merged field by field, answers cached per
// exporter and ifIndex until a provider changes, written into a batch's Exporter*/InIf*/OutIf*
// columns with the strings interned once per batch, and the unknown-metadata policy applied.
import { type FlowBatch, type StringColumn, exporterStateKey, formatIP } from '@flowbus/bus-schemas'
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
  /** Batch stamp of `indexes`. */
  stamp: number
  /** Interned name, description, provider, connectivity of the current batch. */
  readonly indexes: Uint32Array
}

export interface ResolvedExporter {
  readonly address: Uint8Array
  readonly key: string
  readonly meta: ExporterMetadata
  readonly known: boolean
  readonly interfaces: Map<number, ResolvedInterface>
  stamp: number
  /** Interned name, group, role, site, region, tenant of the current batch. */
  readonly indexes: Uint32Array
}

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

/** A column allocated on the first non-zero value written (or the flow's own, already there). */
class LazyColumn<A extends Uint32Array | Uint8Array> {
  constructor(
    private data: A | undefined,
    private readonly allocate: () => A,
  ) {}

  set(row: number, value: number): void {
    if (value === 0 && this.data === undefined) return
    this.data ??= this.allocate()
    this.data[row] = value
  }

  get(row: number): number {
    return this.data === undefined ? 0 : this.data[row]!
  }
}

export class MetadataChain {
  readonly #providers: readonly MetadataProvider[]
  readonly #defaults: { exporter: Partial<ExporterMetadata>; iface: Partial<InterfaceMetadata> }
  readonly #exporters = new Map<string, ResolvedExporter>()
  #generation = -1
  #stamp = 0

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
    resolved = { address: address.slice(), key, meta, known, interfaces: new Map(), stamp: -1, indexes: new Uint32Array(6) }
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
    resolved = { ifIndex, meta, known, stamp: -1, indexes: new Uint32Array(4) }
    exporter.interfaces.set(ifIndex, resolved)
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
   */
  apply(batch: FlowBatch, rows: number, fallbackAddress: Uint8Array, drop: Uint8Array, onUnknown: (entity: UnknownEntity) => void): MetadataTally {
    const stamp = ++this.#stamp
    const tally: MetadataTally = { unknownExporterFlows: 0, unknownInterfaceFlows: 0, droppedFlows: 0 }
    const dropUnknown = this.policy === 'drop'
    // Columns are allocated on the first non-empty value: fields no provider sets cost nothing
    // in memory, on the wire or in the JSON export (absent reads as empty). A column the flow
    // already has is written in full.
    const text = (col: StringColumn) => new LazyColumn(batch.view(col), () => batch.stringIndexes(col))
    const exporterColumns = [
      text('ExporterName'),
      text('ExporterGroup'),
      text('ExporterRole'),
      text('ExporterSite'),
      text('ExporterRegion'),
      text('ExporterTenant'),
    ] as const
    const side = (prefix: 'In' | 'Out') => ({
      name: text(`${prefix}IfName`),
      description: text(`${prefix}IfDescription`),
      provider: text(`${prefix}IfProvider`),
      connectivity: text(`${prefix}IfConnectivity`),
      speed: new LazyColumn(batch.view(`${prefix}IfSpeed`), () => batch.u32(`${prefix}IfSpeed`)),
      boundary: new LazyColumn(batch.view(`${prefix}IfBoundary`), () => batch.u8(`${prefix}IfBoundary`)),
    })
    const sides = [side('In'), side('Out')] as const
    const ifColumns = [batch.view('InIf'), batch.view('OutIf')] as const
    const addresses = batch.view('ExporterAddress')
    let current: ResolvedExporter | undefined
    let currentIdx = [0, 0, 0, 0, 0, 0]
    for (let r = 0; r < rows; r++) {
      if (current === undefined || (addresses !== undefined && !sameAddress(addresses, r * 16, current.address))) {
        current = this.exporter(addresses !== undefined ? addresses.subarray(r * 16, r * 16 + 16) : fallbackAddress)
        if (current.stamp !== stamp) {
          current.stamp = stamp
          const m = current.meta
          current.indexes[0] = batch.intern(m.name)
          current.indexes[1] = batch.intern(m.group)
          current.indexes[2] = batch.intern(m.role)
          current.indexes[3] = batch.intern(m.site)
          current.indexes[4] = batch.intern(m.region)
          current.indexes[5] = batch.intern(m.tenant)
          if (!current.known) onUnknown({ address: current.address, key: current.key, ifIndex: 0 })
        }
        currentIdx = Array.from(current.indexes)
      }
      if (!current.known) {
        tally.unknownExporterFlows++
        if (dropUnknown) {
          drop[r] = METADATA_DROP
          tally.droppedFlows++
          continue
        }
      }
      for (let f = 0; f < 6; f++) exporterColumns[f]!.set(r, currentIdx[f]!)
      let unknownInterface = false
      for (let s = 0; s < 2; s++) {
        const ifIndex = ifColumns[s]?.[r] ?? 0
        if (ifIndex === 0) continue
        const cols = sides[s]!
        const resolved = this.iface(current, ifIndex)
        if (resolved.stamp !== stamp) {
          resolved.stamp = stamp
          const m = resolved.meta
          // Unknown and unnamed under pass/hold: the ifIndex itself is the name, never an empty one.
          const fallback = !resolved.known && m.name === '' && (this.policy === 'pass' || this.policy === 'hold')
          resolved.indexes[0] = batch.intern(fallback ? String(ifIndex) : m.name)
          resolved.indexes[1] = batch.intern(m.description)
          resolved.indexes[2] = batch.intern(m.provider)
          resolved.indexes[3] = batch.intern(m.connectivity)
          if (!resolved.known) onUnknown({ address: current.address, key: current.key, ifIndex })
        }
        const carried = cols.name.get(r)
        if (!resolved.known && carried !== 0) {
          // The flow names its interface itself (options data): keep that name and description.
          cols.description.set(r, cols.description.get(r) || resolved.indexes[1]!)
        } else {
          if (!resolved.known) unknownInterface = true
          cols.name.set(r, resolved.indexes[0]!)
          cols.description.set(r, resolved.indexes[1]!)
        }
        cols.provider.set(r, resolved.indexes[2]!)
        cols.connectivity.set(r, resolved.indexes[3]!)
        cols.speed.set(r, resolved.meta.speed)
        cols.boundary.set(r, resolved.meta.boundary)
      }
      if (unknownInterface) {
        tally.unknownInterfaceFlows++
        if (dropUnknown) {
          drop[r] = METADATA_DROP
          tally.droppedFlows++
        }
      }
    }
    return tally
  }
}
