// The static metadata provider: exporters by subnet and their interfaces by ifIndex, from the
// configuration file; plus the defaults applied after every provider.
import type { MetadataConfig, StaticExporter } from '../config.js'
import { ExporterTable, TableProvider, definedOnly, parseSubnet } from './table.js'
import { type ExporterMetadata, type InterfaceMetadata, parseBoundary } from './types.js'

type InterfaceInput = { name?: string; description?: string; speed?: number; provider?: string; connectivity?: string; boundary?: string }

export const interfaceFromConfig = (i: InterfaceInput): Partial<InterfaceMetadata> =>
  definedOnly({
    name: i.name,
    description: i.description,
    speed: i.speed,
    provider: i.provider,
    connectivity: i.connectivity,
    boundary: parseBoundary(i.boundary),
  })

export const exporterFromConfig = (e: Partial<ExporterMetadata>): Partial<ExporterMetadata> =>
  definedOnly({ name: e.name, group: e.group, role: e.role, site: e.site, region: e.region, tenant: e.tenant })

export const staticTable = (exporters: readonly StaticExporter[]): ExporterTable =>
  new ExporterTable(
    exporters.map((e) => ({
      prefix: parseSubnet(e.subnet),
      exporter: exporterFromConfig(e),
      interfaces: new Map(e.interfaces.map((i) => [i.ifIndex, interfaceFromConfig(i)])),
      defaultInterface: e.defaultInterface ? interfaceFromConfig(e.defaultInterface) : undefined,
    })),
  )

export const staticProvider = (config: MetadataConfig): TableProvider => new TableProvider('static', staticTable(config.exporters))

export const configuredDefaults = (config: MetadataConfig) => ({
  exporter: exporterFromConfig(config.defaults.exporter),
  iface: interfaceFromConfig(config.defaults.interface),
})
