// Test helper: tshark's NetFlow/IPFIX (cflow) decoding as the reference. Runs tshark -T json and
// turns each data record into the flow columns we expect, so tests compare field by field.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { formatIP, parseIP } from '@flowbus/bus-schemas'

const execFileAsync = promisify(execFile)

/** Every leaf value of a record by tshark field name, in document order (reverse IEs come second). */
export type Flat = Map<string, string[]>

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

const pick = (f: Flat, key: string, at: number): string | undefined => f.get(key)?.[at]
const number = (f: Flat, key: string, at = 0): number | undefined => {
  const v = pick(f, key, at)
  return v === undefined ? undefined : Number(v)
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
/** tshark's absolute time `Jun  4, 2023 08:39:53.216000000 UTC` in ms. */
function absoluteMs(text: string): number {
  const m = /^(\w{3})\s+(\d+), (\d{4}) (\d\d):(\d\d):(\d\d)\.(\d{3})\d* UTC$/.exec(text)
  if (!m) throw new Error(`unexpected tshark time ${text}`)
  return Date.UTC(Number(m[3]), MONTHS.indexOf(m[1]!), Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7]))
}

/** One record as tshark shows it, with the header of its packet. */
export interface TsharkRecord {
  readonly fields: Flat
  readonly header: Flat
  /** Data record (addresses, counters, interfaces or a frame section), not options data. */
  readonly data: boolean
}

export interface TsharkPacket {
  readonly records: TsharkRecord[]
  /** tshark saw data whose template it did not have. */
  readonly undecoded: boolean
}

/** Records of every packet of a capture, tshark reading udp.port==port as NetFlow/IPFIX. */
export async function tsharkRecords(tshark: string, file: string, port: number, args: readonly string[] = []): Promise<TsharkPacket[]> {
  const { stdout } = await execFileAsync(tshark, ['-r', file, '-T', 'json', '--no-duplicate-keys', '-d', `udp.port==${port},cflow`, ...args], {
    maxBuffer: 256 << 20,
  })
  const packets = JSON.parse(stdout) as { _source: { layers: { cflow?: Record<string, unknown> } } }[]
  return packets.flatMap((p) => {
    const cflow = p._source.layers.cflow
    if (cflow === undefined) return []
    const header: Flat = new Map()
    const records: TsharkRecord[] = []
    const add = (value: unknown): void => {
      const fields = flatten(value)
      const data = ['cflow.srcaddr', 'cflow.srcaddrv6', 'cflow.octets', 'cflow.packets', 'cflow.inputint', 'cflow.data_link_frame_section'].some((k) => fields.has(k))
      records.push({ fields, header, data })
    }
    for (const [key, value] of Object.entries(cflow)) {
      if (key.startsWith('pdu ')) add(value)
      else if (key.startsWith('Set ') || key.startsWith('FlowSet ')) {
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (k.startsWith('Flow ')) add(v)
      } else if (typeof value === 'string') header.set(key, [value])
      else flatten(value, header)
    }
    return [{ records, undecoded: JSON.stringify(cflow).includes('no template found') }]
  })
}

