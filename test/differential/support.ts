// What the differential tests share: `flowbus decode` run in-process, tshark's NetFlow/IPFIX and
// sFlow decodings mapped onto flowbus column names, and a field-by-field comparison of the two.

import { writeFile } from 'node:fs/promises'
import { formatIP, parseIP } from '@flowbus/bus-schemas'
import { knownActors, runCli } from '@flowbus/cli'
import { type PcapUdpRecord, writePcap } from '@flowbus/runtime'
import type { TsharkTree } from '@flowbus/test/harness'
import { tsharkFind } from '@flowbus/test/harness'

/** One flow as `flowbus decode --format jsonl` prints it. */
export type Row = Record<string, unknown>

export interface DecodeRun {
  readonly code: number
  readonly stderr: string
  readonly rows: Row[]
}

/** `flowbus decode --pcap F… --format jsonl`, in this process, through the CLI's own entry point. */
export async function flowbusDecode(files: readonly string[]): Promise<DecodeRun> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(['decode', ...files.flatMap((f) => ['--pcap', f]), '--format', 'jsonl'], {
    actors: knownActors,
    env: {},
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
  })
  const rows = stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Row)
  return { code, stderr, rows }
}

/** Writes exported datagrams as a pcap: tshark, nfcapd replay and flowbus read the same bytes. */
export async function writeDatagrams(path: string, datagrams: readonly PcapUdpRecord[]): Promise<void> {
  await writeFile(path, writePcap(datagrams))
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined)
const num = (v: unknown): number | undefined => {
  const s = text(v)
  return s === undefined || s.trim() === '' ? undefined : Number(s)
}
/** tshark and flowbus both print RFC 5952 text, but normalise in case either ever differs. */
const ip = (v: unknown): string | undefined => {
  const s = text(v)
  return s === undefined ? undefined : formatIP(parseIP(s))
}

/**
 * Columns compared with tshark's NetFlow/IPFIX decoding, and the tshark field(s) each comes from
 * (first one present). A field tshark does not show for a record is not compared. Besides these,
 * tsharkNetflowFlows derives ICMPv4Type/Code (from icmpTypeCodeIPv4), MPLSLabels (the stack down
 * to bottom of stack), the v5 header's SamplingRate, and the addresses, ports and MACs of an
 * IPFIX dataLinkFrameSection from the frame tshark dissects inside it.
 */
export const NETFLOW_FIELDS: readonly (readonly [string, readonly string[], (v: unknown) => unknown])[] = [
  ['SrcAddr', ['cflow.srcaddr', 'cflow.srcaddrv6'], ip],
  ['DstAddr', ['cflow.dstaddr', 'cflow.dstaddrv6'], ip],
  ['SrcPort', ['cflow.srcport'], num],
  ['DstPort', ['cflow.dstport'], num],
  ['Proto', ['cflow.protocol'], num],
  ['Bytes', ['cflow.octets'], num],
  ['Packets', ['cflow.packets'], num],
  ['InIf', ['cflow.inputint'], num],
  ['OutIf', ['cflow.outputint'], num],
  ['IPTos', ['cflow.tos'], num],
  ['TCPFlags', ['cflow.tcpflags'], num],
  ['SrcNetMask', ['cflow.srcmask', 'cflow.srcmaskv6'], num],
  ['DstNetMask', ['cflow.dstmask', 'cflow.dstmaskv6'], num],
  ['SrcAS', ['cflow.srcas'], num],
  ['DstAS', ['cflow.dstas'], num],
  // IPFIX flowDirection is 0 ingress, 1 egress; the column keeps 0 for "not sent" (1 ingress, 2 egress).
  ['FlowDirection', ['cflow.direction'], (v) => { const d = num(v); return d === undefined ? undefined : d + 1 }],
  ['SrcVlan', ['cflow.vlanid'], num],
  ['DstVlan', ['cflow.post_vlanid'], num],
  ['InVrf', ['cflow.ingress_vrfid'], num],
  ['OutVrf', ['cflow.egress_vrfid'], num],
  ['SrcAddrNAT', ['cflow.post_natsource_ipv4_address'], ip],
  ['DstAddrNAT', ['cflow.post_natdestination_ipv4_address'], ip],
  ['SrcPortNAT', ['cflow.post_naptsource_transport_port'], num],
  ['DstPortNAT', ['cflow.post_naptdestination_transport_port'], num],
  ['ICMPv6Type', ['cflow.icmp_ipv6_type'], num],
  ['ICMPv6Code', ['cflow.icmp_ipv6_code'], num],
  ['IPv6FlowLabel', ['cflow.ipv6flowlabel'], num],
]

