// Hostile filters: injection attempts in every value position, quotes, backslashes, comments in odd
// places, unicode, very long and deeply nested input. The generated SQL must always be made only of
// column names, operators and {param:Type} placeholders, and parsing must stay linear in the input.
import { allStorageColumns } from '@flowbus/runtime'
import { describe, expect, it } from 'vitest'
import { MAX_FILTER_DEPTH, compileFilterText, completeFilter, filterColumns, operatorsByClass, parseFilter } from '../../src/filter/index.js'
import { parseFilterCounted } from '../../src/filter/parser.js'
import { hostileTexts, quote, randomFilter, seededRandom } from './generate.js'

const columns = allStorageColumns
const known = filterColumns(columns)

// --- the whitelist ---------------------------------------------------------------------------------

const sqlWords = new Set(['AND', 'OR', 'NOT', 'IN', 'LIKE', 'ILIKE', 'BETWEEN', 'has', 'hasAny', 'tuple', 'true', 'intDivOrZero'])
const columnNames = new Set([...known.values()].flatMap((c) => c.references))
const paramTypes = 'UInt8|UInt16|UInt32|UInt64|Int8|IPv6|String|DateTime|DateTime64\\(3\\)'
const sqlToken = new RegExp(`\\s+|\\{([A-Za-z_][A-Za-z0-9_]*):(?:${paramTypes})\\}|<=|>=|!=|=|<|>|\\(|\\)|,|\\[|\\]|([A-Za-z][A-Za-z0-9]*)`, 'y')

/** Why `sql` is not made only of whitelisted tokens, or undefined when it is; checks its placeholders against `params`. */
const whitelistProblem = (sql: string, params: Record<string, unknown>): string | undefined => {
  sqlToken.lastIndex = 0
  const placeholders = new Set<string>()
  while (sqlToken.lastIndex < sql.length) {
    const at = sqlToken.lastIndex
    const m = sqlToken.exec(sql)
    if (!m) return `unexpected SQL at ${at}: ${JSON.stringify(sql.slice(at, at + 40))}`
    if (m[1]) placeholders.add(m[1])
    if (m[2] && !sqlWords.has(m[2]) && !columnNames.has(m[2])) return `identifier ${m[2]} is neither a column nor an SQL word`
  }
  const names = Object.keys(params)
  if (names.length !== placeholders.size || names.some((n) => !placeholders.has(n))) return `placeholders ${[...placeholders]} do not match params ${names}`
  for (const [name, value] of Object.entries(params)) {
    if (typeof value !== 'string' && typeof value !== 'number') return `param ${name} is a ${typeof value}`
  }
  return undefined
}

/** Compiles and checks: never throws, and a success is whitelisted SQL. Returns the result. */
const checked = (text: string) => {
  const result = compileFilterText(text, { columns })
  if (result.ok) {
    const problem = whitelistProblem(result.sql, result.params)
    if (problem) throw new Error(`${JSON.stringify(text.slice(0, 200))} compiled to ${result.sql.slice(0, 200)}: ${problem}`)
  } else {
    // The position is inside the text and line/column agree with it (plain checks: this runs ~30k times).
    const { offset, line, column, message } = result.error
    const before = text.slice(0, offset)
    const want = { line: before.split('\n').length, column: offset - (before.lastIndexOf('\n') + 1) + 1 }
    if (offset < 0 || offset > text.length || line !== want.line || column !== want.column || message.length >= 400) {
      throw new Error(`${JSON.stringify(text.slice(0, 200))}: bad error position or message ${JSON.stringify(result.error).slice(0, 600)}`)
    }
  }
  return result
}

describe('the SQL whitelist check', () => {
  it('accepts compiled SQL and catches text that is not a column, operator or placeholder', () => {
    expect(whitelistProblem('DstPort = {f0:UInt16} AND has(DstASPath, {f1:UInt32})', { f0: 1, f1: 2 })).toBeUndefined()
    expect(whitelistProblem("DstPort = 1 AND ExporterName = 'x'", {})).toMatch(/unexpected SQL/)
    expect(whitelistProblem('DstPort = {f0:UInt16}; DROP TABLE flows', { f0: 1 })).toMatch(/unexpected SQL/)
    expect(whitelistProblem('DROP = {f0:UInt16}', { f0: 1 })).toMatch(/identifier DROP/)
    expect(whitelistProblem('DstPort = {f0:UInt16}', { f0: 1, f1: 2 })).toMatch(/placeholders/)
  })
})

