// Live subscriptions fed by the enricher's fan-out (flows.live): each batch is offered to every
// subscriber, which filters and samples it in JS and queues an event. A subscriber's queue is
// bounded: when its client reads too slowly the oldest event is dropped and the next one says
// how many were lost, so a slow client never makes the server's memory grow.
import { type FlowBatch, type FlowRow, flowBatchToRows } from '@flowbus/bus-schemas'

/** Rows of a batch matching the subscriber's filter (evaluated by ClickHouse); undefined: every row. */
export type RowSelector = (batch: FlowBatch) => Promise<number[]>

/**
 * Calls `handle` with each batch's selected rows, in order. While a selection is under way, a
 * new batch is dropped (counted): filtering never queues work behind a slow engine.
 */
const selecting = (select: RowSelector | undefined, handle: (batch: FlowBatch, rows: readonly number[] | undefined) => void, dropped: () => void, failed: (error: unknown) => void) => {
  if (!select) return (batch: FlowBatch) => handle(batch, undefined)
  let busy = false
  return (batch: FlowBatch) => {
    if (busy) return dropped()
    busy = true
    select(batch).then(
      (rows) => {
        busy = false
        handle(batch, rows)
      },
      (error: unknown) => {
        busy = false
        failed(error)
      },
    )
  }
}

/** A bounded queue of events read as an async iterator; overflow drops the oldest. */
export class EventQueue<T> implements AsyncIterableIterator<T> {
  readonly #events: T[] = []
  readonly #capacity: number
  #waiting: ((result: IteratorResult<T>) => void) | undefined
  #closed = false
  /** Events dropped since the last one read. */
  dropped = 0
  readonly #onClose: () => void

  constructor(capacity: number, onClose: () => void) {
    this.#capacity = capacity
    this.#onClose = onClose
  }

