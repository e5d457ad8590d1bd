// Decoded flow batches for enricher tests: one exporter per batch (as the decoder emits them),
// each flow identified by its Bytes value (the flow id) so duplicates and losses are countable.
import { FlowBatch, parseIP } from '@flowbus/bus-schemas'

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
