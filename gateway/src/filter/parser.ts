// Hand-written recursive-descent parser of Akvorado's filter language into a FilterAst: one pass
// over the text, no backtracking, nesting bounded so hostile input cannot exhaust the stack.
import {
  type FilterAst,
  type FilterCondition,
  type FilterError,
  type FilterList,
  type FilterLiteral,
  type FilterNode,
  type FilterOperator,
  type ParseResult,
  type Span,
  filterError,
  filterOperators,
  shown,
} from './ast.js'

/** Parentheses and NOTs nested deeper than this are refused (each level is a stack frame). */
export const MAX_FILTER_DEPTH = 100

const isIdentStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95
const isIdentPart = (c: number): boolean => isIdentStart(c) || (c >= 48 && c <= 57)
const isBlank = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11

/** Characters that end a bare value: blanks, list and group punctuation, quotes, operator starts. */
const endsBareValue = (c: number): boolean =>
  isBlank(c) || c === 40 || c === 41 || c === 44 || c === 34 || c === 39 || c === 61 || c === 60 || c === 62 || c === 33

/** Operators written as words, upper case; the symbolic ones are scanned character by character. */
const wordOperators = new Set<string>(['IN', 'NOTIN', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE'])

const expectedStart = ['column name', 'NOT', '(']
const expectedOperator = [...filterOperators]
const describeExpectedAfterCondition = (depth: number): string[] => (depth > 0 ? ['AND', 'OR', ')'] : ['AND', 'OR', 'end of filter'])

class ParseFailure {
  constructor(readonly error: FilterError) {}
}

/** A parser over one text; `steps` counts characters scanned and rules entered (linearity checks). */
export class FilterParser {
  pos = 0
  steps = 0
  private depth = 0

  constructor(readonly text: string) {}

  parse(): FilterAst {
    this.skipBlank()
    if (this.pos >= this.text.length) return { text: this.text, root: null }
    const root = this.parseOr()
    this.skipBlank()
    if (this.pos < this.text.length) this.fail(this.pos, 'unexpected text after the filter', describeExpectedAfterCondition(0))
    return { text: this.text, root }
  }

  // --- errors --------------------------------------------------------------------------------

  private fail(offset: number, message: string, expected: readonly string[], length?: number): never {
    const found = this.describeAt(offset)
    const list = expected.length > 0 ? `expected ${joinAlternatives(expected)}, found ${found}` : `found ${found}`
    throw new ParseFailure(filterError(this.text, offset, `${message}: ${list}`, expected, length ?? this.tokenLengthAt(offset)))
  }

  /** The text at `offset` as a person would name it in an error. */
  private describeAt(offset: number): string {
    if (offset >= this.text.length) return 'end of filter'
    const length = this.tokenLengthAt(offset)
    const token = this.text.slice(offset, offset + Math.min(length, 40))
    return JSON.stringify(length > 40 ? `${token}…` : token)
  }

  private tokenLengthAt(offset: number): number {
    if (offset >= this.text.length) return 0
    let end = offset
    if (isIdentPart(this.text.charCodeAt(end))) {
      while (end < this.text.length && isIdentPart(this.text.charCodeAt(end))) end++
    } else {
      end++
    }
    return end - offset
  }

  // --- scanning --------------------------------------------------------------------------------

  /** Skips blanks, `-- line` comments and `/* block *\/` comments. */
  skipBlank(): void {
    const text = this.text
    for (;;) {
      this.steps++
      const c = text.charCodeAt(this.pos)
      if (isBlank(c)) {
        this.pos++
      } else if (c === 45 && text.charCodeAt(this.pos + 1) === 45) {
        const end = text.indexOf('\n', this.pos + 2)
        this.steps += (end === -1 ? text.length : end) - this.pos
        this.pos = end === -1 ? text.length : end + 1
      } else if (c === 47 && text.charCodeAt(this.pos + 1) === 42) {
        const end = text.indexOf('*/', this.pos + 2)
        if (end === -1) {
          throw new ParseFailure(filterError(text, this.pos, 'comment not closed: a "/*" comment ends with "*/"', ['*/'], 2))
        }
        this.steps += end + 2 - this.pos
        this.pos = end + 2
      } else {
        return
      }
    }
  }

  /** An identifier at the current position (no blank skipping), or undefined. */
  private scanIdent(): { text: string; span: Span } | undefined {
    const start = this.pos
    if (!isIdentStart(this.text.charCodeAt(start))) return undefined
    let end = start + 1
    while (end < this.text.length && isIdentPart(this.text.charCodeAt(end))) end++
    this.steps += end - start
    this.pos = end
    return { text: this.text.slice(start, end), span: { offset: start, length: end - start } }
  }

  /** Whether a keyword (case-insensitive, whole word) is at the current position; consumes it if so. */
  private acceptKeyword(keyword: string): Span | undefined {
    const start = this.pos
    const end = start + keyword.length
    if (end > this.text.length) return undefined
    // Compared code by code (keywords are ASCII letters): no substring per token.
    for (let i = 0; i < keyword.length; i++) {
      if ((this.text.charCodeAt(start + i) | 0x20) !== (keyword.charCodeAt(i) | 0x20)) return undefined
    }
    if (end < this.text.length && isIdentPart(this.text.charCodeAt(end))) return undefined
    this.steps += keyword.length
    this.pos = end
    return { offset: start, length: keyword.length }
  }

  // --- grammar ---------------------------------------------------------------------------------

  private enter(offset: number): void {
    if (++this.depth > MAX_FILTER_DEPTH) {
      throw new ParseFailure(
        filterError(this.text, offset, `filter nested too deeply: more than ${MAX_FILTER_DEPTH} levels of parentheses and NOT`, [], 1),
      )
    }
  }

  private parseOr(): FilterNode {
    return this.parseChain('or', () => this.parseAnd())
  }

  private parseAnd(): FilterNode {
    return this.parseChain('and', () => this.parseUnary())
  }

  /** `operand { AND|OR operand }` as one node: a long chain is a loop, not nested calls. */
  private parseChain(type: 'and' | 'or', operand: () => FilterNode): FilterNode {
    this.steps++
    const keyword = type === 'and' ? 'AND' : 'OR'
    const first = operand()
    const operands = [first]
    for (;;) {
      this.skipBlank()
      if (!this.acceptKeyword(keyword)) break
      this.skipBlank()
      operands.push(operand())
    }
    return operands.length === 1 ? first : { type, operands, span: spanOf(first.span, operands[operands.length - 1]!.span) }
  }

  private parseUnary(): FilterNode {
    this.steps++
    const start = this.pos
    const not = this.acceptKeyword('NOT')
    if (not) {
      this.enter(start)
      this.skipBlank()
      const operand = this.parseUnary()
      this.depth--
      return { type: 'not', operand, span: spanOf(not, operand.span) }
    }
    if (this.text.charCodeAt(this.pos) === 40) {
      this.enter(start)
      this.pos++
      this.skipBlank()
      const inner = this.parseOr()
      this.skipBlank()
      if (this.text.charCodeAt(this.pos) !== 41) {
        this.fail(this.pos, `unclosed "(" at offset ${start}`, ['AND', 'OR', ')'])
      }
      this.pos++
      this.depth--
      // The group's span covers its parentheses, so errors on it point at what the user wrote.
      return withSpan(inner, { offset: start, length: this.pos - start })
    }
    return this.parseCondition()
  }

  private parseCondition(): FilterCondition {
    this.steps++
    const start = this.pos
    const column = this.scanIdent()
    if (!column) this.fail(start, 'a condition starts with a column name', expectedStart)
    const upper = column.text.toUpperCase()
    if (upper === 'AND' || upper === 'OR') {
      this.pos = start
      this.fail(start, `"${column.text}" needs a condition before it`, expectedStart)
    }
    this.skipBlank()
    const operator = this.parseOperator(column.text)
    this.skipBlank()
    const value = operator.op === 'IN' || operator.op === 'NOTIN' ? this.parseList(operator.op) : this.parseLiteral(`after ${operator.op}`)
    return { type: 'condition', column: { name: column.text, span: column.span }, operator, value, span: spanOf(column.span, value.span) }
  }

  private parseOperator(column: string): { op: FilterOperator; span: Span } {
    const start = this.pos
    const text = this.text
    const c = text.charCodeAt(start)
    const c1 = text.charCodeAt(start + 1)
    const c2 = text.charCodeAt(start + 2)
    if (c === 33 && c1 === 60 && c2 === 60) return this.symbol('!<<', 3) // !<<
    if (c === 33 && c1 === 61) return this.symbol('!=', 2)
    if (c === 60 && c1 === 60) return this.symbol('<<', 2)
    if (c === 60 && c1 === 61) return this.symbol('<=', 2)
    if (c === 62 && c1 === 61) return this.symbol('>=', 2)
    if (c === 60 && c1 === 62) return this.symbol('!=', 2) // SQL's <>
    if (c === 60) return this.symbol('<', 1)
    if (c === 62) return this.symbol('>', 1)
    if (c === 61) return this.symbol('=', c1 === 61 ? 2 : 1) // `==` is forgiven
    const ident = this.scanIdent()
    if (ident) {
      const upper = ident.text.toUpperCase()
      if (wordOperators.has(upper)) return { op: upper as FilterOperator, span: ident.span }
      // Older Akvorado spellings: NOT IN, NOT LIKE, NOT ILIKE.
      if (upper === 'NOT') {
        this.skipBlank()
        const next = this.scanIdent()
        const negated = next ? ({ IN: 'NOTIN', LIKE: 'UNLIKE', ILIKE: 'IUNLIKE' } as const)[next.text.toUpperCase() as 'IN'] : undefined
        if (next && negated) return { op: negated, span: spanOf(ident.span, next.span) }
        this.fail(next ? next.span.offset : this.pos, 'after NOT in a condition', ['IN', 'LIKE', 'ILIKE'])
      }
      this.pos = start
    }
    this.fail(start, `after ${shown(column)}`, expectedOperator)
  }

  private readonly symbol = (op: FilterOperator, length: number): { op: FilterOperator; span: Span } => {
    const span = { offset: this.pos, length }
    this.pos += length
    this.steps += length
    return { op, span }
  }

  private parseList(op: 'IN' | 'NOTIN'): FilterList {
    const start = this.pos
    if (this.text.charCodeAt(start) !== 40) this.fail(start, `${op} takes a parenthesised list`, ['('])
    this.pos++
    const items: FilterLiteral[] = []
    for (;;) {
      this.steps++
      this.skipBlank()
      items.push(this.parseLiteral(`in the ${op} list`))
      this.skipBlank()
      const c = this.text.charCodeAt(this.pos)
      if (c === 44) {
        this.pos++
        continue
      }
      if (c === 41) {
        this.pos++
        break
      }
      this.fail(this.pos, `${op} list opened at offset ${start} is not closed`, [',', ')'])
    }
    return { type: 'list', items, span: { offset: start, length: this.pos - start } }
  }

  private parseLiteral(where: string): FilterLiteral {
    const start = this.pos
    const text = this.text
    const quote = text.charCodeAt(start)
    if (quote === 34 || quote === 39) {
      let value = ''
      let chunk = start + 1
      let i = start + 1
      for (;;) {
        this.steps++
        if (i >= text.length || text.charCodeAt(i) === 10) {
          const q = String.fromCharCode(quote)
          throw new ParseFailure(filterError(text, start, `string not terminated: a string opened with ${q} ends with ${q} on the same line`, [q], i - start))
        }
        const c = text.charCodeAt(i)
        if (c === quote) break
        // Only \\, \' and \" are escapes (as in Akvorado); any other backslash stays as written.
        if (c === 92) {
          const n = text.charCodeAt(i + 1)
          if (n === 92 || n === 34 || n === 39) {
            value += text.slice(chunk, i) + String.fromCharCode(n)
            i += 2
            chunk = i
            continue
          }
        }
        i++
      }
      value += text.slice(chunk, i)
      this.pos = i + 1
      return { type: 'literal', text: value, quoted: true, span: { offset: start, length: this.pos - start } }
    }
    let end = start
    while (end < text.length) {
      const c = text.charCodeAt(end)
      if (endsBareValue(c)) break
      // A comment may follow a value without a blank.
      if ((c === 45 && text.charCodeAt(end + 1) === 45) || (c === 47 && text.charCodeAt(end + 1) === 42)) break
      end++
    }
    this.steps += end - start + 1
    if (end === start) this.fail(start, `a value is missing ${where}`, ['value'])
    this.pos = end
    return { type: 'literal', text: text.slice(start, end), quoted: false, span: { offset: start, length: end - start } }
  }
}

const spanOf = (first: Span, last: Span): Span => ({ offset: first.offset, length: last.offset + last.length - first.offset })

const withSpan = (node: FilterNode, span: Span): FilterNode => ({ ...node, span })

/** `a`, `a or b`, `a, b or c`. */
export const joinAlternatives = (items: readonly string[]): string => {
  const quoted = items.map((i) => (/^[a-z]/.test(i) ? i : `"${i}"`))
  return quoted.length <= 1 ? (quoted[0] ?? '') : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`
}

/** Parses and counts the work done: the linearity tests compare counts across input sizes. */
export const parseFilterCounted = (text: string): { result: ParseResult; steps: number } => {
  const parser = new FilterParser(text)
  try {
    const ast = parser.parse()
    return { result: { ok: true, ast }, steps: parser.steps }
  } catch (e) {
    if (e instanceof ParseFailure) return { result: { ok: false, error: e.error }, steps: parser.steps }
    throw e
  }
}

/**
 * Parses a filter into its syntax tree, or the first syntax error with its position and what was
 * expected there. Column names and values are checked by compileFilter, which knows the schema.
 */
export const parseFilter = (text: string): ParseResult => parseFilterCounted(text).result
