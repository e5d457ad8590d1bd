// The demo exporter's flows: the same seed and ticks give the same datagrams; what it encodes
// decodes with flowbus's own decoder (`flowbus decode` on a pcap) and with tshark, with the
// expected exporters, interfaces, sampling rates and a traffic mix matching the profiles.
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { formatIP, parseIP } from '@flowbus/bus-schemas'
import { type PcapUdpRecord, parsePrefix, writePcap } from '@flowbus/runtime'
import { Schema } from 'effect'
import { afterAll, describe, expect, it } from 'vitest'
import { type TsharkTree, ensureFlowTools, tsharkDecode, tsharkFind } from '../../../test/src/harness/exporters.js'
import { skipReason } from '../../../test/src/harness/process.js'
import { DemoExporterConfig, DemoSimulation, dailyFactor } from '../src/index.js'

const execFileAsync = promisify(execFile)
const CLI = join(import.meta.dirname, '../../cli/bin/flowbus.js')

const config = Schema.decodeUnknownSync(DemoExporterConfig)({ seed: 42 })
// 21:00 UTC on a fixed day: the peak hour of the default curve.
const START = Date.UTC(2026, 5, 1, 21)
const PER_TICK = 400
const TICKS = 5

/** Every datagram of TICKS bursts, as a capture sent to the receiver's usual ports. */
const capture = (seed: number): PcapUdpRecord[] => {
  const sim = new DemoSimulation({ ...config, seed }, START)
  const records: PcapUdpRecord[] = []
  for (let t = 0; t < TICKS; t++) {
    const now = START + t * 1_000
    for (const out of sim.burst(PER_TICK, now)) {
      for (const payload of out.datagrams) {
        records.push({
          timestampNs: BigInt(now) * 1_000_000n,
          srcAddress: out.exporter.address,
          srcPort: 40_000 + out.exporter.index,
          dstAddress: parseIP('127.0.0.1'),
          dstPort: out.protocol === 'sflow-v5' ? 6343 : 2055,
          payload,
        })
      }
    }
  }
  return records
}

const inPrefix = (address: Uint8Array, text: string): boolean => {
  const { address: network, prefixLength } = parsePrefix(text)
  for (let bit = 0; bit < prefixLength; bit++) {
    const mask = 0x80 >> (bit & 7)
    if ((address[bit >> 3]! & mask) !== (network[bit >> 3]! & mask)) return false
  }
  return true
}

/** Which profile a flow's content side belongs to (its source, or its destination when reversed). */
const classify = (src: string, dst: string): { profile: number; reverse: boolean } => {
  for (const [side, text] of [
    [false, src],
    [true, dst],
  ] as const) {
    const address = parseIP(text)
    const profile = config.profiles.findIndex((p) => p.prefixes.some((prefix) => inPrefix(address, prefix)))
    if (profile >= 0) return { profile, reverse: side }
  }
  throw new Error(`flow ${src} -> ${dst} is in no profile's prefixes`)
}

/** Binomial bounds: 5 standard deviations around n·p. */
const within = (observed: number, n: number, p: number) => {
  const sigma = Math.sqrt(n * p * (1 - p))
  expect(observed).toBeGreaterThanOrEqual(n * p - 5 * sigma - 1)
  expect(observed).toBeLessThanOrEqual(n * p + 5 * sigma + 1)
}

describe('demo-exporter simulation', () => {
  it('gives the same datagrams for the same seed and ticks, others for another seed', () => {
    const a = capture(42)
    const b = capture(42)
    const c = capture(43)
    expect(a.length).toBeGreaterThan(10)
    expect(b.map((r) => Buffer.from(r.payload).toString('hex'))).toEqual(a.map((r) => Buffer.from(r.payload).toString('hex')))
    expect(c.map((r) => Buffer.from(r.payload).toString('hex'))).not.toEqual(a.map((r) => Buffer.from(r.payload).toString('hex')))
  })

  it('follows the rate and the daily curve over clock ticks', () => {
    const rated = { ...config, rate: 900 }
    const sim = new DemoSimulation(rated, START)
    let flows = 0
    for (let t = 1; t <= 50; t++) flows += sim.tick(START + t * 100).reduce((n, o) => n + o.flows, 0)
    // 5 s at the peak: 4500 flows, give or take the fractional carry of each exporter.
    expect(Math.abs(flows - 4_500)).toBeLessThanOrEqual(3)
    expect(dailyFactor(START, 21, 0.3)).toBeCloseTo(1)
    expect(dailyFactor(START + 12 * 3_600_000, 21, 0.3)).toBeCloseTo(0.3)
    const quiet = new DemoSimulation(rated, START + 12 * 3_600_000)
    let quietFlows = 0
    for (let t = 1; t <= 50; t++) quietFlows += quiet.tick(START + 12 * 3_600_000 + t * 100).reduce((n, o) => n + o.flows, 0)
    expect(Math.abs(quietFlows - 1_350)).toBeLessThanOrEqual(3)
  })
})

