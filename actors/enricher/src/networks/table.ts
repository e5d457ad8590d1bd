// Network attributes by subnet: the entries operators configure (or a remote source serves),
// validated into an immutable NetworkTable answering longest-prefix lookups from the shared trie.
import { PrefixTrie, formatPrefix, parsePrefix } from '@flowbus/runtime'
import { Schema } from 'effect'

/** What a subnet says about the addresses in it; an empty string or 0 means "not set". */
export interface NetworkAttributes {
  readonly name: string
  readonly role: string
  readonly site: string
  readonly region: string
  readonly tenant: string
  readonly country: string
  readonly state: string
  readonly city: string
  readonly asn: number
}

/** The string attributes, in the order of `NetworkRecord.indexes`. */
export const networkStringAttributes = ['name', 'role', 'site', 'region', 'tenant', 'country', 'state', 'city'] as const
const attributeKeys: readonly string[] = [...networkStringAttributes, 'asn']

/**
 * One prefix of the table with its attributes, already merged with those of the prefixes
 * covering it (a /28 without a site takes the site of its /24).
 */
export class NetworkRecord implements NetworkAttributes {
  /** Position in the table from 1 (`NetworkTable.ids` and `asns` are by serial), 0 until added. */
  serial = 0
  /** The string attributes in `networkStringAttributes` order. */
  readonly strings: readonly string[]
  /** Their ids in the table's string list (0: empty), so shared values are interned once per batch. */
  readonly ids = new Uint32Array(networkStringAttributes.length)
  constructor(
    readonly prefix: string,
    readonly name: string,
    readonly role: string,
    readonly site: string,
    readonly region: string,
    readonly tenant: string,
    readonly country: string,
    readonly state: string,
    readonly city: string,
    readonly asn: number,
  ) {
    this.strings = [name, role, site, region, tenant, country, state, city]
  }
}

/** A bad network entry: names the source and the entry's key, then what is wrong with it. */
export class NetworkEntryError extends Error {
  constructor(
    readonly source: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${source}: network "${key}": ${reason}`)
    this.name = 'NetworkEntryError'
  }
}

const MAX_ASN = 4294967295

function parseASN(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 && value <= MAX_ASN ? value : `asn ${value} is not an AS number 0-${MAX_ASN}`
  }
  if (typeof value === 'string') {
    const m = /^(?:AS)?([0-9]{1,10})$/i.exec(value.trim())
    if (m !== null && Number(m[1]) <= MAX_ASN) return Number(m[1])
    if (value.trim() === '') return 0
  }
  return `asn ${JSON.stringify(value)} is not an AS number (65000 or "AS65000")`
}

function attributesOf(source: string, key: string, value: unknown): NetworkAttributes {
  if (typeof value === 'string') return { ...emptyAttributes, name: value }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new NetworkEntryError(source, key, `expected a name or an object of attributes (${attributeKeys.join(', ')}), got ${JSON.stringify(value)}`)
  }
  const out: Record<string, string | number> = { ...emptyAttributes }
  for (const [k, v] of Object.entries(value)) {
    if (k === 'prefix') continue
    if (k === 'asn') {
      const asn = parseASN(v)
      if (typeof asn === 'string') throw new NetworkEntryError(source, key, asn)
      out.asn = asn
      continue
    }
    if (!(networkStringAttributes as readonly string[]).includes(k)) {
      throw new NetworkEntryError(source, key, `unknown attribute "${k}" (known: ${attributeKeys.join(', ')})`)
    }
    if (v === null || v === undefined) continue
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw new NetworkEntryError(source, key, `attribute "${k}" must be a string, got ${JSON.stringify(v)}`)
    }
    out[k] = String(v)
  }
  if (typeof out.country === 'string' && out.country !== '' && !/^[A-Za-z]{2}$/.test(out.country)) {
    throw new NetworkEntryError(source, key, `country "${out.country}" is not an ISO 3166 alpha-2 code like "FR"`)
  }
  out.country = (out.country as string).toUpperCase()
  return out as unknown as NetworkAttributes
}

const emptyAttributes: NetworkAttributes = { name: '', role: '', site: '', region: '', tenant: '', country: '', state: '', city: '', asn: 0 }

/** Entries as the configuration holds them (`prefix → attributes or name`) or as a list of records with a `prefix`. */
export type NetworkEntries = Readonly<Record<string, unknown>> | readonly unknown[]

/**
 * Validates entries into a table. `source` names where they came from in errors ("config
 * enricher.networks", "remote source peers"). Throws NetworkEntryError on the first bad entry.
 */
export function parseNetworks(entries: NetworkEntries, source: string): NetworkTable {
  const pairs: [string, unknown][] = []
  if (Array.isArray(entries)) {
    entries.forEach((item, i) => {
      const prefix = (item as { prefix?: unknown } | null)?.prefix
      if (typeof prefix !== 'string') throw new NetworkEntryError(source, `#${i}`, 'a record needs a "prefix" string like "192.0.2.0/24"')
      pairs.push([prefix, item])
    })
  } else if (entries !== null && typeof entries === 'object') {
    pairs.push(...Object.entries(entries))
  } else {
    throw new NetworkEntryError(source, '', `expected an object of prefix → attributes or a list of records, got ${JSON.stringify(entries)}`)
  }
  const parsed = pairs.map(([key, value]) => {
    if (!key.includes('/')) throw new NetworkEntryError(source, key, 'the key must be a prefix like 192.0.2.0/24 or 2001:db8::/32')
    let prefix: ReturnType<typeof parsePrefix>
    try {
      prefix = parsePrefix(key)
    } catch (e) {
      throw new NetworkEntryError(source, key, (e as Error).message)
    }
    return { key, prefix, attributes: attributesOf(source, key, value) }
  })
  // Shorter prefixes first, so each entry finds its (already merged) parent in the trie.
  parsed.sort((a, b) => a.prefix.prefixLength - b.prefix.prefixLength)
  const trie = new PrefixTrie<NetworkRecord>(Math.max(16, parsed.length * 2))
  const present = new Set<keyof NetworkAttributes>()
  const strings = ['']
  const stringIds = new Map<string, number>([['', 0]])
  const records: NetworkRecord[] = []
  for (const { key, prefix, attributes } of parsed) {
    const existing = trie.get(prefix.address, prefix.prefixLength)
    if (existing !== undefined) throw new NetworkEntryError(source, key, `the same network as "${existing.prefix}" (listed twice)`)
    const parent = trie.lookup(prefix.address, 0)
    const merged: Record<string, unknown> = { ...attributes }
    if (parent !== undefined) {
      for (const k of attributeKeys) if (merged[k] === '' || merged[k] === 0) merged[k] = parent[k as keyof NetworkAttributes]
    }
    for (const k of attributeKeys) if (merged[k] !== '' && merged[k] !== 0) present.add(k as keyof NetworkAttributes)
    const m = merged as unknown as NetworkAttributes
    const record = new NetworkRecord(
      formatPrefix(prefix.address, prefix.prefixLength),
      m.name,
      m.role,
      m.site,
      m.region,
      m.tenant,
      m.country,
      m.state,
      m.city,
      m.asn,
    )
    record.strings.forEach((v, i) => {
      let id = stringIds.get(v)
      if (id === undefined) {
        id = strings.length
        strings.push(v)
        stringIds.set(v, id)
      }
      record.ids[i] = id
    })
    records.push(record)
    record.serial = records.length
    trie.insert(prefix.address, prefix.prefixLength, record)
  }
  return new NetworkTable(trie, present, source, strings, records)
}

