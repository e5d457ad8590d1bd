// Options data of NetFlow v9 / IPFIX: the sampling rates, interface names, VRF names and system
// init time exporters announce in options records, kept per exporter and observation domain.
import type { DecodeSink } from '../protocol.js'
import { type FieldSpec, type InterfaceNames, readUint, VARIABLE_LENGTH } from './plan.js'

/** What options data taught about one observation domain; the data decoders join it onto flows. */
export interface OptionsState {
  /** Last sampling rate any options record gave (used by templates without a sampler id). */
  samplingRate: number
  /** Sampling rate per samplerId / selectorId. */
  samplers: Map<number, number> | undefined
  interfaces: Map<number, InterfaceNames> | undefined
  vrfNames: Map<number, string> | undefined
  /** IPFIX systemInitTimeMilliseconds: base of flowStart/EndSysUpTime (0 unknown). */
  sysInitMs: number
}

/** Entries kept per map at most: options data is small; a flood of ids is not kept. */
const MAX_ENTRIES = 65536

/** NetFlow v9 options scope field types (RFC 3954 6.2): only Interface names something we join on. */
const V9_SCOPE_INTERFACE = 2

const utf8 = new TextDecoder('utf-8', { fatal: false })

function text(u8: Uint8Array, o: number, len: number): string {
  let n = len
  // Fixed-length string fields are padded with NULs (or spaces on some exporters).
  while (n > 0 && (u8[o + n - 1] === 0 || u8[o + n - 1] === 0x20)) n--
  return n === 0 ? '' : utf8.decode(u8.subarray(o, o + n))
}

/** IEEE float64 (or float32, reduced-size encoding) at o. */
function float(u8: Uint8Array, o: number, len: number): number {
  const dv = new DataView(u8.buffer, u8.byteOffset + o, len)
  return len === 8 ? dv.getFloat64(0) : len === 4 ? dv.getFloat32(0) : 0
}

function setBounded<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (map.size < MAX_ENTRIES || map.has(key)) map.set(key, value)
}

/**
 * Reads the options records of one data set [start, end) into `state`; returns the number of
 * records read. `v9Scopes`: the first `scopeCount` fields are NetFlow v9 scope types, not elements.
 */
export function applyOptionsData(
  fields: readonly FieldSpec[],
  scopeCount: number,
  v9Scopes: boolean,
  minLength: number,
  u8: Uint8Array,
  start: number,
  end: number,
  state: OptionsState,
  sink: DecodeSink,
): number {
  let pos = start
  let records = 0
  while (pos + minLength <= end) {
    let samplerId = -1
    let rate = 0
    let interval = 0
    let space = 0
    let size = 0
    let population = 0
    let probability = 0
    let ifIndex = -1
    let name: string | undefined
    let description: string | undefined
    let vrfId = -1
    let vrfName: string | undefined
    let sysInit = -1
    let p = pos
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!
      let len = f.length
      if (len === VARIABLE_LENGTH) {
        if (p >= end) return bad(sink, records)
        len = u8[p++]!
        if (len === 255) {
          if (p + 2 > end) return bad(sink, records)
          len = (u8[p]! << 8) | u8[p + 1]!
          p += 2
        }
      }
      if (p + len > end) return bad(sink, records)
      if (f.enterprise === 0 && len > 0) {
        if (v9Scopes && i < scopeCount) {
          if (f.type === V9_SCOPE_INTERFACE) ifIndex = readUint(u8, p, len)
        } else {
          switch (f.type) {
            case 48: // samplerId (v9 FLOW_SAMPLER_ID)
            case 302: // selectorId
              samplerId = readUint(u8, p, len)
              break
            case 34: // samplingInterval
            case 50: // samplerRandomInterval
              rate = readUint(u8, p, len)
              break
            case 305: // samplingPacketInterval
              interval = readUint(u8, p, len)
              break
            case 306: // samplingPacketSpace
              space = readUint(u8, p, len)
              break
            case 311: // samplingProbability (uniform probabilistic selection): 1 in 1/p
              probability = float(u8, p, len)
              break
            case 309: // samplingSize
              size = readUint(u8, p, len)
              break
            case 310: // samplingPopulation
              population = readUint(u8, p, len)
              break
            case 10: // ingressInterface
            case 14: // egressInterface
              if (ifIndex < 0) ifIndex = readUint(u8, p, len)
              break
            case 82: // interfaceName
              name = text(u8, p, len)
              break
            case 83: // interfaceDescription
              description = text(u8, p, len)
              break
            case 234: // ingressVRFID
            case 235: // egressVRFID
              if (vrfId < 0) vrfId = readUint(u8, p, len)
              break
            case 236: // VRFname
              vrfName = text(u8, p, len)
              break
            case 160: // systemInitTimeMilliseconds
              sysInit = readUint(u8, p, len)
              break
          }
        }
      }
      p += len
    }
    if (rate === 0 && interval > 0) rate = Math.round((interval + space) / interval)
    if (rate === 0 && size > 0 && population > 0) rate = Math.round(population / size)
    if (rate === 0 && probability > 0 && probability <= 1) rate = Math.round(1 / probability)
    if (rate > 0) {
      state.samplingRate = rate
      if (samplerId >= 0) setBounded((state.samplers ??= new Map()), samplerId, rate)
    }
    if (ifIndex >= 0 && (name !== undefined || description !== undefined)) {
      const interfaces = (state.interfaces ??= new Map())
      const known = interfaces.get(ifIndex)
      setBounded(interfaces, ifIndex, {
        name: name ?? known?.name ?? '',
        description: description ?? known?.description ?? '',
      })
    }
    if (vrfId >= 0 && vrfName !== undefined) setBounded((state.vrfNames ??= new Map()), vrfId, vrfName)
    if (sysInit > 0) state.sysInitMs = sysInit
    records++
    pos = p
  }
  return records
}

function bad(sink: DecodeSink, records: number): number {
  sink.error('bad-length', 'an options record runs past the end of its set')
  return records
}
