// AS number → organisation names from the @ip-location-db/asn package (RouteViews, NRO and
// DB-IP data, CC BY 4.0), merged with the operator's overrides.
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { parseCsvLine } from './csv.js'

/** The package's address-range files: `first,last,asn,organisation` per line. */
const sourceFiles = ['asn-ipv4.csv', 'asn-ipv6.csv']

const packageDir = (): string => dirname(createRequire(import.meta.url).resolve('@ip-location-db/asn/package.json'))

/**
 * Names of every AS announcing address space, from the range files: the first name seen for
 * an AS wins (the package gives each range the holder's current name). Pure over the text.
 */
export const asNamesFromRanges = (text: string, into: Map<number, string> = new Map()): Map<number, string> => {
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    const line = text.slice(start, end)
    start = end + 1
    // Skip the two address fields cheaply; only the name may be quoted.
    const first = line.indexOf(',')
    const second = line.indexOf(',', first + 1)
    const third = line.indexOf(',', second + 1)
    if (first < 0 || second < 0 || third < 0) continue
    const asn = Number(line.slice(second + 1, third))
    if (!Number.isInteger(asn) || asn <= 0 || into.has(asn)) continue
    const rest = line.slice(third + 1)
    const name = rest.startsWith('"') ? (parseCsvLine(rest)[0] ?? '') : rest
    if (name !== '') into.set(asn, name)
  }
  return into
}

let shipped: Promise<Map<number, string>> | undefined

/** The shipped list, read once per process (about 80k ASes, half a second). */
export const shippedAsNames = (): Promise<Map<number, string>> => {
  shipped ??= (async () => {
    const dir = packageDir()
    const names = new Map<number, string>()
    for (const file of sourceFiles) asNamesFromRanges(await readFile(join(dir, file), 'utf8'), names)
    return names
  })()
  return shipped
}

/** Shipped names with the overrides applied, sorted by AS number. */
export const asNames = async (overrides: Readonly<Record<string, string>>): Promise<[number, string][]> => {
  const names = new Map(await shippedAsNames())
  for (const [asn, name] of Object.entries(overrides)) names.set(Number(asn), name)
  return [...names.entries()].sort((a, b) => a[0] - b[0])
}

/** Version of the shipped list, for docs and logs. */
export const asNamesVersion = async (): Promise<string> =>
  (JSON.parse(await readFile(join(packageDir(), 'package.json'), 'utf8')) as { version: string }).version
