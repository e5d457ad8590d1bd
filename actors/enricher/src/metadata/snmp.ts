// What the snmp-poller publishes, as a metadata provider: the metadata.exporters and
// metadata.interfaces buckets mirrored in memory by a watch; and the coalesced requests for
// exporters and ifIndexes seen in flows without metadata (metadata.requests).
import { type ExporterInfo, type InterfaceInfo, type MetadataRequestBatch } from '@flowbus/bus-schemas'
import { definedOnly } from './table.js'
import type { ExporterMetadata, InterfaceMetadata, MetadataProvider } from './types.js'

const nonEmpty = (s: string): string | undefined => (s === '' ? undefined : s)

export class BucketProvider implements MetadataProvider {
  readonly name = 'snmp'
  generation = 0
  readonly #exporters = new Map<string, Partial<ExporterMetadata>>()
  readonly #interfaces = new Map<string, Partial<InterfaceMetadata>>()

  /** A metadata.exporters entry changed (undefined: deleted); key is exporterStateKey. */
  setExporter(key: string, info: ExporterInfo | undefined): void {
    if (info === undefined) this.#exporters.delete(key)
    else
      this.#exporters.set(
        key,
        definedOnly({
          name: nonEmpty(info.name) ?? nonEmpty(info.sysName),
          group: nonEmpty(info.group),
          role: nonEmpty(info.role),
          site: nonEmpty(info.site),
          region: nonEmpty(info.region),
          tenant: nonEmpty(info.tenant),
        }),
      )
    this.generation++
  }

  /** A metadata.interfaces entry changed; key is interfaceStateKey. */
  setInterface(key: string, info: InterfaceInfo | undefined): void {
    if (info === undefined) this.#interfaces.delete(key)
    else
      this.#interfaces.set(
        key,
        definedOnly({
          name: nonEmpty(info.name),
          description: nonEmpty(info.description),
          speed: info.speed === 0 ? undefined : info.speed,
          provider: nonEmpty(info.provider),
          connectivity: nonEmpty(info.connectivity),
          boundary: info.boundary === 0 ? undefined : info.boundary,
        }),
      )
    this.generation++
  }

  get exporterCount(): number {
    return this.#exporters.size
  }

  get interfaceCount(): number {
    return this.#interfaces.size
  }

  exporter(_address: Uint8Array, key: string): Partial<ExporterMetadata> | undefined {
    return this.#exporters.get(key)
  }

  iface(_address: Uint8Array, key: string, ifIndex: number): Partial<InterfaceMetadata> | undefined {
    return this.#interfaces.get(`${key}.${ifIndex}`)
  }
}

/**
 * Exporters and ifIndexes to ask the snmp-poller about, coalesced between sends; a key asked
 * once is not asked again for `repeatMs` (the poller has it queued or cannot reach it).
 */
export class MetadataRequests {
  readonly #pending = new Map<string, { address: Uint8Array; ifIndexes: Set<number> }>()
  readonly #asked = new Map<string, number>()

  constructor(private readonly repeatMs: number) {}

  /** ifIndex 0: the exporter itself. */
  note(address: Uint8Array, exporterKey: string, ifIndex: number, nowMs: number): void {
    const key = `${exporterKey}.${ifIndex}`
    const last = this.#asked.get(key)
    if (last !== undefined && nowMs - last < this.repeatMs) return
    this.#asked.set(key, nowMs)
    let entry = this.#pending.get(exporterKey)
    if (!entry) this.#pending.set(exporterKey, (entry = { address: address.slice(), ifIndexes: new Set() }))
    if (ifIndex !== 0) entry.ifIndexes.add(ifIndex)
  }

  get pendingExporters(): number {
    return this.#pending.size
  }

  /** Everything noted since the last call, as one message (undefined when nothing is pending). */
  take(nowMs: number): MetadataRequestBatch | undefined {
    if (this.#asked.size > 100_000) for (const [key, at] of this.#asked) if (nowMs - at >= this.repeatMs) this.#asked.delete(key)
    if (this.#pending.size === 0) return undefined
    const requests = [...this.#pending.values()].map((p) => ({ exporterAddress: p.address, ifIndexes: [...p.ifIndexes].sort((a, b) => a - b) }))
    this.#pending.clear()
    return { requests }
  }
}
