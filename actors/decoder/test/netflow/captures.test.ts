// Every NetFlow/IPFIX capture of the Akvorado test data decodes without error, and the fields
// agree with tshark's decoding of the same packets (tshark -T json, cflow dissector).
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { readPcapUdpAll } from '@flowbus/runtime'
import { ensureExecutable, removeDir, skipReason, tempDir } from '@flowbus/test/harness'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TemplateDecoder, decodeNetflowV5 } from '../../src/netflow/index.js'
import { seededRandom, TestSink } from './packets.js'
import { expectedColumns, OptionRates, tsharkRecords } from './tshark-cflow.js'
import { akvoradoTestdata } from '../../../../test/src/harness/testdata.js'

const execFileAsync = promisify(execFile)
const testdata = join(akvoradoTestdata, 'flow-decoder-netflow')
if (!existsSync(testdata) && process.env.CI === 'true') throw new Error(`captures missing under ${testdata} (CI=true: they are required)`)

/** Captures decoded in order by one decoder (templates before data of the same exporter), and the UDP port tshark must read as cflow. */
const GROUPS: { name: string; files: string[]; port: number; tsharkArgs?: string[] }[] = [
  { name: 'v9 template + data', files: ['template.pcap', 'data.pcap'], port: 2055 },
  { name: 'v9 sampler options + data', files: ['options-template.pcap', 'options-data.pcap', 'template.pcap', 'data.pcap'], port: 2055 },
  { name: 'v9 sampling interval in data', files: ['samplingrate-template.pcap', 'samplingrate-data.pcap'], port: 8096 },
  { name: 'v9 ICMP', files: ['icmp-template.pcap', 'icmp-data.pcap'], port: 2100 },
  { name: 'v9 templates, options and data in one packet', files: ['data+templates.pcap'], port: 2055 },
  { name: 'v9 NAT', files: ['nat.pcap'], port: 2055 },
  { name: 'IPFIX MPLS with selector options', files: ['mpls.pcap'], port: 2055 },
  { name: 'IPFIX dataLinkFrameSection', files: ['datalink-template.pcap', 'datalink-data.pcap'], port: 2055 },
  {
    name: 'IPFIX dataLinkFrameSection, Ethernet over MPLS',
    files: ['ethernet-over-mpls-with-control-word-template.pcap', 'ethernet-over-mpls-with-control-word-data.pcap'],
    port: 2055,
    // tshark does not guess the pseudowire control word: told, it reaches the inner IP header (its length is Bytes).
    tsharkArgs: ['-d', 'mpls.label==17,pwethcw'],
  },
  { name: 'v5', files: ['nfv5.pcap'], port: 9990 },
]

let tshark: string | undefined
let mergecap: string | undefined
let dir = ''
const unavailable = await skipReason('tshark', async () => {
  tshark = await ensureExecutable('tshark', 'tshark')
  mergecap = await ensureExecutable('mergecap', 'wireshark-common')
})

beforeAll(async () => {
  dir = await tempDir('netflow-captures')
})
afterAll(async () => {
  if (dir !== '') await removeDir(dir)
})

describe.skipIf(!existsSync(testdata))('Akvorado NetFlow/IPFIX captures', () => {
  for (const group of GROUPS) {
    it(`${group.name}: decodes without error`, () => {
      const { rows, sink } = decodeGroup(group.files)
      expect(sink.errors).toEqual([])
      expect(rows.length).toBeGreaterThan(0)
    })

    it.skipIf(unavailable !== undefined)(`${group.name}: agrees with tshark`, async () => {
      let { rows } = decodeGroup(group.files)
      let file = join(testdata, group.files[0]!)
      if (group.files.length > 1) {
        file = join(dir, `${group.name.replace(/\W+/g, '-')}.pcap`)
        await execFileAsync(mergecap!, ['-a', '-w', file, ...group.files.map((f) => join(testdata, f))])
      }
      const rates = new OptionRates()
      const want: Record<string, unknown>[] = []
      const v5 = group.files[0] === 'nfv5.pcap'
      let undecoded = false
      for (const packet of await tsharkRecords(tshark!, file, group.port, group.tsharkArgs)) {
        undecoded ||= packet.undecoded
        for (const r of packet.records) {
          if (r.data) want.push(expectedColumns(r, rates, { v5 }))
          else rates.learn(r.fields)
        }
      }
      expect(want.length).toBeGreaterThan(0)
      if (undecoded) {
        // Data ahead of its template in the same packet: tshark gives up on it, we hold it and
        // decode it when the template comes, so those flows come first and are not compared.
        expect(rows.length).toBeGreaterThan(want.length)
        rows = rows.slice(rows.length - want.length)
      }
      expect(rows.length).toBe(want.length)
      rows.forEach((row, i) => expect({ record: i, ...row }).toMatchObject({ record: i, ...want[i] }))
    })
  }
})

describe.skipIf(!existsSync(testdata))('Akvorado captures cut and corrupted', () => {
  it('every prefix and thousands of mutations of every packet decode without an exception', () => {
    const random = seededRandom(11)
    let decoded = 0
    for (const group of GROUPS) {
      const sink = new TestSink()
      const decoder = new TemplateDecoder({ lateSink: () => sink, maxHeld: 64 })
      const decode = (payload: Uint8Array): void => {
        const d = { exporterAddress: new Uint8Array(16), exporterPort: 1, timeReceived: 1000, payload }
        if (payload[0] === 0 && payload[1] === 5) decodeNetflowV5(d, sink)
        else decoder.decode(d, sink)
        decoded++
        if (sink.flows.count > 10_000) sink.flows.clear()
      }
      for (const name of group.files) {
        for (const r of readPcapUdpAll(readFileSync(join(testdata, name)), name).records) {
          // Whole packet first, so that the cuts and mutations of data packets meet their templates.
          decode(r.payload)
          for (let cut = 0; cut < r.payload.length; cut++) decode(r.payload.subarray(0, cut))
          for (let i = 0; i < 2000; i++) {
            const mutated = r.payload.slice()
            for (let k = random(3); k >= 0; k--) { const at = random(mutated.length); mutated[at] = mutated[at]! ^ (1 << random(8)) }
            decode(mutated)
          }
        }
      }
      expect(sink.errors.filter((e) => e.detail?.startsWith('decoder failure'))).toEqual([])
    }
    expect(decoded).toBeGreaterThan(30_000)
  })
})

function decodeGroup(files: string[]): { rows: Record<string, unknown>[]; sink: TestSink } {
  const sink = new TestSink()
  const decoder = new TemplateDecoder({ lateSink: () => sink })
  for (const name of files) {
    const { records } = readPcapUdpAll(readFileSync(join(testdata, name)), name)
    for (const r of records) {
      const d = { exporterAddress: r.srcAddress, exporterPort: r.srcPort, timeReceived: Number(r.timestampNs / 1_000_000_000n), payload: r.payload }
      if (r.payload[0] === 0 && r.payload[1] === 5) decodeNetflowV5(d, sink)
      else decoder.decode(d, sink)
    }
  }
  return { rows: sink.rows(), sink }
}
