// NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) decoding: template and options-template state per
// exporter transport session and observation domain, data held until its template comes, flows out.
//
// API for the decoder actor:
// - `decode(datagram, sink)` decodes one export datagram into `sink`. Data held earlier for a
//   template this datagram brings is decoded into the same sink (held data belongs to the same
//   exporter and port, hence to the same sink). Returns the export header (sequence number,
//   domain, data records read) in an object reused across calls, for the actor's gap counter.
// - `loadTemplate(record)` installs a template received from the bus (another replica or an
//   earlier run); data held for it is decoded into `lateSink(exporter, port)` at once.
// - `expireHeld(nowMs)` reports held data older than `holdMs` as 'missing-template' through
//   `lateSink`; `decode` also calls it with the datagram's receive time, so a busy decoder needs
//   no timer, an idle one may call it from one.
// - `onTemplate` hears every template learnt (new, changed, or re-announced after
//   `templateRefreshMs`) and withdrawn (by the exporter, or with its session after
//   `sessionIdleMs` of silence), as the bus's `TemplateRecord`; `removeTemplate` applies a
//   withdrawal seen on the bus. A session is silent when neither its datagrams nor a template
//   announcement loaded from the bus (another replica decoding it) came for `sessionIdleMs`. Only
//   a session this decoder received datagrams from reports its idle templates withdrawn (the bus
//   copy is deleted); one it only knows from the bus is forgotten quietly: the replica decoding
//   that exporter decides.
// Bounds (templates per domain and in all, fields per template, domains per session, sessions,
// held data per session and in all) keep a template bomb or spoofed sources from growing state.
//
// Options data (sampling rates, interface and VRF names, system init time) is kept per
// exporter/port/domain and is not part of TemplateRecord. `changedOptions()` hands the actor the
// domains whose options data came since its last call, `loadOptions()` takes them back (the
// actor shares them through the exporter.options bucket); without that, a restarted decoder's
// flows carry SamplingRate 0 (unknown: the enricher's default applies) and no interface/VRF names
// until the exporter resends its options data, which exporters do on a timer (typically 10 s to
// a few minutes).
// Enterprise-specific elements are skipped, except RFC 5103 reverse elements (PEN 29305).
// Zero-length fields take no bytes and are ignored (Cisco's v9 System scope is one); a template
// whose records would be empty is 'bad-template'.
import type { DecodeSink, Datagram } from '../protocol.js'
import { FlowProtocol, isIPv4Mapped, type TemplateField, type TemplateRecord } from '@flowbus/bus-schemas'
import { applyOptionsData, type OptionsState } from './options.js'
import { type FrameFacts, FrameStatus, parseFrame } from '../packet/index.js'
import { compileTemplate, type FieldSpec, type FrameParser, type RecordContext, type SetDecoder, VARIABLE_LENGTH } from './plan.js'

export interface TemplateChange {
  readonly kind: 'learnt' | 'withdrawn'
  readonly record: TemplateRecord
}

/** Header facts of the last decoded datagram, for sequence-gap counting by the actor. */
export interface ExportHeader {
  protocol: FlowProtocol
  /** v9: export packets sent before this one (per source id); IPFIX: data records before this message (per domain). */
  sequenceNumber: number
  /** v9 source id / IPFIX observation domain id. */
  observationDomainId: number
  /** Data records decoded from this datagram (held records are not counted: unknown until their template comes). */
  dataRecords: number
  /** v9 header record count (templates and data); 0 for IPFIX. */
  headerCount: number
}

/**
 * What options data taught about one exporter session and domain, in plain values (JSON-friendly
 * apart from the address), so the actor may keep it across restarts; see `optionsSnapshot`.
 */
export interface OptionsSnapshot {
  exporterAddress: Uint8Array
  exporterPort: number
  protocol: FlowProtocol
  observationDomainId: number
  samplingRate: number
  /** [samplerId or selectorId, sampling rate] */
  samplers: [number, number][]
  /** [ifIndex, name, description] */
  interfaces: [number, string, string][]
  /** [VRF id, name] */
  vrfNames: [number, string][]
  sysInitMs: number
}

