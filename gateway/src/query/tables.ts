// Which flows table answers a query: the coarsest aggregated table whose resolution fits the
// step asked, whose retention still covers the start, and which has every column the query
// reads; the raw table otherwise. Pure, so the choice is tested without ClickHouse.
import { type ClickHouseConfig, FLOWS_TABLE, aggregatedTables } from '@flowbus/runtime'

export interface TableChoice {
  readonly table: string
  /** Seconds each stored row covers (1 for raw flows). */
  readonly resolution: number
  /** Whether rows are per-interval sums (`Flows` counts flows) or one flow each. */
  readonly aggregated: boolean
  /** Why this table, for the response and the logs. */
  readonly reason: string
}

export interface TableRequest {
  /** Range in Unix seconds, end exclusive. */
  readonly start: number
  readonly end: number
  /** Seconds per point the query needs: the chosen table's resolution is at most this. */
  readonly step: number
  /** Stored columns the query reads (dimensions and filter). */
  readonly columns: readonly string[]
  readonly nowSeconds: number
}

export const chooseTable = (
  config: Pick<ClickHouseConfig, 'retention'>,
  isAggregated: (column: string) => boolean,
  request: TableRequest,
): TableChoice => {
  const rawOnly = request.columns.filter((c) => !isAggregated(c))
  if (rawOnly.length > 0) {
    return { table: FLOWS_TABLE, resolution: 1, aggregated: false, reason: `${rawOnly.join(', ')} only in the raw table` }
  }
  for (const table of [...aggregatedTables].reverse()) {
    if (table.resolutionSeconds > request.step) continue
    const retentionMs = config.retention[table.retentionKey]
    if (retentionMs > 0 && request.start < request.nowSeconds - retentionMs / 1000) continue
    return { table: table.name, resolution: table.resolutionSeconds, aggregated: true, reason: `coarsest table for a ${request.step} s step` }
  }
  return { table: FLOWS_TABLE, resolution: 1, aggregated: false, reason: `no aggregated table serves a ${request.step} s step over this range` }
}

/** Step rounded up to a whole number of the table's resolution. */
export const alignStep = (step: number, resolution: number): number => Math.max(resolution, Math.ceil(step / resolution) * resolution)
