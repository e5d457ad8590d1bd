// The classification rule language: `condition -> actions`, tokenized, parsed and compiled to
// closures once at config load (no eval, no access to anything but the fields given to a rule).
//
// rule       = condition "->" action { "," action }
// condition  = and { ("or" | "||") and }
// and        = not { ("and" | "&&") not }
// not        = ("not" | "!") not | "(" condition ")" | "true" | test
// test       = field op value
// op         = "==" "!=" "<" "<=" ">" ">=" "matches" "startsWith" "endsWith" "contains" "in"
// value      = string | number | "[" value { "," value } "]"
// action     = "reject" | target "=" (string | name | $n)
// Strings are double-quoted with \" and \\ escapes only (other backslashes are kept, so regexes
// read as written). `$1`…`$9` and `${name}` in an action take the captures of the condition's
// last successful `matches`.

/** A rule that does not compile: which rule, where in it, and what was expected. */
export class RuleError extends Error {
  constructor(
    /** Which rule list: `exporter` or `interface`. */
    readonly list: string,
    /** 0-based position of the rule in its list. */
    readonly rule: number,
    /** 1-based column in the rule's text. */
    readonly column: number,
    readonly reason: string,
    readonly text: string,
  ) {
    super(`${list} rule ${rule} ("${text}"), column ${column}: ${reason}`)
    this.name = 'RuleError'
  }
}

/** What a rule may read. `address` is the exporter address in text form. */
export type FieldType = 'string' | 'number' | 'address'
export interface FieldSpec {
  readonly type: FieldType
  /** Index into the values array handed to compiled conditions. */
  readonly slot: number
}

/** What a rule list can see and set, e.g. exporter rules see the exporter's name and address. */
export interface RuleDialect {
  readonly list: string
  /** Field names as written in rules (`Interface.Description`), matched case-insensitively. */
  readonly fields: Readonly<Record<string, FieldSpec>>
  /** Settable targets and their allowed literal values (undefined: any string). */
  readonly targets: Readonly<Record<string, readonly string[] | undefined>>
}

/** A field value as rules see it: strings, numbers, or an address as 16 bytes. */
export type FieldValue = string | number | Uint8Array

export interface CompiledRule {
  readonly text: string
  /** Evaluates the condition; on success, `captures` holds the last match's groups (or undefined). */
  readonly test: (values: readonly FieldValue[], scratch: Captures) => boolean
  readonly reject: boolean
  /** Targets set by the rule, with a function rendering the value from the captures. */
  readonly actions: readonly { readonly target: string; readonly value: (captures: Captures) => string }[]
}

/** Capture groups of the last successful `matches` while evaluating one rule. */
export interface Captures {
  match: RegExpExecArray | null
}

/** Longest field text a regex runs on: ifAlias is at most 64 characters (RFC 2863), names 255. */
export const MAX_MATCH_INPUT = 256

type TokenKind = 'ident' | 'string' | 'number' | 'op' | 'capture' | 'end'
interface Token {
  kind: TokenKind
  text: string
  /** 1-based column of the token's first character. */
  column: number
  /** Decoded value of strings and numbers. */
  value?: string | number
}

