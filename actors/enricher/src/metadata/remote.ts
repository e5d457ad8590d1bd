// Remote metadata sources: documents fetched over HTTP on a schedule (JSON or CSV) turned into
// records by a plain field mapping (JSON pointers or CSV column names): no code runs from config.
import { type ExporterEntry, ExporterTable, definedOnly, parseSubnet } from './table.js'
import { type ExporterMetadata, type InterfaceMetadata, parseBoundary } from './types.js'

/** A record as read from a source: field → value (strings from CSV, any JSON value from JSON). */
export type RemoteRecord = Readonly<Record<string, unknown>>

export class RemoteFormatError extends Error {
  override readonly name = 'RemoteFormatError'
}

/** Resolves an RFC 6901 JSON pointer (`/a/0/b`, `~1` for `/`, `~0` for `~`); a name without `/` reads that key. */
export const readPointer = (document: unknown, pointer: string): unknown => {
  if (pointer === '') return document
  const tokens = pointer.startsWith('/') ? pointer.slice(1).split('/') : [pointer]
  let value: unknown = document
  for (const raw of tokens) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (value === null || typeof value !== 'object') return undefined
    // Own properties only: a pointer never reaches prototype members such as __proto__ or constructor.
    if (!Object.prototype.hasOwnProperty.call(value, token)) return undefined
    value = (value as Record<string, unknown>)[token]
  }
  return value
}

/** Parses CSV (RFC 4180: quoted fields, doubled quotes, CRLF or LF) into records keyed by the header line. */
export const parseCsv = (text: string): RemoteRecord[] => {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"'
          i++
        } else quoted = false
      } else field += c
    } else if (c === '"' && field === '') quoted = true
    else if (c === ',') {
      row.push(field)
      field = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      row.push(field)
      field = ''
      if (row.length > 1 || row[0] !== '') rows.push(row)
      row = []
    } else field += c
  }
  if (quoted) throw new RemoteFormatError('CSV ends inside a quoted field')
  if (field !== '' || row.length > 0) {
    row.push(field)
    rows.push(row)
  }
  const [header, ...data] = rows
  if (!header) return []
  const names = header.map((h) => h.trim())
  return data.map((values) => Object.fromEntries(names.map((name, i) => [name, values[i]?.trim() ?? ''])))
}

/** The records of a fetched document. */
export const parseDocument = (text: string, format: 'json' | 'csv', root: string): RemoteRecord[] => {
  if (format === 'csv') return parseCsv(text)
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch (error) {
    throw new RemoteFormatError(`not JSON: ${(error as Error).message}`)
  }
  const records = readPointer(document, root)
  if (!Array.isArray(records)) throw new RemoteFormatError(`${root === '' ? 'the document' : `"${root}"`} is not an array of records`)
  return records.filter((r): r is RemoteRecord => r !== null && typeof r === 'object' && !Array.isArray(r))
}

/** Reads target fields from a record through the mapping (target → pointer or column; default: the target's own name). */
export const mapRecord = (record: RemoteRecord, targets: readonly string[], fields: Readonly<Record<string, string>>, format: 'json' | 'csv'): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const target of targets) {
    const where = fields[target] ?? target
    const value = format === 'csv' ? (Object.prototype.hasOwnProperty.call(record, where) ? record[where] : undefined) : readPointer(record, where)
    if (value !== undefined && value !== null && value !== '') out[target] = value
  }
  return out
}

const text = (value: unknown): string | undefined => (value === undefined ? undefined : typeof value === 'object' ? JSON.stringify(value) : String(value))

const count = (value: unknown, what: string): number | undefined => {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new RemoteFormatError(`${what} "${String(value)}" is not a non-negative integer`)
  return n
}

