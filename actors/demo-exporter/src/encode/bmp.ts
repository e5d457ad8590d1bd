// BMP (RFC 7854) messages a router sends about its neighbours, with the BGP-4 OPEN and UPDATE
// messages (RFC 4271, 4760 MP_REACH, 6793 4-octet AS, 1997 and 8092 communities, 4724 End-of-RIB)
// they carry. Pure code over byte arrays: no sockets here.
import type { ModelPeer, ModelRoute } from '../network.js'

const BMP_VERSION = 3
const TYPE_ROUTE_MONITORING = 0
const TYPE_PEER_UP = 3
const TYPE_INITIATION = 4
const TYPE_TERMINATION = 5

const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let pos = 0
  for (const p of parts) {
    out.set(p, pos)
    pos += p.length
  }
  return out
}

const u16 = (n: number) => new Uint8Array([(n >>> 8) & 0xff, n & 0xff])
const u32 = (n: number) => new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff])
const utf8 = new TextEncoder()

const isMapped = (a: Uint8Array) => a[10] === 0xff && a[11] === 0xff && a.subarray(0, 10).every((x) => x === 0)

/** BMP's 16-byte address fields hold IPv4 in the last 4 bytes after zeros, not IPv4 mapped. */
function bmpAddress(address: Uint8Array): Uint8Array {
  if (!isMapped(address)) return address
  const out = new Uint8Array(16)
  out.set(address.subarray(12, 16), 12)
  return out
}

function bmpMessage(type: number, body: Uint8Array): Uint8Array {
  return concat([new Uint8Array([BMP_VERSION]), u32(6 + body.length), new Uint8Array([type]), body])
}

function tlv(type: number, value: Uint8Array): Uint8Array {
  return concat([u16(type), u16(value.length), value])
}

/** Initiation: sysDescr (1) and sysName (2). */
export function bmpInitiation(sysName: string, sysDescr: string): Uint8Array {
  return bmpMessage(TYPE_INITIATION, concat([tlv(1, utf8.encode(sysDescr)), tlv(2, utf8.encode(sysName))]))
}

/** Termination with reason 0 (administratively closed). */
export function bmpTermination(): Uint8Array {
  return bmpMessage(TYPE_TERMINATION, tlv(1, u16(0)))
}

/** The per-peer header of a global-instance peer, post-policy Adj-RIB-In, 4-byte AS paths. */
function perPeerHeader(peer: ModelPeer, nowMs: number): Uint8Array {
  const out = new Uint8Array(42)
  const v = new DataView(out.buffer)
  const ipv6 = !isMapped(peer.address)
  out[0] = 0 // global instance peer
  out[1] = (ipv6 ? 0x80 : 0) | 0x40 // V, L (post-policy)
  out.set(bmpAddress(peer.address), 10)
  v.setUint32(26, peer.config.asn)
  v.setUint32(30, bgpIdentifier(peer.address))
  v.setUint32(34, Math.floor(nowMs / 1000))
  v.setUint32(38, (nowMs % 1000) * 1000)
  return out
}

const bgpIdentifier = (address: Uint8Array): number =>
  ((address[12]! << 24) | (address[13]! << 16) | (address[14]! << 8) | address[15]!) >>> 0

function bgpMessage(type: number, body: Uint8Array): Uint8Array {
  const header = new Uint8Array(19).fill(0xff)
  header[16] = ((19 + body.length) >>> 8) & 0xff
  header[17] = (19 + body.length) & 0xff
  header[18] = type
  return concat([header, body])
}

/** An OPEN with multiprotocol IPv4 and IPv6 unicast and the 4-octet AS capability. */
export function bgpOpen(asn: number, bgpId: number, holdTime = 90): Uint8Array {
  const capabilities = concat([
    new Uint8Array([1, 4, 0, 1, 0, 1]), // MP IPv4 unicast
    new Uint8Array([1, 4, 0, 2, 0, 1]), // MP IPv6 unicast
    concat([new Uint8Array([65, 4]), u32(asn)]), // 4-octet AS
  ])
  const parameter = concat([new Uint8Array([2, capabilities.length]), capabilities])
  const myAS = asn > 0xffff ? 23456 : asn // AS_TRANS for 4-byte ASes
  return bgpMessage(1, concat([new Uint8Array([4]), u16(myAS), u16(holdTime), u32(bgpId), new Uint8Array([parameter.length]), parameter]))
}

