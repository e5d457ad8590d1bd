// The pcap/pcapng reader against the real captures of testdata, checked with tshark, and against
// the same captures rewritten into the other file formats and link types the reader supports.
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureExecutable, removeDir, skipReason, tempDir } from '@flowbus/test/harness'
import { parseIP } from '@flowbus/bus-schemas'
import { PcapFormatError, readPcapUdp, readPcapUdpAll, newPcapReadStats, writePcap, type PcapUdpRecord } from '../src/pcap.js'
import { akvoradoTestdata } from '../../../test/src/harness/testdata.js'

const execFileAsync = promisify(execFile)
const TESTDATA = akvoradoTestdata

const captures = (): string[] => {
  const out: string[] = []
  for (const dir of readdirSync(TESTDATA, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue
    for (const f of readdirSync(join(TESTDATA, dir.name))) if (f.endsWith('.pcap')) out.push(join(TESTDATA, dir.name, f))
  }
  return out.sort()
}

let tshark = ''
const skip = await skipReason('tshark', async () => {
  tshark = await ensureExecutable('tshark', 'tshark')
})

interface TsharkUdp {
  src: string
  srcPort: number
  dstPort: number
  length: number
}

/**
 * The datagrams tshark sees as UDP directly over the outer IP header (tunnelled UDP inside GRE or
 * IP-in-IP is not a datagram sent to a collector, and the reader does not look inside tunnels).
 */
async function tsharkUdp(file: string): Promise<TsharkUdp[]> {
  const fields = ['frame.protocols', 'ip.src', 'ipv6.src', 'udp.srcport', 'udp.dstport', 'udp.length']
  const { stdout } = await execFileAsync(tshark, ['-r', file, '-T', 'fields', '-E', 'occurrence=f', ...fields.flatMap((f) => ['-e', f])], {
    maxBuffer: 64 << 20,
  })
  const out: TsharkUdp[] = []
  for (const line of stdout.split('\n')) {
    if (line === '') continue
    const [protocols, ip4, ip6, srcPort, dstPort, length] = line.split('\t')
    const layers = protocols!.split(':').filter((p) => !p.startsWith('ipv6.'))
    const ipAt = layers.findIndex((p) => p === 'ip' || p === 'ipv6')
    if (ipAt < 0 || layers[ipAt + 1] !== 'udp') continue
    out.push({ src: layers[ipAt] === 'ip' ? ip4! : ip6!, srcPort: Number(srcPort), dstPort: Number(dstPort), length: Number(length) })
  }
  return out
}

const summary = (records: PcapUdpRecord[]): TsharkUdp[] =>
  records.map((r) => ({ src: formatForTshark(r.srcAddress), srcPort: r.srcPort, dstPort: r.dstPort, length: r.payload.length + 8 }))

function formatForTshark(address: Uint8Array): string {
  const mapped = address.subarray(0, 12).every((b, i) => (i < 10 ? b === 0 : b === 0xff))
  if (mapped) return [...address.subarray(12)].join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((address[i]! << 8) | address[i + 1]!).toString(16))
  // tshark prints RFC 5952 text; compress the longest zero run the same way.
  const text = groups.join(':')
  const runs = [...text.matchAll(/(?:^|:)0(?::0)+(?::|$)/g)].sort((a, b) => b[0].length - a[0].length)
  return runs[0] ? text.replace(runs[0][0], '::') : text
}

/** Rewrites each Ethernet frame of a classic pcap with another link layer (done here, checked by tshark). */
function relink(pcap: Uint8Array, linkType: number, header: (etherType: number) => Uint8Array): Uint8Array {
  const { frames, view } = classicFrames(pcap)
  const parts: Uint8Array[] = [pcap.slice(0, 24)]
  new DataView(parts[0]!.buffer).setUint32(20, linkType, true)
  for (const f of frames) {
    let etherType = view.getUint16(f.start + 12, false)
    let at = f.start + 14
    while (etherType === 0x8100 || etherType === 0x88a8) {
      etherType = view.getUint16(at + 2, false)
      at += 4
    }
    const body = pcap.subarray(at, f.start + f.length)
    const head = header(etherType)
    const record = new Uint8Array(16 + head.length + body.length)
    record.set(pcap.subarray(f.start - 16, f.start - 8), 0)
    new DataView(record.buffer).setUint32(8, head.length + body.length, true)
    new DataView(record.buffer).setUint32(12, head.length + body.length, true)
    record.set(head, 16)
    record.set(body, 16 + head.length)
    parts.push(record)
  }
  return concat(parts)
}

