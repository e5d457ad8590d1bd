// Generated NetFlow v9 and IPFIX exports (seeded random values over templates using every mapped
// element, biflows, variable-length and enterprise fields, sampler options) decoded by us and by tshark.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseIP } from '@flowbus/bus-schemas'
import { type PcapUdpRecord, writePcap } from '@flowbus/runtime'
import { ensureExecutable, removeDir, skipReason, tempDir } from '@flowbus/test/harness'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TemplateDecoder } from '../../src/netflow/index.js'
import { bytes, type Field, ipfix, ipfixOptionsTemplate, seededRandom, set, template, TestSink, utf8, v9, v9OptionsTemplate } from './packets.js'
import { expectedColumns, hasReverseFlow, OptionRates, tsharkRecords } from './tshark-cflow.js'

const random = seededRandom(20261121)
const randomBytes = (n: number): number[] => Array.from({ length: n }, () => random(256))

const R = 29305
const IPFIX_V4: Field[] = [
  [8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [5, 1], [6, 1], [1, 8], [2, 8], [10, 4], [14, 4], [9, 1], [13, 1], [15, 4], [16, 4],
  [17, 4], [152, 8], [153, 8], [61, 1], [89, 1], [56, 6], [80, 6], [58, 2], [59, 2], [192, 1], [54, 4], [88, 2], [234, 4], [235, 4],
  [176, 1], [177, 1], [225, 4], [226, 4], [227, 2], [228, 2], [70, 3], [71, 3], [60, 1],
]
const IPFIX_V6: Field[] = [
  [27, 16], [28, 16], [62, 16], [63, 16], [29, 1], [30, 1], [31, 4], [7, 2], [11, 2], [4, 1], [1, 4], [2, 4], [154, 8], [155, 8],
  [178, 1], [179, 1], [281, 16], [282, 16], [243, 2], [254, 2], [81, 6], [57, 6], [252, 4], [253, 4],
]
const IPFIX_BIFLOW: Field[] = [[8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [10, 4], [14, 4], [1, 8], [2, 8], [6, 1], [1, 8, R], [2, 8, R], [6, 1, R], [152, 8], [153, 8]]
const IPFIX_VARIABLE: Field[] = [[8, 4], [12, 4], [82, 65535], [1000, 4, 9], [1001, 65535, 2636], [1, 8], [2, 8], [302, 4]]
const V9_FIELDS: Field[] = [[8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [6, 1], [1, 4], [2, 4], [10, 2], [14, 2], [21, 4], [22, 4], [48, 1], [16, 2], [17, 2], [15, 4], [61, 1], [32, 2]]

const EXPORT_SECS = 1_763_700_000
const SYS_UPTIME = 86_400_000

/** A plausible value for one field: times near the export time, ip version and direction in range, the rest random. */
function value(b: ReturnType<typeof bytes>, [type, length]: Field, ipVersion: number): void {
  if (length === 65535) {
    b.varlen(random(3) === 0 ? randomBytes(260 + random(20)) : utf8(`ge-0/0/${random(48)}`))
    return
  }
  switch (type) {
    case 152:
    case 153:
      b.u64(EXPORT_SECS * 1000 - random(600_000))
      return
    case 154:
    case 155: {
      const ms = EXPORT_SECS * 1000 - random(600_000)
      // Half a millisecond in, so that no rounding can move it to a neighbour.
      b.u32(Math.floor(ms / 1000) + 2208988800).u32(Math.floor((((ms % 1000) + 0.5) / 1000) * 4294967296))
      return
    }
    case 21:
    case 22:
      b.u32(SYS_UPTIME - random(600_000))
      return
    case 60:
      b.u8(ipVersion)
      return
    case 61:
      b.u8(random(2))
      return
    case 48:
    case 302:
      b.raw(new Array<number>(length - 1).fill(0)).u8(1 + random(2))
      return
  }
  // Reverse counters are zero now and then: no reverse flow for those records.
  b.raw(random(5) === 0 && length === 8 ? new Array<number>(8).fill(0) : randomBytes(length))
}

function records(fields: readonly Field[], n: number, ipVersion: number): Uint8Array {
  const b = bytes()
  for (let i = 0; i < n; i++) for (const f of fields) value(b, f, ipVersion)
  return b.build()
}

const exporter = parseIP('192.0.2.77')
const collector = parseIP('192.0.2.1')

function ipfixExport(): Uint8Array[] {
  const out: Uint8Array[] = []
  let sequence = 0
  const message = (sets: Uint8Array[], count: number): void => {
    out.push(ipfix(sets, { domain: 42, sequence, exportTime: EXPORT_SECS }))
    sequence += count
  }
  message(
    [
      set(2, template(300, IPFIX_V4)),
      set(2, template(301, IPFIX_V6)),
      set(2, template(302, IPFIX_BIFLOW)),
      set(2, template(303, IPFIX_VARIABLE)),
      set(3, ipfixOptionsTemplate(400, 1, [[302, 4], [305, 4], [306, 4]])),
    ],
    0,
  )
  message([set(400, bytes().u32(1).u32(1).u32(99).u32(2).u32(1).u32(4999).build())], 2)
  for (let i = 0; i < 6; i++) {
    message([set(300, records(IPFIX_V4, 8, 4))], 8)
    message([set(301, records(IPFIX_V6, 8, 6))], 8)
    message([set(302, records(IPFIX_BIFLOW, 12, 4))], 12)
    message([set(303, records(IPFIX_VARIABLE, 3, 4))], 3)
  }
  return out
}

function v9Export(): Uint8Array[] {
  const out: Uint8Array[] = []
  let sequence = 0
  const packet = (sets: Uint8Array[]): void => {
    out.push(v9(sets, { sourceId: 7, sequence: sequence++, sysUptime: SYS_UPTIME, unixSecs: EXPORT_SECS }))
  }
  packet([set(0, template(260, V9_FIELDS)), set(1, v9OptionsTemplate(261, [[1, 4]], [[48, 1], [34, 4]]), true)])
  packet([set(261, bytes().u32(0).u8(1).u32(512).u32(0).u8(2).u32(64).build(), true)])
  for (let i = 0; i < 10; i++) packet([set(260, records(V9_FIELDS, 20, 4), true)])
  return out
}

const GENERATED = [
  { name: 'IPFIX', port: 4739, datagrams: ipfixExport() },
  { name: 'NetFlow v9', port: 2055, datagrams: v9Export() },
]

let tshark: string | undefined
let dir = ''
const unavailable = await skipReason('tshark', async () => {
  tshark = await ensureExecutable('tshark', 'tshark')
})
beforeAll(async () => {
  dir = await tempDir('netflow-generated')
})
afterAll(async () => {
  if (dir !== '') await removeDir(dir)
})

describe('generated NetFlow v9 and IPFIX exports', () => {
  for (const g of GENERATED) {
    it.skipIf(unavailable !== undefined)(`${g.name}: every flow agrees with tshark`, async () => {
      const sink = new TestSink()
      const decoder = new TemplateDecoder({ lateSink: () => sink })
      for (const payload of g.datagrams) decoder.decode({ exporterAddress: exporter, exporterPort: 50000, timeReceived: EXPORT_SECS, payload }, sink)
      expect(sink.errors).toEqual([])
      const captured: PcapUdpRecord[] = g.datagrams.map((payload, i) => ({
        timestampNs: BigInt(EXPORT_SECS) * 1_000_000_000n + BigInt(i) * 1000n,
        srcAddress: exporter,
        srcPort: 50000,
        dstAddress: collector,
        dstPort: g.port,
        payload,
      }))
      const file = join(dir, `${g.name.replace(/\W+/g, '-')}.pcap`)
      await writeFile(file, writePcap(captured))
      const rates = new OptionRates()
      const want: Record<string, unknown>[] = []
      for (const packet of await tsharkRecords(tshark!, file, g.port)) {
        expect(packet.undecoded).toBe(false)
        for (const r of packet.records) {
          if (!r.data) {
            rates.learn(r.fields)
            continue
          }
          want.push(expectedColumns(r, rates))
          if (hasReverseFlow(r)) want.push(expectedColumns(r, rates, { reverse: true }))
        }
      }
      const rows = sink.rows()
      expect(rows.length).toBe(want.length)
      expect(rows.length).toBeGreaterThan(150)
      rows.forEach((row, i) => expect({ flow: i, ...row }).toMatchObject({ flow: i, ...want[i] }))
    })
  }
})
