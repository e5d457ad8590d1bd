// Deterministic synthetic traffic for differential tests: TCP, UDP and ICMP flows over IPv4 and
// IPv6 with known 5-tuples and exact byte/packet totals, as Ethernet frames ready for a capture.

import { formatIP } from '@flowbus/bus-schemas'
import { SeededRandom } from './prng.js'

export const PROTO_ICMP = 1
export const PROTO_TCP = 6
export const PROTO_UDP = 17
export const PROTO_ICMPV6 = 58

const TCP_FIN = 0x01
const TCP_SYN = 0x02
const TCP_PSH = 0x08
const TCP_ACK = 0x10

/** One unidirectional flow of the generated traffic, with the totals an exporter should report. */
export interface TrafficFlow {
  readonly ipVersion: 4 | 6
  /** Addresses as text, in the form flowbus prints them (dotted quad, RFC 5952). */
  readonly srcAddr: string
  readonly dstAddr: string
  readonly proto: number
  /** 0 for ICMP. */
  readonly srcPort: number
  readonly dstPort: number
  /** ICMP/ICMPv6 type and code of every packet of the flow (0 for TCP/UDP). */
  readonly icmpType: number
  readonly icmpCode: number
  readonly packets: number
  /** Sum of IP-layer packet lengths (IPv4 total length, IPv6 40 + payload length): what NetFlow counts. */
  readonly bytes: number
  /** Sum of Ethernet frame lengths (without FCS): what sFlow samples as frame length. */
  readonly frameBytes: number
  /** TCP flags ORed over the flow's packets (0 for UDP/ICMP). */
  readonly tcpFlags: number
  readonly ipTos: number
  readonly firstNs: bigint
  readonly lastNs: bigint
  /** For an answer: index in Traffic.flows of the flow it answers (its reverse 5-tuple). */
  readonly replyTo?: number
}

/** One captured frame of the traffic. */
export interface TrafficPacket {
  readonly timestampNs: bigint
  /** Ethernet II frame, starting at the destination MAC. */
  readonly frame: Uint8Array
  /** Index of its flow in Traffic.flows. */
  readonly flow: number
}

export interface Traffic {
  readonly flows: readonly TrafficFlow[]
  /** Every frame in capture (time) order. */
  readonly packets: readonly TrafficPacket[]
}

export interface TrafficOptions {
  readonly seed: number
  /** Number of flows (default 300). */
  readonly flows?: number
  /** Share of IPv6 flows, 0..1 (default 0.3). */
  readonly ipv6Share?: number
  /** Leave IPv6 out (NetFlow v5 cannot carry it). */
  readonly ipv4Only?: boolean
  /** Share of TCP/UDP flows answered by a flow in the other direction, 0..1 (default 0). */
  readonly replyShare?: number
  /** Capture time of the first packet, ns since the epoch (default 2024-01-01T00:00:00Z). */
  readonly startNs?: bigint
  /** Flows start within this many seconds of the first packet (default 5). */
  readonly spreadSeconds?: number
  /** Largest IP packet, bytes (default 1500). */
  readonly maxPacketBytes?: number
}

/** The key flows are matched on between the traffic, exporters and decoders. */
export function flowKey(f: {
  readonly proto: number
  readonly srcAddr: string
  readonly srcPort: number
  readonly dstAddr: string
  readonly dstPort: number
}): string {
  return `${f.proto} ${f.srcAddr}:${f.srcPort} > ${f.dstAddr}:${f.dstPort}`
}

/**
 * Generates `flows` flows with a seeded PRNG: every call with the same options gives the same
 * frames. 5-tuples are unique; a flow's reverse 5-tuple is in the traffic only as its answer
 * (replyShare), which exporters report as a flow of its own (or a biflow's reverse direction).
 */