/** Immutable once built: replace the whole table to change networks (NetworkStage.replace). */
export class NetworkTable {
  /**
   * The records' string ids flat, `networkStringAttributes.length` per serial (serial 0: none),
   * and their AS numbers by serial: what the stage reads per flow, without touching the records.
   */
  readonly ids: Uint32Array
  readonly asns: Uint32Array

  constructor(
    readonly trie: PrefixTrie<NetworkRecord>,
    /** Attributes set by at least one network: the stage writes only these columns. */
    readonly present: ReadonlySet<keyof NetworkAttributes>,
    readonly source: string,
    /** Distinct attribute values; records refer to them by index (`NetworkRecord.ids`). */
    readonly strings: readonly string[] = [''],
    /** Every record, the one of serial s at s - 1. */
    readonly records: readonly NetworkRecord[] = [],
  ) {
    const width = networkStringAttributes.length
    this.ids = new Uint32Array((records.length + 1) * width)
    this.asns = new Uint32Array(records.length + 1)
    for (const record of records) {
      this.ids.set(record.ids, record.serial * width)
      this.asns[record.serial] = record.asn
    }
  }

  static readonly empty: NetworkTable = new NetworkTable(new PrefixTrie<NetworkRecord>(2), new Set(), 'none')

  get size(): number {
    return this.trie.size
  }

  /** Longest-prefix match of the 16-byte address at offset (allocates nothing). */
  lookup(address: Uint8Array, offset = 0): NetworkRecord | undefined {
    return this.trie.lookup(address, offset)
  }
}

const NetworkAttributesStruct = Schema.Struct({
  name: Schema.optional(Schema.String),
  role: Schema.optional(Schema.String),
  site: Schema.optional(Schema.String),
  region: Schema.optional(Schema.String),
  tenant: Schema.optional(Schema.String),
  country: Schema.optional(Schema.String),
  state: Schema.optional(Schema.String),
  city: Schema.optional(Schema.String),
  asn: Schema.optional(Schema.Union(Schema.Number, Schema.String)),
})

/**
 * Config schema of static networks: `prefix: name` or `prefix: { name, role, site, region,
 * tenant, country, state, city, asn }`. Validation runs parseNetworks, so a bad entry's error
 * names its prefix.
 */
export const NetworksConfig = Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, NetworkAttributesStruct) })
  .pipe(
    Schema.filter((entries) => {
      try {
        parseNetworks(entries, 'networks')
        return true
      } catch (e) {
        return (e as Error).message
      }
    }),
  )
  .annotations({
    description:
      'network attributes by subnet (IPv4 or IPv6 prefix → name, or → {name, role, site, region, tenant, country, state, city, asn}); the longest prefix wins and inherits what it does not set from the prefixes covering it',
  })
export type NetworksConfig = Schema.Schema.Type<typeof NetworksConfig>