const tsharkSkip = await skipReason('tshark', ensureFlowTools)

describe('demo-exporter flows decode', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })
  const writeCapture = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowbus-demo-'))
    dirs.push(dir)
    const path = join(dir, 'demo.pcap')
    await writeFile(path, writePcap(capture(42)))
    return path
  }

  it('decodes with flowbus decode: exporters, interfaces, sampling rates and the traffic mix', async () => {
    const pcap = await writeCapture()
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, 'decode', '--pcap', pcap], { maxBuffer: 256 << 20 })
    expect(stderr).not.toMatch(/errors:/)
    const rows = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(rows.length).toBe(config.exporters.length * PER_TICK * TICKS)
    for (const exporter of config.exporters) {
      const mine = rows.filter((r) => r.ExporterAddress === exporter.address)
      const n = mine.length
      expect(n, exporter.name).toBe(PER_TICK * TICKS)
      const ifIndexes = new Set(exporter.interfaces.map((i) => i.ifIndex))
      const external = new Set(exporter.interfaces.filter((i) => ['transit', 'ix', 'pni'].includes(i.kind)).map((i) => i.ifIndex))
      const counts = config.profiles.map(() => 0)
      let reverse = 0
      let ipv6 = 0
      let https = 0
      for (const r of mine) {
        expect(r.SamplingRate).toBe(exporter.samplingRate)
        expect(ifIndexes.has(r.InIf as number), `InIf ${String(r.InIf)}`).toBe(true)
        expect(ifIndexes.has(r.OutIf as number), `OutIf ${String(r.OutIf)}`).toBe(true)
        const c = classify(r.SrcAddr as string, r.DstAddr as string)
        counts[c.profile]!++
        if (c.reverse) {
          reverse++
          expect(external.has(r.OutIf as number)).toBe(true)
        } else expect(external.has(r.InIf as number)).toBe(true)
        if ((r.SrcAddr as string).includes(':')) ipv6++
        if ((c.reverse ? r.DstPort : r.SrcPort) === 443) https++
        // Records carry the content network's AS (sFlow in its extended gateway record).
        expect(c.reverse ? r.DstAS : r.SrcAS).toBe(config.profiles[c.profile]!.asn)
        if (exporter.protocol === 'sflow-v5') expect((r.DstASPath as number[]).at(-1)).toBe(r.DstAS)
      }
      const totalWeight = config.profiles.reduce((s, p) => s + p.weight, 0)
      config.profiles.forEach((p, i) => within(counts[i]!, n, p.weight / totalWeight))
      within(reverse, n, config.reverseShare)
      const v6 = config.profiles.reduce((s, p) => s + (p.weight / totalWeight) * (p.ipv6Share ?? config.ipv6Share), 0)
      within(ipv6, n, v6)
      // Port 443 over TCP or UDP, from each profile's service mix.
      const services443 = config.profiles.reduce((s, p) => {
        const services = p.services ?? config.services
        const total = services.reduce((t, x) => t + x.weight, 0)
        return s + (p.weight / totalWeight) * (services.filter((x) => x.port === 443).reduce((t, x) => t + x.weight, 0) / total)
      }, 0)
      within(https, n, services443)
    }
  })

  it.skipIf(tsharkSkip !== undefined)('decodes with tshark: the same records, sampling rates and interfaces', async () => {
    const pcap = await writeCapture()
    const frames = await tsharkDecode(await ensureFlowTools(), pcap, { 2055: 'cflow', 6343: 'sflow' })
    const text = (tree: TsharkTree, key: string) => tree[key] as string
    for (const exporter of config.exporters) {
      const mine = frames.filter((f) => text(f.ip as TsharkTree, 'ip.src') === exporter.address)
      const ifIndexes = new Set(exporter.interfaces.map((i) => String(i.ifIndex)))
      if (exporter.protocol === 'sflow-v5') {
        const samples = mine.flatMap((f) => tsharkFind(f, /^Flow sample, seq \d+$/))
        expect(samples.length).toBe(PER_TICK * TICKS)
        for (const s of samples) {
          expect(s['sflow.flow_sample.sampling_rate']).toBe(String(exporter.samplingRate))
          expect(ifIndexes.has(s['sflow.flow_sample.input_interface'] as string)).toBe(true)
        }
        const agents = new Set(mine.map((f) => text(f.sflow as TsharkTree, 'sflow_245.agent')))
        expect([...agents]).toEqual([exporter.address])
      } else {
        const flows = mine.flatMap((f) => tsharkFind(f, /^Flow \d+$/)).filter((flow) => 'cflow.inputint' in flow)
        expect(flows.length).toBe(PER_TICK * TICKS)
        for (const flow of flows) {
          expect(ifIndexes.has(flow['cflow.inputint'] as string)).toBe(true)
          expect(ifIndexes.has(flow['cflow.outputint'] as string)).toBe(true)
        }
        const options = mine.flatMap((f) => tsharkFind(f, /^Flow \d+$/)).filter((flow) => !('cflow.inputint' in flow))
        expect(options.length).toBeGreaterThan(0)
        for (const o of options) {
          const rate =
            exporter.protocol === 'ipfix'
              ? (Number(o['cflow.sampling_packet_interval']) + Number(o['cflow.sampling_packet_space'])) / Number(o['cflow.sampling_packet_interval'])
              : Number(o['cflow.sampling_interval'])
          expect(rate, JSON.stringify(o)).toBe(exporter.samplingRate)
        }
      }
    }
    // No counter samples within the first counterInterval.
    expect(frames.flatMap((f) => tsharkFind(f, /^Counters sample/))).toEqual([])
    // The addresses tshark reads are inside the profiles' and customers' prefixes.
    const first = tsharkFind(frames[0]!, /^Flow \d+$/).find((flow) => 'cflow.inputint' in flow)!
    const src = (first['cflow.srcaddr'] ?? first['cflow.srcaddrv6']) as string
    const dst = (first['cflow.dstaddr'] ?? first['cflow.dstaddrv6']) as string
    expect(() => classify(formatIP(parseIP(src)), formatIP(parseIP(dst)))).not.toThrow()
  })

  it.skipIf(tsharkSkip !== undefined)('sends sFlow counter samples with the interface counters its flow samples imply', async () => {
    const sim = new DemoSimulation({ ...config, counterInterval: 1_000 }, START)
    const records: PcapUdpRecord[] = []
    for (let t = 1; t <= 3; t++) {
      for (const out of sim.burst(PER_TICK, START + t * 1_000)) {
        if (out.protocol !== 'sflow-v5') continue
        for (const payload of out.datagrams) {
          records.push({ timestampNs: BigInt(START + t * 1_000) * 1_000_000n, srcAddress: out.exporter.address, srcPort: 40_000, dstAddress: parseIP('127.0.0.1'), dstPort: 6343, payload })
        }
      }
    }
    const dir = await mkdtemp(join(tmpdir(), 'flowbus-demo-'))
    dirs.push(dir)
    const pcap = join(dir, 'counters.pcap')
    await writeFile(pcap, writePcap(records))
    const exporter = config.exporters.find((e) => e.protocol === 'sflow-v5')!
    const rounds = 3
    const { stderr } = await execFileAsync(process.execPath, [CLI, 'decode', '--pcap', pcap])
    expect(stderr).toContain(`${rounds * exporter.interfaces.length} interface counter samples`)

    const frames = await tsharkDecode(await ensureFlowTools(), pcap, { 6343: 'sflow' })
    const rate = exporter.samplingRate
    const expected = new Map(exporter.interfaces.map((i) => [String(i.ifIndex), { inOctets: 0, inPackets: 0, outOctets: 0, outPackets: 0 }]))
    for (const sample of frames.flatMap((f) => tsharkFind(f, /^Flow sample, seq \d+$/))) {
      const header = sample['Raw packet header'] as TsharkTree
      // frame_length counts the FCS the agent stripped; interface octets here do not.
      const length = Number(header['sflow_245.header.frame_length']) - Number(header['sflow_245.header.payload_stripped'])
      const input = expected.get(sample['sflow.flow_sample.input_interface'] as string)!
      const output = expected.get(String(Number(((sample['sflow.flow_sample.output_interface_tree'] as TsharkTree)['sflow.flow_sample.output_interface_value']) as string)))!
      input.inOctets += rate * length
      input.inPackets += rate
      output.outOctets += rate * length
      output.outPackets += rate
    }
    const last = new Map<string, TsharkTree>()
    for (const sample of frames.flatMap((f) => tsharkFind(f, /^Counters sample, seq \d+$/))) {
      const counters = sample['Generic interface counters'] as TsharkTree
      last.set(counters['sflow_245.ifindex'] as string, counters)
    }
    expect([...last.keys()].sort()).toEqual([...expected.keys()].sort())
    for (const [ifIndex, want] of expected) {
      const got = last.get(ifIndex)!
      const speed = exporter.interfaces.find((i) => String(i.ifIndex) === ifIndex)!.speed
      expect({
        ifIndex,
        speed: Number(got['sflow_245.ifspeed']),
        inOctets: Number(got['sflow_245.ifinoct']),
        inPackets: Number(got['sflow_245.ifinpkt']),
        outOctets: Number(got['sflow_245.ifoutoct']),
        outPackets: Number(got['sflow_245.ifoutpkt']),
      }).toEqual({ ifIndex, speed: speed * 1_000_000, inOctets: want.inOctets, inPackets: want.inPackets, outOctets: want.outOctets, outPackets: want.outPackets })
    }
    expect([...expected.values()].some((c) => c.inOctets > 0)).toBe(true)
  })
})
