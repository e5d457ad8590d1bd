// The filter language (Akvorado's): parse, compile to parameterised ClickHouse SQL, reverse for
// bidirectional queries, validate and complete. The gateway's resolvers use only this surface.
import type { StorageColumn } from '@flowbus/runtime'
import type { FilterError } from './ast.js'
import { type CompileOptions, type CompileResult, compileFilter } from './compile.js'
import { parseFilter } from './parser.js'

export type { FilterAst, FilterCondition, FilterError, FilterList, FilterLiteral, FilterNode, FilterOperator, ParseResult, Span } from './ast.js'
export { filterOperators } from './ast.js'
export { MAX_FILTER_DEPTH, parseFilter } from './parser.js'
export { type CompileOptions, type CompileResult, type CompiledFilter, compileFilter, operatorsByClass } from './compile.js'
export { type FilterColumn, type FilterColumnClass, etherTypes, filterColumns, protocolNumbers, swapColumnName } from './columns.js'
export { swapDirection } from './swap.js'
export { type FilterCompletion, type FilterSuggestion, completeFilter } from './complete.js'

/** Parses and compiles in one step: what a resolver taking a filter string needs. */
export const compileFilterText = (text: string, options: CompileOptions): CompileResult => {
  const parsed = parseFilter(text)
  return parsed.ok ? compileFilter(parsed.ast, options) : parsed
}

/** Whether `text` is a valid filter for these columns; the first error, positioned, if not. */
export const validateFilter = (
  text: string,
  columns: readonly StorageColumn[],
): { readonly ok: true } | { readonly ok: false; readonly error: FilterError } => {
  const compiled = compileFilterText(text, { columns })
  return compiled.ok ? { ok: true } : compiled
}
