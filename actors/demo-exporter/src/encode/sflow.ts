// sFlow v5 export of demo flows (sflow.org sFlow version 5): each flow becomes one flow sample
// with the sampled packet's headers (Ethernet, IPv4/IPv6, TCP/UDP/ICMP), the extended router
// and gateway records (masks, next hop, AS path); counter samples carry the interface counters
// those samples imply. Pure code over byte arrays: no sockets here.
import { PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type DemoFlow } from '../traffic.js'

export interface SflowExporterOptions {
  /** Agent address, 16 bytes (IPv4 mapped for an IPv4 agent). */
  readonly agent: Uint8Array
  readonly samplingRate: number
  readonly bootMs: number
  readonly localAS: number
  readonly maxDatagramBytes: number
}

const isMapped = (a: Uint8Array) => a[10] === 0xff && a[11] === 0xff && a.subarray(0, 10).every((x) => x === 0)

/** Encodes one agent's samples; keeps its datagram and per-interface sample sequence numbers. */
export class SflowExporter {
  private readonly buffer: Uint8Array
  private readonly view: DataView
  private readonly agentV4: boolean
  private readonly headerLength: number
  private datagramSequence = 0
  private readonly sampleSequence = new Map<number, number>()
  /** Packets seen per source interface (sample_pool). */
  private readonly pool = new Map<number, number>()
  /** Interface counters the samples imply (sampled × rate): in/out octets and packets per ifIndex. */
  private readonly counters = new Map<number, { inOctets: number; inPackets: number; outOctets: number; outPackets: number }>()
  private counterSequence = 0

  constructor(private readonly options: SflowExporterOptions) {
    this.buffer = new Uint8Array(options.maxDatagramBytes)
    this.view = new DataView(this.buffer.buffer)
    this.agentV4 = isMapped(options.agent)
    this.headerLength = 4 + 4 + (this.agentV4 ? 4 : 16) + 4 + 4 + 4 + 4
  }

  /** One flow sample per flow, as many per datagram as fit. */
  encode(flows: readonly DemoFlow[], nowMs: number): { datagrams: Uint8Array[]; records: number } {
    const datagrams: Uint8Array[] = []
    let i = 0
    while (i < flows.length) {
      let pos = this.headerLength
      let samples = 0
      while (i < flows.length) {
        const end = this.writeSample(pos, flows[i]!)
        if (end < 0) break
        pos = end
        samples++
        i++
      }
      if (samples === 0) break
      this.writeHeader(samples, nowMs)
      datagrams.push(this.buffer.slice(0, pos))
    }
    return { datagrams, records: i }
  }

  private writeHeader(samples: number, nowMs: number): void {
    const v = this.view
    v.setUint32(0, 5)
    let pos = 4
    if (this.agentV4) {
      v.setUint32(pos, 1)
      this.buffer.set(this.options.agent.subarray(12, 16), pos + 4)
      pos += 8
    } else {
      v.setUint32(pos, 2)
      this.buffer.set(this.options.agent, pos + 4)
      pos += 20
    }
    v.setUint32(pos, 0) // sub-agent id
    v.setUint32(pos + 4, ++this.datagramSequence >>> 0)
    v.setUint32(pos + 8, (nowMs - this.options.bootMs) >>> 0)
    v.setUint32(pos + 12, samples)
  }

