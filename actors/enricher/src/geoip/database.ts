// A MaxMind-format (mmdb) database answering lookups of 16-byte addresses: the search tree is
// walked here over the bytes (no address text per lookup), records are decoded by mmdb-lib once.
import { formatIP, isIPv4Mapped } from '@flowbus/bus-schemas'
import { Reader } from 'mmdb-lib'

/** What GeoIP knows about an address; '' or 0 when the database does not say. */
export interface GeoRecord {
  readonly country: string
  readonly state: string
  readonly city: string
  readonly asn: number
  readonly asName: string
}

/** Something answering GeoIP lookups: an mmdb file or the embedded ASN ranges. */
export interface GeoSource {
  /** Where it comes from, for logs and errors. */
  readonly description: string
  /** Record of the 16-byte address at offset, undefined when unknown. Allocates nothing on a hit. */
  lookup(address: Uint8Array, offset: number): GeoRecord | undefined
}

export const makeGeoRecord = (country: string, state: string, city: string, asn: number, asName: string): GeoRecord => ({
  country,
  state,
  city,
  asn,
  asName,
})

const str = (v: unknown): string => (typeof v === 'string' ? v : '')
const englishName = (v: unknown): string => str((v as { names?: { en?: unknown } } | undefined)?.names?.en)

/**
 * Reads the fields of the layouts in use: MaxMind GeoLite2/GeoIP2 and DB-IP's own mmdb
 * (`country.iso_code`, `subdivisions[0].names.en`, `city.names.en`, `autonomous_system_number`,
 * `autonomous_system_organization`), ip-location-db (`country_code`, `state1`, `city`) and
 * IPinfo (`country`, `region`, `city`, `asn: "AS…"`, `as_name`).
 */
export function geoRecordOf(data: unknown): GeoRecord {
  const d = (data ?? {}) as Record<string, unknown>
  let country = ''
  if (typeof d.country === 'string') country = d.country
  else if (d.country !== undefined) country = str((d.country as { iso_code?: unknown }).iso_code)
  if (country === '') country = str(d.country_code) || str((d.registered_country as { iso_code?: unknown } | undefined)?.iso_code)
  const subdivisions = Array.isArray(d.subdivisions) ? d.subdivisions : []
  const state = englishName(subdivisions[0]) || str(d.region) || str(d.state1)
  const city = typeof d.city === 'string' ? d.city : englishName(d.city)
  let asn = 0
  if (typeof d.autonomous_system_number === 'number') asn = d.autonomous_system_number
  else if (typeof d.asn === 'number') asn = d.asn
  else if (typeof d.asn === 'string') {
    const m = /^(?:AS)?(\d{1,10})$/i.exec(d.asn)
    if (m !== null && Number(m[1]) <= 4294967295) asn = Number(m[1])
  }
  const asName = str(d.autonomous_system_organization) || str(d.as_name)
  return makeGeoRecord(country.toUpperCase(), state, city, asn, asName)
}

/** Decoded records kept at most per database (city databases have millions); beyond, the cache restarts. */
const RECORD_CACHE_LIMIT = 200_000

export class GeoDatabase implements GeoSource {
  readonly #reader: Reader<never>
  readonly #tree: Uint8Array
  readonly #nodeCount: number
  readonly #recordSize: number
  readonly #ipv4Start: number
  readonly #ipv6: boolean
  readonly #records = new Map<number, GeoRecord>()
  /**
   * Node reached after the first 16 bits of each IPv4 address (or the record it ended on): an
   * IPv4 lookup starts there, halving the walk. Built at load, 256 KiB.
   */
  readonly #ipv4Jump = new Uint32Array(65536)