const operatorSymbols = ['->', '==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '[', ']', ',', '=']

function tokenize(text: string, fail: (column: number, reason: string) => never): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    const column = i + 1
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++
      continue
    }
    if (c === '"') {
      let value = ''
      let j = i + 1
      for (;;) {
        if (j >= text.length) fail(column, 'unterminated string: a closing " is missing')
        const d = text[j]!
        if (d === '"') break
        if (d === '\\' && (text[j + 1] === '"' || text[j + 1] === '\\')) {
          value += text[j + 1]
          j += 2
          continue
        }
        value += d
        j++
      }
      tokens.push({ kind: 'string', text: text.slice(i, j + 1), column, value })
      i = j + 1
      continue
    }
    if (c >= '0' && c <= '9') {
      let j = i
      while (j < text.length && text[j]! >= '0' && text[j]! <= '9') j++
      tokens.push({ kind: 'number', text: text.slice(i, j), column, value: Number(text.slice(i, j)) })
      i = j
      continue
    }
    if (c === '$') {
      const m = /^\$(?:([1-9])|\{([A-Za-z_][A-Za-z0-9_]*)\})/.exec(text.slice(i))
      if (m === null) fail(column, 'expected a capture reference like $1 or ${name} after "$"')
      tokens.push({ kind: 'capture', text: m[0], column, value: m[1] ?? m[2] })
      i += m[0].length
      continue
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i
      while (j < text.length && /[A-Za-z0-9_.]/.test(text[j]!)) j++
      tokens.push({ kind: 'ident', text: text.slice(i, j), column })
      i = j
      continue
    }
    const symbol = operatorSymbols.find((s) => text.startsWith(s, i))
    if (symbol === undefined) fail(column, `unexpected character "${c}"`)
    tokens.push({ kind: 'op', text: symbol, column })
    i += symbol.length
  }
  tokens.push({ kind: 'end', text: 'end of rule', column: text.length + 1 })
  return tokens
}

const describe = (t: Token): string => (t.kind === 'end' ? 'the end of the rule' : `"${t.text}"`)

/**
 * Rejects regexes whose backtracking can explode: a repeated group that itself contains a
 * repetition or an alternation (`(a+)+`, `(a|aa)*`), and backreferences. Returns why, or undefined.
 */
export function unsafeRegexReason(pattern: string): string | undefined {
  // Per open group: does it contain a quantifier or an alternation?
  const groups: { risky: boolean }[] = [{ risky: false }]
  let lastGroupRisky = false
  let afterGroup = false
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    let quantifier = false
    if (c === '\\') {
      const next = pattern[i + 1] ?? ''
      if (/[1-9]/.test(next) || (next === 'k' && pattern[i + 2] === '<')) return 'backreferences are not allowed'
      i++
      afterGroup = false
      continue
    }
    if (c === '[') {
      // Skip a character class (escapes included).
      let j = i + 1
      if (pattern[j] === '^') j++
      if (pattern[j] === ']') j++
      while (j < pattern.length && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1
      i = j
      afterGroup = false
      continue
    }
    if (c === '(') {
      groups.push({ risky: false })
      afterGroup = false
      // Group syntax is not a quantifier: (?:…) (?=…) (?!…) (?<=…) (?<!…) (?<name>…).
      const syntax = /^\?(?::|=|!|<=|<!|<[A-Za-z_][A-Za-z0-9_]*>)/.exec(pattern.slice(i + 1))
      if (syntax !== null) i += syntax[0].length
      continue
    }
    if (c === ')') {
      const g = groups.pop() ?? { risky: false }
      lastGroupRisky = g.risky
      afterGroup = true
      // A group's risk is also its parent's: ((a+)) repeated is as bad as (a+) repeated.
      if (g.risky) groups[groups.length - 1]!.risky = true
      continue
    }
    if (c === '|') {
      groups[groups.length - 1]!.risky = true
      afterGroup = false
      continue
    }
    let unbounded = false
    if (c === '*' || c === '+') {
      quantifier = true
      unbounded = true
    } else if (c === '?') {
      quantifier = true
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i))
      if (m !== null) {
        quantifier = true
        unbounded = m[2] !== undefined && (m[3] === '' || Number(m[3]) > 1)
        i += m[0].length - 1
      }
    }
    if (quantifier) {
      if (afterGroup && lastGroupRisky && unbounded) {
        return 'a repeated group contains a repetition or an alternation (catastrophic backtracking); rewrite it without nesting'
      }
      // `x?` after a quantifier is the lazy marker, not a new repetition; count it anyway (harmless).
      groups[groups.length - 1]!.risky = true
      afterGroup = false
      continue
    }
    afterGroup = false
  }
  return undefined
}

