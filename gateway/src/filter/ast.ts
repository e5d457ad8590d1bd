// The filter language's syntax tree and its one error shape, shared by the parser, the compiler
// and completion. Every node keeps its span in the filter text so errors can point at it.

/** A range of the filter text: `offset` and `length` in UTF-16 code units (JavaScript string indexes). */
export interface Span {
  readonly offset: number
  readonly length: number
}

/** Comparison operators, as written (NOTIN, UNLIKE and IUNLIKE are Akvorado's negations). */
export type FilterOperator =
  | '='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | '<<'
  | '!<<'
  | 'IN'
  | 'NOTIN'
  | 'LIKE'
  | 'ILIKE'
  | 'UNLIKE'
  | 'IUNLIKE'

/** Every operator, in the order completion offers them. */
export const filterOperators: readonly FilterOperator[] = ['=', '!=', '<', '<=', '>', '>=', '<<', '!<<', 'IN', 'NOTIN', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE']

/**
 * A value as written: the parser does not know column types, so a bare word (`external`,
 * `AS12322`, `192.0.2.0/24`, `DstPort`) stays text until the compiler reads it for its column.
 */
export interface FilterLiteral {
  readonly type: 'literal'
  readonly text: string
  /** Written between quotes (a string); a bare word may also name a column. */
  readonly quoted: boolean
  readonly span: Span
}

/** The parenthesised list after IN and NOTIN. */
export interface FilterList {
  readonly type: 'list'
  readonly items: readonly FilterLiteral[]
  readonly span: Span
}

export interface FilterCondition {
  readonly type: 'condition'
  /** The column as written (any case); the compiler resolves it against the schema. */
  readonly column: { readonly name: string; readonly span: Span }
  readonly operator: { readonly op: FilterOperator; readonly span: Span }
  readonly value: FilterLiteral | FilterList
  readonly span: Span
}

export interface FilterLogical {
  readonly type: 'and' | 'or'
  /** Two or more operands (a chain `a AND b AND c` is one node, so long chains do not nest). */
  readonly operands: readonly FilterNode[]
  readonly span: Span
}

export interface FilterNot {
  readonly type: 'not'
  readonly operand: FilterNode
  readonly span: Span
}

export type FilterNode = FilterCondition | FilterLogical | FilterNot

/** A parsed filter: its tree, and the text its spans point into (for positioned compile errors). */
export interface FilterAst {
  readonly text: string
  /** `null` for an empty filter (only blanks and comments), which matches every flow. */
  readonly root: FilterNode | null
}

/** What went wrong and where: the one error shape of parsing, compiling and validation. */
export interface FilterError {
  readonly message: string
  /** UTF-16 offset of the problem in the filter text. */
  readonly offset: number
  /** 1-based line and column (column in UTF-16 code units, as editors such as CodeMirror count). */
  readonly line: number
  readonly column: number
  /** Length of the offending text, when it is a token. */
  readonly length?: number
  /** What would have been accepted at that place, e.g. `["AND", "OR", ")", "end of filter"]`. */
  readonly expected: readonly string[]
}

export type ParseResult = { readonly ok: true; readonly ast: FilterAst } | { readonly ok: false; readonly error: FilterError }

/** User text inside a message, cut short so a megabyte of input does not make a megabyte of error. */
export const shown = (text: string): string => (text.length > 40 ? `${text.slice(0, 40)}…` : text)

/** Builds a positioned error from an offset in `text`. */
export const filterError = (text: string, offset: number, message: string, expected: readonly string[], length?: number): FilterError => {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return { message, offset, line, column: offset - lineStart + 1, ...(length !== undefined ? { length } : {}), expected }
}