  /** Parses the database; throws naming `description` when it is not a valid mmdb file. */
  constructor(
    bytes: Uint8Array,
    readonly description: string,
  ) {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    try {
      this.#reader = new Reader<never>(buffer)
    } catch (e) {
      throw new Error(`GeoIP database ${description} is not a MaxMind database: ${(e as Error).message}`)
    }
    const m = this.#reader.metadata
    if (![24, 28, 32].includes(m.recordSize)) throw new Error(`GeoIP database ${description}: unsupported record size ${m.recordSize}`)
    this.#tree = buffer
    this.#nodeCount = m.nodeCount
    this.#recordSize = m.recordSize
    this.#ipv6 = m.ipVersion === 6
    // IPv4 sits at ::a.b.c.d in IPv6 trees: the node after 96 zero bits.
    let node = 0
    if (this.#ipv6) for (let i = 0; i < 96 && node < this.#nodeCount; i++) node = this.#record(node, 0)
    this.#ipv4Start = node
    for (let p = 0; p < 65536; p++) {
      let n = node
      for (let bit = 15; bit >= 0 && n < this.#nodeCount; bit--) n = this.#record(n, (p >> bit) & 1)
      this.#ipv4Jump[p] = n
    }
  }

  get metadata(): { databaseType: string; buildEpoch: Date; ipVersion: number; nodeCount: number } {
    return this.#reader.metadata
  }

  #record(node: number, bit: number): number {
    const t = this.#tree
    if (this.#recordSize === 24) {
      const at = node * 6 + bit * 3
      return (t[at]! << 16) | (t[at + 1]! << 8) | t[at + 2]!
    }
    if (this.#recordSize === 28) {
      const base = node * 7
      if (bit === 0) return (((t[base + 3]! & 0xf0) << 20) | (t[base]! << 16) | (t[base + 1]! << 8) | t[base + 2]!) >>> 0
      return (((t[base + 3]! & 0x0f) << 24) | (t[base + 4]! << 16) | (t[base + 5]! << 8) | t[base + 6]!) >>> 0
    }
    const at = node * 8 + bit * 4
    return ((t[at]! << 24) | (t[at + 1]! << 16) | (t[at + 2]! << 8) | t[at + 3]!) >>> 0
  }

  /** Data pointer of the network holding the address (0: not in the database). */
  pointerOf(address: Uint8Array, offset: number): number {
    const nodeCount = this.#nodeCount
    let node: number
    let bit: number
    if (isIPv4Mapped(address, offset)) {
      node = this.#ipv4Jump[(address[offset + 12]! << 8) | address[offset + 13]!]!
      bit = 112
    } else {
      if (!this.#ipv6) return 0
      node = 0
      bit = 0
    }
    const t = this.#tree
    const size = this.#recordSize
    // The record read is inlined per size: this loop is the whole cost of a lookup.
    for (; bit < 128 && node < nodeCount; bit++) {
      const right = (address[offset + (bit >> 3)]! >> (7 - (bit & 7))) & 1
      if (size === 24) {
        const at = node * 6 + right * 3
        node = (t[at]! << 16) | (t[at + 1]! << 8) | t[at + 2]!
      } else if (size === 28) {
        const base = node * 7
        node =
          right === 0
            ? (((t[base + 3]! & 0xf0) << 20) | (t[base]! << 16) | (t[base + 1]! << 8) | t[base + 2]!) >>> 0
            : (((t[base + 3]! & 0x0f) << 24) | (t[base + 4]! << 16) | (t[base + 5]! << 8) | t[base + 6]!) >>> 0
      } else {
        const at = node * 8 + right * 4
        node = ((t[at]! << 24) | (t[at + 1]! << 16) | (t[at + 2]! << 8) | t[at + 3]!) >>> 0
      }
    }
    return node > nodeCount ? node : 0
  }

  lookup(address: Uint8Array, offset: number): GeoRecord | undefined {
    const pointer = this.pointerOf(address, offset)
    if (pointer === 0) return undefined
    let record = this.#records.get(pointer)
    if (record === undefined) {
      // Decoded once per data record: the text form is only built on this miss.
      record = geoRecordOf(this.#reader.get(formatIP(address, offset)))
      if (this.#records.size >= RECORD_CACHE_LIMIT) this.#records.clear()
      this.#records.set(pointer, record)
    }
    return record
  }
}
