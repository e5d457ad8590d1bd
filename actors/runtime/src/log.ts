// Structured logging for every actor: JSON lines on stderr for machines, a readable format
// on a terminal. Logs go to stderr so commands that print data (flowbus config) stay clean.
import { Cause, HashMap, Layer, List, LogLevel, Logger } from 'effect'
import type { LogConfig } from './config/sections.js'

const levels: Record<LogConfig['level'], LogLevel.LogLevel> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
}

const messageText = (message: unknown): string =>
  Array.isArray(message) ? message.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' ') : String(message)

/** One JSON object per line: time, level, msg, annotations (actor, subject…), error cause. */
export const jsonLineLogger = Logger.make(({ logLevel, message, annotations, date, cause, spans }) => {
  const record: Record<string, unknown> = {
    time: date.toISOString(),
    level: logLevel.label.toLowerCase(),
    msg: messageText(message),
  }
  for (const [key, value] of HashMap.toEntries(annotations)) record[key] = value
  for (const span of List.toArray(spans)) record[`span.${span.label}`] = `${date.getTime() - span.startTime}ms`
  if (!Cause.isEmpty(cause)) record.cause = Cause.pretty(cause, { renderErrorCause: true })
  process.stderr.write(`${JSON.stringify(record)}\n`)
})

/** Replaces Effect's default logger according to the `log` section. */
export const LoggingLive = (config: LogConfig): Layer.Layer<never> => {
  const json = config.format === 'json' || (config.format === 'auto' && !process.stderr.isTTY)
  const logger = json ? jsonLineLogger : Logger.prettyLogger({ stderr: true, colors: 'auto' })
  return Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(levels[config.level]))
}
