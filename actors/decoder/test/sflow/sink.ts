// Test helper: a DecodeSink that keeps every error, and an sFlow datagram decoded into it.
import { FlowBatch, type InterfaceCounters } from '@flowbus/bus-schemas'
import type { Datagram, DecodeErrorReason, DecodeSink } from '../../src/protocol.js'
import { decodeSflow, type SflowDatagramHeader } from '../../src/sflow/index.js'

export interface RecordingSink extends DecodeSink {
  readonly counters: InterfaceCounters[]
  readonly errors: { reason: DecodeErrorReason; detail: string | undefined }[]
}

export function recordingSink(flows = new FlowBatch(16)): RecordingSink {
  const errors: RecordingSink['errors'] = []
  return { flows, counters: [], errors, error: (reason, detail) => errors.push({ reason, detail }) }
}

/** 192.0.2.200 as the 16-byte exporter address. */
export const EXPORTER = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 200])

export const datagramOf = (payload: Uint8Array, timeReceived = 1_700_000_000): Datagram => ({
  exporterAddress: EXPORTER,
  exporterPort: 6343,
  timeReceived,
  payload,
})

export function decode(payload: Uint8Array, sink = recordingSink()): { sink: RecordingSink; header: SflowDatagramHeader | undefined } {
  const header = decodeSflow(datagramOf(payload), sink)
  return { sink, header }
}
