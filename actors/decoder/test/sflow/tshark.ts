// Test helper: tshark as the reference decoder. Its PDML output is read as one ordered stream of
// protocols and fields per packet, from which the values we compare are picked.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { ensureExecutable } from '@flowbus/test/harness'

const execFileAsync = promisify(execFile)

/** tshark's path, installed from Debian when missing; undefined (with the reason printed) if it cannot be, except under CI. */
export async function findTshark(): Promise<string | undefined> {
  try {
    return await ensureExecutable('tshark', 'tshark')
  } catch (error) {
    if (process.env.CI === 'true') throw error
    console.warn(`skipping the tshark comparisons: ${error instanceof Error ? error.message : String(error)}`)
    return undefined
  }
}

export type Token = { readonly proto: string } | { readonly field: string; readonly show: string }

const TOKEN = /<proto name="([^"]+)"|<field name="([^"]+)"[^>]*?show="([^"]*)"/g

const unescape = (s: string): string =>
  s.replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')

/** Each packet of a capture as tshark dissects it: protocols and fields in document order. */
export async function tsharkPackets(tshark: string, file: string, args: readonly string[] = []): Promise<Token[][]> {
  const { stdout } = await execFileAsync(tshark, ['-r', file, '-T', 'pdml', ...args], { maxBuffer: 256 << 20 })
  return stdout
    .split('<packet>')
    .slice(1)
    .map((packet) => {
      const tokens: Token[] = []
      for (const m of packet.matchAll(TOKEN)) {
        if (m[1] !== undefined) tokens.push({ proto: m[1] })
        else tokens.push({ field: m[2]!, show: unescape(m[3]!) })
      }
      return tokens
    })
}

/** First value of a field in tokens, or undefined. */
export function first(tokens: readonly Token[], field: string): string | undefined {
  for (const t of tokens) if ('field' in t && t.field === field) return t.show
  return undefined
}

/** Every value of a field in tokens. */
export const all = (tokens: readonly Token[], field: string): string[] =>
  tokens.flatMap((t) => ('field' in t && t.field === field ? [t.show] : []))

/** Splits tokens at each occurrence of a field; the part before the first occurrence is dropped. */
export function splitAt(tokens: readonly Token[], field: string): Token[][] {
  const parts: Token[][] = []
  for (const t of tokens) {
    if ('field' in t && t.field === field) parts.push([])
    parts.at(-1)?.push(t)
  }
  return parts
}

/** Tokens after the first `proto` token of that name (the whole stream after it). */
export function after(tokens: readonly Token[], proto: string): Token[] {
  const i = tokens.findIndex((t) => 'proto' in t && t.proto === proto)
  return i < 0 ? [] : tokens.slice(i + 1)
}

const num = (s: string | undefined): number | undefined => (s === undefined ? undefined : Number(s))
const mac = (s: string | undefined): number | undefined => (s === undefined ? undefined : parseInt(s.replace(/:/g, ''), 16))

/** The protocol layers of a dissected frame: each protocol with its own fields. */
function layers(tokens: readonly Token[]): { proto: string; fields: Token[] }[] {
  const out: { proto: string; fields: Token[] }[] = []
  for (const t of tokens) {
    // IPv6 extension headers are sub-protocols (ipv6.routing, ipv6.fraghdr…) of their IPv6 header.
    if ('proto' in t) {
      if (!(t.proto.startsWith('ipv6.') && out.at(-1)?.proto === 'ipv6')) out.push({ proto: t.proto, fields: [] })
    } else out.at(-1)?.fields.push(t)
  }
  return out
}

const TRANSPORTS = new Set(['tcp', 'udp', 'icmp', 'icmpv6'])

/**
 * What flowbus's frame parser should report for a frame tshark dissected, by flowbus's outer-header
 * rule: MACs of the first Ethernet header, the first VLAN tag, the MPLS labels before the first IP
 * header, that IP header's fields, and the transport header only when it directly follows it.
 */
