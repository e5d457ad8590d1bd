// BGP-4 messages as BMP carries them (RFC 4271 UPDATE and OPEN), decoded from bytes without I/O:
// 2/4-byte AS paths, communities, large communities, MP_REACH/MP_UNREACH, ADD-PATH and End-of-RIB.

/** A BGP message that cannot be decoded; `reason` is a short counter label, the message says where. */
export class BgpDecodeError extends Error {
  readonly reason: string
  constructor(reason: string, detail: string) {
    super(`${reason}: ${detail}`)
    this.name = 'BgpDecodeError'
    this.reason = reason
  }
}

export const AFI_IPV4 = 1
export const AFI_IPV6 = 2
export const SAFI_UNICAST = 1

/** The two address families this RIB keeps. */
export type Family = 'ipv4' | 'ipv6'

export const familyOf = (afi: number, safi: number): Family | undefined =>
  safi !== SAFI_UNICAST ? undefined : afi === AFI_IPV4 ? 'ipv4' : afi === AFI_IPV6 ? 'ipv6' : undefined

const BGP_HEADER = 19
const BGP_OPEN = 1
const BGP_UPDATE = 2

const ATTR_ORIGIN = 1
const ATTR_AS_PATH = 2
const ATTR_NEXT_HOP = 3
const ATTR_COMMUNITIES = 8
const ATTR_MP_REACH = 14
const ATTR_MP_UNREACH = 15
const ATTR_AS4_PATH = 17
const ATTR_LARGE_COMMUNITIES = 32

const SEGMENT_SET = 1
const SEGMENT_SEQUENCE = 2
const SEGMENT_CONFED_SEQUENCE = 3
const SEGMENT_CONFED_SET = 4

/** Prefixes of one family, columnar: 16-byte addresses (IPv4 mapped), lengths on the 16-byte form. */
export interface PrefixList {
  readonly family: Family
  count: number
  readonly addresses: Uint8Array
  readonly lengths: Uint8Array
  /** ADD-PATH path identifiers, or undefined when the session does not use ADD-PATH (all 0). */
  readonly pathIds: Uint32Array | undefined
}

export interface PathAttributes {
  /**
   * AS numbers, nearest first. An AS_SET is one element, its lowest member (BGP counts a set as
   * one AS in the path length, RFC 4271 9.1.2.2); confederation segments are left out (RFC 5065).
   */
  asPath: number[]
  /** Standard communities, each ASN << 16 | value, as received. */
  communities: number[]
  /** Large communities flattened (global admin, local 1, local 2, …). */
  largeCommunities: number[]
  /** NEXT_HOP attribute (IPv4 NLRI), 16 bytes, or undefined. */
  nextHop: Uint8Array | undefined
  /** MP_REACH next hop (its first address when a link-local one follows), or undefined. */
  mpNextHop: Uint8Array | undefined
}

export interface BgpUpdate {
  withdrawn: PrefixList[]
  announced: PrefixList[]
  attributes: PathAttributes
  /** Set when the UPDATE is an End-of-RIB marker (RFC 4724) for a family. */
  endOfRib: { afi: number; safi: number } | undefined
  /** MP_REACH/MP_UNREACH of families other than IPv4/IPv6 unicast, as "afi/safi", skipped. */
  skippedFamilies: string[]
}

/** How a session's UPDATEs are encoded, from the per-peer header and the OPEN messages. */
export interface UpdateOptions {
  /** AS numbers in AS_PATH are 4 bytes (false: 2 bytes, AS4_PATH may complete them). */
  asn4: boolean
  /** Whether NLRI of a family carry ADD-PATH path identifiers (RFC 7911). */
  addPath: (family: Family) => boolean
}

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!
const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0

/** Checks the 19-byte BGP header at `offset` and returns [type, end of the message]. */
export function bgpHeader(bytes: Uint8Array, offset: number, end: number): [type: number, messageEnd: number] {
  if (end - offset < BGP_HEADER) throw new BgpDecodeError('bgp-truncated', `BGP header needs 19 bytes, ${end - offset} left`)
  for (let i = 0; i < 16; i++) {
    if (bytes[offset + i] !== 0xff) throw new BgpDecodeError('bgp-bad-marker', 'BGP marker is not all ones')
  }
  const length = u16(bytes, offset + 16)
  if (length < BGP_HEADER || offset + length > end) {
    throw new BgpDecodeError('bgp-bad-length', `BGP message length ${length} with ${end - offset} bytes available`)
  }
  return [bytes[offset + 18]!, offset + length]
}

