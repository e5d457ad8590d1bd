// NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) export of demo flows: one template per address
// family, an options template carrying the sampling rate, both re-sent on a timer, and data sets
// packed into datagrams of a bounded size. Pure code over byte arrays: no sockets here.
import type { DemoFlow } from '../traffic.js'

export type TemplateProtocol = 'netflow-v9' | 'ipfix'

/** (information element, length) pairs. */
type Field = readonly [type: number, length: number]

export const TEMPLATE_IPV4 = 256
export const TEMPLATE_IPV6 = 257
export const TEMPLATE_OPTIONS = 258

// Shared by both families; addresses and masks come first per family.
const common = (ipfix: boolean): Field[] => [
  [1, ipfix ? 8 : 4], // octetDeltaCount / IN_BYTES
  [2, ipfix ? 8 : 4], // packetDeltaCount / IN_PKTS
  [4, 1], // protocolIdentifier
  [5, 1], // ipClassOfService
  [6, 1], // tcpControlBits
  [7, 2], // sourceTransportPort
  [11, 2], // destinationTransportPort
  [10, 4], // ingressInterface
  [14, 4], // egressInterface
  [16, 4], // bgpSourceAsNumber
  [17, 4], // bgpDestinationAsNumber
  [61, 1], // flowDirection
  ...(ipfix
    ? ([
        [152, 8], // flowStartMilliseconds
        [153, 8], // flowEndMilliseconds
      ] as Field[])
    : ([
        [22, 4], // FIRST_SWITCHED (sysUptime ms)
        [21, 4], // LAST_SWITCHED
      ] as Field[])),
]

const ipv4Fields = (ipfix: boolean): Field[] => [[8, 4], [12, 4], [9, 1], [13, 1], [15, 4], ...common(ipfix)]
const ipv6Fields = (ipfix: boolean): Field[] => [[27, 16], [28, 16], [29, 1], [30, 1], [62, 16], ...common(ipfix)]

const recordLength = (fields: readonly Field[]) => fields.reduce((n, [, l]) => n + l, 0)

export interface TemplateExporterOptions {
  readonly protocol: TemplateProtocol
  /** v9 source id / IPFIX observation domain. */
  readonly domain: number
  readonly samplingRate: number
  /** When the simulated router booted (sysUptime base), Unix ms. */
  readonly bootMs: number
  readonly maxDatagramBytes: number
}

/** What one call produced: datagrams and the data records they hold. */
export interface Encoded {
  readonly datagrams: Uint8Array[]
  readonly records: number
}

/** Encodes one exporter's flows; keeps its sequence numbers. */
export class TemplateExporter {
  private readonly ipfix: boolean
  private readonly v4: readonly Field[]
  private readonly v6: readonly Field[]
  private readonly v4Length: number
  private readonly v6Length: number
  private readonly buffer: Uint8Array
  private readonly view: DataView
  /** v9: datagrams sent; IPFIX: data records sent (RFC 7011 3.1). */
  private sequence = 0

  constructor(private readonly options: TemplateExporterOptions) {
    this.ipfix = options.protocol === 'ipfix'
    this.v4 = ipv4Fields(this.ipfix)
    this.v6 = ipv6Fields(this.ipfix)
    this.v4Length = recordLength(this.v4)
    this.v6Length = recordLength(this.v6)
    this.buffer = new Uint8Array(options.maxDatagramBytes)
    this.view = new DataView(this.buffer.buffer)
  }

  /** Header size of a datagram. */
  private get headerLength(): number {
    return this.ipfix ? 16 : 20
  }

  /**
   * Encodes the flows (in order, IPv4 sets before IPv6 ones in each datagram); with `templates`,
   * the first datagram starts with the templates, the options template and the sampling rate.
   */
  encode(flows: readonly DemoFlow[], nowMs: number, templates: boolean): Encoded {
    const datagrams: Uint8Array[] = []
    const v4: DemoFlow[] = []
    const v6: DemoFlow[] = []
    for (const f of flows) (f.ipv6 ? v6 : v4).push(f)
    let i4 = 0
    let i6 = 0
    let records = 0
    let pendingTemplates = templates
    while (pendingTemplates || i4 < v4.length || i6 < v6.length) {
      let pos = this.headerLength
      let count = 0
      let dataRecords = 0
      const withTemplates = pendingTemplates
      if (pendingTemplates) {
        pos = this.writeTemplates(pos)
        count += 3
        pos = this.writeSamplingOptions(pos)
        count += 1
        pendingTemplates = false
      }
      for (const [list, template, length] of [
        [v4, TEMPLATE_IPV4, this.v4Length],
        [v6, TEMPLATE_IPV6, this.v6Length],
      ] as const) {
        let index = list === v4 ? i4 : i6
        const room = Math.floor((this.buffer.length - pos - 4 - 3) / length)
        const n = Math.min(room, list.length - index)
        if (n <= 0) continue
        const setStart = pos
        pos += 4
        for (let k = 0; k < n; k++) pos = this.writeRecord(pos, list[index + k]!, list === v4 ? this.v4 : this.v6, nowMs)
        pos = this.closeSet(setStart, template, pos)
        index += n
        count += n
        dataRecords += n
        if (list === v4) i4 = index
        else i6 = index
      }
      // A datagram too small for one record would loop forever; the schema's minimum prevents it.
      if (dataRecords === 0 && !withTemplates) break
      this.writeHeader(pos, count, nowMs)
      this.sequence += this.ipfix ? dataRecords : 1
      records += dataRecords
      datagrams.push(this.buffer.slice(0, pos))
    }
    return { datagrams, records }
  }

