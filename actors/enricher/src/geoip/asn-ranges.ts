// AS numbers by address range, from ip-location-db's ASN CSV (the embedded default when no ASN
// database is configured): sorted range starts searched by bisection, a few bytes per range.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isIPv4Mapped, parseIP } from '@flowbus/bus-schemas'
import { makeGeoRecord, type GeoRecord, type GeoSource } from './database.js'

/**
 * Ranges are kept as sorted arrays rather than prefixes in a trie: the CSV holds ranges (about
 * 410k IPv4 and 100k IPv6), which would split into several prefixes each; arrays hold them in
 * ~20 bytes per IPv4 range and bisection needs ~19 steps.
 */
export class ASNRanges implements GeoSource {
  readonly #v4Start: Uint32Array
  readonly #v4End: Uint32Array
  readonly #v4Record: Uint32Array
  /** For each /16, the index of the last range starting at or before it (-1: none): bisection starts there. */
  readonly #v4Jump = new Int32Array(65537)
  /** IPv6 bounds as four big-endian words per range. */
  readonly #v6Start: Uint32Array
  readonly #v6End: Uint32Array
  readonly #v6Record: Uint32Array
  readonly #records: GeoRecord[]

  private constructor(
    readonly description: string,
    v4: { start: Uint32Array; end: Uint32Array; record: Uint32Array },
    v6: { start: Uint32Array; end: Uint32Array; record: Uint32Array },
    records: GeoRecord[],
  ) {
    this.#v4Start = v4.start
    this.#v4End = v4.end
    this.#v4Record = v4.record
    this.#v6Start = v6.start
    this.#v6End = v6.end
    this.#v6Record = v6.record
    this.#records = records
    let i = -1
    for (let p = 0; p < 65536; p++) {
      const at = p * 65536
      while (i + 1 < v4.start.length && v4.start[i + 1]! <= at) i++
      this.#v4Jump[p] = i
    }
    this.#v4Jump[65536] = v4.start.length - 1
  }

  get size(): number {
    return this.#v4Start.length + this.#v6Record.length
  }

  /**
   * Builds from CSV text `start,end,asn,name` (inclusive ranges, sorted by start; IPv4 as
   * numbers or dotted quads, IPv6 as text). Throws naming the source and line of a bad row.
   */
  static fromCSV(description: string, ipv4: string, ipv6: string): ASNRanges {
    const records: GeoRecord[] = []
    // One record per (AS number, name): by number first (numeric keys are cheap), by both when
    // an AS appears under several names.
    const byASN = new Map<number, number>()
    const byKey = new Map<string, number>()
    const recordOf = (asn: number, name: string): number => {
      const first = byASN.get(asn)
      if (first !== undefined && records[first]!.asName === name) return first
      const key = `${asn}\u0000${name}`
      let i = first === undefined ? undefined : byKey.get(key)
      if (i === undefined) {
        i = records.length
        records.push(makeGeoRecord('', '', '', asn, name))
        if (first === undefined) byASN.set(asn, i)
        byKey.set(key, i)
      }
      return i
    }
    // Sized for the worst case (one range per line), trimmed at the end.
    const v4Lines = countLines(ipv4)
    const v4 = { start: new Uint32Array(v4Lines), end: new Uint32Array(v4Lines), record: new Uint32Array(v4Lines) }
    let n4 = 0
    const v4Source = `${description} (IPv4)`
    forEachRow(v4Source, ipv4, (start, end, asn, name, line) => {
      v4.start[n4] = ipv4Number(start, v4Source, line)
      v4.end[n4] = ipv4Number(end, v4Source, line)
      v4.record[n4] = recordOf(asn, name)
      if (n4 > 0 && v4.start[n4]! < v4.start[n4 - 1]!) throw new Error(`${v4Source} line ${line}: ranges must be sorted by start`)
      n4++
    })
    const v6Lines = countLines(ipv6)
    const v6 = { start: new Uint32Array(v6Lines * 4), end: new Uint32Array(v6Lines * 4), record: new Uint32Array(v6Lines) }
    let n6 = 0
    const v6Source = `${description} (IPv6)`
    forEachRow(v6Source, ipv6, (start, end, asn, name, line) => {
      ipv6Words(start, v6.start, n6 * 4, v6Source, line)
      ipv6Words(end, v6.end, n6 * 4, v6Source, line)
      v6.record[n6] = recordOf(asn, name)
      n6++
    })
    return new ASNRanges(
      description,
      { start: v4.start.slice(0, n4), end: v4.end.slice(0, n4), record: v4.record.slice(0, n4) },
      { start: v6.start.slice(0, n6 * 4), end: v6.end.slice(0, n6 * 4), record: v6.record.slice(0, n6) },
      records,
    )
  }

