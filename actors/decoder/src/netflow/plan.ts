// Compiles a NetFlow v9 / IPFIX data template into a specialised decode function (generated code):
// one straight-line loop per template writing each field into its FlowBatch column, no per-field dispatch.
// The generated source is built from template numbers (element ids, lengths, offsets) and this
// module's own tables only: no packet byte or string reaches it as text.
import { type FlowBatch, flowColumnIndex } from '@flowbus/bus-schemas'
import type { DecodeSink } from '../protocol.js'

/** One template field as the decoder keeps it. `length` 65535 means variable length (IPFIX). */
export interface FieldSpec {
  readonly type: number
  readonly enterprise: number
  readonly length: number
}

export const VARIABLE_LENGTH = 65535
/** RFC 5103: reverse information elements are the forward ones under this enterprise number. */
export const REVERSE_PEN = 29305

/** Names an exporter sent for one interface in options data (IE 82 / 83). */
export interface InterfaceNames {
  name: string
  description: string
}

/**
 * Parses a sampled link-layer frame (IPFIX dataLinkFrameSection, IE 315) into row `row` of the
 * batch: the same header parser sFlow uses. Fields the template also carries explicitly win.
 * Returns the length of the frame's IP packet, 0 when the section does not reach it.
 */
export type FrameParser = (frame: Uint8Array, batch: FlowBatch, row: number, sink: DecodeSink) => number

/** Per-datagram and per-domain values the generated code reads; one object reused by the decoder. */
export interface RecordContext {
  sink: DecodeSink
  timeReceived: number
  exporter: Uint8Array
  exporterIsV4: boolean
  /** Domain-wide sampling rate from options data (0 unknown). */
  samplingRate: number
  samplers: Map<number, number> | undefined
  interfaces: Map<number, InterfaceNames> | undefined
  vrfNames: Map<number, string> | undefined
  /** NetFlow v9 header sysUptime, ms. */
  sysUptime: number
  /** Header time (v9 unix secs, IPFIX export time), ms since the epoch. */
  headerMs: number
  /** IPFIX systemInitTimeMilliseconds from options data (0 unknown). */
  sysInitMs: number
  frame: FrameParser | undefined
}

/** Decodes the records of one data set [start, end); returns how many records it read. */
export type SetDecoder = (u8: Uint8Array, dv: DataView, start: number, end: number, b: FlowBatch, ctx: RecordContext) => number

type Kind = 'u8' | 'u16' | 'u32' | 'u64' | 'ip' | 'mac'

interface Slot {
  readonly column: string
  readonly kind: Kind
  /** Candidate elements: the first group with a member in the template wins; inside a group the
   * first present member is written, the others only when non-zero (IPv4/IPv6 alternatives). */
  readonly groups: readonly (readonly number[])[]
  /** Value transform, per element: `v` is the raw value expression. */
  readonly transform?: (v: string, ie: number) => string
}

const IPV6_ELEMENTS = new Set([27, 28, 62, 63, 281, 282])
const IPV4_ELEMENTS = new Set([8, 12, 15, 18, 225, 226])