export function expectedFrameColumns(tokens: readonly Token[]): Record<string, number | string | number[]> {
  const expected: Record<string, number | string | number[]> = {}
  const ls = layers(tokens)
  const eth = ls.find((l) => l.proto === 'eth')
  if (eth) {
    expected.SrcMAC = mac(first(eth.fields, 'eth.src'))!
    expected.DstMAC = mac(first(eth.fields, 'eth.dst'))!
  }
  // tshark calls an 802.1ad service tag (TPID 0x88a8) ieee8021ad and an 802.1Q one vlan.
  const vlan = ls.find((l) => l.proto === 'vlan' || l.proto === 'ieee8021ad')
  if (vlan) expected.SrcVlan = num(first(vlan.fields, `${vlan.proto}.id`))!
  const ipIndex = ls.findIndex((l) => l.proto === 'ip' || l.proto === 'ipv6')
  const labels = ls
    .slice(0, ipIndex < 0 ? ls.length : ipIndex)
    .filter((l) => l.proto === 'mpls')
    .flatMap((l) => all(l.fields, 'mpls.label').map(Number))
  if (labels.length > 0) expected.MPLSLabels = labels
  if (ipIndex < 0) return expected
  const ip = ls[ipIndex]!
  if (ip.proto === 'ip') {
    expected.EType = 0x0800
    expected.SrcAddr = first(ip.fields, 'ip.src')!
    expected.DstAddr = first(ip.fields, 'ip.dst')!
    expected.IPTTL = num(first(ip.fields, 'ip.ttl'))!
    expected.IPTos = Number(first(ip.fields, 'ip.dsfield'))
    expected.IPFragmentID = Number(first(ip.fields, 'ip.id'))
    expected.Proto = num(first(ip.fields, 'ip.proto'))!
  } else {
    expected.EType = 0x86dd
    expected.SrcAddr = first(ip.fields, 'ipv6.src')!
    expected.DstAddr = first(ip.fields, 'ipv6.dst')!
    expected.IPTTL = num(first(ip.fields, 'ipv6.hlim'))!
    expected.IPTos = Number(first(ip.fields, 'ipv6.tclass')) & 0xff
    expected.IPv6FlowLabel = Number(first(ip.fields, 'ipv6.flow'))
    const nexts = ip.fields.filter((t) => 'field' in t && /^ipv6\.(\w+\.)?nxt$/.test(t.field))
    const last = nexts.at(-1)
    if (last && 'show' in last) expected.Proto = Number(last.show)
  }
  const transport = ls[ipIndex + 1]
  if (transport === undefined || !TRANSPORTS.has(transport.proto)) return expected
  const f = transport.fields
  switch (transport.proto) {
    case 'tcp':
      expected.SrcPort = num(first(f, 'tcp.srcport'))!
      expected.DstPort = num(first(f, 'tcp.dstport'))!
      if (first(f, 'tcp.flags') !== undefined) expected.TCPFlags = Number(first(f, 'tcp.flags')) & 0x1ff
      break
    case 'udp':
      expected.SrcPort = num(first(f, 'udp.srcport'))!
      expected.DstPort = num(first(f, 'udp.dstport'))!
      break
    case 'icmp':
      expected.ICMPv4Type = num(first(f, 'icmp.type'))!
      expected.ICMPv4Code = num(first(f, 'icmp.code'))!
      break
    case 'icmpv6':
      expected.ICMPv6Type = num(first(f, 'icmpv6.type'))!
      expected.ICMPv6Code = num(first(f, 'icmpv6.code'))!
      break
  }
  return expected
}

/**
 * The length flowbus counts as a sampled frame's Bytes when the frame reaches its first IP header,
 * as tshark shows it: ip.len, or ipv6.plen + 40; undefined when tshark shows neither, or an IPv4
 * total length below the minimal header (a frame length is then counted instead).
 */
export function expectedIPLength(tokens: readonly Token[]): number | undefined {
  const ip = layers(tokens).find((l) => l.proto === 'ip' || l.proto === 'ipv6')
  if (ip === undefined) return undefined
  if (ip.proto === 'ip') {
    const total = num(first(ip.fields, 'ip.len'))
    return total !== undefined && total >= 20 ? total : undefined
  }
  const payload = num(first(ip.fields, 'ipv6.plen'))
  return payload === undefined ? undefined : payload + 40
}
