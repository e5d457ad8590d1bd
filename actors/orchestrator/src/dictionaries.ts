// The CSVWithNames documents behind the dictionaries (protocols, ICMP, services, AS names):
// shipped data files plus AS names and overrides; the same text feeds the endpoints and tables.
import { readFile } from 'node:fs/promises'
import { asNames } from './asns.js'
import type { OrchestratorConfig } from './config.js'
import { renderCsv } from './csv.js'

/** Data files shipped in the package (see reference/README.md for their sources). */
const dataFile = (name: string): Promise<string> => readFile(new URL(`../reference/${name}.csv`, import.meta.url), 'utf8')

export type DictionaryName = 'protocols' | 'asns' | 'icmp' | 'services'

/** The CSVWithNames text of each dictionary, built on demand and kept for the process. */
export const makeDictionaryData = (config: Pick<OrchestratorConfig, 'asNames'>) => {
  const cache = new Map<DictionaryName, Promise<string>>()
  const build = (name: DictionaryName): Promise<string> => {
    if (name === 'asns') return asNames(config.asNames).then((rows) => renderCsv(['asn', 'name'], rows))
    return dataFile(name)
  }
  return (name: DictionaryName): Promise<string> => {
    let text = cache.get(name)
    if (!text) {
      text = build(name)
      text.catch(() => cache.delete(name))
      cache.set(name, text)
    }
    return text
  }
}
export type DictionaryData = ReturnType<typeof makeDictionaryData>