// Columns filled straight from one element. Priorities follow what the elements mean: delta
// counters before post/total ones, the IP next hop before the BGP one, vlanId before dot1qVlanId.
const SLOTS: readonly Slot[] = [
  // initiator/responder counters: firewall (NSEL-style) records, the initiator side is the flow's.
  { column: 'Bytes', kind: 'u64', groups: [[1], [23], [85], [231]] },
  { column: 'Packets', kind: 'u64', groups: [[2], [24], [86], [298]] },
  { column: 'Proto', kind: 'u8', groups: [[4]] },
  { column: 'IPTos', kind: 'u8', groups: [[5]] },
  { column: 'TCPFlags', kind: 'u16', groups: [[6]] },
  { column: 'SrcPort', kind: 'u16', groups: [[7], [180], [182]] },
  { column: 'DstPort', kind: 'u16', groups: [[11], [181], [183]] },
  { column: 'SrcAddr', kind: 'ip', groups: [[8, 27]] },
  { column: 'DstAddr', kind: 'ip', groups: [[12, 28]] },
  { column: 'SrcNetMask', kind: 'u8', groups: [[9, 29]] },
  { column: 'DstNetMask', kind: 'u8', groups: [[13, 30]] },
  { column: 'InIf', kind: 'u32', groups: [[10], [252]] },
  { column: 'OutIf', kind: 'u32', groups: [[14], [253]] },
  { column: 'NextHop', kind: 'ip', groups: [[15, 62], [18, 63]] },
  { column: 'SrcAS', kind: 'u32', groups: [[16]] },
  { column: 'DstAS', kind: 'u32', groups: [[17]] },
  { column: 'IPv6FlowLabel', kind: 'u32', groups: [[31]], transform: (v) => `(${v}) & 0xfffff` },
  { column: 'IPFragmentID', kind: 'u32', groups: [[54]] },
  { column: 'IPFragmentOffset', kind: 'u16', groups: [[88]] },
  { column: 'SrcVlan', kind: 'u16', groups: [[58], [243]], transform: (v) => `(${v}) & 0xfff` },
  { column: 'DstVlan', kind: 'u16', groups: [[59], [254]], transform: (v) => `(${v}) & 0xfff` },
  { column: 'SrcMAC', kind: 'mac', groups: [[56], [81]] },
  { column: 'DstMAC', kind: 'mac', groups: [[80], [57]] },
  // flowDirection: 0 ingress, 1 egress; the column keeps 0 for undefined.
  { column: 'FlowDirection', kind: 'u8', groups: [[61]], transform: (v) => `H.direction(${v})` },
  { column: 'ForwardingStatus', kind: 'u8', groups: [[89]] },
  { column: 'IPTTL', kind: 'u8', groups: [[192], [52]] },
  { column: 'ICMPv4Type', kind: 'u8', groups: [[32], [176]], transform: (v, ie) => (ie === 32 ? `(${v}) >>> 8` : v) },
  { column: 'ICMPv4Code', kind: 'u8', groups: [[32], [177]] },
  { column: 'ICMPv6Type', kind: 'u8', groups: [[139], [178]], transform: (v, ie) => (ie === 139 ? `(${v}) >>> 8` : v) },
  { column: 'ICMPv6Code', kind: 'u8', groups: [[139], [179]] },
  { column: 'SrcAddrNAT', kind: 'ip', groups: [[225, 281]] },
  { column: 'DstAddrNAT', kind: 'ip', groups: [[226, 282]] },
  { column: 'SrcPortNAT', kind: 'u16', groups: [[227]] },
  { column: 'DstPortNAT', kind: 'u16', groups: [[228]] },
  { column: 'InVrf', kind: 'u32', groups: [[234]] },
  { column: 'OutVrf', kind: 'u32', groups: [[235]] },
]

/** Elements read into locals and combined after the record (times, sampling, MPLS, frame). */
const LOCAL_ELEMENTS = new Set([
  21, 22, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, // flow times, system init time
  34, 50, 305, 306, 309, 310, // sampling interval / packet interval+space / size+population
  48, 302, // samplerId (v9 FLOW_SAMPLER_ID), selectorId
  60, // ipVersion
  70, 71, 72, 73, 74, 75, 76, 77, 78, 79, // MPLS label stack, top first
  315, // dataLinkFrameSection
])

/** Flow start/end elements in priority order. */
const START_ELEMENTS = [152, 150, 154, 156, 22, 158]
const END_ELEMENTS = [153, 151, 155, 157, 21, 159]

