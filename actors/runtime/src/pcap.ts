// Reads UDP datagrams and reassembled TCP streams out of pcap and pcapng captures, and writes small
// Ethernet pcap files of UDP datagrams; pure code over byte arrays, shared by the CLI, tests and benchmarks.

/** One UDP datagram found in a capture, addresses as 16 bytes (IPv4 as IPv4-mapped IPv6). */
export interface PcapUdpRecord {
  /** Capture time, nanoseconds since the Unix epoch (0 for pcapng simple packet blocks). */
  timestampNs: bigint
  srcAddress: Uint8Array
  srcPort: number
  dstAddress: Uint8Array
  dstPort: number
  /** The UDP payload; a view into the capture bytes unless the datagram was reassembled. */
  payload: Uint8Array
}

/** What a read saw besides the records it yielded: frames read and frames skipped, by reason. */
export interface PcapReadStats {
  frames: number
  udp: number
  skipped: Map<string, number>
}

/** A capture that cannot be read at all (not pcap/pcapng, or a broken file header). */
export class PcapFormatError extends Error {
  readonly source: string
  constructor(source: string, reason: string) {
    super(`${source}: ${reason}`)
    this.name = 'PcapFormatError'
    this.source = source
  }
}

export function newPcapReadStats(): PcapReadStats {
  return { frames: 0, udp: 0, skipped: new Map() }
}

/** Skip reasons as one line, e.g. `3 not UDP, 1 truncated frame`. */
export function formatPcapSkips(stats: PcapReadStats): string {
  return [...stats.skipped].map(([reason, n]) => `${n} ${reason}`).join(', ')
}

const LINKTYPE_NULL = 0
const LINKTYPE_ETHERNET = 1
const LINKTYPE_RAW = 101
const LINKTYPE_LOOP = 108
const LINKTYPE_LINUX_SLL = 113
const LINKTYPE_IPV4 = 228
const LINKTYPE_IPV6 = 229
const LINKTYPE_LINUX_SLL2 = 276

const ETHERTYPE_IPV4 = 0x0800
const ETHERTYPE_IPV6 = 0x86dd
const VLAN_ETHERTYPES = new Set([0x8100, 0x88a8, 0x9100])
const IPPROTO_UDP = 17
const IPPROTO_FRAGMENT = 44
/** IPv6 extension headers walked to reach UDP (hop-by-hop, routing, destination options). */
const IPV6_EXTENSIONS = new Set([0, 43, 60])

const PCAPNG_SHB = 0x0a0d0d0a
const PCAPNG_IDB = 1
const PCAPNG_OBSOLETE_PACKET = 2
const PCAPNG_SPB = 3
const PCAPNG_EPB = 6
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d

/** Incomplete fragmented datagrams kept at once; beyond, the oldest is given up. */
const MAX_PENDING_DATAGRAMS = 1024

/**
 * Reads every UDP datagram of a pcap or pcapng capture, in file order. Frames that are not UDP over
 * IPv4/IPv6, truncated or malformed are counted in `stats` by reason and skipped. IP fragments are
 * reassembled (IPv4 and IPv6); a datagram whose fragments never all arrive is counted, not yielded.
 * Throws PcapFormatError naming `source` when the bytes are not a capture.
 */
export function* readPcapUdp(
  bytes: Uint8Array,
  source: string,
  stats: PcapReadStats = newPcapReadStats(),
): Generator<PcapUdpRecord> {
  const extractor = new UdpExtractor(stats)
  // A plain view, so that records hold Uint8Arrays even when given a Buffer (whose slice does not copy).
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (const frame of readFrames(plain, source, stats)) {
    stats.frames++
    const record = extractor.frame(frame)
    if (record) {
      stats.udp++
      yield record
    }
  }
  extractor.finish()
}

/** All UDP datagrams of a capture at once, with the read statistics. */
export function readPcapUdpAll(bytes: Uint8Array, source: string): { records: PcapUdpRecord[]; stats: PcapReadStats } {
  const stats = newPcapReadStats()
  return { records: [...readPcapUdp(bytes, source, stats)], stats }
}

interface Frame {
  linkType: number
  timestampNs: bigint
  data: Uint8Array
}

