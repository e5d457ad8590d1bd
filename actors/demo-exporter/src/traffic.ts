// Generates the simulated flows of one exporter: which content network, which way in and out,
// addresses inside the announced prefixes, ports and sizes from the profile's service mix, and the
// daily curve. Pure and seeded: the same seed and the same clock ticks give the same flows.
import type { DemoExporterConfig, ServiceConfig } from './config.js'
import type { ModelCustomer, ModelExporter, ModelPrefix, NetworkModel } from './network.js'
import { SeededRandom, WeightedChoice, streamSeed } from './random.js'

export const PROTO_ICMP = 1
export const PROTO_TCP = 6
export const PROTO_UDP = 17
export const PROTO_ICMPV6 = 58

/** One flow as an exporter would account it (sampled counters, before any multiplication). */
export interface DemoFlow {
  ipv6: boolean
  /** 16 bytes each; IPv4 mapped when !ipv6. */
  src: Uint8Array
  dst: Uint8Array
  nextHop: Uint8Array
  srcMask: number
  dstMask: number
  srcPort: number
  dstPort: number
  proto: number
  tcpFlags: number
  tos: number
  inIf: number
  outIf: number
  srcAS: number
  dstAS: number
  /** AS of the neighbour the flow came from (sFlow extended gateway). */
  srcPeerAS: number
  /** BGP path towards the destination, nearest AS first. */
  dstAsPath: readonly number[]
  packets: number
  bytes: number
  startMs: number
  endMs: number
  /** Index of the content profile, and whether the flow goes towards it (customer to content). */
  profile: number
  reverse: boolean
}

const ZERO16 = new Uint8Array(16)

/** Share of the peak rate at `ms` (UTC): a cosine from `trough` to 1 with its top at peakHour. */
export function dailyFactor(ms: number, peakHour: number, trough: number): number {
  const hour = (ms / 3_600_000) % 24
  return trough + ((1 - trough) * (1 + Math.cos((2 * Math.PI * (hour - peakHour)) / 24))) / 2
}

function randomAddress(random: SeededRandom, prefix: ModelPrefix, out: Uint8Array): void {
  out.set(prefix.prefix.address)
  const first = prefix.prefix.prefixLength
  for (let i = first >> 3; i < 16; i++) {
    const keep = first - 8 * i
    const r = random.int(0, 255)
    out[i] = keep > 0 ? (out[i]! & (0xff << (8 - keep))) | (r & (0xff >> keep)) : r
  }
  // Avoid the network and broadcast-looking addresses of IPv4 prefixes: hosts look like hosts.
  if (!prefix.ipv6 && (out[15] === 0 || out[15] === 255)) out[15] = 1 + random.int(0, 253)
}

interface ServiceMix {
  readonly services: readonly ServiceConfig[]
  readonly choice: WeightedChoice
}

/** Picks, for one exporter, the flows of each tick. */
export class TrafficGenerator {
  private readonly random: SeededRandom
  private readonly profileChoice: WeightedChoice
  private readonly pathChoices: WeightedChoice[]
  private readonly customerChoice: WeightedChoice
  private readonly mixes: ServiceMix[]
  /** Customers of the other exporters, reached through a core interface. */
  private readonly remoteCustomers: ModelCustomer[]
  private readonly remoteChoice: WeightedChoice | undefined
  private carry = 0

  constructor(
    private readonly network: NetworkModel,
    private readonly exporter: ModelExporter,
    private readonly config: DemoExporterConfig,
  ) {
    this.random = new SeededRandom(streamSeed(config.seed, exporter.config.name))
    this.profileChoice = new WeightedChoice(network.profiles.map((p) => p.config.weight))
    this.pathChoices = exporter.paths.map((paths) => new WeightedChoice(paths.map((p) => p.weight)))
    this.customerChoice = new WeightedChoice(exporter.customers.map((c) => c.weight))
    this.mixes = network.profiles.map((p) => {
      const services = p.config.services ?? config.services
      return { services, choice: new WeightedChoice(services.map((s) => s.weight)) }
    })
    this.remoteCustomers = network.exporters.filter((e) => e !== exporter).flatMap((e) => e.customers)
    this.remoteChoice = this.remoteCustomers.length > 0 && exporter.cores.length > 0 ? new WeightedChoice(this.remoteCustomers.map((c) => c.weight)) : undefined
  }

  /** Flows due for the interval [fromMs, toMs): the exporter's share of the rate, on the daily curve. */
  countFor(fromMs: number, toMs: number, share: number): number {
    const c = this.config
    const expected = c.rate * share * dailyFactor(fromMs, c.peakHour, c.trough) * ((toMs - fromMs) / 1000) + this.carry
    const count = Math.floor(expected)
    this.carry = expected - count
    return count
  }

  /** Fills `out` with `count` flows that ended shortly before nowMs (reusing its objects). */
  generate(count: number, nowMs: number, out: DemoFlow[]): DemoFlow[] {
    out.length = Math.min(out.length, count)
    for (let i = 0; i < count; i++) {
      const flow = out[i] ?? (out[i] = newFlow())
      this.fill(flow, nowMs)
    }
    return out
  }