describe('hostile values', () => {
  it('in every value position of every column and operator, quoted or bare, compile to placeholders or a positioned error', () => {
    let compiled = 0
    let rejected = 0
    for (const column of known.values()) {
      for (const op of operatorsByClass[column.class]) {
        for (const hostile of hostileTexts) {
          const values = [quote(hostile, '"'), quote(hostile, "'"), hostile]
          for (const value of values) {
            const text = op === 'IN' || op === 'NOTIN' ? `${column.name} ${op} (${value}, ${value})` : `${column.name} ${op} ${value}`
            const result = checked(text)
            if (result.ok) {
              compiled++
              // The hostile text is a parameter value, never SQL.
              if (!Object.values(result.params).includes(hostile)) throw new Error(`${text}: ${JSON.stringify(result.params)} lacks the value`)
            } else {
              rejected++
            }
          }
        }
      }
    }
    // String columns take any text: many compile. Typed columns refuse it.
    expect(compiled).toBeGreaterThan(500)
    expect(rejected).toBeGreaterThan(1000)
  })

  it('SQL words and injection attempts outside values are syntax errors or unknown columns', () => {
    const cases: [string, RegExp][] = [
      ['DstPort = 1; DROP TABLE flows', /^unexpected text after the filter/],
      ['DstPort = 1 UNION SELECT 1', /^unexpected text after the filter: expected "AND", "OR" or end of filter, found "UNION"$/],
      ['SELECT = 1', /^unknown column "SELECT"$/],
      ['DstPort = 1 OR 1=1', /^a condition starts with a column name/],
      ["ExporterName = 'x' OR 'a'='a'", /^a condition starts with a column name/],
      ['DstPort = {f0:UInt16}', /^DstPort takes an unsigned 16-bit integer, not "\{f0:UInt16\}"$/],
      ['`flows`.DstPort = 1', /^a condition starts with a column name/],
      ['DstPort = 1 AND (SELECT 1) = 1', /^after SELECT: expected "=", "!=",.* found "1"$/],
      ['DstPort = 1) OR (1 = 1', /^unexpected text after the filter/],
      ['flows.DstPort = 1', /^after flows: expected/],
      ['DstPort = toUInt16(1)', /^unexpected text after the filter/],
    ]
    for (const [text, message] of cases) {
      const result = checked(text)
      expect(result.ok, text).toBe(false)
      if (!result.ok) expect(result.error.message, text).toMatch(message)
    }
    // SQL words as string values are just strings.
    expect(checked('ExporterName = SELECT')).toMatchObject({ ok: true, params: { f0: 'SELECT' } })
    expect(checked('ExporterName IN ("DROP", TABLE)')).toMatchObject({ ok: true, params: { f0: 'DROP', f1: 'TABLE' } })
  })

  it('quotes, escaped quotes, backslashes and unicode come back exactly as parameter values', () => {
    const rand = seededRandom(11)
    const alphabet = ['a', 'Z', ' ', "'", '"', '\\', '%', '_', '-', '/', '*', '(', ')', ',', '\t', 'é', '日', '🚀', '\u0000', '\u202e', '\ud800', '{', '}', ':']
    for (let i = 0; i < 500; i++) {
      const length = Math.floor(rand() * 20)
      const value = Array.from({ length }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('')
      for (const q of ['"', "'"] as const) {
        const result = checked(`ExporterName = ${quote(value, q)}`)
        expect(result, JSON.stringify(value)).toMatchObject({ ok: true, params: { f0: value } })
      }
    }
    // A backslash before anything but a quote or a backslash stays as written.
    expect(checked('ExporterName = "a\\nb\\%"')).toMatchObject({ ok: true, params: { f0: 'a\\nb\\%' } })
    // A string cannot end on an escaped quote.
    expect(checked('ExporterName = "abc\\"').ok).toBe(false)
  })

  it('comments anywhere between tokens change nothing; comment markers inside strings are text', () => {
    const plain = compileFilterText('NOT (DstPort = 80 OR SrcAS IN (1, 2)) AND ExporterName LIKE "th2-%"', { columns })
    const commented = [
      '/*a*/NOT/*b*/(/*c*/DstPort/*d*/=/*e*/80/*f*/OR/*g*/SrcAS/*h*/IN/*i*/(/*j*/1/*k*/,/*l*/2/*m*/)/*n*/)/*o*/AND/*p*/ExporterName/*q*/LIKE/*r*/"th2-%"/*s*/',
      '-- start\nNOT -- a\n( -- b\nDstPort -- c\n= -- d\n80 -- e\nOR -- f\nSrcAS -- g\nIN -- h\n( -- i\n1 -- j\n, -- k\n2 -- l\n) -- m\n) -- n\nAND -- o\nExporterName -- p\nLIKE -- q\n"th2-%" -- end',
      'NOT (DstPort = 80--x\nOR SrcAS IN (1, 2)) /* ; DROP TABLE flows; -- */ AND ExporterName LIKE "th2-%" /* /* not nested */',
    ]
    for (const text of commented) expect(checked(text), text).toEqual(plain)
    expect(checked('ExporterName = "-- not a comment /* nor this */"')).toMatchObject({ ok: true, params: { f0: '-- not a comment /* nor this */' } })
    expect(checked("ExporterName = '*/ DstPort = 1 /*'")).toMatchObject({ ok: true, sql: 'ExporterName = {f0:String}' })
  })

  it('3000 random hostile filters never throw and always compile to whitelisted SQL or a positioned error', () => {
    const rand = seededRandom(2024)
    let ok = 0
    for (let i = 0; i < 3000; i++) if (checked(randomFilter(rand, 4, true)).ok) ok++
    expect(ok).toBeGreaterThan(300)
  })

  it('5000 random strings of grammar characters never throw', () => {
    const rand = seededRandom(99)
    const pieces = ['DstPort', 'SrcAddr', 'ExporterName', 'AND', 'OR', 'NOT', 'IN', 'LIKE', ' ', '=', '!', '<', '>', '(', ')', ',', '"', "'", '\\', '--', '/*', '*/', '\n', '80', '192.0.2.0/24', ':', 'AS', '日', '%']
    for (let i = 0; i < 5000; i++) {
      const text = Array.from({ length: Math.floor(rand() * 30) }, () => pieces[Math.floor(rand() * pieces.length)]).join('')
      checked(text)
      completeFilter(text, Math.floor(rand() * (text.length + 1)), columns)
    }
  })
})

describe('very long and deeply nested input', () => {
  const MB = 1 << 20

  it('10k nested parentheses and 10k NOTs give a clear error at the level past the limit, without stack overflow', () => {
    const parens = `${'('.repeat(10_000)}DstPort = 1${')'.repeat(10_000)}`
    expect(checked(parens)).toMatchObject({
      ok: false,
      error: { message: `filter nested too deeply: more than ${MAX_FILTER_DEPTH} levels of parentheses and NOT`, offset: MAX_FILTER_DEPTH },
    })
    const nots = `${'NOT '.repeat(10_000)}DstPort = 1`
    expect(checked(nots)).toMatchObject({ ok: false, error: { offset: 4 * MAX_FILTER_DEPTH } })
    const mixed = `${'NOT ('.repeat(5_000)}DstPort = 1${')'.repeat(5_000)}`
    expect(checked(mixed).ok).toBe(false)
    // Up to the limit is fine.
    const deep = `${'('.repeat(MAX_FILTER_DEPTH)}DstPort = 1${')'.repeat(MAX_FILTER_DEPTH)}`
    expect(checked(deep)).toMatchObject({ ok: true, sql: 'DstPort = {f0:UInt16}' })
  })

  it('1 MB filters compile or fail with a short, positioned error', () => {
    const chain = `${'DstPort = 80 OR '.repeat(MB / 16)}DstPort = 1`
    const result = checked(chain)
    expect(result.ok && Object.keys(result.params).length).toBe(MB / 16 + 1)

    const longString = 'x'.repeat(MB)
    expect(checked(`ExporterName = "${longString}"`)).toMatchObject({ ok: true, params: { f0: longString } })
    expect(checked(`${' '.repeat(MB)}DstPort = 1`).ok).toBe(true)
    expect(checked(`/*${'*'.repeat(MB)}*/ DstPort = 1 ${'-- x\n'.repeat(MB / 5)}`).ok).toBe(true)
    expect(checked(`DstPort IN (${'1, '.repeat(MB / 3)}2)`).ok).toBe(true)

    expect(checked(`ExporterName = "${longString}`)).toMatchObject({ ok: false, error: { offset: 15 } })
    expect(checked(`/*${longString}`)).toMatchObject({ ok: false, error: { offset: 0 } })
    expect(checked('a'.repeat(MB))).toMatchObject({ ok: false, error: { offset: MB } })
    expect(checked(`${'a'.repeat(MB)} = 1`)).toMatchObject({ ok: false, error: { offset: 0, message: `unknown column "${'a'.repeat(40)}…"` } })
    expect(checked(`DstPort = ${'9'.repeat(MB)}`)).toMatchObject({ ok: false, error: { offset: 10 } })
    expect(checked(`SrcAddr = ${'1:'.repeat(MB / 2)}`).ok).toBe(false)
    expect(checked('('.repeat(MB)).ok).toBe(false)
    expect(checked(`DstPort = 1 ${'AND '.repeat(MB / 4)}`).ok).toBe(false)

    expect(completeFilter(`${chain} `, chain.length + 1, columns).suggestions.map((s) => s.label)).toEqual(['AND', 'OR'])
  })

  it('parsing work grows linearly with the input, for every shape of input', () => {
    const shapes: Record<string, (n: number) => string> = {
      'OR chain': (n) => `${'DstPort = 80 OR '.repeat(n)}DstPort = 1`,
      'AND/OR/NOT mix': (n) => `${'(NOT SrcAS = AS1 AND DstAddr << 192.0.2.0/24) OR '.repeat(n)}DstPort = 1`,
      'nested to the limit, repeated': (n) => `${`${'('.repeat(90)}DstPort = 1${')'.repeat(90)} OR `.repeat(n)}DstPort = 2`,
      'long string': (n) => `ExporterName = "${'ab\\"'.repeat(n * 8)}"`,
      'long IN list': (n) => `DstPort IN (${'443, '.repeat(n * 4)}80)`,
      comments: (n) => `${'/* c */ -- line\n'.repeat(n)}DstPort = 1`,
      'unterminated string': (n) => `ExporterName = "${'a'.repeat(n * 16)}`,
      'unclosed parentheses': (n) => `${'(DstPort = 1 AND '.repeat(Math.min(n, 99))}${'DstPort = 2 OR '.repeat(n)}`,
      'error at the end': (n) => `${'DstPort = 80 AND '.repeat(n)}DstPort =`,
    }
    for (const [shape, make] of Object.entries(shapes)) {
      // Inputs of about 8 KB, 32 KB, 128 KB and 512 KB.
      const unit = make(1).length
      const perChar = [8_000, 32_000, 128_000, 512_000].map((size) => {
        const text = make(Math.max(1, Math.round(size / unit)))
        return parseFilterCounted(text).steps / text.length
      })
      // A bounded amount of work per character, the same at every size (no hidden quadratic term).
      for (const ratio of perChar) expect(ratio, `${shape}: ${perChar.join(', ')}`).toBeLessThan(6)
      expect(Math.max(...perChar) / Math.min(...perChar), `${shape}: ${perChar.join(', ')}`).toBeLessThan(1.25)
    }
  })

  it('parse results are the same through parseFilter and the counting parser', () => {
    const text = 'InIfBoundary = external AND SrcAS = AS12322'
    expect(parseFilterCounted(text).result).toEqual(parseFilter(text))
  })
})