/** What the OPEN message of a BGP session says about the encoding of its UPDATEs. */
export interface OpenCapabilities {
  /** The speaker's AS (from the 4-octet AS capability when present). */
  asn: number
  bgpId: number
  /** 4-octet AS number capability (RFC 6793) present. */
  asn4: boolean
  /** ADD-PATH (RFC 7911) per family: 1 receive, 2 send, 3 both. */
  addPath: Map<Family, number>
  /** Multiprotocol families announced, "afi/safi". */
  families: string[]
}

/** Decodes an OPEN message (with its BGP header) at `offset`. */
export function decodeOpen(bytes: Uint8Array, offset: number, end: number): OpenCapabilities {
  const [type, messageEnd] = bgpHeader(bytes, offset, end)
  if (type !== BGP_OPEN) throw new BgpDecodeError('bgp-not-open', `expected an OPEN message, got type ${type}`)
  let o = offset + BGP_HEADER
  if (messageEnd - o < 10) throw new BgpDecodeError('bgp-truncated', 'OPEN message shorter than 29 bytes')
  const caps: OpenCapabilities = { asn: u16(bytes, o + 1), bgpId: u32(bytes, o + 5), asn4: false, addPath: new Map(), families: [] }
  let paramsLength = bytes[o + 9]!
  o += 10
  let paramsEnd = o + paramsLength
  // RFC 9072 extended optional parameters: length 255 and type 255 announce 2-byte lengths.
  const extended = paramsLength === 255 && bytes[o] === 255
  if (extended) {
    if (messageEnd - o < 3) throw new BgpDecodeError('bgp-truncated', 'OPEN extended parameters length missing')
    paramsLength = u16(bytes, o + 1)
    o += 3
    paramsEnd = o + paramsLength
  }
  if (paramsEnd > messageEnd) throw new BgpDecodeError('bgp-bad-length', 'OPEN optional parameters overrun the message')
  while (o < paramsEnd) {
    const headerSize = extended ? 3 : 2
    if (o + headerSize > paramsEnd) throw new BgpDecodeError('bgp-truncated', 'OPEN optional parameter header')
    const paramType = bytes[o]!
    const paramLength = extended ? u16(bytes, o + 1) : bytes[o + 1]!
    o += headerSize
    const paramEnd = o + paramLength
    if (paramEnd > paramsEnd) throw new BgpDecodeError('bgp-bad-length', 'OPEN optional parameter overruns the parameters')
    if (paramType === 2) {
      // Capabilities (RFC 5492): code, length, value.
      let c = o
      while (c < paramEnd) {
        if (c + 2 > paramEnd) throw new BgpDecodeError('bgp-truncated', 'OPEN capability header')
        const code = bytes[c]!
        const length = bytes[c + 1]!
        const value = c + 2
        if (value + length > paramEnd) throw new BgpDecodeError('bgp-bad-length', `OPEN capability ${code} overruns its parameter`)
        if (code === 1 && length >= 4) caps.families.push(`${u16(bytes, value)}/${bytes[value + 3]}`)
        else if (code === 65 && length >= 4) {
          caps.asn4 = true
          caps.asn = u32(bytes, value)
        } else if (code === 69) {
          for (let a = value; a + 4 <= value + length; a += 4) {
            const family = familyOf(u16(bytes, a), bytes[a + 2]!)
            if (family) caps.addPath.set(family, bytes[a + 3]! & 3)
          }
        }
        c = value + length
      }
    }
    o = paramEnd
  }
  return caps
}

const newPrefixList = (family: Family, maxCount: number, addPath: boolean): PrefixList => ({
  family,
  count: 0,
  addresses: new Uint8Array(16 * maxCount),
  lengths: new Uint8Array(maxCount),
  pathIds: addPath ? new Uint32Array(maxCount) : undefined,
})

/** Reads NLRI (RFC 4271 4.3, with RFC 7911 path ids) in [o, end) into a new list. */
function readPrefixes(bytes: Uint8Array, o: number, end: number, family: Family, addPath: boolean): PrefixList {
  // Every NLRI takes at least one byte (five with a path id): that bounds the count.
  const list = newPrefixList(family, Math.max(0, end - o), addPath)
  const maxBits = family === 'ipv4' ? 32 : 128
  const base = family === 'ipv4' ? 12 : 0
  while (o < end) {
    if (addPath) {
      if (o + 4 > end) throw new BgpDecodeError('bgp-bad-nlri', 'ADD-PATH path id truncated')
      list.pathIds![list.count] = u32(bytes, o)
      o += 4
    }
    if (o >= end) throw new BgpDecodeError('bgp-bad-nlri', 'prefix length missing')
    const bits = bytes[o++]!
    if (bits > maxBits) throw new BgpDecodeError('bgp-bad-nlri', `${family} prefix length ${bits} exceeds ${maxBits}`)
    const size = (bits + 7) >> 3
    if (o + size > end) throw new BgpDecodeError('bgp-bad-nlri', `${family} /${bits} prefix truncated`)
    const at = 16 * list.count
    if (family === 'ipv4') {
      list.addresses[at + 10] = 0xff
      list.addresses[at + 11] = 0xff
    }
    for (let i = 0; i < size; i++) list.addresses[at + base + i] = bytes[o + i]!
    // Host bits beyond the length are not part of the prefix.
    if (bits & 7) list.addresses[at + base + size - 1]! &= 0xff << (8 - (bits & 7))
    list.lengths[list.count] = bits + base * 8
    list.count++
    o += size
  }
  return list
}