function skip(stats: PcapReadStats, reason: string): void {
  stats.skipped.set(reason, (stats.skipped.get(reason) ?? 0) + 1)
}

function readFrames(bytes: Uint8Array, source: string, stats: PcapReadStats): Generator<Frame> {
  if (bytes.length < 4) throw new PcapFormatError(source, `not a pcap or pcapng file (${bytes.length} bytes)`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magicBE = view.getUint32(0, false)
  if (magicBE === PCAPNG_SHB) return readPcapngFrames(bytes, view, source, stats)
  for (const little of [false, true]) {
    const magic = view.getUint32(0, little)
    if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) {
      return readClassicFrames(bytes, view, little, magic === 0xa1b23c4d, source, stats)
    }
  }
  throw new PcapFormatError(source, `not a pcap or pcapng file (magic 0x${magicBE.toString(16).padStart(8, '0')})`)
}

function* readClassicFrames(
  bytes: Uint8Array,
  view: DataView,
  little: boolean,
  nanosecond: boolean,
  source: string,
  stats: PcapReadStats,
): Generator<Frame> {
  if (bytes.length < 24) throw new PcapFormatError(source, 'pcap file header truncated')
  // The upper bits of the link-type field carry FCS information, not the link type.
  const linkType = view.getUint32(20, little) & 0xffff
  let pos = 24
  while (pos < bytes.length) {
    if (pos + 16 > bytes.length) {
      skip(stats, 'truncated record header at end of file')
      return
    }
    const seconds = view.getUint32(pos, little)
    const fraction = view.getUint32(pos + 4, little)
    const captured = view.getUint32(pos + 8, little)
    const start = pos + 16
    if (start + captured > bytes.length) {
      skip(stats, 'truncated record at end of file')
      return
    }
    pos = start + captured
    const timestampNs = BigInt(seconds) * 1_000_000_000n + BigInt(nanosecond ? fraction : fraction * 1000)
    yield { linkType, timestampNs, data: bytes.subarray(start, start + captured) }
  }
}

interface PcapngInterface {
  linkType: number
  /** Timestamp units per second. */
  unitsPerSecond: bigint
  offsetNs: bigint
}

function* readPcapngFrames(bytes: Uint8Array, view: DataView, source: string, stats: PcapReadStats): Generator<Frame> {
  let little = true
  let interfaces: PcapngInterface[] = []
  let pos = 0
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) {
      skip(stats, 'truncated block at end of file')
      return
    }
    const typeBE = view.getUint32(pos, false)
    if (typeBE === PCAPNG_SHB) {
      // Each section states its own byte order; interfaces are numbered per section.
      const order = view.getUint32(pos + 8, true)
      if (order === PCAPNG_BYTE_ORDER_MAGIC) little = true
      else if (view.getUint32(pos + 8, false) === PCAPNG_BYTE_ORDER_MAGIC) little = false
      else throw new PcapFormatError(source, `pcapng section at byte ${pos} has a bad byte-order magic`)
      interfaces = []
    }
    const type = view.getUint32(pos, little)
    const length = view.getUint32(pos + 4, little)
    if (length < 12 || length % 4 !== 0 || pos + length > bytes.length) {
      if (pos === 0) throw new PcapFormatError(source, `pcapng section header block has a bad length ${length}`)
      skip(stats, pos + length > bytes.length ? 'truncated block at end of file' : 'pcapng block with a bad length')
      return
    }
    const body = pos + 8
    const end = pos + length - 4
    pos += length
    if (type === PCAPNG_IDB) {
      if (end - body < 8) {
        skip(stats, 'pcapng interface block too short')
        interfaces.push({ linkType: -1, unitsPerSecond: 1_000_000n, offsetNs: 0n })
        continue
      }
      interfaces.push(readInterface(view, little, view.getUint16(body, little), body + 8, end))
    } else if (type === PCAPNG_EPB || type === PCAPNG_OBSOLETE_PACKET) {
      if (end - body < 20) {
        skip(stats, 'pcapng packet block too short')
        continue
      }
      const id = type === PCAPNG_EPB ? view.getUint32(body, little) : view.getUint16(body, little)
      const iface = interfaces[id]
      if (!iface) {
        skip(stats, 'pcapng packet for an undeclared interface')
        continue
      }
      const ticks = (BigInt(view.getUint32(body + 4, little)) << 32n) | BigInt(view.getUint32(body + 8, little))
      const captured = view.getUint32(body + 12, little)
      if (body + 20 + captured > end) {
        skip(stats, 'pcapng packet longer than its block')
        continue
      }
      const timestampNs = (ticks * 1_000_000_000n) / iface.unitsPerSecond + iface.offsetNs
      yield { linkType: iface.linkType, timestampNs, data: bytes.subarray(body + 20, body + 20 + captured) }
    } else if (type === PCAPNG_SPB) {
      const iface = interfaces[0]
      if (!iface) {
        skip(stats, 'pcapng packet for an undeclared interface')
        continue
      }
      const original = view.getUint32(body, little)
      const captured = Math.min(original, end - body - 4)
      yield { linkType: iface.linkType, timestampNs: 0n, data: bytes.subarray(body + 4, body + 4 + captured) }
    }
    // Other blocks (name resolution, statistics, custom, ...) carry no packets.
  }
}

