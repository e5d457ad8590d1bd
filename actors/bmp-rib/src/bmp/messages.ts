// BMP messages (RFC 7854, Loc-RIB peers of RFC 9069) decoded from bytes without I/O: the common
// header that frames a TCP stream, the per-peer header, and each message type's body.
import { BgpDecodeError, bgpHeader, decodeOpen, type OpenCapabilities } from '../bgp/update.js'

/** A BMP message that cannot be decoded; `reason` is a short counter label. */
export class BmpDecodeError extends Error {
  readonly reason: string
  constructor(reason: string, detail: string) {
    super(`${reason}: ${detail}`)
    this.name = 'BmpDecodeError'
    this.reason = reason
  }
}

export const BMP_VERSION = 3
export const BMP_COMMON_HEADER = 6
const PER_PEER_HEADER = 42
/** Larger than any BMP message a router sends (a BGP message is at most 64 KiB); a guard against garbage. */
export const BMP_MAX_MESSAGE = 1 << 20

export const MessageType = {
  routeMonitoring: 0,
  statisticsReport: 1,
  peerDown: 2,
  peerUp: 3,
  initiation: 4,
  termination: 5,
  routeMirroring: 6,
} as const

export const messageTypeNames = ['route-monitoring', 'statistics-report', 'peer-down', 'peer-up', 'initiation', 'termination', 'route-mirroring']

export const PeerType = { global: 0, rdInstance: 1, localInstance: 2, locRib: 3 } as const

/** The per-peer header: which peer (and which of its RIBs) a message is about. */
export interface PerPeerHeader {
  peerType: number
  flags: number
  /** Route distinguisher, 8 bytes as hex ("0000000000000000" for the global instance). */
  distinguisher: string
  /** 16 bytes, IPv4 mapped when the V flag is clear. */
  address: Uint8Array
  asn: number
  bgpId: number
  /** Post-policy Adj-RIB-In (L flag); meaningless for Loc-RIB. */
  postPolicy: boolean
  /** AS_PATH uses 2-byte AS numbers (A flag); never for Loc-RIB. */
  legacyAsPath: boolean
  /** Adj-RIB-Out (O flag, RFC 8671). */
  adjRibOut: boolean
  /** Loc-RIB filtered flag (F, RFC 9069). */
  filtered: boolean
}

export type BmpMessage =
  | { type: 'initiation'; sysName: string; sysDescr: string; info: string[] }
  | { type: 'termination'; reason: number | undefined; info: string[] }
  | { type: 'peer-up'; peer: PerPeerHeader; localAddress: Uint8Array; localPort: number; remotePort: number; sent: OpenCapabilities; received: OpenCapabilities }
  | { type: 'peer-down'; peer: PerPeerHeader; reason: number }
  /** The UPDATE is left undecoded: decoding needs the session state (ADD-PATH) the caller holds. */
  | { type: 'route-monitoring'; peer: PerPeerHeader; update: Uint8Array }
  | { type: 'statistics-report'; peer: PerPeerHeader; stats: Map<number, bigint> }
  | { type: 'route-mirroring'; peer: PerPeerHeader }

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!
const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
const utf8 = new TextDecoder('utf-8', { fatal: false })

/**
 * Length of the BMP message starting at `offset` once its 6-byte header is there, or -1 when
 * more bytes are needed to know. Throws on a wrong version or an impossible length.
 */
export function bmpMessageLength(bytes: Uint8Array, offset: number, end: number): number {
  if (end - offset < BMP_COMMON_HEADER) return -1
  const version = bytes[offset]!
  if (version !== BMP_VERSION) throw new BmpDecodeError('bmp-bad-version', `BMP version ${version}, expected 3`)
  const length = u32(bytes, offset + 1)
  if (length < BMP_COMMON_HEADER || length > BMP_MAX_MESSAGE) throw new BmpDecodeError('bmp-bad-length', `BMP message length ${length}`)
  return length
}

function perPeerHeader(bytes: Uint8Array, o: number, end: number): PerPeerHeader {
  if (o + PER_PEER_HEADER > end) throw new BmpDecodeError('bmp-truncated', 'per-peer header truncated')
  const peerType = bytes[o]!
  const flags = bytes[o + 1]!
  const locRib = peerType === PeerType.locRib
  const ipv6 = !locRib && (flags & 0x80) !== 0
  const address = new Uint8Array(16)
  if (ipv6) address.set(bytes.subarray(o + 10, o + 26))
  else {
    address[10] = address[11] = 0xff
    address.set(bytes.subarray(o + 22, o + 26), 12)
  }
  return {
    peerType,
    flags,
    distinguisher: hex(bytes.subarray(o + 2, o + 10)),
    address,
    asn: u32(bytes, o + 26),
    bgpId: u32(bytes, o + 30),
    postPolicy: !locRib && (flags & 0x40) !== 0,
    legacyAsPath: !locRib && (flags & 0x20) !== 0,
    adjRibOut: !locRib && (flags & 0x10) !== 0,
    filtered: locRib && (flags & 0x80) !== 0,
  }
}

