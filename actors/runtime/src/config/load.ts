// Reads the one YAML configuration file, applies FLOWBUS_* environment overrides and decodes
// it against the schema of every section, reporting each problem with its key path and source.
import { readFileSync } from 'node:fs'
import { Either, ParseResult, Schema, SchemaAST } from 'effect'
import { parseDocument, stringify } from 'yaml'

/** One problem in the configuration, located by key path and where the value came from. */
export interface ConfigIssue {
  readonly path: string
  readonly message: string
  /** The file (with line when known) or the environment variable the value came from. */
  readonly source: string
}

export class ConfigError extends Error {
  readonly _tag = 'ConfigError'
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(
      `invalid configuration:\n${issues.map((i) => `  - ${i.path || '(root)'}: ${i.message} [${i.source}]`).join('\n')}`,
    )
    this.name = 'ConfigError'
  }
}

export const ENV_PREFIX = 'FLOWBUS_'

/** FLOWBUS_* variables that are not configuration keys: the config file's path, stack traces on errors. */
const reservedEnv = new Set(['FLOWBUS_CONFIG', 'FLOWBUS_DEBUG'])

interface RawConfig {
  readonly value: Record<string, unknown>
  /** Where each dotted path was set: file:line or env var name. */
  readonly origins: Map<string, string>
  readonly file: string | undefined
}

/** Reads and parses the YAML file (or an empty document when no file is given). */
export const readConfigFile = (file: string | undefined): RawConfig => {
  const origins = new Map<string, string>()
  if (file === undefined) return { value: {}, origins, file }
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (cause) {
    throw new ConfigError([{ path: '', message: `cannot read the file: ${(cause as Error).message}`, source: file }])
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        path: '',
        message: `YAML syntax: ${e.message.split('\n')[0]}`,
        source: `${file}:${e.linePos?.[0].line ?? '?'}`,
      })),
    )
  }
  const value: unknown = doc.toJS() ?? {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError([{ path: '', message: 'expected a mapping of sections (bus:, http:, …)', source: file }])
  }
  recordOrigins(doc.contents, [], text, file, origins)
  return { value: value as Record<string, unknown>, origins, file }
}

// Walks the YAML nodes to remember the line of every key, so errors can point at it.
const recordOrigins = (node: unknown, path: string[], text: string, file: string, out: Map<string, string>): void => {
  if (!node || typeof node !== 'object' || !('items' in node) || !Array.isArray(node.items)) return
  for (const item of node.items as Array<{ key?: { value?: unknown; range?: [number] }; value?: unknown }>) {
    if (!item.key || item.key.value === undefined) continue
    const keyPath = [...path, String(item.key.value)]
    const offset = item.key.range?.[0] ?? 0
    const line = text.slice(0, offset).split('\n').length
    out.set(keyPath.join('.'), `${file}:${line}`)
    recordOrigins(item.value, keyPath, text, file, out)
  }
}

// --- environment overrides -------------------------------------------------------------

const normalise = (key: string): string => key.replace(/[-_]/g, '').toLowerCase()

/** The object keys a schema accepts at this node (encoded side), if it is a struct. */
const structKeys = (ast: SchemaAST.AST): Map<string, SchemaAST.AST> | undefined => {
  switch (ast._tag) {
    case 'Transformation':
      return structKeys(ast.from)
    case 'Refinement':
      return structKeys(ast.from)
    case 'Suspend':
      return structKeys(ast.f())
    case 'TypeLiteral':
      return new Map(ast.propertySignatures.map((p) => [String(p.name), p.type]))
    case 'Union': {
      const keys = new Map<string, SchemaAST.AST>()
      for (const member of ast.types) for (const [k, v] of structKeys(member) ?? []) keys.set(k, v)
      return keys.size > 0 ? keys : undefined
    }
    default:
      return undefined
  }
}

/** True when the schema at this node only accepts text, so the env value must not be YAML-parsed. */
const acceptsOnlyText = (ast: SchemaAST.AST): boolean => {
  switch (ast._tag) {
    case 'StringKeyword':
      return true
    case 'Refinement':
      return acceptsOnlyText(ast.from)
    case 'Transformation':
      return acceptsOnlyText(ast.from)
    case 'Union':
      return ast.types.filter((t) => t._tag !== 'UndefinedKeyword').every(acceptsOnlyText)
    default:
      return false
  }
}

/**
 * Applies `FLOWBUS_<SECTION>__<KEY>__<SUBKEY>=value` overrides. Segments are separated by a
 * double underscore and matched to the schema's keys ignoring case, `-` and `_`, so
 * `FLOWBUS_BUS__MAX_MESSAGE_BYTES` sets `bus.maxMessageBytes`. Values are read as YAML
 * (`8`, `true`, `[a, b]`) unless the key only takes text.
 */