function readInterface(view: DataView, little: boolean, linkType: number, pos: number, end: number): PcapngInterface {
  const iface: PcapngInterface = { linkType, unitsPerSecond: 1_000_000n, offsetNs: 0n }
  while (pos + 4 <= end) {
    const code = view.getUint16(pos, little)
    const length = view.getUint16(pos + 2, little)
    const value = pos + 4
    if (code === 0 || value + length > end) break
    if (code === 9 && length >= 1) {
      // if_tsresol: high bit set means a negative power of two, else of ten.
      const resolution = view.getUint8(value)
      iface.unitsPerSecond = resolution & 0x80 ? 1n << BigInt(resolution & 0x7f) : 10n ** BigInt(resolution)
    } else if (code === 14 && length >= 8) {
      iface.offsetNs = view.getBigInt64(value, little) * 1_000_000_000n
    }
    pos = value + ((length + 3) & ~3)
  }
  return iface
}

interface PendingDatagram {
  timestampNs: bigint
  /** Fragment payloads by offset in the reassembled datagram. */
  parts: Map<number, Uint8Array>
  /** Total length once the last fragment was seen, else -1. */
  total: number
  src: Uint8Array
  dst: Uint8Array
}

interface NetworkLayer {
  data: Uint8Array
  view: DataView
  etherType: number
  /** Where the IP header starts in data. */
  pos: number
}

/** Strips the link layer of a frame: where its IP packet starts, or why it has none. */
function networkLayer(frame: Frame): NetworkLayer | string {
  const { data } = frame
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  let pos: number
  let etherType: number
  switch (frame.linkType) {
    case LINKTYPE_ETHERNET: {
      if (data.length < 14) return 'truncated Ethernet header'
      etherType = view.getUint16(12, false)
      pos = 14
      while (VLAN_ETHERTYPES.has(etherType)) {
        if (pos + 4 > data.length) return 'truncated VLAN tag'
        etherType = view.getUint16(pos + 2, false)
        pos += 4
      }
      break
    }
    case LINKTYPE_LINUX_SLL:
      if (data.length < 16) return 'truncated Linux cooked header'
      etherType = view.getUint16(14, false)
      pos = 16
      break
    case LINKTYPE_LINUX_SLL2:
      if (data.length < 20) return 'truncated Linux cooked v2 header'
      etherType = view.getUint16(0, false)
      pos = 20
      break
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP: {
      if (data.length < 4) return 'truncated loopback header'
      // NULL stores the address family in the capturing host's byte order, LOOP in network order.
      let family = view.getUint32(0, false)
      if (frame.linkType === LINKTYPE_NULL && (family & 0xffff) === 0) family = view.getUint32(0, true)
      // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
      if (family === 2) etherType = ETHERTYPE_IPV4
      else if (family === 10 || family === 24 || family === 28 || family === 30) etherType = ETHERTYPE_IPV6
      else return 'not IP'
      pos = 4
      break
    }
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6: {
      if (data.length < 1) return 'truncated IP header'
      const version = data[0]! >> 4
      etherType = version === 4 ? ETHERTYPE_IPV4 : version === 6 ? ETHERTYPE_IPV6 : 0
      pos = 0
      break
    }
    default:
      return `unsupported link type ${frame.linkType}`
  }
  return { data, view, etherType, pos }
}

