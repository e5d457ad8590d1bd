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
import { TestSink } from './packets.js'

const execFileAsync = promisify(execFile)
const testdata = join(import.meta.dirname, '../../../../../shared/testdata/akvorado/flow-decoder-netflow')
if (!existsSync(testdata) && process.env.CI === 'true') throw new Error(`captures missing under ${testdata} (CI=true: they are required)`)

/** Captures decoded in order by one decoder (templates before data of the same exporter), and the UDP port tshark must read as cflow. */
const GROUPS: { name: string; files: string[]; port: number }[] = [
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
  },
  { name: 'v5', files: ['nfv5.pcap'], port: 9990 },
]

type Flat = Map<string, string[]>

/** Every leaf of a tshark JSON object, by field name, in document order. */
function flatten(node: unknown, out: Flat = new Map()): Flat {
  if (node === null || typeof node !== 'object') return out
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    const values = Array.isArray(value) ? value : [value]
    for (const v of values) {
      if (typeof v === 'string') {
        const list = out.get(key) ?? []
        list.push(v)
        out.set(key, list)
      } else flatten(v, out)
    }
  }
  return out
}

const one = (f: Flat, key: string): string | undefined => f.get(key)?.[0]
const num = (f: Flat, key: string): number | undefined => {
  const v = one(f, key)
  return v === undefined ? undefined : Number(v)
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
/** tshark's absolute time `Jun  4, 2023 08:39:53.216000000 UTC` in ms. */
function absoluteMs(text: string): number {
  const m = /^(\w{3})\s+(\d+), (\d{4}) (\d\d):(\d\d):(\d\d)\.(\d{3})\d* UTC$/.exec(text)
  if (!m) throw new Error(`unexpected tshark time ${text}`)
  return Date.UTC(Number(m[3]), MONTHS.indexOf(m[1]!), Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7]))
}

/** A tshark flow record: the data records (not options ones), with the header it came in. */
interface TsharkFlow {
  fields: Flat
  header: Flat
}

/** Splits a tshark cflow layer into records: v5 `pdu i/n`, v9/IPFIX `Flow n` inside data sets. */
function records(cflow: Record<string, unknown>): { fields: Flat; header: Flat }[] {
  const header = new Map<string, string[]>()
  const out: { fields: Flat; header: Flat }[] = []
  for (const [key, value] of Object.entries(cflow)) {
    if (key.startsWith('pdu ')) out.push({ fields: flatten(value), header })
    else if (key.startsWith('Set ') || key.startsWith('FlowSet ')) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (k.startsWith('Flow ')) out.push({ fields: flatten(v), header })
    } else if (typeof value === 'string') header.set(key, [value])
    else flatten(value, header)
  }
  return out
}

const isData = (f: Flat): boolean =>
  ['cflow.srcaddr', 'cflow.srcaddrv6', 'cflow.octets', 'cflow.packets', 'cflow.inputint', 'cflow.data_link_frame_section'].some((k) => f.has(k))

/** Sampling rates tshark shows in options records, as our decoder joins them (by sampler/selector id, else the last one). */
class OptionRates {
  readonly byId = new Map<string, number>()
  last = 0
  learn(f: Flat): void {
    let rate = num(f, 'cflow.sampling_interval') ?? num(f, 'cflow.sampler_random_interval') ?? 0
    const interval = num(f, 'cflow.sampling_packet_interval')
    if (rate === 0 && interval !== undefined && interval > 0) rate = Math.round((interval + (num(f, 'cflow.sampling_packet_space') ?? 0)) / interval)
    if (rate === 0) return
    this.last = rate
    const id = one(f, 'cflow.sampler_id') ?? one(f, 'cflow.selector_id')
    if (id !== undefined) this.byId.set(id, rate)
  }
  of(f: Flat): number {
    const own = num(f, 'cflow.sampling_interval') ?? num(f, 'cflow.sampler_random_interval')
    if (own !== undefined && own > 0) return own
    const id = one(f, 'cflow.sampler_id') ?? one(f, 'cflow.selector_id')
    return (id !== undefined ? this.byId.get(id) : undefined) ?? this.last
  }
}