  private fill(flow: DemoFlow, nowMs: number): void {
    const r = this.random
    const c = this.config
    const p = this.profileChoice.pick(r)
    const profile = this.network.profiles[p]!
    const paths = this.exporter.paths[p]!
    const path = paths[this.pathChoices[p]!.pick(r)]!
    let customer = this.exporter.customers[this.customerChoice.pick(r)]!
    let outIfCore = -1
    const reverse = r.next() < c.reverseShare
    if (!reverse && this.remoteChoice !== undefined && r.next() < c.coreShare) {
      customer = this.remoteCustomers[this.remoteChoice.pick(r)]!
      outIfCore = this.exporter.cores[r.int(0, this.exporter.cores.length - 1)]!.ifIndex
    }
    let ipv6 = r.next() < (profile.config.ipv6Share ?? c.ipv6Share)
    if (ipv6 && (profile.v6.length === 0 || customer.v6.length === 0)) ipv6 = false
    if (!ipv6 && (profile.v4.length === 0 || customer.v4.length === 0)) ipv6 = true
    const contentPrefix = (ipv6 ? profile.v6 : profile.v4)[r.int(0, (ipv6 ? profile.v6 : profile.v4).length - 1)]!
    const customerPrefix = (ipv6 ? customer.v6 : customer.v4)[r.int(0, (ipv6 ? customer.v6 : customer.v4).length - 1)]!
    const mix = this.mixes[p]!
    const service = mix.services[mix.choice.pick(r)]!
    const proto = service.proto === 'tcp' ? PROTO_TCP : service.proto === 'udp' ? PROTO_UDP : ipv6 ? PROTO_ICMPV6 : PROTO_ICMP
    const clientPort = proto === PROTO_TCP || proto === PROTO_UDP ? r.int(32768, 60999) : 0
    const serverPort = proto === PROTO_TCP || proto === PROTO_UDP ? service.port : 0
    // Sampled packet counts: most flows show one or a few sampled packets.
    const packets = 1 + Math.min(63, Math.floor(-Math.log(1 - r.next()) * 2.5))
    // Server-to-client packets are mostly full; client-to-server ones mostly acknowledgements.
    const size = reverse
      ? Math.min(service.packetSize, r.int(52, 220))
      : Math.max(64, service.packetSize - (r.next() < 0.8 ? r.int(0, 40) : r.int(0, service.packetSize - 64)))
    flow.ipv6 = ipv6
    flow.proto = proto
    flow.packets = packets
    flow.bytes = packets * size
    flow.tos = r.next() < 0.1 ? 0x28 : 0
    flow.tcpFlags = proto === PROTO_TCP ? 0x10 | (r.next() < 0.5 ? 0x08 : 0) | (r.next() < 0.08 ? 0x02 : 0) | (r.next() < 0.08 ? 0x01 : 0) : 0
    const duration = r.int(0, 30_000)
    flow.endMs = nowMs - r.int(0, 1_000)
    flow.startMs = flow.endMs - duration
    flow.profile = p
    flow.reverse = reverse
    const content = reverse ? flow.dst : flow.src
    const client = reverse ? flow.src : flow.dst
    randomAddress(r, contentPrefix, content)
    randomAddress(r, customerPrefix, client)
    if (reverse) {
      flow.srcPort = clientPort
      flow.dstPort = serverPort
      flow.inIf = customer.iface.ifIndex
      flow.outIf = path.iface.ifIndex
      flow.srcAS = customer.asn
      flow.dstAS = profile.config.asn
      flow.srcPeerAS = customer.asn
      flow.dstAsPath = path.asPath
      flow.srcMask = customerPrefix.length
      flow.dstMask = contentPrefix.length
      flow.nextHop.set(ipv6 ? path.peer.nextHop6 : path.peer.nextHop4)
    } else {
      flow.srcPort = serverPort
      flow.dstPort = clientPort
      flow.inIf = path.iface.ifIndex
      flow.outIf = outIfCore >= 0 ? outIfCore : customer.iface.ifIndex
      flow.srcAS = profile.config.asn
      flow.dstAS = customer.asn
      flow.srcPeerAS = path.peer.config.asn
      flow.dstAsPath = customer.asPath
      flow.srcMask = contentPrefix.length
      flow.dstMask = customerPrefix.length
      if (outIfCore >= 0 || customer.peer === undefined) flow.nextHop.set(ZERO16)
      else flow.nextHop.set(ipv6 ? customer.peer.nextHop6 : customer.peer.nextHop4)
    }
    if (proto === PROTO_ICMP || proto === PROTO_ICMPV6) {
      // ICMP echo reply (type 0 / 129) in the destination port, as NetFlow exporters encode it.
      flow.dstPort = ipv6 ? 129 << 8 : 0
      flow.srcPort = 0
    }
  }
}

export function newFlow(): DemoFlow {
  return {
    ipv6: false,
    src: new Uint8Array(16),
    dst: new Uint8Array(16),
    nextHop: new Uint8Array(16),
    srcMask: 0,
    dstMask: 0,
    srcPort: 0,
    dstPort: 0,
    proto: 0,
    tcpFlags: 0,
    tos: 0,
    inIf: 0,
    outIf: 0,
    srcAS: 0,
    dstAS: 0,
    srcPeerAS: 0,
    dstAsPath: [],
    packets: 0,
    bytes: 0,
    startMs: 0,
    endMs: 0,
    profile: 0,
    reverse: false,
  }
}