export function generateTraffic(options: TrafficOptions): Traffic {
  const random = new SeededRandom(options.seed)
  const count = options.flows ?? 300
  const ipv6Share = options.ipv4Only ? 0 : (options.ipv6Share ?? 0.3)
  const startNs = options.startNs ?? 1_704_067_200_000_000_000n
  const spreadNs = BigInt(Math.round((options.spreadSeconds ?? 5) * 1e9))
  const maxPacket = options.maxPacketBytes ?? 1500
  const replyShare = options.replyShare ?? 0
  const used = new Set<string>()
  const flows: TrafficFlow[] = []
  const packets: TrafficPacket[] = []

  while (flows.length < count) {
    const v6 = random.next() < ipv6Share
    const src = v6 ? ipv6Address(random, 1) : ipv4Address(random, 18)
    const dst = v6 ? ipv6Address(random, 2) : ipv4Address(random, 19)
    const kind = random.next()
    const proto = kind < 0.5 ? PROTO_TCP : kind < 0.85 ? PROTO_UDP : v6 ? PROTO_ICMPV6 : PROTO_ICMP
    const icmp = proto === PROTO_ICMP || proto === PROTO_ICMPV6
    const srcPort = icmp ? 0 : random.int(1024, 65535)
    const dstPort = icmp ? 0 : random.pick([53, 80, 123, 443, 8080, random.int(1, 65535)])
    const [icmpType, icmpCode] = icmp ? random.pick(v6 ? ICMPV6_TYPES : ICMPV4_TYPES) : [0, 0]
    const flow = { srcAddr: formatIP(src), dstAddr: formatIP(dst), proto, srcPort, dstPort }
    const key = flowKey(flow)
    const reverse = flowKey({ ...flow, srcAddr: flow.dstAddr, dstAddr: flow.srcAddr, srcPort: dstPort, dstPort: srcPort })
    // ICMP flows differ by type/code too, but exporters key them on addresses and protocol.
    if (used.has(key) || used.has(reverse)) continue
    used.add(key)

    const ipTos = random.pick([0, 0, 0, 0x10, 0x28, 0xb8])
    const begin = startNs + BigInt(Math.floor(random.next() * Number(spreadNs)))
    const forward = { v6, src, dst, proto, srcPort, dstPort, icmpType, icmpCode, ipTos }
    flows.push(emitFlow(random, forward, flows.length, begin, maxPacket, packets, false))
    // A share of TCP/UDP flows get an answer: the reverse 5-tuple, starting a little later, so
    // exporters see both directions (softflowd -b exports them as one RFC 5103 biflow record).
    if (!icmp && flows.length < count && random.next() < replyShare) {
      const reply = { ...forward, src: dst, dst: src, srcPort: dstPort, dstPort: srcPort }
      used.add(reverse)
      const at = begin + BigInt(random.int(1, 5)) * 1_000_000n
      flows.push({ ...emitFlow(random, reply, flows.length, at, maxPacket, packets, true), replyTo: flows.length - 1 })
    }
  }
  // Stable sort: packets of one flow keep their order at equal timestamps.
  packets.sort((a, b) => (a.timestampNs < b.timestampNs ? -1 : a.timestampNs > b.timestampNs ? 1 : 0))
  return { flows, packets }
}

interface FlowSpec {
  readonly v6: boolean
  readonly src: Uint8Array
  readonly dst: Uint8Array
  readonly proto: number
  readonly srcPort: number
  readonly dstPort: number
  readonly icmpType: number
  readonly icmpCode: number
  readonly ipTos: number
}

/** Appends one direction's packets to `packets` and returns the flow with its exact totals. */
function emitFlow(random: SeededRandom, f: FlowSpec, index: number, begin: bigint, maxPacket: number, packets: TrafficPacket[], answer: boolean): TrafficFlow {
  // Mostly short flows, a few long ones; sizes from small (ACK-like) to full MTU.
  const packetCount = random.next() < 0.1 ? random.int(20, 120) : random.int(1, 12)
  const minPacket = (f.v6 ? 40 : 20) + (f.proto === PROTO_TCP ? 20 : 8)
  let t = begin
  let bytes = 0
  let frameBytes = 0
  let tcpFlags = 0
  for (let p = 0; p < packetCount; p++) {
    const ipLength = random.next() < 0.3 ? minPacket + random.int(0, 40) : random.int(minPacket, maxPacket)
    let flags = 0
    if (f.proto === PROTO_TCP) {
      const opening = answer ? TCP_SYN | TCP_ACK : TCP_SYN
      flags = p === 0 ? opening : p === packetCount - 1 && packetCount > 2 ? TCP_FIN | TCP_ACK : TCP_ACK | TCP_PSH
      tcpFlags |= flags
    }
    const frame = buildFrame(random, { ...f, ipLength, flags, seq: p })
    packets.push({ timestampNs: t, frame, flow: index })
    bytes += ipLength
    frameBytes += frame.length
    if (p < packetCount - 1) t += BigInt(random.int(1, 40)) * 1_000_000n
  }
  return {
    ipVersion: f.v6 ? 6 : 4,
    srcAddr: formatIP(f.src),
    dstAddr: formatIP(f.dst),
    proto: f.proto,
    srcPort: f.srcPort,
    dstPort: f.dstPort,
    icmpType: f.icmpType,
    icmpCode: f.icmpCode,
    packets: packetCount,
    bytes,
    frameBytes,
    tcpFlags,
    ipTos: f.ipTos,
    firstNs: begin,
    lastNs: t,
  }
}