/**
 * Fields flowbus fills that are deliberately not compared with tshark, and why. Kept next to the
 * compared list so the report of what agrees is complete.
 */
export const NETFLOW_NOT_COMPARED: Readonly<Record<string, string>> = {
  NextHop: 'flowbus takes the BGP next hop (IE 18) over the IP next hop (IE 15) when both are sent; tshark shows both separately',
  SamplingRate: 'joined from options data (sampler, interval); tshark shows it where it is sent, not per flow (v5: compared, from the header)',
  FlowStartTime: 'v9 times are relative to sysUpTime; tshark prints them in local text form',
  FlowEndTime: 'as FlowStartTime',
  TimeReceived: 'the capture time, not a field of the export',
}

/** Every NetFlow/IPFIX data record tshark decoded, as partial flowbus rows (v5 records too). */
export function tsharkNetflowFlows(frames: readonly TsharkTree[]): Row[] {
  const rows: Row[] = []
  for (const frame of frames) {
    const cflow = frame.cflow
    if (cflow === undefined) continue
    for (const layer of Array.isArray(cflow) ? cflow : [cflow]) {
      if (typeof layer !== 'object') continue
      const header = layer as TsharkTree
      const v5Sampling = num(header['cflow.samplerate'])
      for (const record of tsharkFind(header, /^(Flow \d+|pdu \d+\/\d+)$/)) {
        const row: Row = {}
        for (const [column, fields, convert] of NETFLOW_FIELDS) {
          const field = fields.find((f) => record[f] !== undefined)
          if (field !== undefined) {
            const value = convert(record[field])
            if (value !== undefined && !(typeof value === 'number' && Number.isNaN(value))) row[column] = value
          }
        }
        const icmp = num(record['cflow.icmp_type_code_ipv4'])
        if (icmp !== undefined) {
          row.ICMPv4Type = icmp >>> 8
          row.ICMPv4Code = icmp & 0xff
        }
        // tshark shows every label slot of the template; the stack ends at the bottom-of-stack bit.
        const entries = Object.entries(record).filter(([key]) => /^MPLS-Label\d+/.test(key))
        if (entries.length > 0) {
          const labels: number[] = []
          for (const [, entry] of entries) {
            const e = entry as TsharkTree
            labels.push(num(e['cflow.mpls_label']) ?? 0)
            if (num(e['cflow.mpls_bos']) === 1) break
          }
          row.MPLSLabels = labels
        }
        // Options data (sampler, interface names…) is not a flow.
        if (row.SrcAddr === undefined && row.Bytes === undefined && row.Packets === undefined && !('cflow.data_link_frame_section' in record)) continue
        if (header['cflow.version'] === '5' && v5Sampling !== undefined) row.SamplingRate = v5Sampling
        // A dataLinkFrameSection record: addresses and ports come from the frame tshark dissects inside it.
        const section = tsharkFind(record, /^cflow\.data_link_frame_section_tree$/)[0]
        if (section !== undefined && row.SrcAddr === undefined) {
          Object.assign(row, sampledFrameFields(section))
          delete row[IP_LENGTH]
        }
        rows.push(row)
        const reverse = reverseFlow(record, row)
        if (reverse) rows.push(reverse)
      }
    }
  }
  return rows
}

/**
 * The reverse direction of an RFC 5103 biflow record: tshark shows each reverse element (PEN
 * 29305) under the same field name as its forward one, which `--no-duplicate-keys` turns into a
 * [forward, reverse] pair. A reverse direction without packets is no flow.
 */
function reverseFlow(record: TsharkTree, forward: Row): Row | undefined {
  const second = (field: string): unknown => {
    const v = record[field]
    return Array.isArray(v) && v.length === 2 ? v[1] : undefined
  }
  const packets = num(second('cflow.packets'))
  if (packets === undefined || packets === 0) return undefined
  const row: Row = { ...forward, SrcAddr: forward.DstAddr, DstAddr: forward.SrcAddr, SrcPort: forward.DstPort, DstPort: forward.SrcPort }
  row.Packets = packets
  row.Bytes = num(second('cflow.octets'))
  const flags = num(second('cflow.tcpflags'))
  if (flags !== undefined) row.TCPFlags = flags
  const tos = num(second('cflow.tos'))
  if (tos !== undefined) row.IPTos = tos
  for (const key of Object.keys(row)) if (row[key] === undefined) delete row[key]
  return row
}

/** Where sampledFrameFields leaves the first IP header's packet length (not a column). */
const IP_LENGTH = '(ip length)'

