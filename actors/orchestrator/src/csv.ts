// CSVWithNames as ClickHouse reads it (RFC 4180 quoting), for the dictionary endpoints and the
// tables behind the dictionaries. Pure functions.

const needsQuotes = /[",\r\n]/

/** One CSV field: quoted (with doubled quotes) only when it holds a comma, quote or newline. */
export const csvField = (value: string | number): string => {
  const text = String(value)
  return needsQuotes.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text
}

/** A CSVWithNames document: header line, then one line per row, each ending in \n. */
export const renderCsv = (header: readonly string[], rows: Iterable<readonly (string | number)[]>): string => {
  const lines = [header.map(csvField).join(',')]
  for (const row of rows) lines.push(row.map(csvField).join(','))
  return `${lines.join('\n')}\n`
}

/** Splits one CSV line into fields (quoted fields may hold commas and doubled quotes, not newlines). */
export const parseCsvLine = (line: string): string[] => {
  const fields: string[] = []
  let i = 0
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = ''
      i++
      for (;;) {
        const quote = line.indexOf('"', i)
        if (quote < 0) throw new Error(`unterminated quoted field in CSV line: ${line.slice(0, 80)}`)
        value += line.slice(i, quote)
        if (line[quote + 1] === '"') {
          value += '"'
          i = quote + 2
        } else {
          i = quote + 1
          break
        }
      }
      fields.push(value)
      i++ // the comma (or one past the end)
    } else {
      const comma = line.indexOf(',', i)
      const end = comma < 0 ? line.length : comma
      fields.push(line.slice(i, end))
      i = end + 1
    }
  }
  return fields
}