const ICMPV4_TYPES: readonly (readonly [number, number])[] = [
  [8, 0], // echo request
  [0, 0], // echo reply
  [13, 0], // timestamp
]
const ICMPV6_TYPES: readonly (readonly [number, number])[] = [
  [128, 0], // echo request
  [129, 0], // echo reply
]

/** 198.<second>.x.y: the benchmarking range 198.18.0.0/15 (RFC 2544), never routed. */
function ipv4Address(random: SeededRandom, second: 18 | 19): Uint8Array {
  const out = new Uint8Array(16)
  out[10] = 0xff
  out[11] = 0xff
  out[12] = 198
  out[13] = second
  out[14] = random.int(0, 255)
  out[15] = random.int(1, 254)
  return out
}

/** 2001:db8:<side>::/48 (documentation prefix, RFC 3849) with a random interface id. */
function ipv6Address(random: SeededRandom, side: number): Uint8Array {
  const out = new Uint8Array(16)
  out.set([0x20, 0x01, 0x0d, 0xb8, 0, side])
  random.fill(out.subarray(8))
  // Leave zero groups in some addresses so text forms exercise '::' compression.
  if (random.next() < 0.3) out.fill(0, 8, 14)
  return out
}

interface FrameSpec {
  readonly v6: boolean
  readonly src: Uint8Array
  readonly dst: Uint8Array
  readonly proto: number
  readonly srcPort: number
  readonly dstPort: number
  readonly icmpType: number
  readonly icmpCode: number
  /** Whole IP packet length. */
  readonly ipLength: number
  readonly ipTos: number
  readonly flags: number
  readonly seq: number
}

// Checksums are left zero: exporters and tshark (by default) do not verify them, and the frames
// never reach a network stack.
function buildFrame(random: SeededRandom, s: FrameSpec): Uint8Array {
  const frame = new Uint8Array(14 + s.ipLength)
  const view = new DataView(frame.buffer)
  frame.set([0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a], 0)
  view.setUint16(12, s.v6 ? 0x86dd : 0x0800)
  const ip = 14
  let l4: number
  if (s.v6) {
    view.setUint32(ip, (6 << 28) | (s.ipTos << 20))
    view.setUint16(ip + 4, s.ipLength - 40)
    frame[ip + 6] = s.proto
    frame[ip + 7] = 64
    frame.set(s.src, ip + 8)
    frame.set(s.dst, ip + 24)
    l4 = ip + 40
  } else {
    frame[ip] = 0x45
    frame[ip + 1] = s.ipTos
    view.setUint16(ip + 2, s.ipLength)
    view.setUint16(ip + 4, s.seq)
    view.setUint16(ip + 6, 0x4000) // don't fragment
    frame[ip + 8] = 64
    frame[ip + 9] = s.proto
    frame.set(s.src.subarray(12), ip + 12)
    frame.set(s.dst.subarray(12), ip + 16)
    l4 = ip + 20
  }
  if (s.proto === PROTO_TCP) {
    view.setUint16(l4, s.srcPort)
    view.setUint16(l4 + 2, s.dstPort)
    view.setUint32(l4 + 4, 1000 + s.seq * 1400)
    view.setUint32(l4 + 8, s.flags & TCP_SYN ? 0 : 1)
    frame[l4 + 12] = 5 << 4
    frame[l4 + 13] = s.flags
    view.setUint16(l4 + 14, 65535)
    random.fill(frame.subarray(l4 + 20))
  } else if (s.proto === PROTO_UDP) {
    view.setUint16(l4, s.srcPort)
    view.setUint16(l4 + 2, s.dstPort)
    view.setUint16(l4 + 4, frame.length - l4)
    random.fill(frame.subarray(l4 + 8))
  } else {
    frame[l4] = s.icmpType
    frame[l4 + 1] = s.icmpCode
    view.setUint16(l4 + 4, 0x1234) // echo identifier
    view.setUint16(l4 + 6, s.seq)
    random.fill(frame.subarray(l4 + 8))
  }
  return frame
}
