// What the gateway needs from the filter language (gateway/src/filter): validate, compile to
// parameterised SQL (optionally with Src↔Dst swapped) and complete. Injected, so queries and
// their tests do not depend on how the language is implemented.
import type { StorageColumn } from '@flowbus/runtime'
import { compileFilter, compileFilterText, completeFilter, parseFilter } from './filter/index.js'
import { QueryInputError } from './query/errors.js'

/** A filter compiled to a WHERE condition whose values are all ClickHouse query parameters. */
export interface CompiledFilter {
  /** SQL condition referring to parameters as {pN:Type}; '' when the filter is empty. */
  readonly sql: string
  readonly params: Readonly<Record<string, unknown>>
  /** Stored columns the filter reads (a raw-only one sends the query to the raw table). */
  readonly columns: readonly string[]
}

export interface FilterProblem {
  readonly message: string
  /** Offset in the filter text (0-based), line and column (1-based). */
  readonly offset: number
  readonly line: number
  readonly column: number
  readonly expected: readonly string[]
}

export interface FilterSuggestion {
  readonly label: string
  /** What the suggestion is: column, operator, value, keyword. */
  readonly kind: string
  readonly detail?: string
  /** Text to put in place of [from, to) of the filter. */
  readonly insertText: string
  readonly from: number
  readonly to: number
}

/** Values to look up in ClickHouse to complete a value: the column and what was typed so far. */
export interface ValueRequest {
  readonly column: string
  readonly prefix: string
  /** Insert the values as quoted strings. */
  readonly quoted: boolean
  readonly from: number
  readonly to: number
}

export interface FilterLanguage {
  /** Problems of a filter (empty: valid) and the columns it reads. */
  readonly validate: (text: string, columns: readonly StorageColumn[]) => { problems: readonly FilterProblem[]; columns: readonly string[] }
  /** Compiles the filter; throws a QueryInputError (code BAD_FILTER) naming the position when invalid. */
  readonly compile: (text: string, columns: readonly StorageColumn[], options: { swapDirection: boolean; paramPrefix: string }) => CompiledFilter
  readonly complete: (
    text: string,
    cursor: number,
    columns: readonly StorageColumn[],
  ) => { suggestions: readonly FilterSuggestion[]; values?: ValueRequest }
}

/** The filter language of gateway/src/filter behind the gateway's interface. */
export const akvoradoFilters: FilterLanguage = {
  validate: (text, columns) => {
    const parsed = parseFilter(text)
    const compiled = parsed.ok ? compileFilter(parsed.ast, { columns }) : parsed
    if (compiled.ok) return { problems: [], columns: compiled.columns }
    const e = compiled.error
    return { problems: [{ message: e.message, offset: e.offset, line: e.line, column: e.column, expected: e.expected }], columns: [] }
  },
  compile: (text, columns, options) => {
    const compiled = compileFilterText(text, { columns, swapDirection: options.swapDirection, paramPrefix: options.paramPrefix })
    if (!compiled.ok) {
      const e = compiled.error
      throw new QueryInputError(`filter: ${e.message} (line ${e.line}, column ${e.column}; expected ${e.expected.join(', ') || 'something else'})`, 'BAD_FILTER', {
        offset: e.offset,
        line: e.line,
        column: e.column,
        expected: e.expected,
      })
    }
    return { sql: compiled.sql, params: compiled.params, columns: compiled.columns }
  },
  complete: (text, cursor, columns) => {
    const completion = completeFilter(text, cursor, columns)
    const from = completion.replaceFrom
    const to = completion.replaceTo
    return {
      suggestions: completion.suggestions.map((s) => ({ label: s.label, kind: s.kind, ...(s.detail ? { detail: s.detail } : {}), insertText: s.label, from, to })),
      ...(completion.valuesFor ? { values: { column: completion.valuesFor.column, prefix: completion.valuesFor.prefix, quoted: completion.valuesFor.quoted, from, to } } : {}),
    }
  },
}
