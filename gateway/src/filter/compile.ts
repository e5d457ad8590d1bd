// Compiles a filter's syntax tree to a ClickHouse boolean expression over the flows tables. Every
// value becomes a typed query parameter ({f0:UInt16}); the SQL holds only schema column names,
// operators and placeholders, so no text a user typed ever reaches ClickHouse as SQL.
import { formatIP, isIPv4Mapped, parseIP, parseMAC } from '@flowbus/bus-schemas'
import { type StorageColumn, allStorageColumns } from '@flowbus/runtime'
import { type FilterAst, type FilterCondition, type FilterError, type FilterLiteral, type FilterNode, type FilterOperator, type Span, filterError, shown } from './ast.js'
import { type FilterColumn, type FilterColumnClass, filterColumns, swapColumnName } from './columns.js'

export interface CompileOptions {
  /** The deployment's effective columns: `storageColumns(config.clickhouse)`. */
  readonly columns: readonly StorageColumn[]
  /** Compile for the reverse direction of a bidirectional query (Src↔Dst, In↔Out). */
  readonly swapDirection?: boolean
  /** Prefix of parameter names (default `f`: `{f0:UInt16}`), so several filters can share a query. */
  readonly paramPrefix?: string
}

export interface CompiledFilter {
  /** A boolean SQL expression; values only as `{name:Type}` query parameters. */
  readonly sql: string
  /** Values of the query parameters, for @clickhouse/client's `query_params`. */
  readonly params: Record<string, unknown>
  /**
   * Storage columns the expression reads, sorted: a raw-only one (not `aggregated` in the
   * schema) means the query must read the raw `flows` table.
   */
  readonly columns: readonly string[]
}

export type CompileResult = ({ readonly ok: true } & CompiledFilter) | { readonly ok: false; readonly error: FilterError }

