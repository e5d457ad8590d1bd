// Network attributes from several places into the networks stage: the configured networks, then
// each remote source's records (a later source wins for the same prefix), rebuilt into one table
// and swapped into the stage whenever a source refreshes. Bad records are skipped and reported.
import { formatPrefix, parsePrefix } from '@flowbus/runtime'
import type { NetworkStage } from '../networks/stage.js'
import { parseNetworks } from '../networks/table.js'

export class NetworkSources {
  readonly #configured: Readonly<Record<string, unknown>>
  readonly #remote = new Map<string, Map<string, unknown>>()

  constructor(
    configured: Readonly<Record<string, unknown>>,
    private readonly stage: NetworkStage,
  ) {
    this.#configured = configured
  }

  /** Replaces one source's networks; returns how many records were kept and why others were not. */
  setRemote(source: string, records: readonly Record<string, unknown>[]): { accepted: number; rejected: number; problems: string[] } {
    const entries = new Map<string, unknown>()
    const problems: string[] = []
    let rejected = 0
    records.forEach((record, i) => {
      try {
        const prefix = record.prefix
        if (typeof prefix !== 'string') throw new Error('no prefix field')
        const parsed = parsePrefix(prefix)
        const key = formatPrefix(parsed.address, parsed.prefixLength)
        const { prefix: _, ...attributes } = record
        // Validated alone so one bad record does not cost the source its other networks.
        parseNetworks({ [key]: attributes }, `remote source ${source}`)
        entries.set(key, attributes)
      } catch (error) {
        rejected++
        if (problems.length < 5) problems.push(`record ${i}: ${(error as Error).message}`)
      }
    })
    this.#remote.set(source, entries)
    this.#rebuild()
    return { accepted: entries.size, rejected, problems }
  }

  #rebuild(): void {
    const merged = new Map<string, unknown>()
    for (const [key, value] of Object.entries(this.#configured)) {
      const parsed = parsePrefix(key)
      merged.set(formatPrefix(parsed.address, parsed.prefixLength), value)
    }
    for (const entries of this.#remote.values()) for (const [key, value] of entries) merged.set(key, value)
    this.stage.replace(parseNetworks(Object.fromEntries(merged), 'networks'))
  }
}