function classicFrames(pcap: Uint8Array): { frames: { start: number; length: number }[]; view: DataView } {
  const view = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength)
  const frames: { start: number; length: number }[] = []
  for (let pos = 24; pos + 16 <= pcap.length; ) {
    const length = view.getUint32(pos + 8, true)
    frames.push({ start: pos + 16, length })
    pos += 16 + length
  }
  return { frames, view }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let pos = 0
  for (const p of parts) {
    out.set(p, pos)
    pos += p.length
  }
  return out
}

/** The same little-endian classic pcap with every header field in big-endian order. */
function byteSwapped(pcap: Uint8Array): Uint8Array {
  const out = pcap.slice()
  const src = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength)
  const dst = new DataView(out.buffer)
  for (const at of [0, 8, 12, 16, 20]) dst.setUint32(at, src.getUint32(at, true), false)
  for (const at of [4, 6]) dst.setUint16(at, src.getUint16(at, true), false)
  for (const f of classicFrames(pcap).frames) for (let i = 16; i > 0; i -= 4) dst.setUint32(f.start - i, src.getUint32(f.start - i, true), false)
  return out
}

const etherTypeFamily = (etherType: number, ipv6: number): number => (etherType === 0x86dd ? ipv6 : 2)

describe.skipIf(skip !== undefined)('pcap reader on real captures', () => {
  let dir = ''
  beforeAll(async () => {
    dir = await tempDir('pcap')
  })
  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it('finds the datagrams tshark finds in every testdata capture', async () => {
    const files = captures()
    expect(files.length).toBeGreaterThan(30)
    let total = 0
    for (const file of files) {
      const { records, stats } = readPcapUdpAll(readFileSync(file), file)
      expect(summary(records), file).toEqual(await tsharkUdp(file))
      expect(stats.frames, file).toBe(stats.udp + [...stats.skipped.values()].reduce((a, b) => a + b, 0))
      total += records.length
    }
    expect(total).toBeGreaterThan(20)
  })

  it('reads pcapng and nanosecond pcap written by editcap, with the same records and times', async () => {
    const editcap = join(tshark, '..', 'editcap')
    for (const file of captures().filter((f) => f.includes('flow-decoder-'))) {
      const expected = readPcapUdpAll(readFileSync(file), file).records
      for (const format of ['pcapng', 'nsecpcap']) {
        const out = join(dir, `converted.${format}`)
        await execFileAsync(editcap, ['-F', format, file, out])
        const got = readPcapUdpAll(readFileSync(out), out).records
        expect(got, `${file} as ${format}`).toEqual(expected)
      }
    }
  })

  it('reads big-endian pcap and the Linux cooked, loopback and raw IP link types', async () => {
    const file = join(TESTDATA, 'flow-decoder-netflow', 'data+templates.pcap')
    const original = new Uint8Array(readFileSync(file))
    const expected = readPcapUdpAll(original, file).records
    expect(expected.length).toBeGreaterThan(0)
    const sll = (etherType: number): Uint8Array => {
      const h = new Uint8Array(16)
      const v = new DataView(h.buffer)
      v.setUint16(0, 0, false) // sent to us
      v.setUint16(2, 1, false) // ARPHRD_ETHER
      v.setUint16(4, 6, false)
      v.setUint16(14, etherType, false)
      return h
    }
    const sll2 = (etherType: number): Uint8Array => {
      const h = new Uint8Array(20)
      const v = new DataView(h.buffer)
      v.setUint16(0, etherType, false)
      v.setUint32(4, 2, false)
      v.setUint16(8, 1, false)
      h[11] = 6
      return h
    }
    const nullHeader = (little: boolean) => (etherType: number): Uint8Array => {
      const h = new Uint8Array(4)
      new DataView(h.buffer).setUint32(0, etherTypeFamily(etherType, 30), little)
      return h
    }
    const variants: [string, Uint8Array][] = [
      ['big-endian', byteSwapped(original)],
      ['sll', relink(original, 113, sll)],
      ['sll2', relink(original, 276, sll2)],
      ['null little-endian', relink(original, 0, nullHeader(true))],
      ['null big-endian', relink(original, 0, nullHeader(false))],
      ['loop', relink(original, 108, nullHeader(false))],
      ['raw', relink(original, 101, () => new Uint8Array(0))],
      ['ipv4', relink(original, 228, () => new Uint8Array(0))],
    ]
    for (const [name, bytes] of variants) {
      const path = join(dir, `${name.replace(/ /g, '-')}.pcap`)
      writeFileSync(path, bytes)
      const got = readPcapUdpAll(bytes, path).records
      expect(got, name).toEqual(expected)
      // tshark agrees that the rewritten file holds the same datagrams.
      expect(summary(got), name).toEqual(await tsharkUdp(path))
    }
  })

  it('writes pcaps of IPv4 and IPv6 datagrams that tshark reads back', async () => {
    const records: PcapUdpRecord[] = [
      { timestampNs: 1_700_000_000_123_456_789n, srcAddress: parseIP('192.0.2.1'), srcPort: 40000, dstAddress: parseIP('198.51.100.7'), dstPort: 2055, payload: new Uint8Array([0, 9, 1, 2, 3]) },
      { timestampNs: 1_700_000_001_000_000_000n, srcAddress: parseIP('2001:db8::1'), srcPort: 123, dstAddress: parseIP('2001:db8::ff'), dstPort: 6343, payload: new Uint8Array(1400).fill(7) },
      { timestampNs: 1_700_000_002_000_001_000n, srcAddress: parseIP('10.0.0.1'), srcPort: 1, dstAddress: parseIP('10.0.0.2'), dstPort: 4739, payload: new Uint8Array(0) },
    ]
    for (const nanosecond of [false, true]) {
      const path = join(dir, `written-${nanosecond}.pcap`)
      writeFileSync(path, writePcap(records, { nanosecond }))
      const got = readPcapUdpAll(readFileSync(path), path).records
      const expected = nanosecond ? records : records.map((r) => ({ ...r, timestampNs: (r.timestampNs / 1000n) * 1000n }))
      expect(got).toEqual(expected)
      expect(summary(got)).toEqual(await tsharkUdp(path))
      const { stdout } = await execFileAsync(tshark, ['-r', path, '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-e', 'udp.checksum.status', '-e', 'ip.checksum.status'])
      // tshark's checksum status 1 is "Good" (0 bad, 2 unverified); IPv6 has no header checksum.
      const status = stdout.split('\n').filter(Boolean).map((l) => l.split('\t'))
      expect(status.map((s) => s[0])).toEqual(['1', '1', '1'])
      expect(status.map((s) => s[1])).toEqual(['1', '', '1'])
    }
  })
})