/** Addresses, ports, protocol and MACs of the first IP packet in a frame tshark dissected. */
function sampledFrameFields(tree: TsharkTree): Row {
  const row: Row = {}
  const first = (name: RegExp): TsharkTree | undefined => tsharkFind(tree, name)[0]
  const eth = first(/^eth$/)
  if (eth) {
    row.SrcMAC = text(eth['eth.src'])
    row.DstMAC = text(eth['eth.dst'])
  }
  const v4 = first(/^ip$/)
  const v6 = first(/^ipv6$/)
  if (v4) {
    row.SrcAddr = ip(v4['ip.src'])
    row.DstAddr = ip(v4['ip.dst'])
    row.Proto = num(v4['ip.proto'])
  } else if (v6) {
    row.SrcAddr = ip(v6['ipv6.src'])
    row.DstAddr = ip(v6['ipv6.dst'])
    row.Proto = num(v6['ipv6.nxt'])
  }
  // The IP packet's length, which flowbus reports as Bytes for a sampled frame.
  const ipLength = v4 ? num(v4['ip.len']) : v6 ? (num(v6['ipv6.plen']) ?? NaN) + 40 : undefined
  if (ipLength !== undefined && !Number.isNaN(ipLength)) row[IP_LENGTH] = ipLength
  const tcp = first(/^tcp$/)
  const udp = first(/^udp$/)
  if (tcp) {
    row.SrcPort = num(tcp['tcp.srcport'])
    row.DstPort = num(tcp['tcp.dstport'])
  } else if (udp) {
    row.SrcPort = num(udp['udp.srcport'])
    row.DstPort = num(udp['udp.dstport'])
  }
  for (const key of Object.keys(row)) if (row[key] === undefined) delete row[key]
  return row
}

/** Columns compared with tshark's sFlow decoding. */
export const SFLOW_COMPARED = ['SamplingRate', 'InIf', 'OutIf', 'Bytes', 'SrcAddr', 'DstAddr', 'Proto', 'SrcPort', 'DstPort', 'SrcMAC', 'DstMAC', 'SrcVlan', 'DstVlan'] as const

const LOCAL_INTERFACE = 0x3fffffff

/** Every sFlow flow sample tshark decoded, as partial flowbus rows. */
export function tsharkSflowFlows(frames: readonly TsharkTree[]): Row[] {
  const rows: Row[] = []
  for (const frame of frames) {
    const sflow = frame.sflow
    if (sflow === undefined || typeof sflow !== 'object') continue
    for (const sample of tsharkFind(sflow as TsharkTree, /^(Expanded f|F)low sample, seq \d+$/)) {
      const row: Row = { Packets: 1 }
      row.SamplingRate = num(sample['sflow.flow_sample.sampling_rate'])
      const interfaces = (prefix: 'input' | 'output'): { format: number; value: number } | undefined => {
        // Compact samples: one 32-bit word (2-bit format, 30-bit value); expanded: format and value.
        const format = num(sample[`sflow.flow_sample.${prefix}_interface_format`]) ?? num(sample[`sflow.flow_sample.${prefix}_interface_tree`] && (sample[`sflow.flow_sample.${prefix}_interface_tree`] as TsharkTree)[`sflow.flow_sample.${prefix}_interface_format`])
        const value =
          num(sample[`sflow.flow_sample.${prefix}_interface_value`]) ??
          num(sample[`sflow.flow_sample.${prefix}_interface_tree`] && (sample[`sflow.flow_sample.${prefix}_interface_tree`] as TsharkTree)[`sflow.flow_sample.${prefix}_interface_value`])
        if (value !== undefined) return { format: format ?? 0, value }
        const word = num(sample[`sflow.flow_sample.${prefix}_interface`])
        return word === undefined ? undefined : { format: word >>> 30, value: word & LOCAL_INTERFACE }
      }
      const input = interfaces('input')
      const output = interfaces('output')
      // 0x3fffffff is the exporter itself ("internal"), not an ifIndex: flowbus leaves InIf/OutIf at 0.
      if (input && input.format === 0) row.InIf = input.value === LOCAL_INTERFACE ? 0 : input.value
      if (output && output.format === 0) row.OutIf = output.value === LOCAL_INTERFACE ? 0 : output.value
      const header = tsharkFind(sample, /^Raw packet header$/)[0]
      if (header) {
        const tree = tsharkFind(header, /^sflow_245\.header_tree$/)[0]
        if (tree) Object.assign(row, sampledFrameFields(tree))
        // Bytes is the sampled packet's IP length (layer 3, as NetFlow counts); without an IP
        // header, the frame length less the Ethernet FCS the agent counted in it.
        const frameLength = num(header['sflow_245.header.frame_length'])
        const stripped = num(header['sflow_245.header.payload_stripped']) ?? 0
        row.Bytes = row[IP_LENGTH] ?? (frameLength === undefined ? undefined : frameLength - (stripped >= 4 ? 4 : 0))
        delete row[IP_LENGTH]
      }
      const sw = tsharkFind(sample, /^Extended switch data$/)[0]
      if (sw) {
        row.SrcVlan = num(sw['sflow_245.vlan.in'])
        row.DstVlan = num(sw['sflow_245.vlan.out'])
      }
      for (const key of Object.keys(row)) if (row[key] === undefined) delete row[key]
      rows.push(row)
    }
  }
  return rows
}

