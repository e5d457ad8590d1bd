// The demo-exporter configuration section: the simulated network (exporters, their interfaces and
// BGP neighbours, traffic profiles), where flows, BMP and SNMP go, the rate and the seed.
import { parseIP } from '@flowbus/bus-schemas'
import { Duration, ParsedText, parsePrefix } from '@flowbus/runtime'
import { Schema } from 'effect'
import { defaultExporters, defaultProfiles } from './default-network.js'

const IPAddress = ParsedText(parseIP)
const Prefix = ParsedText(parsePrefix).annotations({ description: 'an IP prefix such as 192.0.2.0/24 or 2001:db8::/32' })

const HostPort = ParsedText((text) => {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text)
  if (!match || Number(match[3]) > 65535) throw new Error(`"${text}" is not host:port (IPv6 as [addr]:port)`)
}).annotations({ description: 'host:port, IPv6 as [addr]:port' })

const ASN = Schema.Number.pipe(Schema.int(), Schema.between(1, 4294967295))
const positive = Schema.Number.pipe(Schema.positive())
const share = Schema.Number.pipe(Schema.between(0, 1))

export const BgpPeer = Schema.Struct({
  asn: ASN.annotations({ description: 'the neighbour\'s AS number (the first AS of the paths it announces)' }),
  address: IPAddress.annotations({ description: 'neighbour address: BMP peer address and BGP next hop of its IPv4 routes' }),
  address6: Schema.optional(IPAddress).annotations({ description: 'IPv6 next hop of its IPv6 routes (default: the IPv4 address, mapped)' }),
  name: Schema.optional(Schema.String).annotations({ description: 'label in logs (default AS<asn>)' }),
})
export type BgpPeer = Schema.Schema.Type<typeof BgpPeer>

export const Boundary = Schema.Literal('transit', 'ix', 'pni', 'customer', 'core')
export type Boundary = Schema.Schema.Type<typeof Boundary>

export const InterfaceConfig = Schema.Struct({
  ifIndex: Schema.Number.pipe(Schema.int(), Schema.between(1, 2147483647)),
  name: Schema.String.pipe(Schema.minLength(1)).annotations({ description: 'ifName and ifDescr, e.g. "et-0/0/1"' }),
  description: Schema.String.annotations({ description: 'ifAlias, e.g. "Transit: Cogent"' }),
  speed: Schema.Number.pipe(Schema.int(), Schema.positive()).annotations({ description: 'ifHighSpeed, Mbit/s' }),
  kind: Boundary.annotations({
    description:
      'transit (every content prefix through the peer), ix and pni (the content networks whose AS the peers have), customer (an eyeball network: its prefixes are the traffic\'s destinations), core (towards another site)',
  }),
  peers: Schema.optionalWith(Schema.Array(BgpPeer), { default: () => [] }).annotations({ description: 'BGP neighbours reached over this interface' }),
  prefixes: Schema.optionalWith(Schema.Array(Prefix), { default: () => [] }).annotations({
    description: 'customer interfaces: the customer\'s prefixes (announced by its first peer)',
  }),
  weight: Schema.optional(positive).annotations({ description: 'customer interfaces: share of the traffic (default: the speed)' }),
})
export type InterfaceConfig = Schema.Schema.Type<typeof InterfaceConfig>

export const FlowProtocol = Schema.Literal('netflow-v9', 'ipfix', 'sflow-v5')
export type FlowProtocol = Schema.Schema.Type<typeof FlowProtocol>

export const ExporterConfig = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1)).annotations({ description: 'sysName, and the BMP initiation sysName' }),
  address: IPAddress.annotations({
    description: 'source address of its flows, BMP session and SNMP agent (a loopback address such as 127.0.0.11 on one machine)',
  }),
  site: Schema.optionalWith(Schema.String, { default: () => '' }).annotations({ description: 'site label (large community and sysLocation)' }),
  protocol: Schema.optionalWith(FlowProtocol, { default: () => 'netflow-v9' as const }),
  samplingRate: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 1 << 24)), { default: () => 1000 }).annotations({
    description: '1 packet in N is sampled; announced in options data (NetFlow v9/IPFIX) or in each sample (sFlow)',
  }),
  weight: Schema.optionalWith(positive, { default: () => 1 }).annotations({ description: 'share of the total rate this exporter sends' }),
  interfaces: Schema.Array(InterfaceConfig).pipe(Schema.minItems(2)),
})
export type ExporterConfig = Schema.Schema.Type<typeof ExporterConfig>