  push(event: T): void {
    if (this.#closed) return
    if (this.#waiting) {
      const wake = this.#waiting
      this.#waiting = undefined
      wake({ value: event, done: false })
      return
    }
    if (this.#events.length >= this.#capacity) {
      this.#events.shift()
      this.dropped++
    }
    this.#events.push(event)
  }

  /** Events queued now (tests and metrics). */
  get length(): number {
    return this.#events.length
  }

  next(): Promise<IteratorResult<T>> {
    const event = this.#events.shift()
    if (event !== undefined) return Promise.resolve({ value: event, done: false })
    if (this.#closed) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => (this.#waiting = resolve))
  }

  return(): Promise<IteratorResult<T>> {
    this.close()
    return Promise.resolve({ value: undefined, done: true })
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#events.length = 0
    this.#waiting?.({ value: undefined, done: true })
    this.#waiting = undefined
    this.#onClose()
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this
  }
}

/** Offers each live batch to the current subscribers. */
export class LiveHub {
  readonly #listeners = new Set<(batch: FlowBatch) => void>()
  /** Batches seen (tests wait on it). */
  batches = 0

  publish(batch: FlowBatch): void {
    this.batches++
    for (const listener of this.#listeners) listener(batch)
  }

  get subscribers(): number {
    return this.#listeners.size
  }

  add(listener: (batch: FlowBatch) => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }
}

export interface LiveFlowsEvent {
  flows: FlowRow[]
  dropped: number
  droppedEvents: number
}

export interface LiveFlowsOptions {
  readonly select: RowSelector | undefined
  readonly sampleRate: number
  readonly queueLength: number
  readonly maxFlowsPerEvent: number
  readonly onDropped?: (events: number) => void
  readonly onError?: (error: unknown) => void
}

/** One liveFlows subscriber: matching flows, 1 in sampleRate kept, one event per bus batch. */
export const subscribeLiveFlows = (hub: LiveHub, options: LiveFlowsOptions): AsyncIterableIterator<LiveFlowsEvent> => {
  let remove: () => void = () => undefined
  const queue = new EventQueue<LiveFlowsEvent>(options.queueLength, () => remove())
  let counter = 0
  let droppedFlows = 0
  let lostEvents = 0
  const lose = (events: number) => {
    lostEvents += events
    options.onDropped?.(events)
  }
  const offer = selecting(
    options.select,
    (batch, selected) => {
      const keep: number[] = []
      const rows = selected ?? Array.from({ length: batch.count }, (_, i) => i)
      for (const r of rows) {
        if (counter++ % options.sampleRate !== 0) {
          droppedFlows++
          continue
        }
        if (keep.length >= options.maxFlowsPerEvent) droppedFlows++
        else keep.push(r)
      }
      if (keep.length === 0) return
      const before = queue.dropped
      queue.push({ flows: rowsOf(batch, keep), dropped: droppedFlows, droppedEvents: 0 })
      droppedFlows = 0
      if (queue.dropped > before) lose(queue.dropped - before)
    },
    () => lose(1),
    (error) => options.onError?.(error),
  )
  remove = hub.add(offer)
  // The count of lost events rides on the next event the client reads.
  return {
    next: async () => {
      const result = await queue.next()
      if (!result.done && lostEvents > 0) {
        result.value.droppedEvents = lostEvents
        lostEvents = 0
      }
      return result
    },
    return: () => queue.return(),
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

const rowsOf = (batch: FlowBatch, rows: readonly number[]): FlowRow[] => {
  const all = flowBatchToRows(batch)
  return rows.map((r) => all[r]!)
}

export interface LiveRate {
  dimensions: string[]
  name: string
  bps: number
  pps: number
  flowsPerSecond: number
}

export interface LiveRatesEvent {
  time: number
  interval: number
  rates: LiveRate[]
  droppedEvents: number
}

export interface LiveRatesOptions {
  readonly select: RowSelector | undefined
  readonly onError?: (error: unknown) => void
  /** Text of each dimension of a row (from the batch). */
  readonly key: (batch: FlowBatch, row: number) => string[]
  readonly intervalMs: number
  readonly queueLength: number
  readonly limit: number
  readonly now?: () => number
}

/** One liveRates subscriber: sums per dimension values, emitted every interval, top `limit` then Other. */
export const subscribeLiveRates = (hub: LiveHub, options: LiveRatesOptions): AsyncIterableIterator<LiveRatesEvent> => {
  let sums = new Map<string, { dimensions: string[]; bytes: number; packets: number; flows: number }>()
  let remove: () => void = () => undefined
  let timer: NodeJS.Timeout | undefined
  const queue = new EventQueue<LiveRatesEvent>(options.queueLength, () => {
    remove()
    clearInterval(timer)
  })
  let lost = 0
  remove = hub.add(
    selecting(
      options.select,
      (batch, selected) => {
        const add = (r: number) => {
          const dimensions = options.key(batch, r)
          const key = JSON.stringify(dimensions)
          let entry = sums.get(key)
          if (!entry) sums.set(key, (entry = { dimensions, bytes: 0, packets: 0, flows: 0 }))
          const rate = batch.getNumber('SamplingRate', r) || 1
          entry.bytes += batch.getNumber('Bytes', r) * rate
          entry.packets += batch.getNumber('Packets', r) * rate
          entry.flows += 1
        }
        if (selected) for (const r of selected) add(r)
        else for (let r = 0; r < batch.count; r++) add(r)
      },
      () => (lost += 1),
      (error) => options.onError?.(error),
    ),
  )
  const seconds = options.intervalMs / 1000
  timer = setInterval(() => {
    const entries = [...sums.values()].sort((a, b) => b.bytes - a.bytes)
    sums = new Map()
    const top = entries.slice(0, options.limit)
    const rest = entries.slice(options.limit)
    if (rest.length > 0) {
      top.push(
        rest.reduce(
          (o, e) => ({ dimensions: o.dimensions, bytes: o.bytes + e.bytes, packets: o.packets + e.packets, flows: o.flows + e.flows }),
          { dimensions: rest[0]!.dimensions.map(() => 'Other'), bytes: 0, packets: 0, flows: 0 },
        ),
      )
    }
    const before = queue.dropped
    queue.push({
      time: Math.floor((options.now?.() ?? Date.now()) / 1000),
      interval: seconds,
      rates: top.map((e) => ({
        dimensions: e.dimensions,
        name: e.dimensions.length === 0 ? 'Total' : e.dimensions.join(', '),
        bps: (e.bytes * 8) / seconds,
        pps: e.packets / seconds,
        flowsPerSecond: e.flows / seconds,
      })),
      droppedEvents: 0,
    })
    lost += queue.dropped - before
  }, options.intervalMs)
  timer.unref?.()
  return {
    next: async () => {
      const result = await queue.next()
      if (!result.done && lost > 0) {
        result.value.droppedEvents = lost
        lost = 0
      }
      return result
    },
    return: () => queue.return(),
    [Symbol.asyncIterator]() {
      return this
    },
  }
}