function readNextHop(bytes: Uint8Array, o: number, length: number): Uint8Array | undefined {
  const out = new Uint8Array(16)
  if (length === 4) {
    out[10] = out[11] = 0xff
    out.set(bytes.subarray(o, o + 4), 12)
  } else if (length === 16 || length === 32) {
    out.set(bytes.subarray(o, o + 16))
  } else return undefined
  return out
}

/**
 * AS_PATH (or AS4_PATH) segments as the flat path of PathAttributes: sequences as they are, a
 * set as its lowest member, confederation segments left out.
 */
function readAsPath(bytes: Uint8Array, o: number, end: number, asSize: number): number[] {
  const path: number[] = []
  while (o < end) {
    if (o + 2 > end) throw new BgpDecodeError('bgp-bad-as-path', 'AS_PATH segment header truncated')
    const type = bytes[o]!
    const count = bytes[o + 1]!
    o += 2
    if (o + count * asSize > end) throw new BgpDecodeError('bgp-bad-as-path', `AS_PATH segment of ${count} AS overruns the attribute`)
    const read = (i: number): number => (asSize === 4 ? u32(bytes, o + 4 * i) : u16(bytes, o + 2 * i))
    if (type === SEGMENT_SEQUENCE) {
      for (let i = 0; i < count; i++) path.push(read(i))
    } else if (type === SEGMENT_SET) {
      if (count > 0) {
        let lowest = read(0)
        for (let i = 1; i < count; i++) lowest = Math.min(lowest, read(i))
        path.push(lowest)
      }
    } else if (type !== SEGMENT_CONFED_SEQUENCE && type !== SEGMENT_CONFED_SET) {
      throw new BgpDecodeError('bgp-bad-as-path', `unknown AS_PATH segment type ${type}`)
    }
    o += count * asSize
  }
  return path
}

/**
 * Decodes an UPDATE message (with its BGP header) at `offset`. Everything is validated before
 * the result is returned, so a caller applies either a whole UPDATE or nothing.
 */