/** One field where flowbus and the reference disagree on a flow both decoded. */
export interface Disagreement {
  readonly flow: string
  readonly column: string
  readonly expected: unknown
  readonly got: unknown
}

export interface Comparison {
  /** Reference flows matched to one of ours. */
  readonly matched: number
  /** Reference flows we have no flow for (same addresses, ports and protocol). */
  readonly missing: Row[]
  /** Our flows no reference flow matched. */
  readonly extra: Row[]
  readonly disagreements: Disagreement[]
  /** How many values were compared, per column. */
  readonly compared: Record<string, number>
}

// A record without ports (ICMP with its own type/code element) prints them as 0 in flowbus.
const tupleKey = (r: Row): string => `${r.Proto} ${r.SrcAddr}:${r.SrcPort ?? 0} > ${r.DstAddr}:${r.DstPort ?? 0}`

/**
 * Matches each reference flow to one of ours with the same 5-tuple (the same byte and packet
 * counts first, then any), and compares every column the reference has. Order does not matter:
 * flowbus decodes data that arrived before its template, tshark does not.
 */
export function compareFlows(ours: readonly Row[], reference: readonly Row[], columns?: readonly string[]): Comparison {
  const byTuple = new Map<string, Row[]>()
  for (const row of ours) {
    const key = tupleKey(row)
    const list = byTuple.get(key)
    if (list) list.push(row)
    else byTuple.set(key, [row])
  }
  const missing: Row[] = []
  const disagreements: Disagreement[] = []
  const compared: Record<string, number> = {}
  let matched = 0
  for (const ref of reference) {
    let candidates = byTuple.get(tupleKey(ref))
    if (ref.SrcAddr === undefined) {
      // The reference could not dissect the addresses (e.g. tshark on Ethernet over MPLS with a
      // control word): match on every field it did show.
      const same = (r: Row): boolean => Object.entries(ref).every(([c, v]) => JSON.stringify(r[c] ?? absent(v)) === JSON.stringify(v))
      const list = [...byTuple.values()].find((rows) => rows.some(same))
      if (list) candidates = [list.splice(list.findIndex(same), 1)[0]!]
    }
    if (!candidates || candidates.length === 0) {
      missing.push(ref)
      continue
    }
    let index = candidates.findIndex((r) => r.Bytes === ref.Bytes && r.Packets === ref.Packets)
    if (index < 0) index = 0
    const row = candidates.splice(index, 1)[0]!
    matched++
    for (const [column, expected] of Object.entries(ref)) {
      if (columns && !columns.includes(column)) continue
      compared[column] = (compared[column] ?? 0) + 1
      const got = row[column] ?? absent(expected)
      if (JSON.stringify(got) !== JSON.stringify(expected)) disagreements.push({ flow: tupleKey(ref), column, expected, got })
    }
  }
  const extra = [...byTuple.values()].flat()
  return { matched, missing, extra, disagreements, compared }
}

/** What flowbus prints for a column it leaves out of a row (absent columns are zero values). */
function absent(expected: unknown): unknown {
  if (typeof expected === 'number') return 0
  if (Array.isArray(expected)) return []
  return undefined
}

/** Disagreements grouped by column, with up to three examples each, for failure messages. */
export function describeDisagreements(list: readonly Disagreement[]): string {
  const byColumn = new Map<string, Disagreement[]>()
  for (const d of list) byColumn.set(d.column, [...(byColumn.get(d.column) ?? []), d])
  return [...byColumn.entries()]
    .map(([column, ds]) => `${column}: ${ds.length} flows, e.g. ${ds.slice(0, 3).map((d) => `${d.flow} expected ${JSON.stringify(d.expected)} got ${JSON.stringify(d.got)}`).join('; ')}`)
    .join('\n')
}