/** Information TLVs (type, length, value) as text: [type, text][]. */
function infoTlvs(bytes: Uint8Array, o: number, end: number): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = []
  while (o < end) {
    if (o + 4 > end) throw new BmpDecodeError('bmp-bad-tlv', 'information TLV header truncated')
    const type = u16(bytes, o)
    const length = u16(bytes, o + 2)
    if (o + 4 + length > end) throw new BmpDecodeError('bmp-bad-tlv', `information TLV ${type} overruns the message`)
    out.push([type, bytes.subarray(o + 4, o + 4 + length)])
    o += 4 + length
  }
  return out
}

/** Decodes one whole BMP message (`bytes` from its common header to its end). */
export function decodeBmpMessage(bytes: Uint8Array): BmpMessage {
  const end = bmpMessageLength(bytes, 0, bytes.length)
  if (end !== bytes.length) throw new BmpDecodeError('bmp-bad-length', `BMP length ${end} for a ${bytes.length}-byte message`)
  const type = bytes[5]!
  let o = BMP_COMMON_HEADER
  try {
    switch (type) {
      case MessageType.initiation: {
        const tlvs = infoTlvs(bytes, o, end)
        const text = (t: number) => tlvs.filter(([k]) => k === t).map(([, v]) => utf8.decode(v))
        return { type: 'initiation', sysDescr: text(1).join('\n'), sysName: text(2).join('\n'), info: text(0) }
      }
      case MessageType.termination: {
        const tlvs = infoTlvs(bytes, o, end)
        const reason = tlvs.find(([k, v]) => k === 1 && v.length === 2)
        return {
          type: 'termination',
          reason: reason ? u16(reason[1], 0) : undefined,
          info: tlvs.filter(([k]) => k === 0).map(([, v]) => utf8.decode(v)),
        }
      }
      case MessageType.peerUp: {
        const peer = perPeerHeader(bytes, o, end)
        o += PER_PEER_HEADER
        if (o + 20 > end) throw new BmpDecodeError('bmp-truncated', 'peer up local address and ports truncated')
        const localAddress = bytes.slice(o, o + 16)
        const localPort = u16(bytes, o + 16)
        const remotePort = u16(bytes, o + 18)
        o += 20
        const [, sentEnd] = bgpHeader(bytes, o, end)
        const sent = decodeOpen(bytes, o, sentEnd)
        const [, receivedEnd] = bgpHeader(bytes, sentEnd, end)
        const received = decodeOpen(bytes, sentEnd, receivedEnd)
        // Information TLVs may follow (RFC 9069 VRF/table name); they are not needed.
        return { type: 'peer-up', peer, localAddress, localPort, remotePort, sent, received }
      }
      case MessageType.peerDown: {
        const peer = perPeerHeader(bytes, o, end)
        o += PER_PEER_HEADER
        if (o + 1 > end) throw new BmpDecodeError('bmp-truncated', 'peer down reason missing')
        return { type: 'peer-down', peer, reason: bytes[o]! }
      }
      case MessageType.routeMonitoring: {
        const peer = perPeerHeader(bytes, o, end)
        o += PER_PEER_HEADER
        return { type: 'route-monitoring', peer, update: bytes.subarray(o, end) }
      }
      case MessageType.statisticsReport: {
        const peer = perPeerHeader(bytes, o, end)
        o += PER_PEER_HEADER
        if (o + 4 > end) throw new BmpDecodeError('bmp-truncated', 'statistics count missing')
        const count = u32(bytes, o)
        o += 4
        const stats = new Map<number, bigint>()
        for (let i = 0; i < count; i++) {
          if (o + 4 > end) throw new BmpDecodeError('bmp-bad-tlv', 'statistics TLV header truncated')
          const statType = u16(bytes, o)
          const length = u16(bytes, o + 2)
          if (o + 4 + length > end) throw new BmpDecodeError('bmp-bad-tlv', `statistics TLV ${statType} overruns the message`)
          if (length === 4) stats.set(statType, BigInt(u32(bytes, o + 4)))
          else if (length === 8) stats.set(statType, (BigInt(u32(bytes, o + 4)) << 32n) | BigInt(u32(bytes, o + 8)))
          // Per-AFI/SAFI gauges (11 bytes) and others are not kept.
          o += 4 + length
        }
        return { type: 'statistics-report', peer, stats }
      }
      case MessageType.routeMirroring:
        return { type: 'route-mirroring', peer: perPeerHeader(bytes, o, end) }
      default:
        throw new BmpDecodeError('bmp-unknown-type', `BMP message type ${type}`)
    }
  } catch (error) {
    if (error instanceof BgpDecodeError) throw new BmpDecodeError(error.reason, `in ${messageTypeNames[type] ?? type}: ${error.message}`)
    throw error
  }
}