/** Peer up: our side's address, the neighbour's OPEN (received) and ours (sent). */
export function bmpPeerUp(peer: ModelPeer, local: { address: Uint8Array; asn: number; bgpId: number }, nowMs: number): Uint8Array {
  return bmpMessage(
    TYPE_PEER_UP,
    concat([
      perPeerHeader(peer, nowMs),
      bmpAddress(local.address),
      u16(179),
      u16(40000 + (bgpIdentifier(peer.address) & 0x3fff)),
      bgpOpen(local.asn, local.bgpId),
      bgpOpen(peer.config.asn, bgpIdentifier(peer.address)),
    ]),
  )
}

function attribute(flags: number, type: number, value: Uint8Array): Uint8Array {
  if (value.length > 255) return concat([new Uint8Array([flags | 0x10, type]), u16(value.length), value])
  return concat([new Uint8Array([flags, type, value.length]), value])
}

function nlri(route: ModelRoute): Uint8Array {
  const length = route.prefix.length
  const bytes = Math.ceil(length / 8)
  const start = route.prefix.ipv6 ? 0 : 12
  return concat([new Uint8Array([length]), route.prefix.prefix.address.subarray(start, start + bytes)])
}

/**
 * UPDATE messages announcing routes that share their attributes (one family), split so that no
 * message passes 4096 bytes.
 */
export function bgpUpdates(routes: readonly ModelRoute[], nextHop: Uint8Array, ipv6: boolean): Uint8Array[] {
  if (routes.length === 0) return []
  const first = routes[0]!
  const path = concat([new Uint8Array([2, first.asPath.length]), ...first.asPath.map(u32)])
  const common = [
    attribute(0x40, 1, new Uint8Array([0])), // ORIGIN IGP
    attribute(0x40, 2, path),
    ...(first.communities.length > 0 ? [attribute(0xc0, 8, concat(first.communities.map(u32)))] : []),
    ...(first.largeCommunities.length > 0 ? [attribute(0xc0, 32, concat(first.largeCommunities.map(u32)))] : []),
  ]
  const messages: Uint8Array[] = []
  const chunk = 200
  for (let i = 0; i < routes.length; i += chunk) {
    const prefixes = concat(routes.slice(i, i + chunk).map(nlri))
    if (ipv6) {
      const reach = concat([u16(2), new Uint8Array([1, 16]), nextHop, new Uint8Array([0]), prefixes])
      const attributes = concat([...common, attribute(0x80, 14, reach)])
      messages.push(bgpMessage(2, concat([u16(0), u16(attributes.length), attributes])))
    } else {
      const attributes = concat([...common, attribute(0x40, 3, nextHop.subarray(12, 16))])
      messages.push(bgpMessage(2, concat([u16(0), u16(attributes.length), attributes, prefixes])))
    }
  }
  return messages
}

/** End-of-RIB: an empty UPDATE (IPv4), or an empty MP_UNREACH_NLRI for IPv6 unicast. */
export function bgpEndOfRib(ipv6: boolean): Uint8Array {
  if (!ipv6) return bgpMessage(2, concat([u16(0), u16(0)]))
  const attributes = attribute(0x80, 15, concat([u16(2), new Uint8Array([1])]))
  return bgpMessage(2, concat([u16(0), u16(attributes.length), attributes]))
}

export function bmpRouteMonitoring(peer: ModelPeer, update: Uint8Array, nowMs: number): Uint8Array {
  return bmpMessage(TYPE_ROUTE_MONITORING, concat([perPeerHeader(peer, nowMs), update]))
}

/**
 * The whole story of one session: initiation, then for each neighbour its peer up, its routes
 * (grouped by attributes, IPv4 then IPv6) and an End-of-RIB per family.
 */
export function bmpSessionMessages(
  router: { name: string; description: string; address: Uint8Array; asn: number },
  peers: readonly ModelPeer[],
  nowMs: number,
): Uint8Array[] {
  const messages = [bmpInitiation(router.name, router.description)]
  const local = { address: router.address, asn: router.asn, bgpId: bgpIdentifier(router.address) }
  for (const peer of peers) {
    messages.push(bmpPeerUp(peer, local, nowMs))
    for (const ipv6 of [false, true]) {
      const groups = new Map<string, ModelRoute[]>()
      for (const route of peer.routes) {
        if (route.prefix.ipv6 !== ipv6) continue
        const key = `${route.asPath.join(' ')}|${route.communities.join(' ')}|${route.largeCommunities.join(' ')}`
        const group = groups.get(key)
        if (group) group.push(route)
        else groups.set(key, [route])
      }
      for (const routes of groups.values()) {
        for (const update of bgpUpdates(routes, ipv6 ? peer.nextHop6 : peer.nextHop4, ipv6)) messages.push(bmpRouteMonitoring(peer, update, nowMs))
      }
      messages.push(bmpRouteMonitoring(peer, bgpEndOfRib(ipv6), nowMs))
    }
  }
  return messages
}