export const ServiceConfig = Schema.Struct({
  proto: Schema.Literal('tcp', 'udp', 'icmp'),
  port: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(0, 65535)), { default: () => 0 }).annotations({
    description: 'server port (0 with icmp)',
  }),
  weight: positive,
  packetSize: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(64, 9000)), { default: () => 1400 }).annotations({
    description: 'typical size of server-to-client packets, bytes',
  }),
})
export type ServiceConfig = Schema.Schema.Type<typeof ServiceConfig>

export const ProfileConfig = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1)),
  asn: ASN.annotations({ description: 'origin AS of the prefixes' }),
  prefixes: Schema.Array(Prefix).pipe(Schema.minItems(1)).annotations({ description: 'prefixes the network announces (sources of its traffic)' }),
  weight: positive.annotations({ description: 'share of the flows' }),
  ipv6Share: Schema.optional(share).annotations({ description: 'share of its flows over IPv6 (default: the section\'s ipv6Share)' }),
  services: Schema.optional(Schema.Array(ServiceConfig).pipe(Schema.minItems(1))).annotations({
    description: 'ports and protocols of its flows (default: the section\'s services)',
  }),
})
export type ProfileConfig = Schema.Schema.Type<typeof ProfileConfig>

const defaultServices: ServiceConfig[] = [
  { proto: 'tcp', port: 443, weight: 58, packetSize: 1440 },
  { proto: 'udp', port: 443, weight: 24, packetSize: 1350 },
  { proto: 'tcp', port: 80, weight: 8, packetSize: 1440 },
  { proto: 'udp', port: 53, weight: 4, packetSize: 180 },
  { proto: 'tcp', port: 993, weight: 1, packetSize: 900 },
  { proto: 'udp', port: 123, weight: 1, packetSize: 90 },
  { proto: 'tcp', port: 22, weight: 1, packetSize: 300 },
  { proto: 'icmp', port: 0, weight: 1, packetSize: 84 },
  { proto: 'udp', port: 3478, weight: 2, packetSize: 900 },
]