/** Columns a biflow's reverse row takes swapped from the forward row. */
const SWAPS: readonly (readonly [string, string])[] = [
  ['SrcAddr', 'DstAddr'],
  ['SrcPort', 'DstPort'],
  ['SrcNetMask', 'DstNetMask'],
  ['InIf', 'OutIf'],
  ['SrcAS', 'DstAS'],
  ['SrcVlan', 'DstVlan'],
  ['SrcMAC', 'DstMAC'],
  ['SrcAddrNAT', 'DstAddrNAT'],
  ['SrcPortNAT', 'DstPortNAT'],
  ['InVrf', 'OutVrf'],
]
/** Directional values the reverse row never inherits: its own counters or nothing. */
const NOT_INHERITED = new Set(['Bytes', 'Packets', 'TCPFlags', 'NextHop'])

const ACCESSOR: Record<Kind, string> = { u8: 'u8', u16: 'u16', u32: 'u32', u64: 'u64', ip: 'ip', mac: 'mac' }

/** Big-endian unsigned integer of 0..8 bytes (beyond 2^53 loses precision, as Float64 columns do). */
export function readUint(u8: Uint8Array, o: number, len: number): number {
  let v = 0
  const n = len > 8 ? 8 : len
  for (let i = 0; i < n; i++) v = v * 256 + u8[o + i]!
  return v
}

/** Helpers the generated code calls for the rare or long cases. */
const H = {
  uint: readUint,
  /** NTP 64-bit timestamp (RFC 7011 dateTimeMicroseconds/Nanoseconds) to ms since the Unix epoch. */
  ntpMs(dv: DataView, o: number): number {
    const secs = dv.getUint32(o)
    if (secs === 0) return 0
    return (secs - 2208988800) * 1000 + Math.floor((dv.getUint32(o + 4) * 1000) / 4294967296)
  },
  direction(v: number): number {
    return v === 0 ? 1 : v === 1 ? 2 : 0
  },
  nonZero(u8: Uint8Array, o: number, len: number): boolean {
    for (let i = 0; i < len; i++) if (u8[o + i] !== 0) return true
    return false
  },
  mpls(b: FlowBatch, r: number, stack: Float64Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const entry = stack[i]!
      if (entry === 0) break
      b.pushList('MPLSLabels', r, entry >>> 4)
      if ((entry & 1) === 1) break
    }
  },
  mplsStack: new Float64Array(10),
  /** Packets sampled 1 in N, from packet interval (selected) and space (skipped) (RFC 5477). */
  intervalRate(interval: number, space: number): number {
    return interval > 0 ? Math.round((interval + space) / interval) : 0
  },
  ratio(size: number, population: number): number {
    return size > 0 ? Math.round(population / size) : 0
  },
}

/** What compiling a template yields: the decoder and facts the template decoder needs. */
export interface CompiledTemplate {
  readonly decode: SetDecoder
  /** Smallest record: fixed fields plus one length byte per variable field. */
  readonly minLength: number
}

const cache = new Map<string, CompiledTemplate>()
/** Distinct template layouts compiled at most; beyond, the cache starts over (template bombs). */
const CACHE_LIMIT = 4096

/**
 * The decoder of a data template, shared by every template with the same layout (exporters of
 * one model send identical templates). `ipfix` selects how sysUptime-relative times resolve.
 */
export function compileTemplate(fields: readonly FieldSpec[], ipfix: boolean): CompiledTemplate {
  const key = `${ipfix ? 'x' : '9'}${fields.map((f) => `${f.enterprise}.${f.type}.${f.length}`).join(',')}`
  let compiled = cache.get(key)
  if (compiled === undefined) {
    if (cache.size >= CACHE_LIMIT) cache.clear()
    compiled = build(fields, ipfix)
    cache.set(key, compiled)
  }
  return compiled
}

interface Located {
  readonly index: number
  readonly field: FieldSpec
}