/** Turns link-layer frames into UDP records, reassembling IP fragments. */
class UdpExtractor {
  private readonly pending = new Map<string, PendingDatagram>()

  constructor(private readonly stats: PcapReadStats) {}

  frame(frame: Frame): PcapUdpRecord | undefined {
    const layer = networkLayer(frame)
    if (typeof layer === 'string') return this.skip(layer)
    const { data, view, etherType, pos } = layer
    if (etherType === ETHERTYPE_IPV4) return this.ipv4(data, view, pos, frame.timestampNs)
    if (etherType === ETHERTYPE_IPV6) return this.ipv6(data, view, pos, frame.timestampNs)
    return this.skip('not IP')
  }

  /** Counts incomplete fragmented datagrams left at the end of the capture. */
  finish(): void {
    for (let i = 0; i < this.pending.size; i++) this.skip('incomplete fragmented datagram')
    this.pending.clear()
  }

  private skip(reason: string): undefined {
    skip(this.stats, reason)
    return undefined
  }

  private ipv4(data: Uint8Array, view: DataView, pos: number, timestampNs: bigint): PcapUdpRecord | undefined {
    if (pos + 20 > data.length) return this.skip('truncated IPv4 header')
    const headerLength = (data[pos]! & 0x0f) * 4
    if (data[pos]! >> 4 !== 4 || headerLength < 20) return this.skip('malformed IPv4 header')
    const totalLength = view.getUint16(pos + 2, false)
    if (totalLength < headerLength) return this.skip('malformed IPv4 header')
    if (pos + totalLength > data.length) return this.skip('truncated IPv4 packet (snap length)')
    if (data[pos + 9] !== IPPROTO_UDP) return this.skip('not UDP')
    const src = new Uint8Array(16)
    const dst = new Uint8Array(16)
    src[10] = src[11] = dst[10] = dst[11] = 0xff
    src.set(data.subarray(pos + 12, pos + 16), 12)
    dst.set(data.subarray(pos + 16, pos + 20), 12)
    const flagsOffset = view.getUint16(pos + 6, false)
    const moreFragments = (flagsOffset & 0x2000) !== 0
    const offset = (flagsOffset & 0x1fff) * 8
    const payload = data.subarray(pos + headerLength, pos + totalLength)
    if (!moreFragments && offset === 0) return this.udp(payload, src, dst, timestampNs)
    const key = `4:${src.join('.')}>${dst.join('.')}#${view.getUint16(pos + 4, false)}`
    return this.fragment(key, src, dst, offset, moreFragments, payload, timestampNs)
  }

  private ipv6(data: Uint8Array, view: DataView, pos: number, timestampNs: bigint): PcapUdpRecord | undefined {
    if (pos + 40 > data.length) return this.skip('truncated IPv6 header')
    if (data[pos]! >> 4 !== 6) return this.skip('malformed IPv6 header')
    const payloadLength = view.getUint16(pos + 4, false)
    const end = pos + 40 + payloadLength
    if (payloadLength === 0) return this.skip('IPv6 jumbogram')
    if (end > data.length) return this.skip('truncated IPv6 packet (snap length)')
    const src = data.slice(pos + 8, pos + 24)
    const dst = data.slice(pos + 24, pos + 40)
    let next = data[pos + 6]!
    let at = pos + 40
    let fragment: { offset: number; more: boolean; id: number } | undefined
    while (IPV6_EXTENSIONS.has(next) || next === IPPROTO_FRAGMENT) {
      if (at + 8 > end) return this.skip('truncated IPv6 extension header')
      if (next === IPPROTO_FRAGMENT) {
        const field = view.getUint16(at + 2, false)
        fragment = { offset: field & 0xfff8, more: (field & 1) !== 0, id: view.getUint32(at + 4, false) }
        next = data[at]!
        at += 8
      } else {
        const length = (data[at + 1]! + 1) * 8
        next = data[at]!
        at += length
      }
    }
    if (at > end) return this.skip('truncated IPv6 extension header')
    if (next !== IPPROTO_UDP) return this.skip('not UDP')
    const payload = data.subarray(at, end)
    if (!fragment || (fragment.offset === 0 && !fragment.more)) return this.udp(payload, src, dst, timestampNs)
    const key = `6:${src.join('.')}>${dst.join('.')}#${fragment.id}`
    return this.fragment(key, src, dst, fragment.offset, fragment.more, payload, timestampNs)
  }