  static #embedded: ASNRanges | undefined

  /**
   * The embedded data: @ip-location-db/asn (RouteViews, DB-IP and NRO data, CC BY 4.0). Loaded
   * once per process (about a second of CPU) and shared: the ranges never change.
   */
  static embedded(): ASNRanges {
    ASNRanges.#embedded ??= ASNRanges.#loadEmbedded()
    return ASNRanges.#embedded
  }

  static #loadEmbedded(): ASNRanges {
    const require = createRequire(import.meta.url)
    let v4: string
    let v6: string
    try {
      v4 = require.resolve('@ip-location-db/asn/asn-ipv4-num.csv')
      v6 = require.resolve('@ip-location-db/asn/asn-ipv6.csv')
    } catch (e) {
      throw new Error(
        `the embedded ASN data (npm package @ip-location-db/asn) is not installed: ${(e as Error).message.split('\n')[0]}; install it, configure geoip asnDatabases, or set geoip embedded: false`,
      )
    }
    return ASNRanges.fromCSV('embedded @ip-location-db/asn', readFileSync(v4, 'utf8'), readFileSync(v6, 'utf8'))
  }

  lookup(address: Uint8Array, offset: number): GeoRecord | undefined {
    if (isIPv4Mapped(address, offset)) {
      const a = ((address[offset + 12]! << 24) | (address[offset + 13]! << 16) | (address[offset + 14]! << 8) | address[offset + 15]!) >>> 0
      const starts = this.#v4Start
      // Last range starting at or before a: between the last one starting before a's /16 and the
      // last one starting before the next /16.
      const p = a >>> 16
      let found = this.#v4Jump[p]!
      let lo = found + 1
      let hi = this.#v4Jump[p + 1]!
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1
        if (starts[mid]! <= a) {
          found = mid
          lo = mid + 1
        } else hi = mid - 1
      }
      return found >= 0 && a <= this.#v4End[found]! ? this.#records[this.#v4Record[found]!] : undefined
    }
    const w0 = readWord(address, offset)
    const w1 = readWord(address, offset + 4)
    const w2 = readWord(address, offset + 8)
    const w3 = readWord(address, offset + 12)
    const starts = this.#v6Start
    let lo = 0
    let hi = this.#v6Record.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (compareWords(starts, mid, w0, w1, w2, w3) <= 0) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return found >= 0 && compareWords(this.#v6End, found, w0, w1, w2, w3) >= 0 ? this.#records[this.#v6Record[found]!] : undefined
  }
}

function countLines(text: string): number {
  let n = 1
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++
  return n
}