const ZERO = new Set(['0.0.0.0', '::'])

/** The columns we expect for one tshark record; only fields tshark shows are expected. */
function expected(t: TsharkFlow, rates: OptionRates, v5: boolean): Record<string, unknown> {
  const f = t.fields
  const e: Record<string, unknown> = {}
  const set = (column: string, value: unknown): void => {
    if (value !== undefined && !(typeof value === 'number' && Number.isNaN(value))) e[column] = value
  }
  set('SrcAddr', one(f, 'cflow.srcaddr') ?? one(f, 'cflow.srcaddrv6') ?? one(f, 'ip.src') ?? one(f, 'ipv6.src'))
  set('DstAddr', one(f, 'cflow.dstaddr') ?? one(f, 'cflow.dstaddrv6') ?? one(f, 'ip.dst') ?? one(f, 'ipv6.dst'))
  set('SrcPort', num(f, 'cflow.srcport') ?? num(f, 'udp.srcport') ?? num(f, 'tcp.srcport'))
  set('DstPort', num(f, 'cflow.dstport') ?? num(f, 'udp.dstport') ?? num(f, 'tcp.dstport'))
  set('Proto', num(f, 'cflow.protocol') ?? num(f, 'ip.proto'))
  set('Bytes', num(f, 'cflow.octets') ?? num(f, 'cflow.octets64') ?? num(f, 'cflow.data_link_frame_size'))
  set('Packets', num(f, 'cflow.packets') ?? num(f, 'cflow.packets64') ?? (f.has('cflow.data_link_frame_section') ? 1 : undefined))
  set('InIf', num(f, 'cflow.inputint'))
  set('OutIf', num(f, 'cflow.outputint'))
  set('SrcAS', num(f, 'cflow.srcas'))
  set('DstAS', num(f, 'cflow.dstas'))
  set('SrcNetMask', num(f, 'cflow.srcmask') ?? num(f, 'cflow.srcmaskv6'))
  set('DstNetMask', num(f, 'cflow.dstmask') ?? num(f, 'cflow.dstmaskv6'))
  const tcp = one(f, 'cflow.tcpflags') ?? (f.has('tcp.flags') ? one(f, 'tcp.flags') : undefined)
  set('TCPFlags', tcp === undefined ? undefined : parseInt(tcp, 16))
  const tos = one(f, 'cflow.tos') ?? one(f, 'ip.dsfield')
  set('IPTos', tos === undefined ? undefined : parseInt(tos, 16))
  set('IPTTL', num(f, 'cflow.ip_ttl') ?? num(f, 'cflow.ttl_min') ?? num(f, 'ip.ttl'))
  set('SrcVlan', num(f, 'cflow.vlanid') ?? num(f, 'vlan.id'))
  set('DstVlan', num(f, 'cflow.post_vlanid'))
  set('InVrf', num(f, 'cflow.ingress_vrfid'))
  set('OutVrf', num(f, 'cflow.egress_vrfid'))
  // Our next hop: the IP next hop elements, else the BGP ones; of an IPv4/IPv6 pair, the one set.
  const hops = [['cflow.nexthop', 'cflow.nexthopv6'], ['cflow.bgpnexthop', 'cflow.bgpnexthopv6']]
    .map((g) => g.map((k) => one(f, k)).filter((v): v is string => v !== undefined))
    .find((g) => g.length > 0)
  if (hops !== undefined) set('NextHop', hops.find((h) => !ZERO.has(h)) ?? (hops.length > 1 ? '::' : hops[0]))
  // flowDirection 0 ingress / 1 egress; the column keeps 0 for "undefined".
  const direction = num(f, 'cflow.direction')
  if (direction !== undefined) set('FlowDirection', direction === 0 ? 1 : direction === 1 ? 2 : 0)
  const status = num(f, 'cflow.forwarding_status')
  if (status !== undefined) {
    const reason = num(f, 'cflow.forwarding_status_forward_code') ?? num(f, 'cflow.forwarding_status_drop_code') ?? num(f, 'cflow.forwarding_status_consume_code') ?? 0
    set('ForwardingStatus', (status << 6) | reason)
  }
  const icmp = one(f, 'cflow.icmp_type_code_ipv4')
  if (icmp !== undefined) {
    set('ICMPv4Type', parseInt(icmp, 16) >> 8)
    set('ICMPv4Code', parseInt(icmp, 16) & 255)
  }
  set('ICMPv6Type', num(f, 'cflow.icmp_ipv6_type'))
  set('ICMPv6Code', num(f, 'cflow.icmp_ipv6_code'))
  const labels = f.get('cflow.mpls_label')
  if (labels !== undefined) {
    const exp = f.get('cflow.mpls_exp') ?? []
    const bos = f.get('cflow.mpls_bos') ?? []
    const stack: number[] = []
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] === '0' && exp[i] === '0' && bos[i] === '0') break
      stack.push(Number(labels[i]))
      if (bos[i] === '1') break
    }
    set('MPLSLabels', stack)
  }
  set('SrcAddrNAT', one(f, 'cflow.post_natsource_ipv4_address') ?? one(f, 'cflow.post_natsource_ipv6_address'))
  set('DstAddrNAT', one(f, 'cflow.post_natdestination_ipv4_address') ?? one(f, 'cflow.post_natdestination_ipv6_address'))
  set('SrcPortNAT', num(f, 'cflow.post_naptsource_transport_port'))
  set('DstPortNAT', num(f, 'cflow.post_naptdestination_transport_port'))
  // Times: uptime-relative (v5/v9 `timestart`, seconds of uptime) or absolute.
  const h = t.header
  const base = (num(h, 'cflow.unix_secs') ?? 0) * 1000 + (v5 ? Math.floor((num(h, 'cflow.unix_nsecs') ?? 0) / 1e6) : 0)
  const uptime = Math.round((num(h, 'cflow.sysuptime') ?? 0) * 1000)
  const start = one(f, 'cflow.timestart')
  const end = one(f, 'cflow.timeend')
  if (start !== undefined) set('FlowStartTime', base - (uptime - Math.round(Number(start) * 1000)))
  if (end !== undefined) set('FlowEndTime', base - (uptime - Math.round(Number(end) * 1000)))
  const absStart = one(f, 'cflow.abstimestart')
  const absEnd = one(f, 'cflow.abstimeend')
  if (absStart !== undefined) set('FlowStartTime', absoluteMs(absStart))
  if (absEnd !== undefined) set('FlowEndTime', absoluteMs(absEnd))
  set('SamplingRate', v5 ? (num(h, 'cflow.samplerate') ?? 0) : rates.of(f))
  return e
}

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
      const { stdout } = await execFileAsync(tshark!, ['-r', file, '-T', 'json', '--no-duplicate-keys', '-d', `udp.port==${group.port},cflow`], {
        maxBuffer: 256 << 20,
      })
      const packets = JSON.parse(stdout) as { _source: { layers: { cflow?: Record<string, unknown> } } }[]
      const rates = new OptionRates()
      const want: Record<string, unknown>[] = []
      const v5 = group.files[0] === 'nfv5.pcap'
      let undecoded = false
      for (const p of packets) {
        const cflow = p._source.layers.cflow
        if (cflow === undefined) continue
        undecoded ||= JSON.stringify(cflow).includes('no template found')
        for (const r of records(cflow)) {
          if (isData(r.fields)) want.push(expected(r, rates, v5))
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
    let seed = 11
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
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