export const exporterTargets = ['subnet', 'name', 'group', 'role', 'site', 'region', 'tenant'] as const
export const interfaceTargets = ['exporter', 'ifIndex', 'name', 'description', 'speed', 'provider', 'connectivity', 'boundary'] as const
export const networkTargets = ['prefix', 'name', 'role', 'site', 'region', 'tenant', 'country', 'state', 'city', 'asn'] as const

/** Records of a `networks` source as plain entries (prefix plus attributes) for the networks stage. */
export const recordsToNetworks = (records: readonly RemoteRecord[], fields: Readonly<Record<string, string>>, format: 'json' | 'csv'): Record<string, unknown>[] =>
  records.map((record) => {
    const m = mapRecord(record, networkTargets, fields, format)
    // Attributes are text except the AS number; the stage validates each of them.
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, k === 'asn' || typeof v !== 'object' ? v : JSON.stringify(v)]))
  })

export interface RecordsResult<T> {
  readonly value: T
  /** Records skipped, with the reason of the first few. */
  readonly rejected: number
  readonly problems: string[]
}

const exporterOf = (m: Record<string, unknown>): Partial<ExporterMetadata> =>
  definedOnly({ name: text(m.name), group: text(m.group), role: text(m.role), site: text(m.site), region: text(m.region), tenant: text(m.tenant) })

const interfaceOf = (m: Record<string, unknown>): Partial<InterfaceMetadata> => {
  const boundary = parseBoundary(m.boundary)
  if (m.boundary !== undefined && boundary === undefined) throw new RemoteFormatError(`boundary "${String(m.boundary)}" is not external, internal or undefined`)
  return definedOnly({
    name: text(m.name),
    description: text(m.description),
    speed: count(m.speed, 'speed'),
    provider: text(m.provider),
    connectivity: text(m.connectivity),
    boundary,
  })
}

/** Records of an `exporters` or `interfaces` source as an exporter table; bad records are skipped and reported. */
export const recordsToTable = (
  kind: 'exporters' | 'interfaces',
  records: readonly RemoteRecord[],
  fields: Readonly<Record<string, string>>,
  format: 'json' | 'csv',
): RecordsResult<ExporterTable> => {
  const problems: string[] = []
  let rejected = 0
  const bySubnet = new Map<string, { entry: ExporterEntry; interfaces: Map<number, Partial<InterfaceMetadata>> }>()
  records.forEach((record, index) => {
    try {
      const m = mapRecord(record, kind === 'exporters' ? exporterTargets : interfaceTargets, fields, format)
      const subnetText = text(kind === 'exporters' ? m.subnet : m.exporter)
      if (subnetText === undefined) throw new RemoteFormatError(`no ${kind === 'exporters' ? 'subnet' : 'exporter'} field`)
      const prefix = parseSubnet(subnetText)
      const key = `${prefix.address.join('.')}/${prefix.prefixLength}`
      let slot = bySubnet.get(key)
      if (!slot) {
        const interfaces = new Map<number, Partial<InterfaceMetadata>>()
        slot = { entry: { prefix, exporter: {}, interfaces, defaultInterface: undefined }, interfaces }
        bySubnet.set(key, slot)
      }
      if (kind === 'exporters') Object.assign(slot.entry.exporter, exporterOf(m))
      else {
        const ifIndex = count(m.ifIndex, 'ifIndex')
        if (ifIndex === undefined || ifIndex === 0) throw new RemoteFormatError('no ifIndex field (or 0)')
        slot.interfaces.set(ifIndex, interfaceOf(m))
      }
    } catch (error) {
      rejected++
      if (problems.length < 5) problems.push(`record ${index}: ${(error as Error).message}`)
    }
  })
  return { value: new ExporterTable([...bySubnet.values()].map((s) => s.entry)), rejected, problems }
}

/** Fetches a source's document as text; fails on a non-2xx status or after timeoutMs. */
export const fetchText = async (url: string, timeoutMs: number): Promise<string> => {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json, text/csv;q=0.9, */*;q=0.5' } })
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status} ${response.statusText}`)
  return response.text()
}
