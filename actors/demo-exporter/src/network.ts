// The configured network compiled into what the generators need: for each exporter its BGP
// neighbours with the routes they announce, the paths traffic of each content network takes, and
// the customers it reaches. Traffic, BMP announcements and SNMP answers all derive from this one model.
import { parseIP } from '@flowbus/bus-schemas'
import { type IPPrefix, parsePrefix } from '@flowbus/runtime'
import type { BgpPeer, DemoExporterConfig, ExporterConfig, InterfaceConfig, ProfileConfig } from './config.js'

/** A prefix with its family; `prefix.prefixLength` counts on the 16-byte form (IPv4 + 96). */
export interface ModelPrefix {
  readonly text: string
  readonly prefix: IPPrefix
  readonly ipv6: boolean
  /** Length in its own family (an IPv4 /24 is 24). */
  readonly length: number
}

/** One route a neighbour announces, as BMP route monitoring carries it. */
export interface ModelRoute {
  readonly prefix: ModelPrefix
  readonly asPath: readonly number[]
  readonly communities: readonly number[]
  /** Flattened triplets (global admin, local 1, local 2). */
  readonly largeCommunities: readonly number[]
}

export interface ModelPeer {
  readonly config: BgpPeer
  readonly name: string
  readonly iface: InterfaceConfig
  /** 16 bytes, IPv4 mapped. */
  readonly address: Uint8Array
  readonly nextHop4: Uint8Array
  readonly nextHop6: Uint8Array
  readonly routes: readonly ModelRoute[]
}

/** A way out towards a content network: interface and neighbour. */
export interface ModelPath {
  readonly iface: InterfaceConfig
  readonly peer: ModelPeer
  readonly weight: number
  /** The BGP path this way out gives towards the profile's prefixes. */
  readonly asPath: readonly number[]
}

export interface ModelCustomer {
  readonly iface: InterfaceConfig
  readonly peer: ModelPeer | undefined
  readonly asn: number
  readonly asPath: readonly number[]
  readonly v4: readonly ModelPrefix[]
  readonly v6: readonly ModelPrefix[]
  readonly weight: number
}

export interface ModelProfile {
  readonly config: ProfileConfig
  readonly v4: readonly ModelPrefix[]
  readonly v6: readonly ModelPrefix[]
}

export interface ModelExporter {
  readonly config: ExporterConfig
  readonly index: number
  /** 16 bytes, IPv4 mapped. */
  readonly address: Uint8Array
  readonly peers: readonly ModelPeer[]
  /** Per profile (same order as the network's profiles), the ways out and their weights. */
  readonly paths: readonly (readonly ModelPath[])[]
  readonly customers: readonly ModelCustomer[]
  readonly cores: readonly InterfaceConfig[]
}

export interface NetworkModel {
  readonly profiles: readonly ModelProfile[]
  readonly exporters: readonly ModelExporter[]
  readonly localAS: number
}

// Communities tagging where a route was learnt, as providers commonly do (localAS:kind).
export const COMMUNITY_KIND: Readonly<Record<InterfaceConfig['kind'], number>> = { transit: 100, ix: 200, pni: 300, customer: 400, core: 500 }
// Preference of a direct neighbour over transit when picking the way traffic comes in.
const PATH_WEIGHT: Readonly<Record<InterfaceConfig['kind'], number>> = { pni: 8, ix: 4, transit: 1, customer: 0, core: 0 }

export function modelPrefix(text: string): ModelPrefix {
  const prefix = parsePrefix(text)
  const ipv6 = text.includes(':')
  return { text, prefix, ipv6, length: ipv6 ? prefix.prefixLength : prefix.prefixLength - 96 }
}

const siteNumber = (exporter: ExporterConfig, index: number) => index + 1

export function buildNetwork(config: DemoExporterConfig): NetworkModel {
  const profiles: ModelProfile[] = config.profiles.map((p) => {
    const prefixes = p.prefixes.map(modelPrefix)
    return { config: p, v4: prefixes.filter((x) => !x.ipv6), v6: prefixes.filter((x) => x.ipv6) }
  })
  const exporters = config.exporters.map((exporter, index): ModelExporter => {
    const peers: ModelPeer[] = []
    const paths: ModelPath[][] = profiles.map(() => [])
    const customers: ModelCustomer[] = []
    for (const iface of exporter.interfaces) {
      const tag = (config.localAS << 16) | COMMUNITY_KIND[iface.kind]
      // Large communities: localAS:1:site, localAS:2:ifIndex (where the route entered).
      const large = [config.localAS, 1, siteNumber(exporter, index), config.localAS, 2, iface.ifIndex]
      for (const peer of iface.peers) {
        const address = parseIP(peer.address)
        const routes: ModelRoute[] = []
        const communities = [tag >>> 0, ((config.localAS << 16) | (1000 + siteNumber(exporter, index))) >>> 0]
        if (iface.kind === 'customer') {
          // The customer announces its own prefixes.
          for (const text of iface.prefixes) routes.push({ prefix: modelPrefix(text), asPath: [peer.asn], communities, largeCommunities: large })
        } else if (iface.kind !== 'core') {
          profiles.forEach((profile, p) => {
            const direct = profile.config.asn === peer.asn
            if (!direct && iface.kind !== 'transit') return
            const asPath = direct ? [peer.asn] : [peer.asn, profile.config.asn]
            for (const prefix of [...profile.v4, ...profile.v6]) routes.push({ prefix, asPath, communities, largeCommunities: large })
          })
        }
        const model: ModelPeer = {
          config: peer,
          name: peer.name ?? `AS${peer.asn}`,
          iface,
          address,
          nextHop4: address,
          nextHop6: peer.address6 !== undefined ? parseIP(peer.address6) : address,
          routes,
        }
        peers.push(model)
        if (iface.kind === 'transit' || iface.kind === 'ix' || iface.kind === 'pni') {
          profiles.forEach((profile, p) => {
            if (iface.kind === 'transit' || profile.config.asn === peer.asn) {
              const asPath = profile.config.asn === peer.asn ? [peer.asn] : [peer.asn, profile.config.asn]
              paths[p]!.push({ iface, peer: model, weight: PATH_WEIGHT[iface.kind], asPath })
            }
          })
        }
      }
      if (iface.kind === 'customer') {
        const prefixes = iface.prefixes.map(modelPrefix)
        const peer = peers.find((p) => p.iface === iface)
        customers.push({
          iface,
          peer,
          asn: iface.peers[0]?.asn ?? config.localAS,
          asPath: [iface.peers[0]?.asn ?? config.localAS],
          v4: prefixes.filter((x) => !x.ipv6),
          v6: prefixes.filter((x) => x.ipv6),
          weight: iface.weight ?? iface.speed,
        })
      }
    }
    return {
      config: exporter,
      index,
      address: parseIP(exporter.address),
      peers,
      paths,
      customers,
      cores: exporter.interfaces.filter((i) => i.kind === 'core'),
    }
  })
  return { profiles, exporters, localAS: config.localAS }
}