/** Sampling rates tshark shows in options records, joined as our decoder does: by sampler/selector id, else the domain's last. */
export class OptionRates {
  readonly #byId = new Map<string, number>()
  #last = 0
  learn(f: Flat): void {
    let rate = number(f, 'cflow.sampling_interval') ?? number(f, 'cflow.sampler_random_interval') ?? 0
    const interval = number(f, 'cflow.sampling_packet_interval')
    if (rate === 0 && interval !== undefined && interval > 0) rate = Math.round((interval + (number(f, 'cflow.sampling_packet_space') ?? 0)) / interval)
    if (rate === 0) return
    this.#last = rate
    const id = pick(f, 'cflow.sampler_id', 0) ?? pick(f, 'cflow.selector_id', 0)
    if (id !== undefined) this.#byId.set(id, rate)
  }
  of(f: Flat): number {
    const own = number(f, 'cflow.sampling_interval') ?? number(f, 'cflow.sampler_random_interval')
    if (own !== undefined && own > 0) return own
    const id = pick(f, 'cflow.selector_id', 0) ?? pick(f, 'cflow.sampler_id', 0)
    return (id !== undefined ? this.#byId.get(id) : undefined) ?? this.#last
  }
}

const ZERO = new Set(['0.0.0.0', '::'])
const ADDRESS_COLUMNS = new Set(['SrcAddr', 'DstAddr', 'NextHop', 'SrcAddrNAT', 'DstAddrNAT'])

/**
 * The columns we expect for one tshark record; only fields tshark shows are expected. `reverse`:
 * the RFC 5103 reverse flow (directional fields swapped, reverse counters: the second values).
 */
export function expectedColumns(t: TsharkRecord, rates: OptionRates, o: { v5?: boolean; reverse?: boolean } = {}): Record<string, unknown> {
  const f = t.fields
  const e: Record<string, unknown> = {}
  const one = (key: string): string | undefined => pick(f, key, 0)
  const num = (key: string): number | undefined => number(f, key)
  const set = (column: string, value: unknown): void => {
    if (value === undefined || (typeof value === 'number' && Number.isNaN(value))) return
    // tshark writes IPv4-compatible IPv6 addresses as ::a.b.c.d; flowbus uses RFC 5952 text.
    e[column] = ADDRESS_COLUMNS.has(column) ? formatIP(parseIP(value as string)) : value
  }
  set('SrcAddr', one('cflow.srcaddr') ?? one('cflow.srcaddrv6') ?? one('ip.src') ?? one('ipv6.src'))
  set('DstAddr', one('cflow.dstaddr') ?? one('cflow.dstaddrv6') ?? one('ip.dst') ?? one('ipv6.dst'))
  set('SrcPort', num('cflow.srcport') ?? num('udp.srcport') ?? num('tcp.srcport'))
  set('DstPort', num('cflow.dstport') ?? num('udp.dstport') ?? num('tcp.dstport'))
  set('Proto', num('cflow.protocol') ?? num('ip.proto'))
  // A dataLinkFrameSection counts its IP packet's length (layer 3), else the frame's size.
  const plen = num('ipv6.plen')
  const frameIPLength = f.has('cflow.data_link_frame_section') ? (num('ip.len') ?? (plen === undefined ? undefined : plen + 40)) : undefined
  set('Bytes', num('cflow.octets') ?? num('cflow.post_octets') ?? num('cflow.permanent_octets') ?? num('cflow.initiator_octets') ?? frameIPLength ?? num('cflow.data_link_frame_size'))
  set('Packets', num('cflow.packets') ?? num('cflow.post_packets') ?? num('cflow.permanent_packets') ?? num('cflow.initiator_packets') ?? (f.has('cflow.data_link_frame_section') ? 1 : undefined))
  set('InIf', num('cflow.inputint') ?? num('cflow.ingress_physical_interface'))
  set('OutIf', num('cflow.outputint') ?? num('cflow.egress_physical_interface'))
  set('SrcAS', num('cflow.srcas'))
  set('DstAS', num('cflow.dstas'))
  set('SrcNetMask', num('cflow.srcmask') ?? num('cflow.srcmaskv6'))
  set('DstNetMask', num('cflow.dstmask') ?? num('cflow.dstmaskv6'))
  const tcp = one('cflow.tcpflags') ?? one('tcp.flags')
  set('TCPFlags', tcp === undefined ? undefined : parseInt(tcp, 16))
  const tos = one('cflow.tos') ?? one('ip.dsfield')
  set('IPTos', tos === undefined ? undefined : parseInt(tos, 16))
  set('IPTTL', num('cflow.ip_ttl') ?? num('cflow.ttl_min') ?? num('ip.ttl'))
  set('IPFragmentID', num('cflow.frag_ident'))
  set('IPFragmentOffset', num('cflow.fragment_offset'))
  // tshark prints the 32-bit element; the label is its low 20 bits.
  const label = num('cflow.ipv6flowlabel')
  set('IPv6FlowLabel', label === undefined ? undefined : label & 0xfffff)
  const vlan = num('cflow.vlanid') ?? num('cflow.dot1q_vlan_id') ?? num('vlan.id')
  set('SrcVlan', vlan === undefined ? undefined : vlan & 0xfff)
  const postVlan = num('cflow.post_vlanid') ?? num('cflow.post_dot1q_vlan_id')
  set('DstVlan', postVlan === undefined ? undefined : postVlan & 0xfff)
  set('SrcMAC', one('cflow.srcmac') ?? one('cflow.post_srcmac'))
  set('DstMAC', one('cflow.dstmac') ?? one('cflow.post_dstmac'))
  set('InVrf', num('cflow.ingress_vrfid'))
  set('OutVrf', num('cflow.egress_vrfid'))
  const version = num('cflow.ip_version')
  if (version !== undefined) set('EType', version === 4 ? 0x0800 : version === 6 ? 0x86dd : 0)
  // Our next hop: the IP next hop elements, else the BGP ones; of an IPv4/IPv6 pair, the one set.
  const hops = [
    ['cflow.nexthop', 'cflow.nexthopv6'],
    ['cflow.bgpnexthop', 'cflow.bgpnexthopv6'],
  ]
    .map((g) => g.map((k) => one(k)).filter((v): v is string => v !== undefined))
    .find((g) => g.length > 0)
  if (hops !== undefined) set('NextHop', hops.find((h) => !ZERO.has(h)) ?? (hops.length > 1 ? '::' : hops[0]))
  // flowDirection 0 ingress / 1 egress; the column keeps 0 for "undefined".
  const direction = num('cflow.direction')
  if (direction !== undefined) set('FlowDirection', direction === 0 ? 1 : direction === 1 ? 2 : 0)
  const status = num('cflow.forwarding_status')
  if (status !== undefined) {
    const reason = num('cflow.forwarding_status_forward_code') ?? num('cflow.forwarding_status_drop_code') ?? num('cflow.forwarding_status_consume_code') ?? num('cflow.forwarding_status_unknown_code') ?? 0
    set('ForwardingStatus', (status << 6) | reason)
  }
  const icmp = one('cflow.icmp_type_code_ipv4')
  set('ICMPv4Type', icmp !== undefined ? parseInt(icmp, 16) >> 8 : num('cflow.icmp_ipv4_type'))
  set('ICMPv4Code', icmp !== undefined ? parseInt(icmp, 16) & 255 : num('cflow.icmp_ipv4_code'))
  set('ICMPv6Type', num('cflow.icmp_ipv6_type'))
  set('ICMPv6Code', num('cflow.icmp_ipv6_code'))
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
  set('SrcAddrNAT', one('cflow.post_natsource_ipv4_address') ?? one('cflow.post_nat_source_ipv6_address'))
  set('DstAddrNAT', one('cflow.post_natdestination_ipv4_address') ?? one('cflow.post_nat_destination_ipv6_address'))
  set('SrcPortNAT', num('cflow.post_naptsource_transport_port'))
  set('DstPortNAT', num('cflow.post_naptdestination_transport_port'))
  // Times: uptime-relative (v5/v9 `timestart`, seconds of uptime) or absolute.
  const h = t.header
  const base = (number(h, 'cflow.unix_secs') ?? 0) * 1000 + (o.v5 ? Math.floor((number(h, 'cflow.unix_nsecs') ?? 0) / 1e6) : 0)
  const uptime = Math.round((number(h, 'cflow.sysuptime') ?? 0) * 1000)
  const start = one('cflow.timestart')
  const end = one('cflow.timeend')
  if (start !== undefined) set('FlowStartTime', base - (uptime - Math.round(Number(start) * 1000)))
  if (end !== undefined) set('FlowEndTime', base - (uptime - Math.round(Number(end) * 1000)))
  const absStart = one('cflow.abstimestart')
  const absEnd = one('cflow.abstimeend')
  if (absStart !== undefined) set('FlowStartTime', absoluteMs(absStart))
  if (absEnd !== undefined) set('FlowEndTime', absoluteMs(absEnd))
  set('SamplingRate', o.v5 ? (number(h, 'cflow.samplerate') ?? 0) : rates.of(f))
  if (o.reverse) {
    // RFC 5103: reverse counters are the second values; the directional fields swap.
    const swapped: Record<string, unknown> = { ...e }
    for (const [a, b] of [
      ['SrcAddr', 'DstAddr'],
      ['SrcPort', 'DstPort'],
      ['SrcNetMask', 'DstNetMask'],
      ['InIf', 'OutIf'],
      ['SrcAS', 'DstAS'],
      ['SrcVlan', 'DstVlan'],
      ['SrcMAC', 'DstMAC'],
      ['InVrf', 'OutVrf'],
    ] as const) {
      delete swapped[a]
      delete swapped[b]
      if (e[b] !== undefined) swapped[a] = e[b]
      if (e[a] !== undefined) swapped[b] = e[a]
    }
    swapped.Bytes = number(f, 'cflow.octets', 1) ?? 0
    swapped.Packets = number(f, 'cflow.packets', 1) ?? 0
    const reverseTcp = pick(f, 'cflow.tcpflags', 1)
    swapped.TCPFlags = reverseTcp === undefined ? 0 : parseInt(reverseTcp, 16)
    return swapped
  }
  return e
}

/** Whether tshark shows reverse (RFC 5103) counters that make our decoder add a reverse flow. */
export const hasReverseFlow = (t: TsharkRecord): boolean =>
  (number(t.fields, 'cflow.octets', 1) ?? 0) > 0 || (number(t.fields, 'cflow.packets', 1) ?? 0) > 0
