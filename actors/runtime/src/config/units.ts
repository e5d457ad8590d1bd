// Human-friendly units in configuration: durations ("30s", "1h30m", "7d") and byte sizes
// ("64MiB", "1GB"). They decode to plain numbers (ms, bytes) and encode back to text, so
// `flowbus config` prints what an operator would have written.
import { ParseResult, Schema } from 'effect'

const durationUnits: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

/** Parses "1h30m", "250ms", "7d" into milliseconds; undefined when not a duration. */
export const parseDuration = (text: string): number | undefined => {
  const trimmed = text.trim()
  if (trimmed === '0') return 0
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy
  let total = 0
  let consumed = 0
  for (let match = part.exec(trimmed); match !== null; match = part.exec(trimmed)) {
    total += Number(match[1]) * durationUnits[match[2]!]!
    consumed = part.lastIndex
  }
  return consumed === trimmed.length && consumed > 0 ? total : undefined
}

/** Formats milliseconds as the shortest exact "1h30m" form. */
export const formatDuration = (ms: number): string => {
  if (ms === 0) return '0s'
  let rest = ms
  let text = ''
  for (const unit of ['w', 'd', 'h', 'm', 's', 'ms'] as const) {
    const size = durationUnits[unit]!
    if (rest >= size) {
      const count = Math.floor(rest / size)
      text += `${count}${unit}`
      rest -= count * size
    }
  }
  return rest > 0 ? `${text}${rest}ms` : text
}

/** A duration written as text ("30s") or a number of milliseconds; decodes to milliseconds. */
export const Duration = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.Number.pipe(Schema.nonNegative()),
  {
    strict: true,
    decode: (input, _, ast) => {
      const ms = typeof input === 'number' ? input : parseDuration(input)
      return ms === undefined
        ? ParseResult.fail(
            new ParseResult.Type(ast, input, `expected a duration such as "500ms", "30s", "5m", "1h30m" or "7d", got "${input}"`),
          )
        : ParseResult.succeed(ms)
    },
    encode: (ms) => ParseResult.succeed(formatDuration(ms)),
  },
).annotations({
  title: 'duration',
  description: 'a duration such as "500ms", "30s", "5m", "1h30m", "7d", or a number of milliseconds',
  jsonSchema: { anyOf: [{ type: 'string', pattern: '^(\\d+(\\.\\d+)?(ms|s|m|h|d|w))+$|^0$' }, { type: 'number', minimum: 0 }] },
})

const byteUnits: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
}

/** Parses "64MiB", "1GB", "512" into bytes; undefined when not a size. */
export const parseByteSize = (text: string): number | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(text)
  if (!match) return undefined
  return Math.round(Number(match[1]) * byteUnits[(match[2] ?? 'b').toLowerCase()]!)
}

/** Formats bytes with the largest binary unit that divides it exactly. */
export const formatByteSize = (bytes: number): string => {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const size = byteUnits[unit.toLowerCase()]!
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`
  }
  return `${bytes}B`
}

/** A byte size written as text ("64MiB") or a number of bytes; decodes to bytes. */
export const ByteSize = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.Number.pipe(Schema.int(), Schema.nonNegative()),
  {
    strict: true,
    decode: (input, _, ast) => {
      const bytes = typeof input === 'number' ? input : parseByteSize(input)
      return bytes === undefined
        ? ParseResult.fail(
            new ParseResult.Type(ast, input, `expected a size such as "512KiB", "64MiB" or "1GB", got "${input}"`),
          )
        : ParseResult.succeed(bytes)
    },
    encode: (bytes) => ParseResult.succeed(formatByteSize(bytes)),
  },
).annotations({
  title: 'byte size',
  description: 'a size such as "512KiB", "64MiB", "1GB", or a number of bytes',
  jsonSchema: { anyOf: [{ type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*([kKmMgGtT][iI]?[bB]|[bB])?\\s*$' }, { type: 'integer', minimum: 0 }] },
})

/**
 * Text that `parse` accepts, kept as written: the parser's own message becomes the validation
 * error, which the config loader reports with the key (an address, a prefix, host:port…).
 */
export const ParsedText = (parse: (text: string) => unknown) =>
  Schema.String.pipe(
    Schema.filter((text) => {
      try {
        parse(text)
        return true
      } catch (error) {
        return (error as Error).message
      }
    }),
  )
