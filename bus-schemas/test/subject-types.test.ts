// Proves the type-level contract with the TypeScript compiler: the fixture compiles cleanly, and
// each @ts-expect-error line, once its directive is removed, is a real type error.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/subject-types.ts', import.meta.url))
const baseConfig = fileURLToPath(new URL('../../tsconfig.base.json', import.meta.url))

function compilerOptions(): ts.CompilerOptions {
  const { config } = ts.readConfigFile(baseConfig, ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, fileURLToPath(new URL('../..', import.meta.url)))
  return { ...parsed.options, noEmit: true, composite: false, incremental: false, declaration: false, declarationMap: false }
}

/** Diagnostics of the fixture, optionally with its source replaced. */
function diagnose(source?: string): readonly ts.Diagnostic[] {
  const options = compilerOptions()
  const host = ts.createCompilerHost(options)
  if (source !== undefined) {
    const original = host.getSourceFile
    host.getSourceFile = (name, language, onError, create) =>
      name === fixture ? ts.createSourceFile(name, source, language) : original(name, language, onError, create)
  }
  const program = ts.createProgram([fixture], options, host)
  return ts.getPreEmitDiagnostics(program)
}

const format = (d: readonly ts.Diagnostic[]): string[] =>
  d.map((x) => {
    const where = x.file && x.start !== undefined ? x.file.getLineAndCharacterOfPosition(x.start).line + 1 : 0
    return `${where}: TS${x.code} ${ts.flattenDiagnosticMessageText(x.messageText, ' ')}`
  })

describe('subject and column types', () => {
  it('the fixture type-checks, every @ts-expect-error being used', () => {
    expect(format(diagnose())).toEqual([])
  })

  it('without the directives, each marked line is a type error', () => {
    const text = readFileSync(fixture, 'utf8')
    const lines = text.split('\n')
    const directive = /^\s*\/\/ @ts-expect-error/
    const marked = lines.flatMap((l, i) => (directive.test(l) ? [i + 2] : [])) // 1-based number of the line after
    expect(marked.length).toBe(5)
    const stripped = lines.map((l) => (directive.test(l) ? '' : l)).join('\n')
    const errors = diagnose(stripped)
    const errorLines = [...new Set(errors.map((d) => d.file!.getLineAndCharacterOfPosition(d.start!).line + 1))]
    expect(errorLines.sort((a, b) => a - b)).toEqual(marked)
    // The headline case: a RawPacketBatch given where flows.decoded expects a FlowBatch.
    const publish = format(errors).find((m) => m.startsWith(`${marked[0]}:`))
    expect(publish).toMatch(/TS2345 .*RawPacketBatch.*FlowBatch/)
  })

  it('tests, benchmark and scripts type-check under the strict base config (test/tsconfig.json)', () => {
    const configPath = fileURLToPath(new URL('./tsconfig.json', import.meta.url))
    const { config } = ts.readConfigFile(configPath, ts.sys.readFile)
    const parsed = ts.parseJsonConfigFileContent(config, ts.sys, fileURLToPath(new URL('.', import.meta.url)))
    const program = ts.createProgram(parsed.fileNames, parsed.options)
    expect(format(ts.getPreEmitDiagnostics(program))).toEqual([])
  })
})