/** Operators each column class accepts, in the order completion offers them. */
export const operatorsByClass: Readonly<Record<FilterColumnClass, readonly FilterOperator[]>> = {
  ip: ['=', '!=', '<<', '!<<', 'IN', 'NOTIN'],
  string: ['=', '!=', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE', 'IN', 'NOTIN'],
  uint: ['=', '!=', '<', '<=', '>', '>=', 'IN', 'NOTIN'],
  asn: ['=', '!=', '<', '<=', '>', '>=', 'IN', 'NOTIN'],
  aspath: ['=', '!=', 'IN', 'NOTIN'],
  communities: ['=', '!=', 'IN', 'NOTIN'],
  largeCommunities: ['=', '!=', 'IN', 'NOTIN'],
  uintArray: ['=', '!=', 'IN', 'NOTIN'],
  enum: ['=', '!=', 'IN', 'NOTIN'],
  mac: ['=', '!=', 'IN', 'NOTIN'],
  time: ['=', '!=', '<', '<=', '>', '>='],
  prefix: ['=', '!='],
}

/** What a value of each class looks like, for messages. */
export const valueDescription: Readonly<Record<FilterColumnClass, string>> = {
  ip: 'an IP address or subnet (203.0.113.4, 2001:db8::/32)',
  string: 'a quoted string ("th2-%")',
  uint: 'an unsigned integer',
  asn: 'an AS number (AS12322 or 12322)',
  aspath: 'an AS number the path contains (AS12322)',
  communities: 'a BGP community (65000:100) or large community (65000:100:200)',
  largeCommunities: 'a large BGP community (65000:100:200)',
  uintArray: 'an unsigned integer the list contains',
  enum: 'one of the names',
  mac: 'a MAC address (00:11:22:33:44:55)',
  time: 'a UTC date and time ("2024-05-01 12:00:00") or Unix seconds',
  prefix: 'a network prefix (192.0.2.0/24, 2001:db8::/32)',
}

/** Classes that may be compared with another column of the same class, and with which operators. */
const columnComparisons: Partial<Record<FilterColumnClass, readonly FilterOperator[]>> = {
  uint: ['=', '!=', '<', '<=', '>', '>='],
  asn: ['=', '!=', '<', '<=', '>', '>='],
  time: ['=', '!=', '<', '<=', '>', '>='],
  string: ['=', '!='],
  ip: ['=', '!='],
  enum: ['=', '!='],
  mac: ['=', '!='],
}

const sqlOperators: Partial<Record<FilterOperator, string>> = {
  '=': '=',
  '!=': '!=',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
  LIKE: 'LIKE',
  ILIKE: 'ILIKE',
  UNLIKE: 'NOT LIKE',
  IUNLIKE: 'NOT ILIKE',
}

const PARAM_PREFIX = /^[A-Za-z_][A-Za-z0-9_]*$/

class CompileFailure {
  constructor(readonly error: FilterError) {}
}

/** An SQL fragment; `compound` when it must be parenthesised inside AND, OR or NOT. */
interface Fragment {
  readonly sql: string
  readonly compound: boolean
}

/** Edit distance, for "did you mean" on an unknown column (names are short, the schema ~100). */
const distance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

const MAX_BITS: Record<number, bigint> = { 8: 0xffn, 16: 0xffffn, 32: 0xffffffffn, 64: 0xffffffffffffffffn }

class Compiler {
  private readonly params: Record<string, unknown> = {}
  private next = 0

  constructor(
    private readonly text: string,
    private readonly columns: ReadonlyMap<string, FilterColumn>,
    private readonly swap: boolean,
    private readonly prefix: string,
  ) {}

  compile(root: FilterNode | null): CompiledFilter {
    const sql = root === null ? 'true' : this.node(root).sql
    // The columns read are the column names in the SQL: exact by construction (a large community
    // reads DstLargeCommunities, not the DstCommunities the user wrote).
    const stored = new Set([...this.columns.values()].flatMap((c) => c.references))
    const read = new Set<string>()
    for (const [word] of sql.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) if (stored.has(word)) read.add(word)
    return { sql, params: this.params, columns: [...read].sort() }
  }

  private fail(span: Span, message: string, expected: readonly string[] = []): never {
    throw new CompileFailure(filterError(this.text, span.offset, message, expected, span.length))
  }

  private param(type: string, value: unknown): string {
    const name = `${this.prefix}${this.next++}`
    this.params[name] = value
    return `{${name}:${type}}`
  }

  private node(node: FilterNode): Fragment {
    switch (node.type) {
      case 'condition':
        return this.condition(node)
      case 'not': {
        const inner = this.node(node.operand)
        return { sql: `NOT (${inner.sql})`, compound: false }
      }
      case 'and':
      case 'or': {
        const parts = node.operands.map((operand) => {
          const part = this.node(operand)
          return part.compound ? `(${part.sql})` : part.sql
        })
        return { sql: parts.join(node.type === 'and' ? ' AND ' : ' OR '), compound: true }
      }
    }
  }

  /** The column named at `span`, read from the other direction when swapping. */
  private column(written: string, span: Span): FilterColumn {
    const name = this.swap ? swapColumnName(written) : written
    const found = this.columns.get(name.toLowerCase())
    if (found) return found
    if (this.swap && name !== written && this.columns.has(written.toLowerCase())) {
      this.fail(span, `${shown(written)} has no counterpart in the other direction (there is no ${shown(name)} column), so a bidirectional query cannot reverse it`)
    }
    const stored = allStorageColumns.find((c) => c.name.toLowerCase() === name.toLowerCase())
    if (stored && !stored.filterable) this.fail(span, `${stored.name} cannot be used in a filter`, ['column name'])
    if (stored) {
      const how = stored.group ? `: enable the "${stored.group}" group in clickhouse.columns.enable` : ' (it is disabled in clickhouse.columns.disable)'
      this.fail(span, `${stored.name} is not stored by this deployment${how}`, ['column name'])
    }
    const lower = name.toLowerCase()
    let best: { name: string; d: number } | undefined
    // Edit distance is quadratic: only names of a plausible length get a suggestion.
    for (const column of lower.length <= 64 ? this.columns.values() : []) {
      const d = distance(lower, column.name.toLowerCase())
      if (!best || d < best.d) best = { name: column.name, d }
    }
    const hint = best && best.d <= Math.max(2, Math.floor(lower.length / 4)) ? ` (did you mean ${best.name}?)` : ''
    this.fail(span, `unknown column "${shown(name)}"${hint}`, ['column name'])
  }

  private condition(condition: FilterCondition): Fragment {
    const column = this.column(condition.column.name, condition.column.span)
    const { op, span: opSpan } = condition.operator
    const value = condition.value
    const allowed = operatorsByClass[column.class]
    // A bare word naming a column compares two columns (`SrcPort < DstPort`).
    if (value.type === 'literal' && !value.quoted && /^[A-Za-z_][A-Za-z0-9_]*$/.test(value.text) && this.isColumn(value.text)) {
      return this.columnComparison(column, condition)
    }
    if (!allowed.includes(op)) {
      this.fail(opSpan, `${op} does not apply to ${column.name}, which takes ${valueDescription[column.class]}`, allowed)
    }
    if (value.type === 'list') {
      const negate = op === 'NOTIN'
      switch (column.class) {
        case 'ip':
          return this.ipList(column, value.items, negate)
        case 'aspath':
        case 'uintArray': {
          const items = value.items.map((item) => this.param('UInt32', this.arrayItem(column, item)))
          return { sql: `${negate ? 'NOT ' : ''}hasAny(${column.sql}, [${items.join(', ')}])`, compound: false }
        }
        case 'communities':
        case 'largeCommunities': {
          const terms = value.items.map((item) => this.communityTerm(column, item))
          const any = terms.length === 1 ? terms[0]! : `(${terms.join(' OR ')})`
          return { sql: negate ? `NOT ${any}` : any, compound: false }
        }
        default: {
          const items = value.items.map((item) => this.scalar(column, item))
          return { sql: `${column.sql} ${negate ? 'NOT IN' : 'IN'} (${items.join(', ')})`, compound: false }
        }
      }
    }
    switch (column.class) {
      case 'ip':
        return this.ipCondition(column, op, value)
      case 'prefix':
        return this.prefixCondition(column, op, value)
      case 'aspath':
      case 'uintArray': {
        const has = `has(${column.sql}, ${this.param('UInt32', this.arrayItem(column, value))})`
        return { sql: op === '!=' ? `NOT ${has}` : has, compound: false }
      }
      case 'communities':
      case 'largeCommunities': {
        const has = this.communityTerm(column, value)
        return { sql: op === '!=' ? `NOT ${has}` : has, compound: false }
      }
      default:
        return { sql: `${column.sql} ${sqlOperators[op]!} ${this.scalar(column, value)}`, compound: false }
    }
  }

  private isColumn(word: string): boolean {
    return this.columns.has((this.swap ? swapColumnName(word) : word).toLowerCase())
  }

  private columnComparison(column: FilterColumn, condition: FilterCondition): Fragment {
    const value = condition.value as FilterLiteral
    const { op, span: opSpan } = condition.operator
    const other = this.column(value.text, value.span)
    const allowed = columnComparisons[column.class]
    if (!allowed) this.fail(value.span, `${column.name} compares only with values (${valueDescription[column.class]}), not with another column`, ['value'])
    const sameEnum = column.class !== 'enum' || [...(column.names ?? [])].join() === [...(other.names ?? [])].join()
    if (other.class !== column.class || !sameEnum) {
      this.fail(value.span, `${column.name} and ${other.name} hold different kinds of values and cannot be compared`, ['value'])
    }
    if (!allowed.includes(op)) this.fail(opSpan, `two ${column.class} columns compare only with ${allowed.join(' ')}`, allowed)
    return { sql: `${column.sql} ${sqlOperators[op]!} ${other.sql}`, compound: false }
  }

  /** A single value of a scalar column, as a placeholder. */
  private scalar(column: FilterColumn, value: FilterLiteral): string {
    switch (column.class) {
      case 'string':
        return this.param('String', value.text)
      case 'uint':
      case 'asn':
        return this.param(column.paramType, this.unsigned(column, value))
      case 'enum': {
        const member = column.names?.get(value.text.toLowerCase())
        if (member === undefined) {
          this.fail(value.span, `"${shown(value.text)}" is not a value of ${column.name}: use ${[...(column.names?.keys() ?? [])].join(', ')}`, [...(column.names?.keys() ?? [])])
        }
        return this.param('Int8', member)
      }
      case 'mac':
        return this.param('UInt64', this.mac(column, value))
      case 'time':
        return this.param(column.paramType, this.time(column, value))
      default:
        this.fail(value.span, `${column.name} takes ${valueDescription[column.class]}`)
    }
  }

  private unsigned(column: FilterColumn, value: FilterLiteral): number | string {
    const named = column.names?.get(value.text.toLowerCase())
    if (named !== undefined) return named
    const bits = column.bits ?? 32
    const digits = column.class === 'asn' ? /^(?:AS)?(\d+)$/i.exec(value.text)?.[1] : /^\d+$/.test(value.text) ? value.text : undefined
    const max = MAX_BITS[bits]!
    const what = column.class === 'asn' ? 'an AS number' : column.names ? `a name (${[...column.names.keys()].slice(0, 6).join(', ')}…) or a number` : `an unsigned ${bits}-bit integer`
    if (digits === undefined || value.quoted) {
      const why = value.quoted && digits !== undefined ? ' (write numbers without quotes)' : ''
      this.fail(value.span, `${column.name} takes ${what}, not "${shown(value.text)}"${why}`, ['value'])
    }
    if (digits.length > 20 || BigInt(digits) > max) this.fail(value.span, `${shown(value.text)} is out of range for ${column.name} (0 to ${max})`, ['value'])
    // Beyond 2^53 a number would lose digits: UInt64 values travel as decimal text.
    return bits === 64 ? BigInt(digits).toString() : Number(digits)
  }

  private arrayItem(column: FilterColumn, value: FilterLiteral): number {
    const digits = column.class === 'aspath' ? /^(?:AS)?(\d+)$/i.exec(value.text)?.[1] : /^\d+$/.test(value.text) ? value.text : undefined
    if (digits === undefined || value.quoted || digits.length > 10 || Number(digits) > 0xffffffff) {
      this.fail(value.span, `${column.name} takes ${valueDescription[column.class]}, not "${shown(value.text)}"`, ['value'])
    }
    return Number(digits)
  }

  /** `has(…)` for one community: standard ones in the column itself, large ones in its large sibling. */
  private communityTerm(column: FilterColumn, value: FilterLiteral): string {
    const parts = value.quoted ? undefined : /^(\d{1,10}):(\d{1,10})(?::(\d{1,10}))?$/.exec(value.text)
    const large = parts?.[3] !== undefined
    const wrong = (): never => this.fail(value.span, `${column.name} takes ${valueDescription[column.class]}, not "${shown(value.text)}"`, ['value'])
    if (!parts) return wrong()
    if (!large) {
      if (column.class === 'largeCommunities') return wrong()
      const [high, low] = [Number(parts[1]), Number(parts[2])]
      if (high > 0xffff || low > 0xffff) this.fail(value.span, `${shown(value.text)}: both halves of a community are 0 to 65535 (use a:b:c for a large community)`, ['value'])
      return `has(${column.sql}, ${this.param('UInt32', high * 0x10000 + low)})`
    }
    const numbers = [Number(parts[1]), Number(parts[2]), Number(parts[3])]
    if (numbers.some((n) => n > 0xffffffff)) this.fail(value.span, `${shown(value.text)}: each part of a large community is 0 to 4294967295`, ['value'])
    let target = column
    if (column.class === 'communities') {
      const largeName = column.name.replace(/Communities$/, 'LargeCommunities')
      const sibling = this.columns.get(largeName.toLowerCase())
      if (!sibling) this.fail(value.span, `${largeName} is not stored by this deployment, so large communities cannot be matched`, ['value'])
      target = sibling
    }
    return `has(${target.sql}, tuple(${numbers.map((n) => this.param('UInt32', n)).join(', ')}))`
  }

  private mac(column: FilterColumn, value: FilterLiteral): number {
    const text = value.text
    if (!value.quoted) {
      if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(text)) return parseInt(text.replace(/\./g, ''), 16)
      if (/^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i.test(text)) return parseMAC(text)
    }
    this.fail(value.span, `${column.name} takes ${valueDescription.mac}, not "${shown(text)}"`, ['value'])
  }

  private time(column: FilterColumn, value: FilterLiteral): number | string {
    const text = value.text.trim()
    let ms: number | undefined
    if (/^\d{1,10}$/.test(text)) {
      ms = Number(text) * 1000
    } else {
      const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?(Z)?$/.exec(text)
      if (m) {
        const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number]
        const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s, Number((m[7] ?? '0').padEnd(3, '0'))))
        // Date.UTC rolls 2024-02-31 over to March: a date that does not round-trip is invalid.
        if (date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && h < 24 && mi < 60 && s < 60) ms = date.getTime()
      }
    }
    if (ms === undefined || ms < 0 || ms >= 4294967296000) this.fail(value.span, `${column.name} takes ${valueDescription.time}, not "${shown(value.text)}"`, ['value'])
    const seconds = Math.floor(ms / 1000)
    return column.paramType === 'DateTime' ? seconds : `${seconds}.${String(ms % 1000).padStart(3, '0')}`
  }

  /** An address as [first, last] of its range; a plain address is a range of one. */
  private ipRange(column: FilterColumn, value: FilterLiteral): { first: string; last: string; single: boolean } {
    const wrong = (why: string): never => this.fail(value.span, `${column.name} takes ${valueDescription.ip}, not "${shown(value.text)}"${why}`, ['value'])
    if (value.quoted) return wrong(' (write addresses without quotes)')
    const slash = value.text.indexOf('/')
    const address = slash === -1 ? value.text : value.text.slice(0, slash)
    let bytes: Uint8Array
    try {
      bytes = parseIP(address)
    } catch {
      return wrong('')
    }
    if (slash === -1) {
      const text = ipText(bytes)
      return { first: text, last: text, single: true }
    }
    const prefixText = value.text.slice(slash + 1)
    const v4 = !address.includes(':')
    const max = v4 ? 32 : 128
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return wrong(` (the prefix length is 0 to ${max})`)
    const bits = Number(prefixText) + (v4 ? 96 : 0)
    const first = new Uint8Array(bytes)
    const last = new Uint8Array(bytes)
    for (let i = 0; i < 16; i++) {
      const keep = Math.max(0, Math.min(8, bits - 8 * i))
      const mask = (0xff << (8 - keep)) & 0xff
      first[i] = bytes[i]! & mask
      last[i] = (bytes[i]! & mask) | (~mask & 0xff)
    }
    return { first: ipText(first), last: ipText(last), single: false }
  }

  private ipCondition(column: FilterColumn, op: FilterOperator, value: FilterLiteral): Fragment {
    const range = this.ipRange(column, value)
    const negate = op === '!=' || op === '!<<'
    if (range.single && (op === '=' || op === '!=')) return { sql: `${column.sql} ${op} ${this.param('IPv6', range.first)}`, compound: false }
    const between = `${column.sql} BETWEEN ${this.param('IPv6', range.first)} AND ${this.param('IPv6', range.last)}`
    return negate ? { sql: `NOT (${between})`, compound: false } : { sql: between, compound: true }
  }

  private prefixCondition(column: FilterColumn, op: FilterOperator, value: FilterLiteral): Fragment {
    const slash = value.text.indexOf('/')
    if (value.quoted || slash === -1) this.fail(value.span, `${column.name} takes ${valueDescription.prefix}, not "${shown(value.text)}"`, ['value'])
    const range = this.ipRange(column, value)
    const length = Number(value.text.slice(slash + 1))
    const sql = `${column.sql} BETWEEN ${this.param('IPv6', range.first)} AND ${this.param('IPv6', range.last)} AND ${column.maskSql!} = ${this.param('UInt8', length)}`
    return op === '!=' ? { sql: `NOT (${sql})`, compound: false } : { sql, compound: true }
  }

  private ipList(column: FilterColumn, items: readonly FilterLiteral[], negate: boolean): Fragment {
    const ranges = items.map((item) => this.ipRange(column, item))
    if (ranges.every((r) => r.single)) {
      const list = ranges.map((r) => this.param('IPv6', r.first)).join(', ')
      return { sql: `${column.sql} ${negate ? 'NOT IN' : 'IN'} (${list})`, compound: false }
    }
    const terms = ranges.map((r) =>
      r.single ? `${column.sql} = ${this.param('IPv6', r.first)}` : `${column.sql} BETWEEN ${this.param('IPv6', r.first)} AND ${this.param('IPv6', r.last)}`,
    )
    return { sql: negate ? `NOT (${terms.join(' OR ')})` : `(${terms.join(' OR ')})`, compound: false }
  }
}

/** IPv6 text ClickHouse parses as IPv6: IPv4 stays in its mapped form rather than a bare dotted quad. */
const ipText = (bytes: Uint8Array): string => (isIPv4Mapped(bytes) ? `::ffff:${formatIP(bytes)}` : formatIP(bytes))

/**
 * Compiles a parsed filter for the deployment's columns. Errors (unknown column, operator that
 * does not apply, malformed value) point into the filter text like parse errors do.
 */
export const compileFilter = (ast: FilterAst, options: CompileOptions): CompileResult => {
  const prefix = options.paramPrefix ?? 'f'
  if (!PARAM_PREFIX.test(prefix)) throw new TypeError(`paramPrefix "${prefix}" must be an identifier ([A-Za-z_][A-Za-z0-9_]*)`)
  const compiler = new Compiler(ast.text, filterColumns(options.columns), options.swapDirection ?? false, prefix)
  try {
    return { ok: true, ...compiler.compile(ast.root) }
  } catch (e) {
    if (e instanceof CompileFailure) return { ok: false, error: e.error }
    throw e
  }
}
