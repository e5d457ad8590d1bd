// Decoded flow batches for enricher tests: one exporter per batch (as the decoder emits them),
// each flow identified by its Bytes value (the flow id) so duplicates and losses are countable.
import { FlowBatch, flowColumnIndex, flowColumns, parseIP } from '@flowbus/bus-schemas'

export interface DecodedOptions {
  /** ifIndexes cycled over for InIf; OutIf is the next one. */
  readonly ifIndexes?: readonly number[]
  readonly samplingRate?: number
}

/** `count` flows from `exporter` with flow ids first..first+count-1 (Bytes = id, ports derived from it). */
export const decodedBatch = (exporter: string, first: number, count: number, options: DecodedOptions = {}): FlowBatch => {
  const batch = new FlowBatch(count)
  const address = parseIP(exporter)
  const ifIndexes = options.ifIndexes ?? [1, 2, 3]
  batch.appendRows(count)
  const bytes = batch.u64('Bytes')
  const packets = batch.u64('Packets')
  const srcPort = batch.u16('SrcPort')
  const dstPort = batch.u16('DstPort')
  const proto = batch.u8('Proto')
  const inIf = batch.u32('InIf')
  const outIf = batch.u32('OutIf')
  const time = batch.u32('TimeReceived')
  const rate = batch.u32('SamplingRate')
  const exporters = batch.ip('ExporterAddress')
  for (let r = 0; r < count; r++) {
    const id = first + r
    exporters.set(address, r * 16)
    batch.setIPv4('SrcAddr', r, (0x0a000000 + (id % 65536)) >>> 0)
    batch.setIPv4('DstAddr', r, (0xc6336400 + (id % 200)) >>> 0)
    bytes[r] = id
    packets[r] = 1 + (id % 7)
    srcPort[r] = id & 0xffff
    dstPort[r] = (id >>> 16) & 0xffff
    proto[r] = 6
    inIf[r] = ifIndexes[id % ifIndexes.length]!
    outIf[r] = ifIndexes[(id + 1) % ifIndexes.length]!
    time[r] = 1_760_000_000
    rate[r] = options.samplingRate ?? 1000
  }
  return batch
}

/**
 * Batches of `rows` flows whose source and destination addresses are `addresses` in order (16
 * bytes each), both columns copied at an odd byte offset when `unaligned` (a column sliced out
 * of a message, which the address caches must read byte by byte).
 */
export const addressBatches = (addresses: readonly Uint8Array[], rows: number, unaligned: boolean): FlowBatch[] => {
  const batches: FlowBatch[] = []
  for (let first = 0; first + 1 < addresses.length; first += 2 * rows) {
    const count = Math.min(rows, Math.floor((addresses.length - first) / 2))
    const columns: (Uint8Array | undefined)[] = new Array(flowColumns.length).fill(undefined)
    for (const [side, column] of [[0, 'SrcAddr'], [1, 'DstAddr']] as const) {
      const at = unaligned ? 1 : 0
      const bytes = new Uint8Array(at + 16 * count).subarray(at)
      for (let r = 0; r < count; r++) bytes.set(addresses[first + 2 * r + side]!, 16 * r)
      columns[flowColumnIndex.get(column)!] = bytes
    }
    batches.push(FlowBatch.fromColumns(count, [''], columns))
  }
  return batches
}