describe('pcap reader edge cases', () => {
  const v4 = (text: string) => parseIP(text)
  const record = (payload: Uint8Array): PcapUdpRecord => ({
    timestampNs: 5_000_000_000n,
    srcAddress: v4('192.0.2.10'),
    srcPort: 9995,
    dstAddress: v4('192.0.2.20'),
    dstPort: 2055,
    payload,
  })

  it('names the file that is not a capture', () => {
    expect(() => [...readPcapUdp(new TextEncoder().encode('hello, not a pcap'), 'notes.txt')]).toThrow(PcapFormatError)
    expect(() => [...readPcapUdp(new TextEncoder().encode('hello, not a pcap'), 'notes.txt')]).toThrow(/^notes\.txt: not a pcap or pcapng file/)
    expect(() => [...readPcapUdp(new Uint8Array(2), 'tiny.pcap')]).toThrow(/tiny\.pcap/)
  })

  it('counts a truncated last record and keeps the records before it', () => {
    const bytes = writePcap([record(new Uint8Array([1, 2, 3])), record(new Uint8Array([4, 5, 6]))])
    const stats = newPcapReadStats()
    const got = [...readPcapUdp(bytes.subarray(0, bytes.length - 5), 'cut.pcap', stats)]
    expect(got.map((r) => [...r.payload])).toEqual([[1, 2, 3]])
    expect(stats.skipped.get('truncated record at end of file')).toBe(1)
  })

  it('reassembles IPv4 fragments given in any order and counts incomplete ones', () => {
    const payload = new Uint8Array(3000).map((_, i) => i & 0xff)
    const whole = writePcap([record(payload)])
    const frame = whole.subarray(24 + 16)
    // Split the IP payload (UDP header + data) into 1480-byte fragments, last one first.
    const ipPayload = frame.subarray(14 + 20)
    const fragments: Uint8Array[] = []
    for (let offset = 0; offset < ipPayload.length; offset += 1480) {
      const part = ipPayload.subarray(offset, Math.min(ipPayload.length, offset + 1480))
      const f = new Uint8Array(14 + 20 + part.length)
      f.set(frame.subarray(0, 34), 0)
      const view = new DataView(f.buffer)
      view.setUint16(16, 20 + part.length, false)
      view.setUint16(20, (offset + 1480 < ipPayload.length ? 0x2000 : 0) | (offset / 8), false)
      f.set(part, 34)
      fragments.push(f)
    }
    const pcapOf = (frames: Uint8Array[]): Uint8Array => {
      const parts: Uint8Array[] = [whole.subarray(0, 24)]
      for (const f of frames) {
        const h = new Uint8Array(16)
        new DataView(h.buffer).setUint32(8, f.length, true)
        new DataView(h.buffer).setUint32(12, f.length, true)
        parts.push(h, f)
      }
      return concat(parts)
    }
    expect(fragments.length).toBe(3)
    const reordered = [fragments[2]!, fragments[0]!, fragments[1]!]
    const { records, stats } = readPcapUdpAll(pcapOf(reordered), 'fragments.pcap')
    expect(records).toHaveLength(1)
    expect(records[0]!.payload).toEqual(payload)
    expect(records[0]!.srcPort).toBe(9995)
    expect(stats.frames).toBe(3)

    const incomplete = readPcapUdpAll(pcapOf([fragments[0]!, fragments[2]!]), 'holes.pcap')
    expect(incomplete.records).toHaveLength(0)
    expect(incomplete.stats.skipped.get('incomplete fragmented datagram')).toBe(1)
  })

  it('reads a big-endian pcapng with interfaces of different link types and timestamp resolutions', () => {
    const frame = writePcap([record(new Uint8Array([9, 9, 9]))]).subarray(24 + 16)
    const rawIp = frame.subarray(14)
    const blocks: Uint8Array[] = []
    const block = (type: number, body: Uint8Array): void => {
      const padded = (body.length + 3) & ~3
      const b = new Uint8Array(12 + padded)
      const v = new DataView(b.buffer)
      v.setUint32(0, type, false)
      v.setUint32(4, b.length, false)
      b.set(body, 8)
      v.setUint32(b.length - 4, b.length, false)
      blocks.push(b)
    }
    const shb = new Uint8Array(16)
    new DataView(shb.buffer).setUint32(0, 0x1a2b3c4d, false)
    new DataView(shb.buffer).setUint16(4, 1, false)
    new DataView(shb.buffer).setBigInt64(8, -1n, false)
    block(0x0a0d0d0a, shb)
    // Interface 0: Ethernet, nanosecond resolution (if_tsresol 9); interface 1: raw IP, 2^-10 s.
    const idb = (linkType: number, resolution: number): Uint8Array => {
      const b = new Uint8Array(8 + 8 + 4)
      const v = new DataView(b.buffer)
      v.setUint16(0, linkType, false)
      v.setUint16(8, 9, false)
      v.setUint16(10, 1, false)
      b[12] = resolution
      return b
    }
    block(1, idb(1, 9))
    block(1, idb(101, 0x80 | 10))
    const epb = (iface: number, ticks: bigint, data: Uint8Array): Uint8Array => {
      const b = new Uint8Array(20 + data.length)
      const v = new DataView(b.buffer)
      v.setUint32(0, iface, false)
      v.setUint32(4, Number(ticks >> 32n), false)
      v.setUint32(8, Number(ticks & 0xffffffffn), false)
      v.setUint32(12, data.length, false)
      v.setUint32(16, data.length, false)
      b.set(data, 20)
      return b
    }
    block(6, epb(1, 3n * 1024n + 512n, rawIp))
    block(6, epb(0, 7_000_000_123n, frame))
    const spb = new Uint8Array(4 + frame.length)
    new DataView(spb.buffer).setUint32(0, frame.length, false)
    spb.set(frame, 4)
    block(3, spb)
    block(5, new Uint8Array(8)) // interface statistics: no packet
    const { records, stats } = readPcapUdpAll(concat(blocks), 'two-interfaces.pcapng')
    expect(records.map((r) => r.timestampNs)).toEqual([3_500_000_000n, 7_000_000_123n, 0n])
    expect(records.map((r) => [...r.payload])).toEqual([[9, 9, 9], [9, 9, 9], [9, 9, 9]])
    expect(stats.frames).toBe(3)
  })

  it('skips frames that are not UDP with a reason, and refuses to write mixed address families', () => {
    const bytes = writePcap([record(new Uint8Array([1]))])
    bytes[24 + 16 + 14 + 9] = 6 // TCP
    const { records, stats } = readPcapUdpAll(bytes, 'tcp.pcap')
    expect(records).toHaveLength(0)
    expect(stats.skipped.get('not UDP')).toBe(1)
    expect(() => writePcap([{ ...record(new Uint8Array(1)), dstAddress: parseIP('::1') }])).toThrow(/mixes/)
  })
})
