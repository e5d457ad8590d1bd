// Test helper: the real captures of ../shared/testdata/akvorado/ as the receiver would publish
// their datagrams (RawPackets), for the tests that run the decode loop or the actor on them.
import { readFileSync } from 'node:fs'
import { type RawPacket, sniffProtocol } from '@flowbus/bus-schemas'
import { readPcapUdpAll } from '@flowbus/runtime'
import { akvoradoTestdata } from '../../../test/src/harness/testdata.js'

export const testdata = `${akvoradoTestdata}/`

/** The UDP datagrams of a capture (path under testdata) as RawPackets, source address and port as the exporter. */
export const rawPackets = (path: string): RawPacket[] =>
  readPcapUdpAll(readFileSync(`${testdata}${path}`), path).records.map((r) => ({
    exporterAddress: r.srcAddress,
    exporterPort: r.srcPort,
    receivedNs: r.timestampNs,
    protocol: sniffProtocol(r.payload),
    payload: r.payload,
  }))