  private fragment(
    key: string,
    src: Uint8Array,
    dst: Uint8Array,
    offset: number,
    more: boolean,
    part: Uint8Array,
    timestampNs: bigint,
  ): PcapUdpRecord | undefined {
    let datagram = this.pending.get(key)
    if (!datagram) {
      if (this.pending.size >= MAX_PENDING_DATAGRAMS) {
        const oldest = this.pending.keys().next().value as string
        this.pending.delete(oldest)
        this.skip('incomplete fragmented datagram')
      }
      datagram = { timestampNs, parts: new Map(), total: -1, src, dst }
      this.pending.set(key, datagram)
    }
    if (offset === 0) datagram.timestampNs = timestampNs
    datagram.parts.set(offset, part)
    if (!more) datagram.total = offset + part.length
    if (datagram.total < 0) return undefined
    // Complete when the parts tile [0, total) without a hole.
    const offsets = [...datagram.parts.keys()].sort((a, b) => a - b)
    let covered = 0
    for (const o of offsets) {
      if (o > covered) return undefined
      covered = Math.max(covered, o + datagram.parts.get(o)!.length)
    }
    if (covered < datagram.total) return undefined
    this.pending.delete(key)
    const whole = new Uint8Array(datagram.total)
    for (const o of offsets) {
      const p = datagram.parts.get(o)!
      whole.set(p.subarray(0, Math.max(0, Math.min(p.length, datagram.total - o))), o)
    }
    return this.udp(whole, datagram.src, datagram.dst, datagram.timestampNs)
  }

  private udp(segment: Uint8Array, src: Uint8Array, dst: Uint8Array, timestampNs: bigint): PcapUdpRecord | undefined {
    if (segment.length < 8) return this.skip('truncated UDP header')
    const length = (segment[4]! << 8) | segment[5]!
    if (length < 8 || length > segment.length) return this.skip('bad UDP length')
    return {
      timestampNs,
      srcAddress: src,
      srcPort: (segment[0]! << 8) | segment[1]!,
      dstAddress: dst,
      dstPort: (segment[2]! << 8) | segment[3]!,
      payload: segment.subarray(8, length),
    }
  }
}

function isMapped(address: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (address[i] !== 0) return false
  return address[10] === 0xff && address[11] === 0xff
}

/** Ones'-complement sum of 16-bit big-endian words, for IP and UDP checksums. */
function onesSum(sum: number, bytes: Uint8Array): number {
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8
  return sum
}

function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  const checksum = ~sum & 0xffff
  return checksum
}

/**
 * Writes a pcap file (microsecond or nanosecond timestamps, little-endian, Ethernet link type) of
 * UDP datagrams: IPv4 when both addresses are IPv4-mapped, IPv6 when neither is. Checksums are
 * computed, so tshark and the kernel accept the frames. Payloads over 65507 bytes (IPv4) are refused.
 */
export function writePcap(records: readonly PcapUdpRecord[], options: { nanosecond?: boolean } = {}): Uint8Array {
  const frames = records.map((r, i) => udpFrame(r, i))
  const size = 24 + frames.reduce((n, f) => n + 16 + f.length, 0)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  view.setUint32(0, options.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, true)
  view.setUint16(4, 2, true)
  view.setUint16(6, 4, true)
  view.setUint32(16, 262144, true)
  view.setUint32(20, LINKTYPE_ETHERNET, true)
  let pos = 24
  frames.forEach((frame, i) => {
    const ns = records[i]!.timestampNs
    view.setUint32(pos, Number(ns / 1_000_000_000n), true)
    const fraction = Number(ns % 1_000_000_000n)
    view.setUint32(pos + 4, options.nanosecond ? fraction : Math.floor(fraction / 1000), true)
    view.setUint32(pos + 8, frame.length, true)
    view.setUint32(pos + 12, frame.length, true)
    out.set(frame, pos + 16)
    pos += 16 + frame.length
  })
  return out
}