export interface TemplateDecoderOptions {
  /** Where flows and errors of decodes outside `decode` go: held data released by `loadTemplate`, expiries. */
  readonly lateSink: (exporterAddress: Uint8Array, exporterPort: number) => DecodeSink
  readonly onTemplate?: (change: TemplateChange) => void
  /** Templates (data + options) per exporter/port/domain; more are 'template-limit'. Default 512. */
  readonly maxTemplatesPerDomain?: number
  /** Templates in all. Default 65536. */
  readonly maxTemplates?: number
  /** Fields per template; more is 'bad-template'. Default 256. */
  readonly maxFieldsPerTemplate?: number
  /** How long data waits for its template, ms. Default 30 s. */
  readonly holdMs?: number
  /** Held data sets per exporter/port. Default 128. */
  readonly maxHeldPerExporter?: number
  /** Held bytes per exporter/port. Default 512 KiB. */
  readonly maxHeldBytesPerExporter?: number
  /** Held data sets in all. Default 8192. */
  readonly maxHeld?: number
  /** Held bytes in all. Default 32 MiB. */
  readonly maxHeldBytes?: number
  /**
   * A session (exporter address and port) silent this long is forgotten with its templates, which
   * are reported withdrawn: exporters that restart often come back from another source port. Default 3 h.
   */
  readonly sessionIdleMs?: number
  /** Exporter transport sessions (address and port) kept; idle ones are dropped first. Default 65536. */
  readonly maxExporters?: number
  /** Observation domains / source ids per exporter session. Default 256. */
  readonly maxDomainsPerExporter?: number
  /** An unchanged template is reported again (refreshing the bus's copy) after this long, ms. Default 10 min. */
  readonly templateRefreshMs?: number
}

interface Template {
  readonly id: number
  readonly options: boolean
  readonly scopeCount: number
  readonly fields: readonly FieldSpec[]
  readonly minLength: number
  /** Data templates only. */
  readonly decode: SetDecoder | undefined
  readonly record: TemplateRecord
  reportedMs: number
}

interface Domain extends OptionsState {
  readonly protocol: FlowProtocol
  readonly id: number
  readonly templates: Map<number, Template>
}

interface Held {
  readonly domain: Domain
  readonly templateId: number
  readonly bytes: Uint8Array
  readonly timeReceived: number
  readonly sysUptime: number
  readonly headerMs: number
}

interface Exporter {
  readonly address: Uint8Array
  readonly port: number
  readonly isV4: boolean
  readonly domains: Map<number, Domain>
  templates: number
  held: Held[]
  heldBytes: number
  /** Receive time of the session's last datagram or bus announcement, ms (0: not known yet). */
  lastSeenMs: number
  /** This decoder received datagrams of the session (else it only knows it from the bus). */
  decoded: boolean
}

const frameFacts: FrameFacts = { ipLength: 0 }

/** IE 315 carries an Ethernet frame's first bytes, parsed as sFlow sampled headers are (fields up to a bad layer are kept). */
const parseDataLinkFrame: FrameParser = (frame, batch, row, sink) => {
  const status = parseFrame(frame, 0, frame.length, batch, row, 'ethernet', frameFacts)
  if (status !== FrameStatus.Complete) {
    sink.error('bad-frame', `dataLinkFrameSection ${status === FrameStatus.Truncated ? 'ends inside a header' : 'headers contradict themselves'}`)
  }
  return frameFacts.ipLength
}

/** One domain's options data in plain values (copies: the snapshot outlives later changes). */
const snapshotOf = (e: Exporter, d: Domain): OptionsSnapshot => ({
  exporterAddress: e.address.slice(),
  exporterPort: e.port,
  protocol: d.protocol,
  observationDomainId: d.id,
  samplingRate: d.samplingRate,
  samplers: [...(d.samplers ?? [])],
  interfaces: [...(d.interfaces ?? [])].map(([i, n]) => [i, n.name, n.description]),
  vrfNames: [...(d.vrfNames ?? [])],
  sysInitMs: d.sysInitMs,
})

/** How often (in datagram receive time) sessions are checked for idleness. */
const SWEEP_INTERVAL_MS = 60_000

const TEMPLATE_SET_V9 = 0
const OPTIONS_SET_V9 = 1
const TEMPLATE_SET_IPFIX = 2
const OPTIONS_SET_IPFIX = 3
const MIN_DATA_SET = 256

function exporterKey(address: Uint8Array, port: number): number | string {
  if (address.length === 16 && isIPv4Mapped(address)) {
    return (((address[12]! << 24) | (address[13]! << 16) | (address[14]! << 8) | address[15]!) >>> 0) * 65536 + (port & 0xffff)
  }
  let s = ''
  for (let i = 0; i < address.length; i++) s += address[i]!.toString(16).padStart(2, '0')
  return `${s}.${port}`
}

const domainKey = (protocol: FlowProtocol, id: number): number => protocol * 4294967296 + id

function sameLayout(t: Template, options: boolean, scopeCount: number, fields: readonly FieldSpec[]): boolean {
  if (t.options !== options || t.scopeCount !== scopeCount || t.fields.length !== fields.length) return false
  for (let i = 0; i < fields.length; i++) {
    const a = t.fields[i]!
    const b = fields[i]!
    if (a.type !== b.type || a.enterprise !== b.enterprise || a.length !== b.length) return false
  }
  return true
}