  /** Writes a flow sample at pos; returns its end, or -1 when it does not fit. */
  private writeSample(pos: number, f: DemoFlow): number {
    const b = this.buffer
    const v = this.view
    const headerBytes = 14 + (f.ipv6 ? 40 : 20) + (f.proto === PROTO_TCP ? 20 : 8)
    const paddedHeader = (headerBytes + 3) & ~3
    const asPathLength = f.dstAsPath.length
    const address = f.ipv6 ? 16 : 4
    // Sample header 32, then records with their 8-byte tag and length: raw header 24 + header,
    // router 8 + 4 + address + 8, gateway 8 + 4 + address + 36 + path.
    const sampleBody = 32 + (24 + paddedHeader) + (20 + address) + (48 + address + 4 * asPathLength)
    if (pos + 8 + sampleBody > b.length) return -1
    const sampleStart = pos
    const frameLength = Math.max(64, Math.round(f.bytes / f.packets))
    const sequence = (this.sampleSequence.get(f.inIf) ?? 0) + 1
    this.sampleSequence.set(f.inIf, sequence)
    const pool = (this.pool.get(f.inIf) ?? 0) + this.options.samplingRate
    this.pool.set(f.inIf, pool)
    const rate = this.options.samplingRate
    const into = this.countersOf(f.inIf)
    into.inOctets += rate * frameLength
    into.inPackets += rate
    const out = this.countersOf(f.outIf)
    out.outOctets += rate * frameLength
    out.outPackets += rate

    v.setUint32(pos, 1) // enterprise 0, flow sample
    pos += 8
    v.setUint32(pos, sequence >>> 0)
    v.setUint32(pos + 4, f.inIf & 0xffffff) // source id: type 0 (ifIndex), the input interface
    v.setUint32(pos + 8, this.options.samplingRate)
    v.setUint32(pos + 12, pool >>> 0)
    v.setUint32(pos + 16, 0) // drops
    v.setUint32(pos + 20, f.inIf)
    v.setUint32(pos + 24, f.outIf)
    v.setUint32(pos + 28, 3) // records
    pos += 32

    // Raw packet header (format 1), Ethernet.
    v.setUint32(pos, 1)
    v.setUint32(pos + 4, 16 + paddedHeader)
    v.setUint32(pos + 8, 1) // ETHERNET-ISO88023
    v.setUint32(pos + 12, frameLength + 4) // with the FCS
    v.setUint32(pos + 16, 4) // FCS stripped
    v.setUint32(pos + 20, headerBytes)
    pos += 24
    this.writePacketHeaders(pos, f, frameLength)
    b.fill(0, pos + headerBytes, pos + paddedHeader)
    pos += paddedHeader

    // Extended router (1002): next hop, masks.
    v.setUint32(pos, 1002)
    v.setUint32(pos + 4, 4 + address + 8)
    pos = this.writeAddress(pos + 8, f.nextHop, f.ipv6)
    v.setUint32(pos, f.srcMask)
    v.setUint32(pos + 4, f.dstMask)
    pos += 8

    // Extended gateway (1003): BGP next hop, our AS, source AS, source peer AS, destination path.
    v.setUint32(pos, 1003)
    v.setUint32(pos + 4, 4 + address + 12 + 4 + 8 + 4 * asPathLength + 4 + 4)
    pos = this.writeAddress(pos + 8, f.nextHop, f.ipv6)
    v.setUint32(pos, this.options.localAS)
    v.setUint32(pos + 4, f.srcAS)
    v.setUint32(pos + 8, f.srcPeerAS)
    v.setUint32(pos + 12, 1) // one AS_SEQUENCE segment
    v.setUint32(pos + 16, 2)
    v.setUint32(pos + 20, asPathLength)
    pos += 24
    for (const asn of f.dstAsPath) {
      v.setUint32(pos, asn)
      pos += 4
    }
    v.setUint32(pos, 0) // communities
    v.setUint32(pos + 4, 100) // local preference
    pos += 8
    v.setUint32(sampleStart + 4, pos - sampleStart - 8)
    return pos
  }

  private countersOf(ifIndex: number) {
    let c = this.counters.get(ifIndex)
    if (c === undefined) this.counters.set(ifIndex, (c = { inOctets: 0, inPackets: 0, outOctets: 0, outPackets: 0 }))
    return c
  }

  /**
   * Counter samples (generic interface counters) for the interfaces, as agents send them every
   * polling interval: octets and packets are what the flow samples so far imply.
   */
  encodeCounters(interfaces: readonly { ifIndex: number; speed: number }[], nowMs: number): Uint8Array[] {
    const datagrams: Uint8Array[] = []
    const v = this.view
    const SAMPLE = 8 + 12 + 8 + 88
    let i = 0
    while (i < interfaces.length) {
      let pos = this.headerLength
      let samples = 0
      while (i < interfaces.length && pos + SAMPLE <= this.buffer.length) {
        const iface = interfaces[i++]!
        const c = this.countersOf(iface.ifIndex)
        v.setUint32(pos, 2) // enterprise 0, counters sample
        v.setUint32(pos + 4, SAMPLE - 8)
        v.setUint32(pos + 8, ++this.counterSequence >>> 0)
        v.setUint32(pos + 12, iface.ifIndex & 0xffffff)
        v.setUint32(pos + 16, 1)
        v.setUint32(pos + 20, 1) // generic interface counters
        v.setUint32(pos + 24, 88)
        let o = pos + 28
        const u64 = (n: number) => {
          v.setUint32(o, Math.floor(n / 4294967296) >>> 0)
          v.setUint32(o + 4, n >>> 0)
          o += 8
        }
        const u32 = (n: number) => {
          v.setUint32(o, n >>> 0)
          o += 4
        }
        u32(iface.ifIndex)
        u32(6) // ethernetCsmacd
        u64(iface.speed * 1_000_000)
        u32(1) // full duplex
        u32(3) // admin and operational status up
        u64(c.inOctets)
        u32(c.inPackets)
        u32(0) // multicast
        u32(0) // broadcast
        u32(0) // discards
        u32(0) // errors
        u32(0) // unknown protocols
        u64(c.outOctets)
        u32(c.outPackets)
        u32(0)
        u32(0)
        u32(0)
        u32(0)
        u32(0) // not promiscuous
        pos = o
        samples++
      }
      this.writeHeader(samples, nowMs)
      datagrams.push(this.buffer.slice(0, pos))
    }
    return datagrams
  }