export const applyEnvOverrides = (
  raw: RawConfig,
  schema: Schema.Schema.AnyNoContext,
  env: Record<string, string | undefined>,
): RawConfig => {
  const value = structuredClone(raw.value)
  const origins = new Map(raw.origins)
  const issues: ConfigIssue[] = []
  for (const [name, text] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith(ENV_PREFIX) || text === undefined || reservedEnv.has(name)) continue
    const segments = name.slice(ENV_PREFIX.length).split('__')
    let ast: SchemaAST.AST = schema.ast
    let target: Record<string, unknown> = value
    const path: string[] = []
    let failed = false
    for (const [index, segment] of segments.entries()) {
      const keys = structKeys(ast)
      const match = keys && [...keys.keys()].find((k) => normalise(k) === normalise(segment))
      if (!keys || match === undefined) {
        issues.push({
          path: [...path, segment.toLowerCase()].join('.'),
          message: keys
            ? `unknown key "${segment}"; known keys here: ${[...keys.keys()].join(', ')}`
            : `${path.join('.')} has no sub-keys`,
          source: `environment ${name}`,
        })
        failed = true
        break
      }
      path.push(match)
      ast = keys.get(match)!
      if (index === segments.length - 1) {
        target[match] = acceptsOnlyText(ast) ? text : parseDocument(text).toJS()
      } else {
        const next = target[match]
        target = target[match] = next && typeof next === 'object' && !Array.isArray(next) ? (next as Record<string, unknown>) : {}
      }
    }
    if (!failed) {
      for (const key of [...origins.keys()]) if (key.startsWith(`${path.join('.')}.`)) origins.delete(key)
      origins.set(path.join('.'), `environment ${name}`)
    }
  }
  if (issues.length > 0) throw new ConfigError(issues)
  return { value, origins, file: raw.file }
}

// --- decoding -----------------------------------------------------------------------------

const sourceOf = (path: readonly PropertyKey[], raw: RawConfig): string => {
  for (let n = path.length; n > 0; n--) {
    const origin = raw.origins.get(path.slice(0, n).map(String).join('.'))
    if (origin) return origin
  }
  return raw.file ?? 'defaults'
}

/** Decodes the raw document; every problem is reported, not only the first. */
export const decodeConfig = <A, I>(schema: Schema.Schema<A, I>, raw: RawConfig): A => {
  const result = Schema.decodeUnknownEither(schema, { errors: 'all', onExcessProperty: 'error' })(raw.value)
  if (Either.isRight(result)) return result.right
  throw new ConfigError(summariseIssues(ParseResult.ArrayFormatter.formatErrorSync(result.left), raw))
}

/**
 * Effect reports one issue per union member ("Expected "memory", actual …", "Expected
 * undefined, actual …" for optional keys): fold them into one line per key that lists what
 * would have been accepted.
 */
const summariseIssues = (raw: readonly ParseResult.ArrayFormatterIssue[], config: RawConfig): ConfigIssue[] => {
  const meaningful = raw.filter((issue) => !/^Expected undefined, actual /.test(issue.message))
  const byPath = new Map<string, { path: readonly PropertyKey[]; expected: string[]; actual?: string; other: string[] }>()
  for (const issue of meaningful.length > 0 ? meaningful : raw) {
    const key = issue.path.map(String).join('.')
    const entry = byPath.get(key) ?? { path: issue.path, expected: [], other: [] }
    byPath.set(key, entry)
    const alternative = /^Expected (.*), actual (.*)$/s.exec(issue.message)
    if (issue._tag === 'Unexpected') entry.other.push('unknown key (check its spelling and section)')
    else if (alternative) {
      entry.expected.push(alternative[1]!)
      entry.actual = alternative[2]!
    } else entry.other.push(issue.message)
  }
  return [...byPath.entries()].map(([path, entry]) => ({
    path,
    message: [
      ...entry.other,
      ...(entry.expected.length > 0 ? [`expected ${[...new Set(entry.expected)].join(' | ')}, got ${entry.actual}`] : []),
    ].join('; '),
    source: sourceOf(entry.path, config),
  }))
}

export interface LoadOptions {
  readonly file?: string | undefined
  readonly env?: Record<string, string | undefined>
}

/** File, then environment, then schema defaults and validation: the resolved configuration. */
export const loadConfig = <A, I>(schema: Schema.Schema<A, I>, options: LoadOptions = {}): A => {
  const raw = readConfigFile(options.file)
  const overridden = applyEnvOverrides(raw, schema as Schema.Schema.AnyNoContext, options.env ?? process.env)
  return decodeConfig(schema, overridden)
}

// SNMP v2c communities are passwords in all but name.
const secretKeys = /^(pass|password|token|secret|privkey|authkey|privpassword|authpassword|community|communities)$/i

const MASK = '********'

/** A secret list keeps its length (how many communities are tried shows), each value masked. */
const mask = (value: unknown): unknown => (Array.isArray(value) ? value.map(() => MASK) : MASK)

const maskSecrets = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(maskSecrets)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, secretKeys.test(k) && v !== undefined ? mask(v) : maskSecrets(v)]))
  }
  return value
}

/** The resolved configuration as YAML, units written back as text and secrets masked. */
export const formatConfig = <A, I>(schema: Schema.Schema<A, I>, config: A): string =>
  stringify(maskSecrets(Schema.encodeSync(schema)(config)), { lineWidth: 0 })
