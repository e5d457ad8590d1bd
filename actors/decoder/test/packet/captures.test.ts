// The frame parser on real sampled frames (GRE, IP-in-IP, MPLS, EoMPLS, SRv6, VLAN), checked
// against tshark's dissection of the same pcaps under the outer-header rule.
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FlowBatch, formatIP, type IpColumn, type NumericColumn } from '@flowbus/bus-schemas'
import { removeDir, tempDir } from '@flowbus/test/harness'
import { describe, expect, it } from 'vitest'
import { FrameStatus, parseFrame } from '../../src/packet/index.js'
import { seededRandom } from '../sflow/random.js'
import { expectedFrameColumns, findTshark, tsharkPackets } from '../sflow/tshark.js'
import { readPcapFrames, writeFramePcap } from './frames.js'
import { akvoradoTestdata } from '../../../../test/src/harness/testdata.js'

const DIR = join(akvoradoTestdata, 'flow-decoder')
const files = readdirSync(DIR).filter((f) => f.endsWith('.pcap')).sort()
const tshark = await findTshark()

const IP_COLUMNS = new Set(['SrcAddr', 'DstAddr'])

/** Our columns of row `row`, for the keys tshark gave a value for. */
function actualColumns(batch: FlowBatch, row: number, keys: readonly string[]): Record<string, number | string | number[]> {
  const out: Record<string, number | string | number[]> = {}
  for (const key of keys) {
    if (IP_COLUMNS.has(key)) out[key] = formatIP(batch.getIP(key as IpColumn, row))
    else if (key === 'MPLSLabels') out[key] = [...batch.getList('MPLSLabels', row)]
    else out[key] = batch.getNumber(key as NumericColumn, row)
  }
  return out
}

function parseAll(file: string): { batch: FlowBatch; statuses: number[] } {
  const { frames } = readPcapFrames(join(DIR, file))
  const batch = new FlowBatch(frames.length)
  const statuses = frames.map((frame) => parseFrame(frame, 0, frame.length, batch, batch.appendRow(), 'ethernet'))
  return { batch, statuses }
}

// tshark reads the bytes after the bottom label as an Ethernet header and misses the pseudowire
// control word (RFC 4385) that these two frames carry; the values here are read from the hex dump.
const controlWordFrames: Record<string, Record<string, number | string | number[]>> = {
  'mpls-eompls-cw.pcap': { MPLSLabels: [300012, 17], DstMAC: 0x003096e6fc39, EType: 0x0800, SrcAddr: '10.31.0.1', DstAddr: '10.34.0.1', Proto: 6, SrcPort: 11001, DstPort: 23, TCPFlags: 0x10 },
  'mpls-eompls-invalid-cw.pcap': { MPLSLabels: [100], DstMAC: 0x003096e6fc39, EType: 0x0800, SrcAddr: '10.31.0.1', DstAddr: '10.34.0.1', Proto: 6, SrcPort: 11001, DstPort: 23 },
}

describe('parseFrame on the sampled-frame captures', () => {
  it.each(files)('%s parses every frame completely', (file) => {
    const { statuses, batch } = parseAll(file)
    expect(statuses.length).toBeGreaterThan(0)
    expect(statuses.every((s) => s === FrameStatus.Complete)).toBe(true)
    if (file.startsWith('mpls-')) expect(batch.getList('MPLSLabels', 0).length).toBeGreaterThan(0)
  })

  it.each(files)('%s cut at every length or with flipped bits never throws', (file) => {
    const statuses: number[] = [FrameStatus.Complete, FrameStatus.Truncated, FrameStatus.Malformed]
    const next = seededRandom(file.length)
    const batch = new FlowBatch(16)
    for (const frame of readPcapFrames(join(DIR, file)).frames) {
      for (let cut = 0; cut <= frame.length; cut++) {
        for (const first of ['ethernet', 'ipv4', 'ipv6', 'mpls'] as const) {
          expect(statuses).toContain(parseFrame(frame, 0, cut, batch, batch.appendRow(), first))
        }
        batch.clear()
      }
      for (let i = 0; i < 2000; i++) {
        const mutated = frame.slice()
        for (let flips = 1 + next(6); flips > 0; flips--) mutated[next(mutated.length)]! ^= 1 << next(8)
        expect(statuses).toContain(parseFrame(mutated, 0, mutated.length, batch, batch.appendRow(), 'ethernet'))
        if (batch.count > 1000) batch.clear()
      }
    }
  })

  it.each(Object.keys(controlWordFrames))('%s goes through the control word', (file) => {
    const { batch } = parseAll(file)
    const expected = controlWordFrames[file]!
    expect(actualColumns(batch, 0, Object.keys(expected))).toEqual(expected)
  })

  it.skipIf(!tshark).each(files.filter((f) => !(f in controlWordFrames)))('%s agrees with tshark', async (file) => {
    const packets = await tsharkPackets(tshark!, join(DIR, file))
    const { batch } = parseAll(file)
    expect(packets).toHaveLength(batch.count)
    packets.forEach((tokens, row) => {
      const expected = expectedFrameColumns(tokens)
      expect(Object.keys(expected).length).toBeGreaterThanOrEqual(3)
      expect(actualColumns(batch, row, Object.keys(expected))).toEqual(expected)
    })
  })

  it.skipIf(!tshark)('agrees with tshark on hand-built frames cut at every length', async () => {
    // Every prefix of each capture's first frame, as its own pcap: tshark dissects what is there.
    const dir = await tempDir('frames')
    try {
      for (const file of ['vlan-ipv6.pcap', 'mpls-ipv4.pcap', 'srv6-end-dt6.pcap']) {
        const frame = readPcapFrames(join(DIR, file)).frames[0]!
        const prefixes = Array.from({ length: frame.length - 13 }, (_, i) => frame.subarray(0, 14 + i))
        const path = join(dir, file)
        writeFileSync(path, writeFramePcap(prefixes, 1))
        const packets = await tsharkPackets(tshark!, path)
        packets.forEach((tokens, i) => {
          const batch = new FlowBatch(1)
          const row = batch.appendRow()
          const prefix = prefixes[i]!
          const status = parseFrame(prefix, 0, prefix.length, batch, row, 'ethernet')
          const expected = expectedFrameColumns(tokens)
          const actual = actualColumns(batch, row, Object.keys(expected))
          // tshark shows the fields of a header it has only part of; we keep only whole headers.
          if (status === FrameStatus.Complete) expect(actual).toEqual(expected)
          else for (const key of ['SrcMAC', 'DstMAC'] as const) expect(actual[key]).toEqual(expected[key])
        })
      }
    } finally {
      await removeDir(dir)
    }
  })
})