  private writeAddress(pos: number, address: Uint8Array, ipv6: boolean): number {
    this.view.setUint32(pos, ipv6 ? 2 : 1)
    if (ipv6) this.buffer.set(address, pos + 4)
    else this.buffer.set(address.subarray(12, 16), pos + 4)
    return pos + 4 + (ipv6 ? 16 : 4)
  }

  /** Ethernet, IP and transport headers of the sampled packet (checksums of IP only). */
  private writePacketHeaders(pos: number, f: DemoFlow, frameLength: number): void {
    const b = this.buffer
    const v = this.view
    // Locally administered MACs derived from the interfaces.
    b.set([0x02, 0x00, 0x5e, 0x10, (f.outIf >> 8) & 0xff, f.outIf & 0xff, 0x02, 0x00, 0x5e, 0x20, (f.inIf >> 8) & 0xff, f.inIf & 0xff], pos)
    v.setUint16(pos + 12, f.ipv6 ? 0x86dd : 0x0800)
    pos += 14
    const ipLength = frameLength - 14
    let l4: number
    if (f.ipv6) {
      v.setUint32(pos, 0x60000000 | (f.tos << 20) | ((f.srcPort * 7919) & 0xfffff))
      v.setUint16(pos + 4, ipLength - 40)
      b[pos + 6] = f.proto
      b[pos + 7] = 57
      b.set(f.src, pos + 8)
      b.set(f.dst, pos + 24)
      l4 = pos + 40
    } else {
      b[pos] = 0x45
      b[pos + 1] = f.tos
      v.setUint16(pos + 2, ipLength)
      v.setUint16(pos + 4, (f.srcPort ^ f.dstPort) & 0xffff)
      v.setUint16(pos + 6, 0x4000) // don't fragment
      b[pos + 8] = 57
      b[pos + 9] = f.proto
      v.setUint16(pos + 10, 0)
      b.set(f.src.subarray(12, 16), pos + 12)
      b.set(f.dst.subarray(12, 16), pos + 16)
      let sum = 0
      for (let k = 0; k < 20; k += 2) sum += v.getUint16(pos + k)
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
      v.setUint16(pos + 10, ~sum & 0xffff)
      l4 = pos + 20
    }
    const l4Length = ipLength - (f.ipv6 ? 40 : 20)
    if (f.proto === PROTO_TCP) {
      v.setUint16(l4, f.srcPort)
      v.setUint16(l4 + 2, f.dstPort)
      v.setUint32(l4 + 4, 0x10000000)
      v.setUint32(l4 + 8, 0x20000000)
      b[l4 + 12] = 0x50
      b[l4 + 13] = f.tcpFlags
      v.setUint16(l4 + 14, 65535)
      v.setUint32(l4 + 16, 0)
    } else if (f.proto === PROTO_UDP) {
      v.setUint16(l4, f.srcPort)
      v.setUint16(l4 + 2, f.dstPort)
      v.setUint16(l4 + 4, l4Length)
      v.setUint16(l4 + 6, 0)
    } else if (f.proto === PROTO_ICMP || f.proto === PROTO_ICMPV6) {
      // Echo reply.
      b[l4] = f.proto === PROTO_ICMP ? 0 : 129
      b[l4 + 1] = 0
      v.setUint16(l4 + 2, 0)
      v.setUint32(l4 + 4, 0x00010001)
    } else {
      b.fill(0, l4, l4 + 8)
    }
  }
}