  private writeHeader(length: number, count: number, nowMs: number): void {
    const v = this.view
    if (this.ipfix) {
      v.setUint16(0, 10)
      v.setUint16(2, length)
      v.setUint32(4, Math.floor(nowMs / 1000))
      v.setUint32(8, this.sequence >>> 0)
      v.setUint32(12, this.options.domain)
    } else {
      v.setUint16(0, 9)
      v.setUint16(2, count)
      v.setUint32(4, (nowMs - this.options.bootMs) >>> 0)
      v.setUint32(8, Math.floor(nowMs / 1000))
      v.setUint32(12, this.sequence >>> 0)
      v.setUint32(16, this.options.domain)
    }
  }

  /** Pads the set to 4 bytes (NetFlow v9 asks for it; harmless in IPFIX) and writes its header. */
  private closeSet(start: number, id: number, end: number): number {
    while ((end - start) % 4 !== 0) this.buffer[end++] = 0
    this.view.setUint16(start, id)
    this.view.setUint16(start + 2, end - start)
    return end
  }

  private writeTemplates(pos: number): number {
    const v = this.view
    const start = pos
    pos += 4
    for (const [id, fields] of [
      [TEMPLATE_IPV4, this.v4],
      [TEMPLATE_IPV6, this.v6],
    ] as const) {
      v.setUint16(pos, id)
      v.setUint16(pos + 2, fields.length)
      pos += 4
      for (const [type, length] of fields) {
        v.setUint16(pos, type)
        v.setUint16(pos + 2, length)
        pos += 4
      }
    }
    pos = this.closeSet(start, this.ipfix ? 2 : 0, pos)
    // The options template: the sampling rate of the whole exporter.
    const optionsStart = pos
    pos += 4
    v.setUint16(pos, TEMPLATE_OPTIONS)
    if (this.ipfix) {
      // scope observationDomainId; samplingPacketInterval 1, samplingPacketSpace N-1 (RFC 5477).
      v.setUint16(pos + 2, 3)
      v.setUint16(pos + 4, 1)
      pos += 6
      for (const [type, length] of [
        [149, 4],
        [305, 4],
        [306, 4],
      ]) {
        v.setUint16(pos, type!)
        v.setUint16(pos + 2, length!)
        pos += 4
      }
    } else {
      // scope System (1); SAMPLING_INTERVAL (34), SAMPLING_ALGORITHM (35, 2 = random).
      v.setUint16(pos + 2, 4)
      v.setUint16(pos + 4, 8)
      v.setUint16(pos + 6, 1)
      v.setUint16(pos + 8, 4)
      v.setUint16(pos + 10, 34)
      v.setUint16(pos + 12, 4)
      v.setUint16(pos + 14, 35)
      v.setUint16(pos + 16, 1)
      pos += 18
    }
    return this.closeSet(optionsStart, this.ipfix ? 3 : 1, pos)
  }

  private writeSamplingOptions(pos: number): number {
    const v = this.view
    const start = pos
    pos += 4
    const rate = this.options.samplingRate
    if (this.ipfix) {
      v.setUint32(pos, this.options.domain)
      v.setUint32(pos + 4, 1)
      v.setUint32(pos + 8, rate - 1)
      pos += 12
    } else {
      v.setUint32(pos, this.options.domain)
      v.setUint32(pos + 4, rate)
      this.buffer[pos + 8] = 2
      pos += 9
    }
    return this.closeSet(start, TEMPLATE_OPTIONS, pos)
  }

  private writeRecord(pos: number, f: DemoFlow, fields: readonly Field[], nowMs: number): number {
    const v = this.view
    const b = this.buffer
    const boot = this.options.bootMs
    for (const [type, length] of fields) {
      switch (type) {
        case 1:
        case 2: {
          const value = type === 1 ? f.bytes : f.packets
          if (length === 8) {
            v.setUint32(pos, Math.floor(value / 4294967296))
            v.setUint32(pos + 4, value >>> 0)
          } else v.setUint32(pos, value >>> 0)
          break
        }
        case 4:
          b[pos] = f.proto
          break
        case 5:
          b[pos] = f.tos
          break
        case 6:
          b[pos] = f.tcpFlags
          break
        case 7:
          v.setUint16(pos, f.srcPort)
          break
        case 11:
          v.setUint16(pos, f.dstPort)
          break
        case 10:
          v.setUint32(pos, f.inIf)
          break
        case 14:
          v.setUint32(pos, f.outIf)
          break
        case 16:
          v.setUint32(pos, f.srcAS)
          break
        case 17:
          v.setUint32(pos, f.dstAS)
          break
        case 61:
          b[pos] = 0 // ingress: flows are accounted where they enter
          break
        case 152:
        case 153: {
          const ms = type === 152 ? f.startMs : f.endMs
          v.setUint32(pos, Math.floor(ms / 4294967296))
          v.setUint32(pos + 4, ms >>> 0)
          break
        }
        case 22:
          v.setUint32(pos, Math.max(0, f.startMs - boot) >>> 0)
          break
        case 21:
          v.setUint32(pos, Math.max(0, Math.min(nowMs, f.endMs) - boot) >>> 0)
          break
        case 8:
          b.set(f.src.subarray(12, 16), pos)
          break
        case 12:
          b.set(f.dst.subarray(12, 16), pos)
          break
        case 15:
          b.set(f.nextHop.subarray(12, 16), pos)
          break
        case 27:
          b.set(f.src, pos)
          break
        case 28:
          b.set(f.dst, pos)
          break
        case 62:
          b.set(f.nextHop, pos)
          break
        case 9:
        case 29:
          b[pos] = f.srcMask
          break
        case 13:
        case 30:
          b[pos] = f.dstMask
          break
      }
      pos += length
    }
    return pos
  }
}