function udpFrame(r: PcapUdpRecord, index: number): Uint8Array {
  if (r.srcAddress.length !== 16 || r.dstAddress.length !== 16) {
    throw new RangeError(`writePcap: record ${index} addresses must have 16 bytes`)
  }
  const v4 = isMapped(r.srcAddress)
  if (v4 !== isMapped(r.dstAddress)) throw new RangeError(`writePcap: record ${index} mixes an IPv4 and an IPv6 address`)
  const udpLength = 8 + r.payload.length
  const ipHeader = v4 ? 20 : 40
  if (udpLength + (v4 ? ipHeader : 0) > 0xffff) throw new RangeError(`writePcap: record ${index} payload is too large for UDP`)
  const frame = new Uint8Array(14 + ipHeader + udpLength)
  const view = new DataView(frame.buffer)
  // Locally administered MACs: the link layer is not what these captures are about.
  frame.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0)
  view.setUint16(12, v4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6, false)
  const ip = 14
  const src = v4 ? r.srcAddress.subarray(12) : r.srcAddress
  const dst = v4 ? r.dstAddress.subarray(12) : r.dstAddress
  if (v4) {
    frame[ip] = 0x45
    view.setUint16(ip + 2, ipHeader + udpLength, false)
    view.setUint16(ip + 4, index & 0xffff, false)
    view.setUint16(ip + 6, 0x4000, false)
    frame[ip + 8] = 64
    frame[ip + 9] = IPPROTO_UDP
    frame.set(src, ip + 12)
    frame.set(dst, ip + 16)
    view.setUint16(ip + 10, foldChecksum(onesSum(0, frame.subarray(ip, ip + 20))), false)
  } else {
    frame[ip] = 0x60
    view.setUint16(ip + 4, udpLength, false)
    frame[ip + 6] = IPPROTO_UDP
    frame[ip + 7] = 64
    frame.set(src, ip + 8)
    frame.set(dst, ip + 24)
  }
  const udp = ip + ipHeader
  view.setUint16(udp, r.srcPort, false)
  view.setUint16(udp + 2, r.dstPort, false)
  view.setUint16(udp + 4, udpLength, false)
  frame.set(r.payload, udp + 8)
  let sum = onesSum(0, src)
  sum = onesSum(sum, dst)
  sum += IPPROTO_UDP + udpLength
  sum = onesSum(sum, frame.subarray(udp, udp + udpLength))
  // A computed zero is sent as all ones: zero means "no checksum" in UDP over IPv4.
  view.setUint16(udp + 6, foldChecksum(sum) || 0xffff, false)
  return frame
}

/** The bytes one side of a TCP connection sent, as captured, in sequence order. */
export interface PcapTcpStream {
  srcAddress: Uint8Array
  srcPort: number
  dstAddress: Uint8Array
  dstPort: number
  /** Payload bytes from the first captured segment up to the first hole. */
  payload: Uint8Array
  /** False when a hole in the capture stopped the stream (segments after it are not returned). */
  complete: boolean
}

const IPPROTO_TCP = 6

interface TcpSegment {
  seq: number
  data: Uint8Array
}

/**
 * Reassembles the TCP payload each direction of each connection carried in a capture (keyed by
 * addresses and ports, in order of first appearance), ordering segments by sequence number and
 * dropping retransmitted bytes; a SYN's payload starts one after its sequence number. Fragmented
 * IP packets are counted and skipped. Throws PcapFormatError when the bytes are not a capture.
 */