export function decodeUpdate(bytes: Uint8Array, offset: number, end: number, options: UpdateOptions): BgpUpdate {
  const [type, messageEnd] = bgpHeader(bytes, offset, end)
  if (type !== BGP_UPDATE) throw new BgpDecodeError('bgp-not-update', `route monitoring carries BGP message type ${type}, not UPDATE`)
  let o = offset + BGP_HEADER
  if (o + 2 > messageEnd) throw new BgpDecodeError('bgp-truncated', 'UPDATE withdrawn routes length missing')
  const withdrawnLength = u16(bytes, o)
  o += 2
  if (o + withdrawnLength + 2 > messageEnd) throw new BgpDecodeError('bgp-bad-length', 'UPDATE withdrawn routes overrun the message')
  const update: BgpUpdate = {
    withdrawn: [],
    announced: [],
    attributes: { asPath: [], communities: [], largeCommunities: [], nextHop: undefined, mpNextHop: undefined },
    endOfRib: undefined,
    skippedFamilies: [],
  }
  const ipv4Withdrawn = readPrefixes(bytes, o, o + withdrawnLength, 'ipv4', options.addPath('ipv4'))
  if (ipv4Withdrawn.count > 0) update.withdrawn.push(ipv4Withdrawn)
  o += withdrawnLength
  const attributesLength = u16(bytes, o)
  o += 2
  const attributesEnd = o + attributesLength
  if (attributesEnd > messageEnd) throw new BgpDecodeError('bgp-bad-length', 'UPDATE path attributes overrun the message')
  let as4Path: number[] | undefined
  let attributeCount = 0
  let mpUnreachEmpty: { afi: number; safi: number } | undefined
  const attrs = update.attributes
  while (o < attributesEnd) {
    if (o + 3 > attributesEnd) throw new BgpDecodeError('bgp-bad-attribute', 'path attribute header truncated')
    const flags = bytes[o]!
    const code = bytes[o + 1]!
    const extended = (flags & 0x10) !== 0
    if (extended && o + 4 > attributesEnd) throw new BgpDecodeError('bgp-bad-attribute', 'path attribute header truncated')
    const length = extended ? u16(bytes, o + 2) : bytes[o + 2]!
    const value = o + (extended ? 4 : 3)
    const valueEnd = value + length
    if (valueEnd > attributesEnd) throw new BgpDecodeError('bgp-bad-attribute', `path attribute ${code} overruns the attributes`)
    attributeCount++
    switch (code) {
      case ATTR_ORIGIN:
        break
      case ATTR_AS_PATH:
        attrs.asPath = readAsPath(bytes, value, valueEnd, options.asn4 ? 4 : 2)
        break
      case ATTR_AS4_PATH:
        as4Path = readAsPath(bytes, value, valueEnd, 4)
        break
      case ATTR_NEXT_HOP:
        if (length !== 4) throw new BgpDecodeError('bgp-bad-attribute', `NEXT_HOP of ${length} bytes`)
        attrs.nextHop = readNextHop(bytes, value, 4)
        break
      case ATTR_COMMUNITIES:
        if (length % 4 !== 0) throw new BgpDecodeError('bgp-bad-attribute', `COMMUNITIES of ${length} bytes`)
        for (let i = value; i < valueEnd; i += 4) attrs.communities.push(u32(bytes, i))
        break
      case ATTR_LARGE_COMMUNITIES:
        if (length % 12 !== 0) throw new BgpDecodeError('bgp-bad-attribute', `LARGE_COMMUNITIES of ${length} bytes`)
        for (let i = value; i < valueEnd; i += 4) attrs.largeCommunities.push(u32(bytes, i))
        break
      case ATTR_MP_REACH: {
        if (length < 5) throw new BgpDecodeError('bgp-bad-attribute', 'MP_REACH_NLRI shorter than 5 bytes')
        const afi = u16(bytes, value)
        const safi = bytes[value + 2]!
        const nextHopLength = bytes[value + 3]!
        const nlri = value + 4 + nextHopLength + 1
        if (nlri > valueEnd) throw new BgpDecodeError('bgp-bad-attribute', 'MP_REACH_NLRI next hop overruns the attribute')
        const family = familyOf(afi, safi)
        if (!family) {
          update.skippedFamilies.push(`${afi}/${safi}`)
          break
        }
        attrs.mpNextHop = readNextHop(bytes, value + 4, nextHopLength)
        update.announced.push(readPrefixes(bytes, nlri, valueEnd, family, options.addPath(family)))
        break
      }
      case ATTR_MP_UNREACH: {
        if (length < 3) throw new BgpDecodeError('bgp-bad-attribute', 'MP_UNREACH_NLRI shorter than 3 bytes')
        const afi = u16(bytes, value)
        const safi = bytes[value + 2]!
        if (length === 3) mpUnreachEmpty = { afi, safi }
        const family = familyOf(afi, safi)
        if (!family) {
          // An empty one is another family's End-of-RIB, not a route skipped.
          if (length > 3) update.skippedFamilies.push(`${afi}/${safi}`)
          break
        }
        const list = readPrefixes(bytes, value + 3, valueEnd, family, options.addPath(family))
        if (list.count > 0) update.withdrawn.push(list)
        break
      }
      default:
        // MED, LOCAL_PREF, aggregator, extended communities… are not kept.
        break
    }
    o = valueEnd
  }
  if (as4Path && !options.asn4) attrs.asPath = mergeAs4Path(attrs.asPath, as4Path)
  const ipv4Announced = readPrefixes(bytes, attributesEnd, messageEnd, 'ipv4', options.addPath('ipv4'))
  if (ipv4Announced.count > 0) {
    if (!attrs.nextHop && !attrs.mpNextHop) throw new BgpDecodeError('bgp-missing-next-hop', 'IPv4 NLRI without NEXT_HOP')
    update.announced.unshift(ipv4Announced)
  }
  // End-of-RIB (RFC 4724): an empty UPDATE for IPv4 unicast, an UPDATE holding only an empty
  // MP_UNREACH_NLRI for the other families.
  if (withdrawnLength === 0 && attributesLength === 0 && ipv4Announced.count === 0) update.endOfRib = { afi: AFI_IPV4, safi: SAFI_UNICAST }
  else if (withdrawnLength === 0 && attributeCount === 1 && mpUnreachEmpty && ipv4Announced.count === 0) update.endOfRib = mpUnreachEmpty
  return update
}

/**
 * RFC 6793 4.2.3: on a 2-byte session, AS4_PATH carries the real numbers of the last AS of the
 * path; the leading AS_PATH entries it does not cover are kept.
 */
function mergeAs4Path(asPath: number[], as4Path: number[]): number[] {
  if (as4Path.length > asPath.length) return asPath
  return [...asPath.slice(0, asPath.length - as4Path.length), ...as4Path]
}