/** Calls `row` for each CSV line `start,end,asn,name` (name possibly quoted); `line` numbers it for errors. */
function forEachRow(
  description: string,
  text: string,
  row: (start: string, end: string, asn: number, name: string, line: number) => void,
): void {
  let line = 0
  let at = 0
  while (at < text.length) {
    let eol = text.indexOf('\n', at)
    if (eol < 0) eol = text.length
    line++
    const lineEnd = text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol
    const lineStart = at
    at = eol + 1
    if (lineEnd <= lineStart) continue
    const c1 = text.indexOf(',', lineStart)
    const c2 = c1 < 0 ? -1 : text.indexOf(',', c1 + 1)
    if (c1 < 0 || c2 < 0 || c2 >= lineEnd) throw new Error(`${description} line ${line}: expected start,end,asn,name`)
    let c3 = text.indexOf(',', c2 + 1)
    if (c3 < 0 || c3 > lineEnd) c3 = lineEnd
    let asn = 0
    for (let i = c2 + 1; i < c3; i++) {
      const d = text.charCodeAt(i) - 48
      if (d < 0 || d > 9 || i - c2 > 10) throw new Error(`${description} line ${line}: "${text.slice(c2 + 1, c3)}" is not an AS number`)
      asn = asn * 10 + d
    }
    if (c3 === c2 + 1 || asn > 4294967295) throw new Error(`${description} line ${line}: "${text.slice(c2 + 1, c3)}" is not an AS number`)
    let name = c3 < lineEnd ? text.slice(c3 + 1, lineEnd) : ''
    if (name.length >= 2 && name.charCodeAt(0) === 34 && name.charCodeAt(name.length - 1) === 34) name = name.slice(1, -1).replaceAll('""', '"')
    row(text.slice(lineStart, c1), text.slice(c1 + 1, c2), asn, name, line)
  }
}

function ipv4Number(text: string, source: string, line: number): number {
  let n = 0
  let digits = true
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48
    if (d < 0 || d > 9) {
      digits = false
      break
    }
    n = n * 10 + d
  }
  if (digits && text.length > 0 && n <= 0xffffffff) return n
  try {
    const b = parseIP(text)
    if (!isIPv4Mapped(b)) throw new Error(`"${text}" is not an IPv4 address`)
    return ((b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!) >>> 0
  } catch (e) {
    throw new Error(`${source} line ${line}: ${(e as Error).message}`)
  }
}

const hextets = new Uint16Array(8)

/** Writes the address as four big-endian words at out[at..at+4); fast path for plain hex forms. */
function ipv6Words(text: string, out: Uint32Array, at: number, source: string, line: number): void {
  if (text.includes('.')) {
    let b: Uint8Array
    try {
      b = parseIP(text)
    } catch (e) {
      throw new Error(`${source} line ${line}: ${(e as Error).message}`)
    }
    for (let w = 0; w < 4; w++) out[at + w] = readWord(b, w * 4)
    return
  }
  // Groups before "::" fill from the left, groups after it from the right.
  hextets.fill(0)
  const gap = text.indexOf('::')
  const head = gap < 0 ? text : text.slice(0, gap)
  const tail = gap < 0 ? '' : text.slice(gap + 2)
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === '' ? [] : tail.split(':')
  const doubleGap = gap >= 0 && text.indexOf('::', gap + 1) >= 0
  if (doubleGap || (gap < 0 && headGroups.length !== 8) || headGroups.length + tailGroups.length > (gap < 0 ? 8 : 7)) {
    throw new Error(`${source} line ${line}: invalid IP address "${text}"`)
  }
  const hex = (g: string): number => {
    if (g.length === 0 || g.length > 4) throw new Error(`${source} line ${line}: invalid IP address "${text}"`)
    const v = parseInt(g, 16)
    if (!(v >= 0) || !/^[0-9a-fA-F]+$/.test(g)) throw new Error(`${source} line ${line}: invalid IP address "${text}"`)
    return v
  }
  for (let i = 0; i < headGroups.length; i++) hextets[i] = hex(headGroups[i]!)
  for (let i = 0; i < tailGroups.length; i++) hextets[8 - tailGroups.length + i] = hex(tailGroups[i]!)
  for (let w = 0; w < 4; w++) out[at + w] = ((hextets[2 * w]! << 16) | hextets[2 * w + 1]!) >>> 0
}

const readWord = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0

/** Sign of (range bound i) - (address words). */
function compareWords(words: Uint32Array, i: number, w0: number, w1: number, w2: number, w3: number): number {
  const base = i * 4
  if (words[base] !== w0) return words[base]! < w0 ? -1 : 1
  if (words[base + 1] !== w1) return words[base + 1]! < w1 ? -1 : 1
  if (words[base + 2] !== w2) return words[base + 2]! < w2 ? -1 : 1
  if (words[base + 3] !== w3) return words[base + 3]! < w3 ? -1 : 1
  return 0
}
