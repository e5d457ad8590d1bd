// What the enricher knows about exporters and interfaces, and the provider contract the chain
// (static config, remote HTTP sources, the snmp-poller's buckets) is made of.
import { InterfaceBoundary } from '@flowbus/bus-schemas'

/** Exporter columns: ExporterName, ExporterGroup, ExporterRole, ExporterSite, ExporterRegion, ExporterTenant. */
export interface ExporterMetadata {
  name: string
  group: string
  role: string
  site: string
  region: string
  tenant: string
}

/** Interface columns: <In|Out>IfName, …Description, …Speed (Mbps), …Provider, …Connectivity, …Boundary. */
export interface InterfaceMetadata {
  name: string
  description: string
  speed: number
  provider: string
  connectivity: string
  /** 0 undefined, 1 external, 2 internal (InterfaceBoundary). */
  boundary: number
}

export const exporterFields = ['name', 'group', 'role', 'site', 'region', 'tenant'] as const
export const interfaceFields = ['name', 'description', 'speed', 'provider', 'connectivity', 'boundary'] as const

export const emptyExporter = (): ExporterMetadata => ({ name: '', group: '', role: '', site: '', region: '', tenant: '' })
export const emptyInterface = (): InterfaceMetadata => ({ name: '', description: '', speed: 0, provider: '', connectivity: '', boundary: 0 })

/**
 * One source of metadata. Answers are partial: the chain takes each field from the first
 * provider that has it non-empty, so static config can give the site while SNMP gives the name.
 */
export interface MetadataProvider {
  readonly name: string
  /** Bumped whenever the provider's content changes, so resolved answers cached per shard are dropped. */
  readonly generation: number
  /** `key` is exporterStateKey(address). */
  exporter(address: Uint8Array, key: string): Partial<ExporterMetadata> | undefined
  iface(address: Uint8Array, key: string, ifIndex: number): Partial<InterfaceMetadata> | undefined
}

/** `external`/`internal`/`undefined` (config and remote sources) or the enum number → boundary. */
export const parseBoundary = (value: unknown): number | undefined => {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value === 'number' && (value === 0 || value === 1 || value === 2)) return value
  switch (String(value).toLowerCase()) {
    case 'external':
    case '1':
      return InterfaceBoundary.EXTERNAL
    case 'internal':
    case '2':
      return InterfaceBoundary.INTERNAL
    case 'undefined':
    case '0':
      return InterfaceBoundary.UNDEFINED
    default:
      return undefined
  }
}