/** NetFlow v9 and IPFIX decoder with template state; see the module header for the API. */
export class TemplateDecoder {
  readonly #lateSink: TemplateDecoderOptions['lateSink']
  readonly #onTemplate: TemplateDecoderOptions['onTemplate']
  readonly #maxTemplatesPerDomain: number
  readonly #maxTemplates: number
  readonly #maxFields: number
  readonly #holdMs: number
  readonly #maxHeldPerExporter: number
  readonly #maxHeldBytesPerExporter: number
  readonly #maxHeld: number
  readonly #maxHeldBytes: number
  readonly #refreshMs: number
  readonly #maxExporters: number
  readonly #sessionIdleMs: number
  readonly #maxDomainsPerExporter: number
  readonly #exporters = new Map<number | string, Exporter>()
  readonly #holding = new Set<Exporter>()
  /** Domains whose options data came since the last changedOptions(), with their session. */
  readonly #optionsChanged = new Map<Domain, Exporter>()
  #templates = 0
  #held = 0
  #heldBytes = 0
  #lastExpiryMs = 0
  #lastSweepMs = 0
  readonly #header: ExportHeader = { protocol: FlowProtocol.UNKNOWN, sequenceNumber: 0, observationDomainId: 0, dataRecords: 0, headerCount: 0 }
  readonly #ctx: RecordContext