export const DemoExporterConfig = Schema.Struct({
  seed: Schema.optionalWith(Schema.Number.pipe(Schema.int()), { default: () => 1 }).annotations({
    description: 'seed of the simulation: the same seed and the same clock ticks give the same flows',
  }),
  rate: Schema.optionalWith(Schema.Number.pipe(Schema.nonNegative()), { default: () => 1000 }).annotations({
    description: 'flow records (sFlow: samples) per second over all exporters at the peak hour',
  }),
  peakHour: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 24)), { default: () => 21 }).annotations({
    description: 'UTC hour of the daily peak; the rate follows a cosine from trough to peak',
  }),
  trough: Schema.optionalWith(share, { default: () => 0.3 }).annotations({ description: 'rate at the quietest hour, as a share of the peak rate' }),
  reverseShare: Schema.optionalWith(share, { default: () => 0.2 }).annotations({
    description: 'share of flows in the reverse direction (customers to content networks)',
  }),
  coreShare: Schema.optionalWith(share, { default: () => 0.1 }).annotations({
    description: 'share of inbound flows leaving through a core interface (customers of another site)',
  }),
  ipv6Share: Schema.optionalWith(share, { default: () => 0.35 }).annotations({ description: 'share of flows over IPv6 unless a profile says otherwise' }),
  services: Schema.optionalWith(Schema.Array(ServiceConfig).pipe(Schema.minItems(1)), { default: () => defaultServices }).annotations({
    description: 'default port and protocol mix',
  }),
  flowTarget: Schema.optionalWith(HostPort, { default: () => '127.0.0.1:2055' }).annotations({
    description: 'where NetFlow v9 and IPFIX datagrams go (the receiver)',
  }),
  sflowTarget: Schema.optionalWith(HostPort, { default: () => '127.0.0.1:6343' }).annotations({ description: 'where sFlow datagrams go' }),
  tick: Schema.optionalWith(Duration, { default: () => 100 }).annotations({ description: 'how often flows are generated and sent' }),
  templateInterval: Schema.optionalWith(Duration, { default: () => 20_000 }).annotations({
    description: 'how often templates and options data (sampling rate) are sent again (NetFlow v9/IPFIX)',
  }),
  counterInterval: Schema.optionalWith(Duration, { default: () => 20_000 }).annotations({
    description: 'how often sFlow exporters send counter samples (generic interface counters) for every interface',
  }),
  maxDatagramBytes: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(512, 65000)), { default: () => 1400 }),
  localAS: Schema.optionalWith(ASN, { default: () => 64500 }).annotations({ description: 'AS of the simulated network (communities use it)' }),
  snmp: Schema.optionalWith(
    Schema.Struct({
      enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
      port: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(0, 65535)), { default: () => 1161 }).annotations({
        description: 'UDP port of each exporter\'s agent, bound on the exporter address',
      }),
      community: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => 'public' }).annotations({ description: 'v2c read community' }),
    }),
    { default: () => ({ enabled: true, port: 1161, community: 'public' }) },
  ).annotations({ description: 'SNMP agents answering sysName and IF-MIB for the exporters\' interfaces' }),
  bmp: Schema.optionalWith(
    Schema.Struct({
      enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
      collector: Schema.optionalWith(HostPort, { default: () => '127.0.0.1:10179' }).annotations({ description: 'the bmp-rib listener' }),
      reconnectDelay: Schema.optionalWith(Duration, { default: () => 5_000 }).annotations({
        description: 'wait before connecting again after the collector refused or closed the session',
      }),
    }),
    { default: () => ({ enabled: true, collector: '127.0.0.1:10179', reconnectDelay: 5_000 }) },
  ).annotations({ description: 'one BMP session per exporter, announcing its neighbours\' routes' }),
  exporters: Schema.optionalWith(Schema.Array(ExporterConfig).pipe(Schema.minItems(1)), { default: () => defaultExporters }).annotations({
    description: 'the simulated routers (default: three edge routers in Amsterdam, Frankfurt and Paris)',
  }),
  profiles: Schema.optionalWith(Schema.Array(ProfileConfig).pipe(Schema.minItems(1)), { default: () => defaultProfiles }).annotations({
    description: 'the content networks traffic comes from (default: Netflix, Google, Meta, Akamai, Amazon, Cloudflare with real prefixes)',
  }),
})

export type DemoExporterConfig = Schema.Schema.Type<typeof DemoExporterConfig>

/** Splits "host:port" / "[v6]:port" (validated by the schema). */
export function splitHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text)!
  return { host: match[1] ?? match[2]!, port: Number(match[3]) }
}

/** What the schema cannot check field by field; the actor refuses to start with this message. */
export function configProblem(config: DemoExporterConfig): string | undefined {
  const addresses = new Set<string>()
  for (const exporter of config.exporters) {
    if (addresses.has(exporter.address)) return `demo-exporter: two exporters use address ${exporter.address}`
    addresses.add(exporter.address)
    const indexes = new Set<number>()
    for (const iface of exporter.interfaces) {
      if (indexes.has(iface.ifIndex)) return `demo-exporter: exporter ${exporter.name} has ifIndex ${iface.ifIndex} twice`
      indexes.add(iface.ifIndex)
      if (iface.kind === 'customer' && iface.prefixes.length === 0) return `demo-exporter: ${exporter.name} ${iface.name}: a customer interface needs prefixes`
      if (iface.kind !== 'core' && iface.kind !== 'customer' && iface.peers.length === 0) {
        return `demo-exporter: ${exporter.name} ${iface.name}: a ${iface.kind} interface needs peers`
      }
    }
    if (!exporter.interfaces.some((i) => i.kind === 'customer')) return `demo-exporter: exporter ${exporter.name} has no customer interface`
    if (!exporter.interfaces.some((i) => i.kind === 'transit')) return `demo-exporter: exporter ${exporter.name} has no transit interface`
  }
  return undefined
}
