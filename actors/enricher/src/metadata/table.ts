// Exporters by subnet with their interfaces by ifIndex: what static config and remote sources
// provide. Longest prefix wins; lookups happen once per exporter and are then cached by the chain.
import { type IPPrefix, parsePrefix } from '@flowbus/runtime'
import type { ExporterMetadata, InterfaceMetadata, MetadataProvider } from './types.js'

export interface ExporterEntry {
  readonly prefix: IPPrefix
  readonly exporter: Partial<ExporterMetadata>
  readonly interfaces: ReadonlyMap<number, Partial<InterfaceMetadata>>
  /** Applied to this exporter's interfaces that are not listed (e.g. a site-wide provider). */
  readonly defaultInterface: Partial<InterfaceMetadata> | undefined
}

/** `192.0.2.0/24`, `2001:db8::/32`, or a single address (taken as /32 or /128). */
export const parseSubnet = (text: string): IPPrefix => parsePrefix(text)

const contains = (prefix: IPPrefix, address: Uint8Array): boolean => {
  const whole = prefix.prefixLength >> 3
  for (let i = 0; i < whole; i++) if (prefix.address[i] !== address[i]) return false
  const bits = prefix.prefixLength & 7
  if (bits === 0) return true
  const mask = (0xff << (8 - bits)) & 0xff
  return ((prefix.address[whole]! ^ address[whole]!) & mask) === 0
}

/** Removes keys whose value is undefined, so a partial answer only carries what it knows. */
export const definedOnly = <T extends object>(value: T): Partial<T> =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>

export class ExporterTable {
  readonly #entries: ExporterEntry[]

  constructor(entries: readonly ExporterEntry[]) {
    // Longest prefix first: the first containing entry is the most specific one.
    this.#entries = [...entries].sort((a, b) => b.prefix.prefixLength - a.prefix.prefixLength)
  }

  get size(): number {
    return this.#entries.length
  }

  /** Every entry containing the address, most specific first. */
  matches(address: Uint8Array): ExporterEntry[] {
    return this.#entries.filter((e) => contains(e.prefix, address))
  }
}

/**
 * A provider over a table that can be swapped whole (remote sources refresh it); entries for the
 * same address merge field by field, the most specific subnet first.
 */
export class TableProvider implements MetadataProvider {
  generation = 0
  #table: ExporterTable

  constructor(
    readonly name: string,
    table = new ExporterTable([]),
  ) {
    this.#table = table
  }

  replace(table: ExporterTable): void {
    this.#table = table
    this.generation++
  }

  get size(): number {
    return this.#table.size
  }

  exporter(address: Uint8Array): Partial<ExporterMetadata> | undefined {
    const found = this.#table.matches(address)
    if (found.length === 0) return undefined
    return Object.assign({}, ...found.map((e) => e.exporter).reverse()) as Partial<ExporterMetadata>
  }

  iface(address: Uint8Array, _key: string, ifIndex: number): Partial<InterfaceMetadata> | undefined {
    const found = this.#table.matches(address)
    let result: Partial<InterfaceMetadata> | undefined
    // Least specific first so more specific entries overwrite; a listed interface beats any default.
    const ordered = found.reverse()
    for (const entry of ordered) if (entry.defaultInterface) result = { ...result, ...entry.defaultInterface }
    for (const entry of ordered) {
      const listed = entry.interfaces.get(ifIndex)
      if (listed) result = { ...result, ...listed }
    }
    return result
  }
}