/** Compiles a regex as rules write it; a leading `(?i)` (Go/Akvorado habit) becomes the i flag. */
function compileRegex(pattern: string, fail: (reason: string) => never): RegExp {
  let flags = 'u'
  let source = pattern
  if (source.startsWith('(?i)')) {
    flags += 'i'
    source = source.slice(4)
  }
  const unsafe = unsafeRegexReason(source)
  if (unsafe !== undefined) fail(`regex "${pattern}": ${unsafe}`)
  try {
    return new RegExp(source, flags)
  } catch (e) {
    return fail(`regex "${pattern}" does not compile: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`)
  }
}

type Test = (values: readonly FieldValue[], captures: Captures) => boolean

/** Byte-wise prefix test of a 16-byte address against a parsed prefix. */
function inPrefix(address: Uint8Array, prefix: Uint8Array, length: number): boolean {
  const whole = length >> 3
  for (let i = 0; i < whole; i++) if (address[i] !== prefix[i]) return false
  const rest = length & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return (address[whole]! & mask) === (prefix[whole]! & mask)
}

export interface PrefixParser {
  (text: string): { address: Uint8Array; prefixLength: number }
}

/** Compiles one rule of a list; throws RuleError with the rule index and column. */
export function compileRule(dialect: RuleDialect, index: number, text: string, parsePrefix: PrefixParser): CompiledRule {
  const failAt = (column: number, reason: string): never => {
    throw new RuleError(dialect.list, index, column, reason, text)
  }
  const tokens = tokenize(text, failAt)
  let pos = 0
  const peek = (): Token => tokens[pos]!
  const next = (): Token => tokens[pos++]!
  const isOp = (t: Token, ...ops: string[]): boolean => (t.kind === 'op' || t.kind === 'ident') && ops.includes(t.text)
  const expect = (what: string, ok: boolean, t: Token): void => {
    if (!ok) failAt(t.column, `expected ${what}, got ${describe(t)}`)
  }
  // Capture groups of the rule's regexes, to check `$n` and `${name}` references.
  let maxGroups = 0
  const groupNames = new Set<string>()
  let hasMatches = false

  const fieldsByLower = new Map(Object.entries(dialect.fields).map(([name, spec]) => [name.toLowerCase(), { name, spec }]))
  const knownFields = Object.keys(dialect.fields).join(', ')

  const parseValue = (): Token | Token[] => {
    const t = next()
    if (t.kind === 'string' || t.kind === 'number') return t
    if (isOp(t, '[')) {
      const list: Token[] = []
      for (;;) {
        const v = next()
        expect('a string or a number in the list', v.kind === 'string' || v.kind === 'number', v)
        list.push(v)
        const sep = next()
        if (isOp(sep, ']')) return list
        expect('"," or "]"', isOp(sep, ','), sep)
      }
    }
    return failAt(t.column, `expected a string, a number or a [list], got ${describe(t)}`)
  }

  const parseTest = (): Test => {
    const fieldToken = next()
    expect(`a field (${knownFields}), "not" or "("`, fieldToken.kind === 'ident', fieldToken)
    const field = fieldsByLower.get(fieldToken.text.toLowerCase())
    if (field === undefined) return failAt(fieldToken.column, `unknown field "${fieldToken.text}" (known: ${knownFields})`)
    const { slot, type } = field.spec
    const opToken = next()
    const op = opToken.text
    const stringOps = ['==', '!=', 'matches', 'startsWith', 'endsWith', 'contains', 'in']
    const numberOps = ['==', '!=', '<', '<=', '>', '>=', 'in']
    const addressOps = ['==', '!=', 'in']
    const allowed = type === 'string' ? stringOps : type === 'number' ? numberOps : addressOps
    expect(`an operator for ${field.name} (${allowed.join(' ')})`, (opToken.kind === 'op' || opToken.kind === 'ident') && allowed.includes(op), opToken)
    const valueToken = peek()
    const value = parseValue()
    const list = Array.isArray(value) ? value : [value]
    if (Array.isArray(value) && op !== 'in') failAt(valueToken.column, `a [list] goes with "in", not "${op}"`)
    const wanted = type === 'number' ? 'number' : 'string'
    for (const v of list) {
      if (v.kind !== wanted) failAt(v.column, `expected a ${wanted === 'number' ? 'number' : 'string'} for ${field.name}, got ${describe(v)}`)
    }
    if (type !== 'address' && (op === '==' || op === '!=' || op === 'in')) {
      const literals = list.map((v) => v.value as string | number)
      const x = literals[0]!
      if (op === '==') return (values) => values[slot] === x
      if (op === '!=') return (values) => values[slot] !== x
      const set = new Set(literals)
      return (values) => set.has(values[slot] as string | number)
    }
    if (type === 'number') {
      const x = list[0]!.value as number
      switch (op) {
        case '<':
          return (values) => (values[slot] as number) < x
        case '<=':
          return (values) => (values[slot] as number) <= x
        case '>':
          return (values) => (values[slot] as number) > x
        default:
          return (values) => (values[slot] as number) >= x
      }
    }
    if (type === 'address') {
      // == compares one address; `in` takes prefixes (a bare address is a host prefix).
      if (op !== 'in' && (list[0]!.value as string).includes('/')) failAt(list[0]!.column, `use "in" to test ${field.name} against a prefix`)
      const prefixes = list.map((v) => {
        try {
          const p = parsePrefix(v.value as string)
          return { address: p.address, length: p.prefixLength }
        } catch (e) {
          return failAt(v.column, (e as Error).message)
        }
      })
      if (op !== 'in') {
        const p = prefixes[0]!
        const equal: Test = (values) => inPrefix(values[slot] as Uint8Array, p.address, 128)
        return op === '==' ? equal : (values, c) => !equal(values, c)
      }
      return (values) => {
        const a = values[slot] as Uint8Array
        for (const p of prefixes) if (inPrefix(a, p.address, p.length)) return true
        return false
      }
    }
    const s = list[0]!.value as string
    switch (op) {
      case 'startsWith':
        return (values) => (values[slot] as string).startsWith(s)
      case 'endsWith':
        return (values) => (values[slot] as string).endsWith(s)
      case 'contains':
        return (values) => (values[slot] as string).includes(s)
      default: {
        const regex = compileRegex(s, (reason) => failAt(valueToken.column, reason))
        hasMatches = true
        const probe = new RegExp(`${regex.source}|`, regex.flags).exec('')!
        maxGroups = Math.max(maxGroups, probe.length - 1)
        for (const name of Object.keys(probe.groups ?? {})) groupNames.add(name)
        return (values, captures) => {
          const text = values[slot] as string
          const m = regex.exec(text.length > MAX_MATCH_INPUT ? text.slice(0, MAX_MATCH_INPUT) : text)
          if (m === null) return false
          captures.match = m
          return true
        }
      }
    }
  }

  const parseNot = (): Test => {
    const t = peek()
    if (isOp(t, 'not', '!')) {
      next()
      const inner = parseNot()
      return (values, c) => !inner(values, c)
    }
    if (isOp(t, '(')) {
      next()
      const inner = parseOr()
      const close = next()
      expect('")"', isOp(close, ')'), close)
      return inner
    }
    if (t.kind === 'ident' && t.text === 'true') {
      next()
      return () => true
    }
    return parseTest()
  }
  const parseAnd = (): Test => {
    let left = parseNot()
    while (isOp(peek(), 'and', '&&')) {
      next()
      const a = left
      const b = parseNot()
      left = (values, c) => a(values, c) && b(values, c)
    }
    return left
  }
  const parseOr = (): Test => {
    let left = parseAnd()
    while (isOp(peek(), 'or', '||')) {
      next()
      const a = left
      const b = parseAnd()
      left = (values, c) => a(values, c) || b(values, c)
    }
    return left
  }

  const test = parseOr()
  const arrow = next()
  expect('"->" then the actions, or "and"/"or"', isOp(arrow, '->'), arrow)
  let reject = false
  const actions: { target: string; value: (captures: Captures) => string }[] = []
  const targets = Object.keys(dialect.targets).join(', ')
  for (;;) {
    const t = next()
    if (t.kind === 'ident' && t.text === 'reject') {
      reject = true
    } else {
      expect(`an action (reject, or one of ${targets} = value)`, t.kind === 'ident' && t.text in dialect.targets, t)
      const eq = next()
      expect(`"=" after ${t.text}`, isOp(eq, '='), eq)
      const v = next()
      const allowed = dialect.targets[t.text]
      let render: (captures: Captures) => string
      if (v.kind === 'capture') {
        render = captureRenderer(String(v.value), v.column)
      } else if (v.kind === 'string') {
        render = templateRenderer(v.value as string, v.column + 1)
      } else if (v.kind === 'ident' && allowed !== undefined) {
        render = () => v.text
      } else {
        return failAt(v.column, `expected a "string" or $1 for ${t.text}, got ${describe(v)}`)
      }
      if (allowed !== undefined) {
        const literal = v.kind === 'ident' ? v.text : (v.value as string)
        if (!allowed.includes(literal)) failAt(v.column, `${t.text} takes one of ${allowed.join(', ')}, got "${literal}"`)
      }
      if (actions.some((a) => a.target === t.text)) failAt(t.column, `${t.text} is set twice`)
      actions.push({ target: t.text, value: render })
    }
    const sep = next()
    if (sep.kind === 'end') break
    expect('"," then another action, or the end of the rule', isOp(sep, ','), sep)
  }
  if (reject && actions.length > 0) failAt(tokens[tokens.length - 1]!.column, '"reject" cannot be combined with other actions')
  return { text, test, reject, actions }

  function checkCapture(ref: string, column: number): void {
    if (!hasMatches) failAt(column, `$${ref.length > 1 ? `{${ref}}` : ref} refers to a capture, but the condition has no "matches"`)
    if (/^[1-9]$/.test(ref)) {
      if (Number(ref) > maxGroups) failAt(column, `$${ref} refers to group ${ref}, but the regexes have ${maxGroups} group(s)`)
    } else if (!groupNames.has(ref)) failAt(column, `\${${ref}} names no group of the regexes`)
  }
  function captureRenderer(ref: string, column: number): (captures: Captures) => string {
    checkCapture(ref, column)
    const n = /^[1-9]$/.test(ref) ? Number(ref) : -1
    return n > 0 ? (c) => c.match?.[n] ?? '' : (c) => c.match?.groups?.[ref] ?? ''
  }
  function templateRenderer(template: string, column: number): (captures: Captures) => string {
    const parts: ((c: Captures) => string)[] = []
    const re = /\$(?:([1-9])|\{([A-Za-z_][A-Za-z0-9_]*)\})/g
    let last = 0
    for (let m = re.exec(template); m !== null; m = re.exec(template)) {
      const literal = template.slice(last, m.index)
      if (literal !== '') parts.push(() => literal)
      parts.push(captureRenderer(m[1] ?? m[2]!, column + m.index))
      last = m.index + m[0].length
    }
    const tail = template.slice(last)
    if (parts.length === 0) return () => template
    if (tail !== '') parts.push(() => tail)
    return (c) => {
      let s = ''
      for (const p of parts) s += p(c)
      return s
    }
  }
}

/** Result of running a rule list: the targets set (first rule setting a target wins) or a rejection. */
export interface Classification {
  rejected: boolean
  values: Map<string, string>
}

/** Runs the rules in order: a target keeps the first value set; a matching reject stops and rejects. */
export function classify(rules: readonly CompiledRule[], values: readonly FieldValue[]): Classification {
  const out: Classification = { rejected: false, values: new Map() }
  const captures: Captures = { match: null }
  for (const rule of rules) {
    captures.match = null
    if (!rule.test(values, captures)) continue
    if (rule.reject) {
      out.rejected = true
      return out
    }
    for (const action of rule.actions) {
      if (!out.values.has(action.target)) out.values.set(action.target, action.value(captures))
    }
  }
  return out
}