function build(fields: readonly FieldSpec[], ipfix: boolean): CompiledTemplate {
  let minLength = 0
  let variable = false
  for (const f of fields) {
    if (f.length === VARIABLE_LENGTH) {
      variable = true
      minLength += 1
    } else minLength += f.length
  }

  // First occurrence of each element, forward (PEN 0) and reverse (PEN 29305); others are skipped.
  const forward = new Map<number, Located>()
  const reverse = new Map<number, Located>()
  fields.forEach((field, index) => {
    const into = field.enterprise === 0 ? forward : field.enterprise === REVERSE_PEN ? reverse : undefined
    if (into !== undefined && !into.has(field.type)) into.set(field.type, { index, field })
  })

  // Offsets: constants from the record start while every earlier field is fixed.
  const offset = (i: number): string => `o${i}`
  const lengthOf = (l: Located): string => (l.field.length === VARIABLE_LENGTH ? `l${l.index}` : String(l.field.length))
  const offsetCode: string[] = []
  {
    let constant = 0
    let dynamic = false
    fields.forEach((f, i) => {
      if (!dynamic) {
        if (f.length === VARIABLE_LENGTH) {
          dynamic = true
          offsetCode.push(`let p = pos + ${constant}`)
        } else {
          offsetCode.push(`const o${i} = pos + ${constant}`)
          constant += f.length
          return
        }
      }
      if (f.length === VARIABLE_LENGTH) {
        offsetCode.push(
          `if (p >= end) break outer`,
          `let l${i} = u8[p++]`,
          `if (l${i} === 255) { if (p + 2 > end) break outer; l${i} = (u8[p] << 8) | u8[p + 1]; p += 2 }`,
          `const o${i} = p; p += l${i}`,
        )
      } else offsetCode.push(`const o${i} = p; p += ${f.length}`)
    })
    if (dynamic) offsetCode.push(`if (p > end) break outer`, `const next = p`)
    else offsetCode.push(`const next = pos + ${constant}`)
  }

  const readUint = (l: Located): string => {
    const o = offset(l.index)
    const len = l.field.length
    switch (len) {
      case 1:
        return `u8[${o}]`
      case 2:
        return `((u8[${o}] << 8) | u8[${o} + 1])`
      case 3:
        return `((u8[${o}] << 16) | (u8[${o} + 1] << 8) | u8[${o} + 2])`
      case 4:
        return `dv.getUint32(${o})`
      case 8:
        return `(dv.getUint32(${o}) * 4294967296 + dv.getUint32(${o} + 4))`
      default:
        return `H.uint(u8, ${o}, ${lengthOf(l)})`
    }
  }

  const columns = new Map<string, Kind | 'string'>()
  const use = (column: string, kind: Kind | 'string'): string => {
    columns.set(column, kind)
    return `c_${column}`
  }
  use('TimeReceived', 'u32')
  use('ExporterAddress', 'ip')

  /** Code writing one element into a slot column at row `row`; `conditional`: only when non-zero. */
  const writeSlot = (slot: Slot, l: Located, row: string, conditional: boolean, etypeVar: boolean): string[] => {
    const o = offset(l.index)
    const ie = l.field.type
    const len = l.field.length
    const col = use(slot.column, slot.kind)
    if (slot.kind === 'ip') {
      if (IPV4_ELEMENTS.has(ie) && len === 4) {
        const body = [
          `{ const q = ${row} * 16; ${col}[q + 10] = 255; ${col}[q + 11] = 255; ${col}[q + 12] = u8[${o}]; ${col}[q + 13] = u8[${o} + 1]; ${col}[q + 14] = u8[${o} + 2]; ${col}[q + 15] = u8[${o} + 3] }`,
        ]
        return conditional ? [`if (dv.getUint32(${o}) !== 0) ${body[0]}`] : body
      }
      if (IPV6_ELEMENTS.has(ie) && len === 16) {
        const copy = `{ const q = ${row} * 16; for (let k = 0; k < 16; k++) ${col}[q + k] = u8[${o} + k] }`
        if (!conditional) return [copy]
        return [`if (H.nonZero(u8, ${o}, 16)) { ${copy}${etypeVar ? '; et = 0x86dd' : ''} }`]
      }
      return []
    }
    if (slot.kind === 'mac') {
      if (len !== 6) return []
      return [`${col}[${row}] = ((u8[${o}] << 8) | u8[${o} + 1]) * 4294967296 + dv.getUint32(${o} + 2)`]
    }
    if (len === 0 || (len > 8 && len !== VARIABLE_LENGTH)) return []
    const value = slot.transform ? slot.transform(readUint(l), ie) : readUint(l)
    if (conditional) return [`{ const v = ${value}; if (v !== 0) ${col}[${row}] = v }`]
    return [`${col}[${row}] = ${value}`]
  }

  // Forward slot writes, and whether the addresses tell the address family.
  const forwardWrites: string[] = []
  let etype = 0
  let etypeVar = false
  const slotWrites = (from: Map<number, Located>, row: string, out: string[], forwardSide: boolean): void => {
    for (const slot of SLOTS) {
      const group = slot.groups.find((g) => g.some((ie) => from.has(ie)))
      if (group === undefined) continue
      // With both an IPv4 and an IPv6 element, each is written only when set, so a flow of the
      // other family keeps an all-zero address rather than 0.0.0.0.
      const alternatives = group.filter((ie) => from.has(ie)).length > 1
      let first = true
      for (const ie of group) {
        const l = from.get(ie)
        if (l === undefined) continue
        const isAddress = slot.column === 'SrcAddr' || slot.column === 'DstAddr'
        if (forwardSide && isAddress) {
          if (first) etype = IPV6_ELEMENTS.has(ie) ? 0x86dd : 0x0800
          else if (IPV6_ELEMENTS.has(ie)) etypeVar = true
        }
        out.push(...writeSlot(slot, l, row, alternatives && (!first || slot.kind === 'ip'), forwardSide && isAddress && !first))
        first = false
      }
    }
  }
  slotWrites(forward, 'r', forwardWrites, true)

  // Locals for elements combined after the record.
  const locals: string[] = []
  const local = (ie: number): string | undefined => {
    const l = forward.get(ie)
    if (l === undefined || !LOCAL_ELEMENTS.has(ie)) return undefined
    if (ie === 315 || (ie >= 70 && ie <= 79)) return undefined
    if (l.field.length === 0 || (l.field.length > 8 && l.field.length !== VARIABLE_LENGTH)) return undefined
    if (ie >= 154 && ie <= 157) {
      if (l.field.length !== 8) return undefined
      locals.push(`const f${ie} = H.ntpMs(dv, ${offset(l.index)})`)
    } else locals.push(`const f${ie} = ${readUint(l)}`)
    return `f${ie}`
  }
  const localNames = new Map<number, string>()
  for (const ie of LOCAL_ELEMENTS) {
    const name = local(ie)
    if (name !== undefined) localNames.set(ie, name)
  }

  const finish: string[] = []
  // Address family: ipVersion when given, else from the address elements.
  const ipVersion = localNames.get(60)
  if (ipVersion !== undefined) {
    finish.push(`${use('EType', 'u16')}[r] = ${ipVersion} === 4 ? 0x0800 : ${ipVersion} === 6 ? 0x86dd : 0`)
  } else if (etype !== 0) {
    finish.push(`${use('EType', 'u16')}[r] = ${etypeVar ? 'et' : etype}`)
  }

  // Flow times.
  const timeExpr = (ie: number, name: string): string => {
    switch (ie) {
      case 150:
      case 151:
        return `${name} * 1000`
      case 152:
      case 153:
      case 154:
      case 155:
      case 156:
      case 157:
        return name
      case 158:
      case 159:
        return `hms - Math.floor(${name} / 1000)`
      default: // 21, 22: relative to the exporter's uptime
        if (!ipfix) return `hms - ((up - ${name}) | 0)`
        return `(sysInit > 0 ? sysInit + ${name} : 0)`
    }
  }
  const needsSysInit = ipfix && (localNames.has(21) || localNames.has(22))
  if (needsSysInit) finish.push(`const sysInit = ${localNames.get(160) ?? 'ctx.sysInitMs'}`)
  for (const [list, column] of [
    [START_ELEMENTS, 'FlowStartTime'],
    [END_ELEMENTS, 'FlowEndTime'],
  ] as const) {
    const ie = list.find((e) => localNames.has(e))
    if (ie !== undefined) finish.push(`${use(column, 'u64')}[r] = ${timeExpr(ie, localNames.get(ie)!)}`)
  }

  // NetFlow v9 exporters without ICMP elements carry type << 8 | code in the destination port.
  const icmpElements = [32, 139, 176, 177, 178, 179]
  if (forward.has(4) && forward.has(11) && !icmpElements.some((ie) => forward.has(ie))) {
    const t4 = use('ICMPv4Type', 'u8')
    const c4 = use('ICMPv4Code', 'u8')
    const t6 = use('ICMPv6Type', 'u8')
    const c6 = use('ICMPv6Code', 'u8')
    finish.push(
      `{ const pr = c_Proto[r], dp = c_DstPort[r]; if (pr === 1) { ${t4}[r] = dp >>> 8; ${c4}[r] = dp & 255 } else if (pr === 58) { ${t6}[r] = dp >>> 8; ${c6}[r] = dp & 255 } }`,
    )
  }

  // Sampling: the record's own rate, else its sampler's, else the domain's.
  const samplingParts: string[] = ['let sr = sr0']
  const samplerId = localNames.get(302) ?? localNames.get(48)
  if (samplerId !== undefined) samplingParts.push(`if (smp !== undefined) { const s = smp.get(${samplerId}); if (s !== undefined) sr = s }`)
  const direct = localNames.get(34) ?? localNames.get(50)
  if (direct !== undefined) samplingParts.push(`if (${direct} > 0) sr = ${direct}`)
  if (localNames.has(305)) samplingParts.push(`{ const s = H.intervalRate(${localNames.get(305)}, ${localNames.get(306) ?? 0}); if (s > 0) sr = s }`)
  if (localNames.has(309) && localNames.has(310)) samplingParts.push(`{ const s = H.ratio(${localNames.get(309)}, ${localNames.get(310)}); if (s > 0) sr = s }`)
  samplingParts.push(`${use('SamplingRate', 'u32')}[r] = sr`)
  finish.push(...samplingParts)

  // MPLS stack, top first.
  const mplsElements = [70, 71, 72, 73, 74, 75, 76, 77, 78, 79].filter((ie) => {
    const l = forward.get(ie)
    return l !== undefined && l.field.length !== VARIABLE_LENGTH && l.field.length >= 3
  })
  if (mplsElements.length > 0) {
    // Only the first 3 bytes carry the stack entry (label, traffic class, bottom of stack).
    mplsElements.forEach((ie, i) => {
      const l = forward.get(ie)!
      finish.push(`ms[${i}] = ((u8[${offset(l.index)}] << 16) | (u8[${offset(l.index)} + 1] << 8) | u8[${offset(l.index)} + 2])`)
    })
    finish.push(`H.mpls(b, r, ms, ${mplsElements.length})`)
  }

  // Names from options data, joined on interface and VRF ids.
  const nameJoins: string[] = []
  const hasIn = columns.has('InIf')
  const hasOut = columns.has('OutIf')
  if (hasIn || hasOut) {
    nameJoins.push(`if (ifs !== undefined) {`)
    if (hasIn) nameJoins.push(`{ const e = ifs.get(c_InIf[r]); if (e !== undefined) { n_InIfName[r] = b.intern(e.name); n_InIfDescription[r] = b.intern(e.description) } }`)
    if (hasOut) nameJoins.push(`{ const e = ifs.get(c_OutIf[r]); if (e !== undefined) { n_OutIfName[r] = b.intern(e.name); n_OutIfDescription[r] = b.intern(e.description) } }`)
    nameJoins.push(`}`)
  }
  const hasInVrf = columns.has('InVrf')
  const hasOutVrf = columns.has('OutVrf')
  if (hasInVrf || hasOutVrf) {
    nameJoins.push(`if (vrfs !== undefined) {`)
    if (hasInVrf) nameJoins.push(`{ const e = vrfs.get(c_InVrf[r]); if (e !== undefined) n_InVrfName[r] = b.intern(e) }`)
    if (hasOutVrf) nameJoins.push(`{ const e = vrfs.get(c_OutVrf[r]); if (e !== undefined) n_OutVrfName[r] = b.intern(e) }`)
    nameJoins.push(`}`)
  }
  const nameColumns = [
    ...(hasIn ? ['InIfName', 'InIfDescription'] : []),
    ...(hasOut ? ['OutIfName', 'OutIfDescription'] : []),
    ...(hasInVrf ? ['InVrfName'] : []),
    ...(hasOutVrf ? ['OutVrfName'] : []),
  ]

  // Frame section: parsed first so that explicit fields overwrite what it derived.
  const frame = forward.get(315)
  const frameCode =
    frame !== undefined && frame.field.length !== 0
      ? [`const ipLength = ctx.frame !== undefined ? ctx.frame(u8.subarray(${offset(frame.index)}, ${offset(frame.index)} + ${lengthOf(frame)}), b, r, ctx.sink) : 0`]
      : []
  // A frame section is one sampled packet. Without an octet counter its Bytes are its IP packet's
  // length (layer 3, like octet counters and sFlow), else the frame's size (IE 312 dataLinkFrameSize).
  if (frameCode.length > 0) {
    if (!columns.has('Bytes')) {
      const size = forward.get(312)
      const bytes = use('Bytes', 'u64')
      if (size !== undefined && size.field.length > 0 && size.field.length <= 8) finish.push(`${bytes}[r] = ipLength > 0 ? ipLength : ${readUint(size)}`)
      else finish.push(`if (ipLength > 0) ${bytes}[r] = ipLength`)
    }
    if (!columns.has('Packets')) finish.push(`${use('Packets', 'u64')}[r] = 1`)
  }

  // RFC 5103 biflow: a reverse row when the reverse counters say packets went back.
  const reverseCounters = [
    [1, 23, 85].map((ie) => reverse.get(ie)).find((l) => l !== undefined),
    [2, 24, 86].map((ie) => reverse.get(ie)).find((l) => l !== undefined),
  ].filter((l): l is Located => l !== undefined && l.field.length > 0 && l.field.length <= 8)
  const biflow: string[] = []
  if (reverseCounters.length > 0) {
    const reverseWrites: string[] = []
    slotWrites(reverse, 'r2', reverseWrites, false)
    const copies: string[] = []
    const swapOf = new Map<string, string>()
    for (const [a, c] of SWAPS) {
      swapOf.set(a, c)
      swapOf.set(c, a)
    }
    for (const [column, kind] of [...columns]) {
      if (NOT_INHERITED.has(column)) continue
      const from = swapOf.get(column) ?? column
      if (!columns.has(from)) use(from, kind)
    }
    for (const [column, kind] of [...columns]) {
      if (NOT_INHERITED.has(column)) continue
      const from = swapOf.get(column) ?? column
      if (kind === 'ip') copies.push(`for (let k = 0; k < 16; k++) c_${column}[r2 * 16 + k] = c_${from}[r * 16 + k]`)
      else copies.push(`c_${column}[r2] = c_${from}[r]`)
    }
    const nameSwaps: Record<string, string> = {
      InIfName: 'OutIfName',
      OutIfName: 'InIfName',
      InIfDescription: 'OutIfDescription',
      OutIfDescription: 'InIfDescription',
      InVrfName: 'OutVrfName',
      OutVrfName: 'InVrfName',
    }
    const nameCopies = nameColumns
      .filter((c) => nameColumns.includes(nameSwaps[c]!))
      .map((c) => `n_${c}[r2] = n_${nameSwaps[c]}[r]`)
    biflow.push(
      `if (${reverseCounters.map((l) => `${readUint(l)} > 0`).join(' || ')}) {`,
      `const r2 = b.appendRow()`,
      ...copies,
      ...(nameCopies.length > 0 ? [`if (${nameJoins.length > 0 ? 'named' : 'false'}) {`, ...nameCopies, `}`] : []),
      ...reverseWrites,
      `}`,
    )
  }
  const rowsPerRecord = biflow.length > 0 ? 2 : 1

  // columnData(ordinal) is an array read; the named accessors (a map look-up) only allocate the first time.
  const columnDecls = [...columns].map(
    ([column, kind]) => `const c_${column} = b.columnData(${flowColumnIndex.get(column)}) ?? b.${kind === 'string' ? 'stringIndexes' : ACCESSOR[kind]}('${column}')`,
  )
  // Fixed-length records without a reverse flow: every record of the chunk is one row, added at once.
  const rowsUpFront = !variable && biflow.length === 0
  const nameDecls: string[] = []
  if (nameColumns.length > 0) {
    const needIfs = nameColumns.some((c) => c.includes('If'))
    const needVrfs = nameColumns.some((c) => c.includes('Vrf'))
    const conditions = [needIfs ? 'ifs !== undefined' : '', needVrfs ? 'vrfs !== undefined' : ''].filter((s) => s !== '')
    nameDecls.push(`const named = ${conditions.join(' || ')}`)
    for (const c of nameColumns) nameDecls.push(`const n_${c} = named ? b.stringIndexes('${c}') : undefined`)
  }

  const body = [
    `"use strict"`,
    `return function decodeSet(u8, dv, start, end, b, ctx) {`,
    `const ex = ctx.exporter, v4 = ctx.exporterIsV4, tr = ctx.timeReceived, smp = ctx.samplers`,
    `const ifs = ctx.interfaces !== undefined && ctx.interfaces.size > 0 ? ctx.interfaces : undefined`,
    `const vrfs = ctx.vrfNames !== undefined && ctx.vrfNames.size > 0 ? ctx.vrfNames : undefined`,
    `const ms = H.mplsStack`,
    `const hms = ctx.headerMs, up = ctx.sysUptime, sr0 = ctx.samplingRate`,
    `let pos = start, count = 0`,
    `outer: while (pos + ${minLength} <= end) {`,
    `const chunk = Math.min(((end - pos) / ${minLength}) | 0, ${variable ? 256 : 1024})`,
    `b.reserve(chunk * ${rowsPerRecord})`,
    ...(rowsUpFront ? [`const r0 = b.appendRows(chunk)`] : []),
    ...columnDecls,
    ...nameDecls,
    `for (let i = 0; i < chunk && pos + ${minLength} <= end; i++) {`,
    ...offsetCode,
    rowsUpFront ? `const r = r0 + i` : `const r = b.appendRow()`,
    `c_TimeReceived[r] = tr`,
    `{ const q = r * 16; if (v4) { c_ExporterAddress[q + 10] = 255; c_ExporterAddress[q + 11] = 255; c_ExporterAddress[q + 12] = ex[12]; c_ExporterAddress[q + 13] = ex[13]; c_ExporterAddress[q + 14] = ex[14]; c_ExporterAddress[q + 15] = ex[15] } else for (let k = 0; k < 16; k++) c_ExporterAddress[q + k] = ex[k] }`,
    ...frameCode,
    ...(etypeVar ? [`let et = ${etype}`] : []),
    ...forwardWrites,
    ...locals,
    ...finish,
    ...nameJoins,
    ...biflow,
    `pos = next`,
    `count++`,
    `}`,
    `}`,
    `if (pos + ${minLength} <= end) ctx.sink.error('bad-length', 'a variable-length field runs past the end of its data set')`,
    `return count`,
    `}`,
  ]
  const source = body.join('\n')
  const decode = new Function('H', source)(H) as SetDecoder
  return { decode, minLength }
}
