// Completion for the filter editor: what may come at the cursor (columns, operators, keywords,
// static values) following the grammar, and which column's values the gateway should look up.
import type { StorageColumn } from '@flowbus/runtime'
import { filterOperators } from './ast.js'
import { operatorsByClass, valueDescription } from './compile.js'
import { type FilterColumn, filterColumns } from './columns.js'

export interface FilterSuggestion {
  /** Text to insert in place of `replaceFrom`…`replaceTo`. */
  readonly label: string
  readonly kind: 'column' | 'operator' | 'value' | 'keyword'
  readonly detail?: string
}

export interface FilterCompletion {
  readonly replaceFrom: number
  readonly replaceTo: number
  readonly suggestions: readonly FilterSuggestion[]
  /**
   * A value of this column is expected: the gateway adds the column's values that start with
   * `prefix` (distinct values from ClickHouse). `quoted`: insert them as quoted strings.
   */
  readonly valuesFor?: { readonly column: string; readonly prefix: string; readonly quoted: boolean }
}

type State = 'expr' | 'operator' | 'value' | 'listStart' | 'listValue' | 'listNext' | 'after'

const isIdentStart = (c: string): boolean => /[A-Za-z_]/.test(c)
const isIdentPart = (c: string): boolean => /[A-Za-z0-9_]/.test(c)
const isBlank = (c: string): boolean => /[ \t\n\r\f\v]/.test(c)
const endsBare = (c: string): boolean => isBlank(c) || '(),"\'=<>!'.includes(c)
const wordOps = new Set(['IN', 'NOTIN', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE'])

const lookedUp = new Set<FilterColumn['class']>(['string', 'ip', 'asn', 'uint'])

const startsWith = (label: string, prefix: string): boolean => label.toLowerCase().startsWith(prefix.toLowerCase())

/**
 * Suggestions at `cursor` (a UTF-16 offset) in `text`. Text after the cursor is ignored except to
 * extend the word being typed; malformed text before the cursor gives no suggestions.
 */
export const completeFilter = (text: string, cursor: number, columns: readonly StorageColumn[]): FilterCompletion => {
  cursor = Math.max(0, Math.min(cursor, text.length))
  const known = filterColumns(columns)
  const none: FilterCompletion = { replaceFrom: cursor, replaceTo: cursor, suggestions: [] }
  let state: State = 'expr'
  let column: FilterColumn | undefined
  let depth = 0
  let pos = 0

  const suggest = (at: State, from: number, to: number, prefix: string): FilterCompletion => {
    const out: FilterSuggestion[] = []
    let valuesFor: FilterCompletion['valuesFor']
    switch (at) {
      case 'expr':
        for (const c of known.values()) {
          if (startsWith(c.name, prefix)) out.push({ label: c.name, kind: 'column', detail: `${valueDescription[c.class]}${c.aggregated ? '' : '; reads the raw table'}` })
        }
        if (startsWith('NOT', prefix)) out.push({ label: 'NOT', kind: 'keyword' })
        break
      case 'operator':
        for (const op of column ? operatorsByClass[column.class] : filterOperators) if (startsWith(op, prefix)) out.push({ label: op, kind: 'operator' })
        break
      case 'value':
      case 'listValue': {
        if (!column) break
        const unquoted = prefix.replace(/^["']/, '')
        for (const [name, number] of column.names ?? []) {
          if (startsWith(name, unquoted)) out.push({ label: name, kind: 'value', ...(column.class === 'enum' ? {} : { detail: String(number) }) })
        }
        // Only scalar columns whose values read back as filter values: not arrays, MACs (numbers) or times.
        if (lookedUp.has(column.class) && !column.names && column.dimension) {
          valuesFor = { column: column.name, prefix: unquoted, quoted: column.class === 'string' }
        }
        break
      }
      case 'listStart':
        out.push({ label: '(', kind: 'keyword' })
        break
      case 'listNext':
        out.push({ label: ',', kind: 'keyword' }, { label: ')', kind: 'keyword' })
        break
      case 'after':
        for (const k of ['AND', 'OR']) if (startsWith(k, prefix)) out.push({ label: k, kind: 'keyword' })
        if (depth > 0 && prefix === '') out.push({ label: ')', kind: 'keyword' })
        break
    }
    return { replaceFrom: from, replaceTo: to, suggestions: out, ...(valuesFor ? { valuesFor } : {}) }
  }

  while (pos < cursor) {
    const c = text[pos]!
    // Blanks and comments; a cursor inside a comment gets nothing.
    if (isBlank(c)) {
      pos++
      continue
    }
    if (c === '-' && text[pos + 1] === '-') {
      const end = text.indexOf('\n', pos)
      if (end === -1 || end >= cursor) return none
      pos = end + 1
      continue
    }
    if (c === '/' && text[pos + 1] === '*') {
      const end = text.indexOf('*/', pos + 2)
      if (end === -1 || end + 2 > cursor) return none
      pos = end + 2
      continue
    }
    // The token starting at pos: if it reaches the cursor, it is what the user is typing.
    let end = pos
    if (state === 'value' || state === 'listValue') {
      if (c === '"' || c === "'") {
        end = pos + 1
        while (end < text.length && text[end] !== c && text[end] !== '\n') end += text[end] === '\\' ? 2 : 1
        if (end >= cursor) return suggest(state, pos, Math.min(text.length, end + 1), text.slice(pos, cursor))
        end++
      } else {
        while (end < text.length && !endsBare(text[end]!) && !(text.startsWith('--', end) || text.startsWith('/*', end))) end++
        if (end === pos) return none
        if (end >= cursor) return suggest(state, pos, end, text.slice(pos, cursor))
      }
      pos = end
      state = state === 'value' ? 'after' : 'listNext'
      continue
    }
    if (isIdentStart(c)) {
      while (end < text.length && isIdentPart(text[end]!)) end++
      const word = text.slice(pos, end)
      if (end >= cursor) return suggest(state, pos, end, text.slice(pos, cursor))
      const upper = word.toUpperCase()
      pos = end
      if (state === 'expr') {
        if (upper === 'NOT') continue
        column = known.get(word.toLowerCase())
        state = 'operator'
      } else if (state === 'operator') {
        if (upper === 'NOT') continue // NOT IN, NOT LIKE
        if (!wordOps.has(upper)) return none
        state = upper === 'IN' || upper === 'NOTIN' ? 'listStart' : 'value'
      } else if (state === 'after') {
        if (upper !== 'AND' && upper !== 'OR') return none
        state = 'expr'
      } else {
        return none
      }
      continue
    }
    if (state === 'operator') {
      const op = ['!<<', '!=', '<<', '<=', '>=', '<>', '==', '<', '>', '='].find((o) => text.startsWith(o, pos))
      if (!op) return none
      if (pos + op.length >= cursor) return suggest('operator', pos, pos + op.length, text.slice(pos, cursor))
      pos += op.length
      state = 'value'
      continue
    }
    if (c === '(' && state === 'expr') {
      depth++
      pos++
      continue
    }
    if (c === '(' && state === 'listStart') {
      pos++
      state = 'listValue'
      continue
    }
    if (c === ',' && state === 'listNext') {
      pos++
      state = 'listValue'
      continue
    }
    if (c === ')' && state === 'listNext') {
      pos++
      state = 'after'
      continue
    }
    if (c === ')' && state === 'after' && depth > 0) {
      depth--
      pos++
      continue
    }
    return none
  }
  // Between tokens: everything the grammar allows here, nothing typed yet.
  return suggest(state, cursor, cursor, '')
}