  constructor(options: TemplateDecoderOptions) {
    this.#lateSink = options.lateSink
    this.#onTemplate = options.onTemplate
    this.#maxTemplatesPerDomain = options.maxTemplatesPerDomain ?? 512
    this.#maxTemplates = options.maxTemplates ?? 65536
    this.#maxFields = options.maxFieldsPerTemplate ?? 256
    this.#holdMs = options.holdMs ?? 30_000
    this.#maxHeldPerExporter = options.maxHeldPerExporter ?? 128
    this.#maxHeldBytesPerExporter = options.maxHeldBytesPerExporter ?? 512 * 1024
    this.#maxHeld = options.maxHeld ?? 8192
    this.#maxHeldBytes = options.maxHeldBytes ?? 32 * 1024 * 1024
    this.#refreshMs = options.templateRefreshMs ?? 600_000
    this.#maxExporters = options.maxExporters ?? 65536
    this.#sessionIdleMs = options.sessionIdleMs ?? 3 * 3600_000
    this.#maxDomainsPerExporter = options.maxDomainsPerExporter ?? 256
    this.#ctx = {
      sink: undefined as unknown as DecodeSink,
      timeReceived: 0,
      exporter: new Uint8Array(16),
      exporterIsV4: false,
      samplingRate: 0,
      samplers: undefined,
      interfaces: undefined,
      vrfNames: undefined,
      sysUptime: 0,
      headerMs: 0,
      sysInitMs: 0,
      frame: parseDataLinkFrame,
    }
  }

  /** Templates known (data and options), over every exporter. */
  get templateCount(): number {
    return this.#templates
  }

  /** Data sets held for a template that has not come yet. */
  get heldCount(): number {
    return this.#held
  }

  /**
   * Decodes one NetFlow v9 or IPFIX datagram into `sink`. Never throws: bad input is reported
   * through `sink.error` and the datagram's other sets still decode. Returns the header facts
   * (an object reused by the next call), or undefined when there was no readable header.
   */
  decode(d: Datagram, sink: DecodeSink): ExportHeader | undefined {
    try {
      const nowMs = d.timeReceived * 1000
      if (this.#held > 0 && (nowMs - this.#lastExpiryMs >= 1000 || nowMs < this.#lastExpiryMs)) this.expireHeld(nowMs)
      if (nowMs - this.#lastSweepMs >= SWEEP_INTERVAL_MS || nowMs < this.#lastSweepMs) this.#forgetIdleSessions(nowMs)
      const u8 = d.payload
      if (u8.length < 4) {
        sink.error('truncated', `datagram of ${u8.length} bytes`)
        return undefined
      }
      const version = (u8[0]! << 8) | u8[1]!
      if (version === 9) return this.#decodeV9(d, u8, sink)
      if (version === 10) return this.#decodeIpfix(d, u8, sink)
      sink.error('bad-version', `version ${version} is not NetFlow v9 or IPFIX`)
      return undefined
    } catch (e) {
      sink.error('bad-record', `decoder failure: ${e instanceof Error ? e.message : String(e)}`)
      return undefined
    }
  }

  #decodeV9(d: Datagram, u8: Uint8Array, sink: DecodeSink): ExportHeader | undefined {
    if (u8.length < 20) {
      sink.error('truncated', `NetFlow v9 header needs 20 bytes, got ${u8.length}`)
      return undefined
    }
    const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength)
    const h = this.#header
    h.protocol = FlowProtocol.NETFLOW_V9
    h.headerCount = dv.getUint16(2)
    const sysUptime = dv.getUint32(4)
    const headerMs = dv.getUint32(8) * 1000
    h.sequenceNumber = dv.getUint32(12)
    h.observationDomainId = dv.getUint32(16)
    h.dataRecords = 0
    const exporter = this.#exporter(d.exporterAddress, d.exporterPort)
    const domain = exporter === undefined ? undefined : this.#domain(exporter, FlowProtocol.NETFLOW_V9, h.observationDomainId)
    if (exporter === undefined || domain === undefined) {
      sink.error('template-limit', `no room for the state of exporter port ${d.exporterPort} domain ${h.observationDomainId}`)
      return h
    }
    exporter.lastSeenMs = d.timeReceived * 1000
    exporter.decoded = true
    this.#sets(d, u8, dv, 20, u8.length, exporter, domain, sink, sysUptime, headerMs, false)
    return h
  }

  #decodeIpfix(d: Datagram, u8: Uint8Array, sink: DecodeSink): ExportHeader | undefined {
    if (u8.length < 16) {
      sink.error('truncated', `IPFIX header needs 16 bytes, got ${u8.length}`)
      return undefined
    }
    const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength)
    let length = dv.getUint16(2)
    if (length < 16) {
      sink.error('bad-length', `IPFIX message length ${length} is below the header's 16 bytes`)
      return undefined
    }
    if (length > u8.length) {
      sink.error('truncated', `IPFIX message length ${length}, datagram ${u8.length} bytes`)
      length = u8.length
    }
    const h = this.#header
    h.protocol = FlowProtocol.IPFIX
    h.headerCount = 0
    const headerMs = dv.getUint32(4) * 1000
    h.sequenceNumber = dv.getUint32(8)
    h.observationDomainId = dv.getUint32(12)
    h.dataRecords = 0
    const exporter = this.#exporter(d.exporterAddress, d.exporterPort)
    const domain = exporter === undefined ? undefined : this.#domain(exporter, FlowProtocol.IPFIX, h.observationDomainId)
    if (exporter === undefined || domain === undefined) {
      sink.error('template-limit', `no room for the state of exporter port ${d.exporterPort} domain ${h.observationDomainId}`)
      return h
    }
    exporter.lastSeenMs = d.timeReceived * 1000
    exporter.decoded = true
    this.#sets(d, u8, dv, 16, length, exporter, domain, sink, 0, headerMs, true)
    return h
  }

  /** Walks the flowsets / sets of a message body. */
  #sets(
    d: Datagram,
    u8: Uint8Array,
    dv: DataView,
    start: number,
    end: number,
    exporter: Exporter,
    domain: Domain,
    sink: DecodeSink,
    sysUptime: number,
    headerMs: number,
    ipfix: boolean,
  ): void {
    let pos = start
    while (pos + 4 <= end) {
      const setId = dv.getUint16(pos)
      const setLength = dv.getUint16(pos + 2)
      if (setLength < 4) {
        sink.error('bad-length', `set ${setId} at byte ${pos} has length ${setLength}`)
        return
      }
      let setEnd = pos + setLength
      if (setEnd > end) {
        sink.error('truncated', `set ${setId} at byte ${pos} has length ${setLength}, ${end - pos} bytes left`)
        setEnd = end
      }
      const body = pos + 4
      if (setId >= MIN_DATA_SET) {
        this.#dataSet(u8, dv, body, setEnd, exporter, domain, setId, sink, d.timeReceived, sysUptime, headerMs, true)
      } else if (ipfix ? setId === TEMPLATE_SET_IPFIX : setId === TEMPLATE_SET_V9) {
        this.#templateSet(dv, body, setEnd, exporter, domain, sink, d.timeReceived, ipfix, false)
      } else if (ipfix ? setId === OPTIONS_SET_IPFIX : setId === OPTIONS_SET_V9) {
        if (ipfix) this.#templateSet(dv, body, setEnd, exporter, domain, sink, d.timeReceived, true, true)
        else this.#v9OptionsTemplateSet(dv, body, setEnd, exporter, domain, sink, d.timeReceived)
      } else {
        sink.error('bad-record', `set id ${setId} is reserved`)
      }
      pos = pos + setLength
    }
    if (pos < end && ipfix) sink.error('bad-length', `${end - pos} bytes after the last set`)
  }

  #dataSet(
    u8: Uint8Array,
    dv: DataView,
    start: number,
    end: number,
    exporter: Exporter,
    domain: Domain,
    templateId: number,
    sink: DecodeSink,
    timeReceived: number,
    sysUptime: number,
    headerMs: number,
    mayHold: boolean,
  ): void {
    const t = domain.templates.get(templateId)
    if (t === undefined) {
      if (mayHold) this.#hold(exporter, domain, templateId, u8.slice(start, end), timeReceived, sysUptime, headerMs, sink)
      else sink.error('missing-template', `template ${templateId} of domain ${domain.id}`)
      return
    }
    // Held data released now belongs to an earlier datagram: it does not count in this header.
    const live = mayHold
    if (t.options) {
      const n = applyOptionsData(t.fields, t.scopeCount, domain.protocol === FlowProtocol.NETFLOW_V9, t.minLength, u8, start, end, domain, sink)
      if (live) this.#header.dataRecords += n
      if (n > 0) this.#optionsChanged.set(domain, exporter)
      return
    }
    const ctx = this.#ctx
    ctx.sink = sink
    ctx.timeReceived = timeReceived
    ctx.exporter = exporter.address
    ctx.exporterIsV4 = exporter.isV4
    ctx.samplingRate = domain.samplingRate
    ctx.samplers = domain.samplers
    ctx.interfaces = domain.interfaces
    ctx.vrfNames = domain.vrfNames
    ctx.sysUptime = sysUptime
    ctx.headerMs = headerMs
    ctx.sysInitMs = domain.sysInitMs
    const n = t.decode!(u8, dv, start, end, sink.flows, ctx)
    if (live) this.#header.dataRecords += n
  }

  /** Template set (v9 flowset 0, IPFIX set 2) or IPFIX options template set (3). */
  #templateSet(
    dv: DataView,
    start: number,
    end: number,
    exporter: Exporter,
    domain: Domain,
    sink: DecodeSink,
    timeReceived: number,
    ipfix: boolean,
    options: boolean,
  ): void {
    let pos = start
    while (pos + 4 <= end) {
      const id = dv.getUint16(pos)
      const count = dv.getUint16(pos + 2)
      if (count === 0) {
        if (!ipfix || id < MIN_DATA_SET) {
          // All-templates withdrawal (IPFIX id 2 in a template set, 3 in an options one); else padding.
          if (ipfix && id === (options ? OPTIONS_SET_IPFIX : TEMPLATE_SET_IPFIX)) this.#withdrawAll(exporter, domain, options)
          else if (id !== 0) sink.error('bad-template', `template id ${id} with no fields`)
          return
        }
        this.#withdraw(exporter, domain, id)
        pos += 4
        continue
      }
      if (id < MIN_DATA_SET) {
        sink.error('bad-template', `template id ${id} is below 256`)
        return
      }
      let p = pos + 4
      let scopeCount = 0
      if (options) {
        if (p + 2 > end) {
          sink.error('truncated', `options template ${id} cut short`)
          return
        }
        scopeCount = dv.getUint16(p)
        p += 2
      }
      const fields: FieldSpec[] = []
      let bad = count > this.#maxFields ? `${count} fields` : ''
      for (let i = 0; i < count; i++) {
        if (p + 4 > end) {
          sink.error('truncated', `template ${id} cut short`)
          return
        }
        let type = dv.getUint16(p)
        const length = dv.getUint16(p + 2)
        p += 4
        let enterprise = 0
        if (ipfix && (type & 0x8000) !== 0) {
          if (p + 4 > end) {
            sink.error('truncated', `template ${id} cut short`)
            return
          }
          type &= 0x7fff
          enterprise = dv.getUint32(p)
          p += 4
        }
        if (!ipfix && length === VARIABLE_LENGTH) bad ||= `field ${type} has length 65535`
        if (bad === '') fields.push({ type, enterprise, length })
      }
      if (options && (scopeCount === 0 || scopeCount > count)) bad ||= `${scopeCount} scope fields of ${count}`
      pos = p
      if (bad !== '') {
        sink.error('bad-template', `template ${id}: ${bad}`)
        continue
      }
      this.#learn(exporter, domain, id, options, scopeCount, fields, timeReceived * 1000, sink, true)
    }
  }

  /** NetFlow v9 options template flowset (id 1): scope and option lengths in bytes. */
  #v9OptionsTemplateSet(dv: DataView, start: number, end: number, exporter: Exporter, domain: Domain, sink: DecodeSink, timeReceived: number): void {
    let pos = start
    while (pos + 6 <= end) {
      const id = dv.getUint16(pos)
      const scopeLength = dv.getUint16(pos + 2)
      const optionLength = dv.getUint16(pos + 4)
      if (id === 0 && scopeLength === 0) return // padding
      if (id < MIN_DATA_SET) {
        sink.error('bad-template', `options template id ${id} is below 256`)
        return
      }
      if (scopeLength % 4 !== 0 || optionLength % 4 !== 0 || scopeLength === 0) {
        sink.error('bad-template', `options template ${id}: scope length ${scopeLength}, option length ${optionLength}`)
        return
      }
      const next = pos + 6 + scopeLength + optionLength
      if (next > end) {
        sink.error('truncated', `options template ${id} cut short`)
        return
      }
      const count = (scopeLength + optionLength) / 4
      const fields: FieldSpec[] = []
      let bad = count > this.#maxFields ? `${count} fields` : ''
      for (let p = pos + 6; p < next && bad === ''; p += 4) {
        const type = dv.getUint16(p)
        const length = dv.getUint16(p + 2)
        if (length === VARIABLE_LENGTH) bad = `field ${type} has length ${length}`
        else fields.push({ type, enterprise: 0, length })
      }
      pos = next
      if (bad !== '') {
        sink.error('bad-template', `options template ${id}: ${bad}`)
        continue
      }
      this.#learn(exporter, domain, id, true, scopeLength / 4, fields, timeReceived * 1000, sink, true)
    }
  }

  /** Installs a template; `report`: tell onTemplate (not for templates loaded from the bus). */
  #learn(
    exporter: Exporter,
    domain: Domain,
    id: number,
    options: boolean,
    scopeCount: number,
    fields: readonly FieldSpec[],
    nowMs: number,
    sink: DecodeSink | undefined,
    report: boolean,
  ): boolean {
    const known = domain.templates.get(id)
    if (known !== undefined && sameLayout(known, options, scopeCount, fields)) {
      known.record.lastSeenUnixMs = Math.max(known.record.lastSeenUnixMs, nowMs)
      if (report && nowMs - known.reportedMs >= this.#refreshMs) {
        known.reportedMs = nowMs
        this.#onTemplate?.({ kind: 'learnt', record: known.record })
      }
      return true
    }
    if (known === undefined && (domain.templates.size >= this.#maxTemplatesPerDomain || this.#templates >= this.#maxTemplates)) {
      sink?.error('template-limit', `template ${id} of domain ${domain.id}: limit reached`)
      return false
    }
    let minLength = 0
    for (const f of fields) minLength += f.length === VARIABLE_LENGTH ? 1 : f.length
    if (minLength === 0 || minLength > 65535) {
      sink?.error('bad-template', `template ${id}: record length ${minLength}`)
      return false
    }
    const decode = options ? undefined : compileTemplate(fields, domain.protocol === FlowProtocol.IPFIX).decode
    const record: TemplateRecord = {
      exporterAddress: exporter.address,
      exporterPort: exporter.port,
      protocol: domain.protocol,
      observationDomainId: domain.id,
      templateId: id,
      options,
      scopeFieldCount: scopeCount,
      fields: fields.map((f): TemplateField => ({ enterpriseNumber: f.enterprise, type: f.type, length: f.length })),
      lastSeenUnixMs: nowMs,
    }
    const template: Template = { id, options, scopeCount, fields, minLength, decode, record, reportedMs: report ? nowMs : -Infinity }
    if (known === undefined) {
      exporter.templates++
      this.#templates++
    }
    domain.templates.set(id, template)
    if (report) this.#onTemplate?.({ kind: 'learnt', record })
    if (exporter.held.length > 0) this.#release(exporter, domain, id, sink)
    return true
  }

  /** Forgets a template; `report`: tell onTemplate it is withdrawn. */
  #withdraw(exporter: Exporter, domain: Domain, id: number, report = true): void {
    const t = domain.templates.get(id)
    if (t === undefined) return
    domain.templates.delete(id)
    exporter.templates--
    this.#templates--
    if (report) this.#onTemplate?.({ kind: 'withdrawn', record: t.record })
  }

  #withdrawAll(exporter: Exporter, domain: Domain, options: boolean): void {
    for (const t of [...domain.templates.values()]) if (t.options === options) this.#withdraw(exporter, domain, t.id)
  }

  /**
   * Installs a template received from the bus, without reporting it back. Returns false (and
   * installs nothing) when the record is not a valid NetFlow v9/IPFIX template or a limit is reached.
   */
  loadTemplate(record: TemplateRecord): boolean {
    try {
      const ipfix = record.protocol === FlowProtocol.IPFIX
      if (!ipfix && record.protocol !== FlowProtocol.NETFLOW_V9) return false
      if (record.exporterAddress.length !== 16 || record.templateId < MIN_DATA_SET || record.templateId > 65535) return false
      const n = record.fields.length
      if (n === 0 || n > this.#maxFields) return false
      if (record.options && (record.scopeFieldCount < 1 || record.scopeFieldCount > n)) return false
      const fields: FieldSpec[] = []
      for (const f of record.fields) {
        if (f.length < 0 || f.length > 65535 || f.type < 0 || f.type > 0x7fff) return false
        if (!ipfix && (f.length === VARIABLE_LENGTH || f.enterpriseNumber !== 0)) return false
        fields.push({ type: f.type, enterprise: f.enterpriseNumber >>> 0, length: f.length })
      }
      const exporter = this.#exporter(record.exporterAddress, record.exporterPort)
      const domain = exporter === undefined ? undefined : this.#domain(exporter, record.protocol, record.observationDomainId >>> 0)
      if (exporter === undefined || domain === undefined) return false
      const sink = exporter.held.length > 0 ? this.#lateSink(exporter.address, exporter.port) : undefined
      // The bus may hand back an older announcement than the one this decoder has since learnt.
      const known = domain.templates.get(record.templateId)
      const lastSeen = Number(record.lastSeenUnixMs) || 0
      // Another replica announcing the template keeps the session alive here too.
      if (lastSeen > exporter.lastSeenMs) exporter.lastSeenMs = lastSeen
      if (known !== undefined && known.record.lastSeenUnixMs > lastSeen) return true
      return this.#learn(exporter, domain, record.templateId, record.options, record.options ? record.scopeFieldCount : 0, fields, lastSeen, sink, false)
    } catch {
      return false
    }
  }

  /** Options data of every session and domain that has some, for the actor to keep across a restart. */
  optionsSnapshot(): OptionsSnapshot[] {
    const out: OptionsSnapshot[] = []
    for (const e of this.#exporters.values()) {
      for (const d of e.domains.values()) {
        if (d.samplingRate === 0 && d.samplers === undefined && d.interfaces === undefined && d.vrfNames === undefined && d.sysInitMs === 0) continue
        out.push(snapshotOf(e, d))
      }
    }
    return out
  }

  /** Options data of the domains whose options records came since the last call (each once). */
  changedOptions(): OptionsSnapshot[] {
    if (this.#optionsChanged.size === 0) return []
    const out: OptionsSnapshot[] = []
    for (const [d, e] of this.#optionsChanged) out.push(snapshotOf(e, d))
    this.#optionsChanged.clear()
    return out
  }

  /**
   * Restores options data kept from an earlier run or learnt by another replica. By default what
   * this decoder already knows wins (the exporter's own data, newer); `replace` takes the
   * snapshot's values over it (a replica's newer copy). Returns false (restoring nothing) for a
   * snapshot that cannot be right.
   */
  loadOptions(snapshot: OptionsSnapshot, replace = false): boolean {
    try {
      if (snapshot.protocol !== FlowProtocol.NETFLOW_V9 && snapshot.protocol !== FlowProtocol.IPFIX) return false
      if (snapshot.exporterAddress.length !== 16) return false
      const exporter = this.#exporter(snapshot.exporterAddress, snapshot.exporterPort)
      const d = exporter === undefined ? undefined : this.#domain(exporter, snapshot.protocol, snapshot.observationDomainId >>> 0)
      if (d === undefined) return false
      const count = (n: unknown): number => (typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0)
      if (d.samplingRate === 0 || (replace && count(snapshot.samplingRate) > 0)) d.samplingRate = count(snapshot.samplingRate)
      if (d.sysInitMs === 0 || (replace && count(snapshot.sysInitMs) > 0)) d.sysInitMs = count(snapshot.sysInitMs)
      for (const [id, rate] of snapshot.samplers.slice(0, 65536)) {
        d.samplers ??= new Map()
        if (replace || !d.samplers.has(id)) d.samplers.set(count(id), count(rate))
      }
      for (const [ifIndex, name, description] of snapshot.interfaces.slice(0, 65536)) {
        d.interfaces ??= new Map()
        if (replace || !d.interfaces.has(ifIndex)) d.interfaces.set(count(ifIndex), { name: String(name), description: String(description) })
      }
      for (const [id, name] of snapshot.vrfNames.slice(0, 65536)) {
        d.vrfNames ??= new Map()
        if (replace || !d.vrfNames.has(id)) d.vrfNames.set(count(id), String(name))
      }
      return true
    } catch {
      return false
    }
  }

  /** Forgets a template the bus says is gone (withdrawn through another replica). */
  removeTemplate(record: Pick<TemplateRecord, 'exporterAddress' | 'exporterPort' | 'protocol' | 'observationDomainId' | 'templateId'>): void {
    const exporter = this.#exporters.get(exporterKey(record.exporterAddress, record.exporterPort))
    const domain = exporter?.domains.get(domainKey(record.protocol, record.observationDomainId))
    if (exporter === undefined || domain === undefined) return
    this.#withdraw(exporter, domain, record.templateId, false)
  }

  #hold(exporter: Exporter, domain: Domain, templateId: number, bytes: Uint8Array, timeReceived: number, sysUptime: number, headerMs: number, sink: DecodeSink): void {
    if (bytes.length > this.#maxHeldBytesPerExporter || this.#held >= this.#maxHeld || this.#heldBytes + bytes.length > this.#maxHeldBytes) {
      sink.error('missing-template', `template ${templateId} of domain ${domain.id}: no room to hold its data`)
      return
    }
    while (exporter.held.length > 0 && (exporter.held.length >= this.#maxHeldPerExporter || exporter.heldBytes + bytes.length > this.#maxHeldBytesPerExporter)) {
      const dropped = exporter.held.shift()!
      this.#forget(exporter, dropped)
      sink.error('missing-template', `template ${dropped.templateId} of domain ${dropped.domain.id}: held data pushed out`)
    }
    exporter.held.push({ domain, templateId, bytes, timeReceived, sysUptime, headerMs })
    exporter.heldBytes += bytes.length
    this.#held++
    this.#heldBytes += bytes.length
    this.#holding.add(exporter)
  }

  #forget(exporter: Exporter, h: Held): void {
    exporter.heldBytes -= h.bytes.length
    this.#held--
    this.#heldBytes -= h.bytes.length
    if (exporter.held.length === 0) this.#holding.delete(exporter)
  }

  /** Decodes the data held for a template that just arrived. */
  #release(exporter: Exporter, domain: Domain, templateId: number, sink: DecodeSink | undefined): void {
    const ready = exporter.held.filter((h) => h.domain === domain && h.templateId === templateId)
    if (ready.length === 0) return
    exporter.held = exporter.held.filter((h) => !(h.domain === domain && h.templateId === templateId))
    const to = sink ?? this.#lateSink(exporter.address, exporter.port)
    for (const h of ready) {
      this.#forget(exporter, h)
      const dv = new DataView(h.bytes.buffer, h.bytes.byteOffset, h.bytes.byteLength)
      this.#dataSet(h.bytes, dv, 0, h.bytes.length, exporter, domain, templateId, to, h.timeReceived, h.sysUptime, h.headerMs, false)
    }
  }

  /** Reports held data older than the hold time as 'missing-template' (through lateSink) and drops it. */
  expireHeld(nowMs: number): void {
    this.#lastExpiryMs = nowMs
    for (const exporter of [...this.#holding]) {
      const expired = exporter.held.filter((h) => nowMs - h.timeReceived * 1000 > this.#holdMs)
      if (expired.length === 0) continue
      exporter.held = exporter.held.filter((h) => !(nowMs - h.timeReceived * 1000 > this.#holdMs))
      const sink = this.#lateSink(exporter.address, exporter.port)
      for (const h of expired) {
        this.#forget(exporter, h)
        sink.error('missing-template', `template ${h.templateId} of domain ${h.domain.id} did not come within ${this.#holdMs} ms`)
      }
    }
  }

  #forgetIdleSessions(nowMs: number): void {
    this.#lastSweepMs = nowMs
    for (const [key, e] of this.#exporters) {
      // Sessions loaded from records without a time start their idle time at the first sweep.
      if (e.lastSeenMs === 0) e.lastSeenMs = nowMs
      if (nowMs - e.lastSeenMs <= this.#sessionIdleMs) continue
      this.#exporters.delete(key)
      for (const domain of e.domains.values()) {
        this.#optionsChanged.delete(domain)
        for (const t of [...domain.templates.values()]) this.#withdraw(e, domain, t.id, e.decoded)
      }
      if (e.held.length > 0) {
        const sink = this.#lateSink(e.address, e.port)
        for (const h of e.held.splice(0)) {
          this.#forget(e, h)
          sink.error('missing-template', `template ${h.templateId} of domain ${h.domain.id}: the session went silent`)
        }
      }
    }
  }

  /** The state of an exporter transport session; undefined when the bound is reached even after dropping idle ones. */
  #exporter(address: Uint8Array, port: number): Exporter | undefined {
    const key = exporterKey(address, port)
    let e = this.#exporters.get(key)
    if (e === undefined) {
      if (this.#exporters.size >= this.#maxExporters) {
        // Sessions without templates or held data hold nothing worth keeping (a port change, a spoofed source).
        for (const [k, other] of this.#exporters) if (other.templates === 0 && other.held.length === 0) this.#exporters.delete(k)
        if (this.#exporters.size >= this.#maxExporters) return undefined
      }
      const copy = new Uint8Array(16)
      copy.set(address.subarray(0, 16))
      e = { address: copy, port, isV4: isIPv4Mapped(copy), domains: new Map(), templates: 0, held: [], heldBytes: 0, lastSeenMs: 0, decoded: false }
      this.#exporters.set(key, e)
    }
    return e
  }

  /** The state of an observation domain / source id; undefined when the exporter has too many. */
  #domain(exporter: Exporter, protocol: FlowProtocol, id: number): Domain | undefined {
    const key = domainKey(protocol, id)
    let d = exporter.domains.get(key)
    if (d === undefined) {
      if (exporter.domains.size >= this.#maxDomainsPerExporter) {
        const heldFor = new Set(exporter.held.map((h) => h.domain))
        for (const [k, other] of exporter.domains) {
          const idle = other.templates.size === 0 && other.samplingRate === 0 && other.samplers === undefined && other.interfaces === undefined && other.vrfNames === undefined && other.sysInitMs === 0
          if (idle && !heldFor.has(other)) exporter.domains.delete(k)
        }
        if (exporter.domains.size >= this.#maxDomainsPerExporter) return undefined
      }
      d = { protocol, id, templates: new Map(), samplingRate: 0, samplers: undefined, interfaces: undefined, vrfNames: undefined, sysInitMs: 0 }
      exporter.domains.set(key, d)
    }
    return d
  }
}