export function readPcapTcpStreams(bytes: Uint8Array, source: string, stats: PcapReadStats = newPcapReadStats()): PcapTcpStream[] {
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const flows = new Map<string, { src: Uint8Array; srcPort: number; dst: Uint8Array; dstPort: number; segments: TcpSegment[] }>()
  for (const frame of readFrames(plain, source, stats)) {
    stats.frames++
    const layer = networkLayer(frame)
    if (typeof layer === 'string') {
      skip(stats, layer)
      continue
    }
    const { data, view, etherType, pos } = layer
    let src: Uint8Array
    let dst: Uint8Array
    let segment: Uint8Array
    if (etherType === ETHERTYPE_IPV4) {
      if (pos + 20 > data.length) {
        skip(stats, 'truncated IPv4 header')
        continue
      }
      const headerLength = (data[pos]! & 0x0f) * 4
      const totalLength = view.getUint16(pos + 2, false)
      if (headerLength < 20 || totalLength < headerLength || pos + totalLength > data.length) {
        skip(stats, 'malformed or truncated IPv4 packet')
        continue
      }
      if (data[pos + 9] !== IPPROTO_TCP) {
        skip(stats, 'not TCP')
        continue
      }
      if ((view.getUint16(pos + 6, false) & 0x3fff) !== 0) {
        skip(stats, 'fragmented TCP packet')
        continue
      }
      src = new Uint8Array(16)
      dst = new Uint8Array(16)
      src[10] = src[11] = dst[10] = dst[11] = 0xff
      src.set(data.subarray(pos + 12, pos + 16), 12)
      dst.set(data.subarray(pos + 16, pos + 20), 12)
      segment = data.subarray(pos + headerLength, pos + totalLength)
    } else if (etherType === ETHERTYPE_IPV6) {
      if (pos + 40 > data.length) {
        skip(stats, 'truncated IPv6 header')
        continue
      }
      const end = pos + 40 + view.getUint16(pos + 4, false)
      if (end > data.length) {
        skip(stats, 'truncated IPv6 packet (snap length)')
        continue
      }
      let next = data[pos + 6]!
      let at = pos + 40
      while (IPV6_EXTENSIONS.has(next) && at + 8 <= end) {
        const length = (data[at + 1]! + 1) * 8
        next = data[at]!
        at += length
      }
      if (next !== IPPROTO_TCP || at > end) {
        skip(stats, next === IPPROTO_FRAGMENT ? 'fragmented TCP packet' : 'not TCP')
        continue
      }
      src = data.slice(pos + 8, pos + 24)
      dst = data.slice(pos + 24, pos + 40)
      segment = data.subarray(at, end)
    } else {
      skip(stats, 'not IP')
      continue
    }
    if (segment.length < 20 || (segment[12]! >> 4) * 4 < 20 || (segment[12]! >> 4) * 4 > segment.length) {
      skip(stats, 'malformed TCP header')
      continue
    }
    const srcPort = (segment[0]! << 8) | segment[1]!
    const dstPort = (segment[2]! << 8) | segment[3]!
    const syn = (segment[13]! & 0x02) !== 0
    const seq = (((segment[4]! << 24) | (segment[5]! << 16) | (segment[6]! << 8) | segment[7]!) + (syn ? 1 : 0)) >>> 0
    const payload = segment.subarray((segment[12]! >> 4) * 4)
    const key = `${src.join('.')}:${srcPort}>${dst.join('.')}:${dstPort}`
    let flow = flows.get(key)
    if (!flow) flows.set(key, (flow = { src, srcPort, dst, dstPort, segments: [] }))
    if (payload.length > 0) flow.segments.push({ seq, data: payload })
  }
  const streams: PcapTcpStream[] = []
  for (const flow of flows.values()) {
    // Sequence numbers wrap: order them relative to the first segment captured.
    const base = flow.segments[0]?.seq ?? 0
    const relative = (seq: number): number => (seq - base) >>> 0
    const ordered = [...flow.segments].sort((a, b) => relative(a.seq) - relative(b.seq))
    const parts: Uint8Array[] = []
    let next = 0
    let complete = true
    for (const s of ordered) {
      const at = relative(s.seq)
      if (at > next) {
        complete = false
        skip(stats, 'TCP stream with a hole')
        break
      }
      const fresh = s.data.subarray(Math.min(s.data.length, next - at))
      if (fresh.length > 0) parts.push(fresh)
      next += fresh.length
    }
    const payload = new Uint8Array(next)
    let o = 0
    for (const p of parts) {
      payload.set(p, o)
      o += p.length
    }
    streams.push({ srcAddress: flow.src, srcPort: flow.srcPort, dstAddress: flow.dst, dstPort: flow.dstPort, payload, complete })
  }
  return streams
}
