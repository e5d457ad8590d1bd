// Which ClickHouse failures are worth retrying: refused data is permanent (retrying the same bytes
// cannot succeed, so the bus message goes to its dead-letter subject); everything else is transient.

/**
 * ClickHouse error codes meaning "these rows are invalid" (src/Common/ErrorCodes.cpp). Missing
 * tables or columns are not here: they mean migrations have not run yet, which fixes itself.
 */
const dataErrors = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  36, // BAD_ARGUMENTS (e.g. a value outside an Enum)
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DONT_MATCH
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  675, // CANNOT_PARSE_IPV4
  676, // CANNOT_PARSE_IPV6
  691, // UNKNOWN_ELEMENT_OF_ENUM
])

/** The ClickHouse error code of a failure, from @clickhouse/client's error or a chDB message. */
export const clickHouseCode = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown } | undefined)?.code
  if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code)
  if (typeof code === 'number') return code
  const message = error instanceof Error ? error.message : String(error)
  const match = /Code: (\d+)\./.exec(message)
  if (match) return Number(match[1])
  const cause = (error as { cause?: unknown } | undefined)?.cause
  return cause !== undefined && cause !== error ? clickHouseCode(cause) : undefined
}

/** True when ClickHouse refused the data itself: retrying cannot help. */
export const isRejectedData = (error: unknown): boolean => {
  const code = clickHouseCode(error)
  return code !== undefined && dataErrors.has(code)
}

/** A one-line reason for logs and dead-letter headers. */
export const describeError = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0]!.slice(0, 500)
}
