// The live fan-out's sample: one enriched flow in N, copied into a small batch for flows.live.
// A counter across batches picks the rows, so the cost is one row copy per sampled flow.
import { FlowBatch } from '@flowbus/bus-schemas'

export class LiveSampler {
  #next: number

  constructor(readonly oneIn: number) {
    this.#next = oneIn > 0 ? oneIn - 1 : 0
  }

  /** The sampled rows of `batch` (undefined when none, or when the fan-out is off). */
  sample(batch: FlowBatch): FlowBatch | undefined {
    if (this.oneIn <= 0) return undefined
    const count = batch.count
    if (this.#next >= count) {
      this.#next -= count
      return undefined
    }
    const rows: number[] = []
    let r = this.#next
    for (; r < count; r += this.oneIn) rows.push(r)
    this.#next = r - count
    const sample = new FlowBatch(rows.length)
    sample.appendRowsFrom(batch, rows)
    return sample
  }
}
