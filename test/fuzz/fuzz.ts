// Mutation fuzzing of the flow decoders: real captures bent (bit flips, byte changes, truncation,
// length-field lies, template bombs) and fed to each protocol decoder and to the shared decode loop.

import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { FlowBatch, FlowProtocol, type RawPacket, sniffProtocol } from '@flowbus/bus-schemas'
import { type DecodeErrorReason, type DecodeObserver, type DecodeSink, type Datagram, createDecoder } from '@flowbus/decoder'
import { TemplateDecoder, decodeNetflowV5 } from '../../actors/decoder/src/netflow/index.js'
import { decodeSflow } from '../../actors/decoder/src/sflow/index.js'
import { readPcapUdpAll } from '@flowbus/runtime'
import { SeededRandom } from '../src/traffic/prng.js'
import { akvoradoTestdata } from '../src/harness/testdata.js'

export type FuzzProtocol = 'netflow-v5' | 'netflow-v9' | 'ipfix' | 'sflow'
export const FUZZ_PROTOCOLS: readonly FuzzProtocol[] = ['netflow-v5', 'netflow-v9', 'ipfix', 'sflow']

export const TESTDATA = akvoradoTestdata

/** Every reason a decoder may report (DecodeErrorReason); anything else is a defect. */
const KNOWN_REASONS: ReadonlySet<string> = new Set<DecodeErrorReason>([
  'truncated',
  'bad-version',
  'bad-length',
  'bad-template',
  'missing-template',
  'template-limit',
  'bad-record',
  'bad-frame',
])

const PROTOCOL_OF: Readonly<Record<FuzzProtocol, FlowProtocol>> = {
  'netflow-v5': FlowProtocol.NETFLOW_V5,
  'netflow-v9': FlowProtocol.NETFLOW_V9,
  ipfix: FlowProtocol.IPFIX,
  sflow: FlowProtocol.SFLOW_V5,
}

/** The real datagrams of each protocol in the testdata captures, in file order (templates before data). */
export function loadCorpus(dir = TESTDATA): Record<FuzzProtocol, Uint8Array[]> {
  const corpus: Record<FuzzProtocol, Uint8Array[]> = { 'netflow-v5': [], 'netflow-v9': [], ipfix: [], sflow: [] }
  const files: string[] = []
  for (const sub of ['flow-decoder-netflow', 'flow-decoder-sflow']) {
    const names = readdirSync(join(dir, sub)).filter((f) => f.endsWith('.pcap'))
    // Template captures first, so that data captures find their templates.
    names.sort((a, b) => Number(!/template/.test(a)) - Number(!/template/.test(b)) || a.localeCompare(b))
    files.push(...names.map((n) => join(dir, sub, n)))
  }
  for (const file of files) {
    for (const record of readPcapUdpAll(readFileSync(file), file).records) {
      const protocol = FUZZ_PROTOCOLS.find((p) => PROTOCOL_OF[p] === sniffProtocol(record.payload))
      if (protocol) corpus[protocol].push(new Uint8Array(record.payload))
    }
  }
  return corpus
}

export type MutationKind = 'bit-flips' | 'byte-changes' | 'truncation' | 'length-lie' | 'template-bomb' | 'sample-bomb'

/** One mutated datagram and whether a correct decoder must report at least one error for it. */
export interface Mutation {
  readonly kind: MutationKind
  readonly payload: Uint8Array
  /** Why an error is required (undefined: the mutation may well be a valid datagram). */
  readonly mustFail?: string
}

export interface FuzzResult {
  readonly protocol: FuzzProtocol
  readonly packets: number
  readonly byKind: Record<string, number>
  readonly flows: number
  /** Errors the protocol decoder reported through its sink, per reason. */
  readonly errors: Record<string, number>
  /** Errors the shared decode loop reported to its observer (the actor's metrics), per reason. */
  readonly loopErrors: Record<string, number>
  readonly loopPackets: number
  /** Exceptions that escaped a decoder: must stay empty. */
  readonly exceptions: string[]
  /** Datagrams that had to fail but were accepted silently: must stay empty. */
  readonly silent: string[]
  /** Reasons outside DecodeErrorReason, rows with impossible values: must stay empty. */
  readonly defects: string[]
  readonly seconds: number
}

const hex = (b: Uint8Array): string => Buffer.from(b.subarray(0, 256)).toString('hex')

const EXPORTER = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10])
const TIME = 1_700_000_000

/**
 * Decodes `packets` mutated datagrams of one protocol, each through the protocol's own decoder
 * (exceptions caught and recorded with the datagram) and through the decode loop the actor and
 * `flowbus decode` share (its observer is the actor's metrics). Deterministic for a given seed.
 */
export function fuzzProtocol(protocol: FuzzProtocol, corpus: readonly Uint8Array[], packets: number, seed: number): FuzzResult {
  if (corpus.length === 0) throw new Error(`no ${protocol} datagram in the corpus`)
  const started = performance.now()
  const random = new SeededRandom(seed)
  const byKind: Record<string, number> = {}
  const errors: Record<string, number> = {}
  const loopErrors: Record<string, number> = {}
  const exceptions: string[] = []
  const silent: string[] = []
  const defects: string[] = []
  let flows = 0
  let loopPackets = 0

  let packetErrors = 0
  const flowBatch = new FlowBatch(1024)
  const sink: DecodeSink = {
    flows: flowBatch,
    counters: [],
    error(reason, detail) {
      packetErrors++
      errors[reason] = (errors[reason] ?? 0) + 1
      if (!KNOWN_REASONS.has(reason)) defects.push(`unknown reason ${reason}: ${detail}`)
    },
  }
  // Held data released later, or expired, comes through the late sink: count it the same way.
  const lateSink = (): DecodeSink => sink
  let templates = new TemplateDecoder({ lateSink })
  // The loop tells each packet before decoding it, so its errors are attributed to that packet.
  let loopErrorsOf: number[] = []
  const observer: DecodeObserver = {
    packet: () => {
      loopPackets++
      loopErrorsOf.push(0)
    },
    flows: () => undefined,
    error: (_exporter, _protocol, reason) => {
      if (loopErrorsOf.length > 0) loopErrorsOf[loopErrorsOf.length - 1]!++
      loopErrors[reason] = (loopErrors[reason] ?? 0) + 1
    },
    sequence: () => undefined,
    rateLimited: () => undefined,
    counterSamples: () => undefined,
  }
  let loop = createDecoder({ observer })

  const direct = (payload: Uint8Array): void => {
    const d: Datagram = { exporterAddress: EXPORTER, exporterPort: 2055, timeReceived: TIME, payload }
    if (protocol === 'netflow-v5') decodeNetflowV5(d, sink)
    else if (protocol === 'sflow') decodeSflow(d, sink)
    else templates.decode(d, sink)
  }
  const raw = (payload: Uint8Array): RawPacket => ({
    exporterAddress: EXPORTER,
    exporterPort: 2055,
    receivedNs: BigInt(TIME) * 1_000_000_000n,
    protocol: sniffProtocol(payload),
    payload,
  })
  // The corpus (with its templates), replayed before each chunk so data mutations keep meeting
  // real templates.
  const replayCorpus = (): void => {
    for (const payload of corpus) direct(payload)
    loop.decoder.decode(corpus.map(raw))
    flowBatch.clear()
    sink.counters.length = 0
  }

  const CHUNK = 64
  for (let i = 0; i < packets; i += CHUNK) {
    // Bound the template state (and the decode code generated per template) over long runs.
    if (i > 0 && i % 49_984 === 0) {
      templates = new TemplateDecoder({ lateSink })
      loop = createDecoder({ observer })
    }
    replayCorpus()
    const chunk: Mutation[] = []
    const directErrors: number[] = []
    for (let j = 0; j < CHUNK && i + j < packets; j++) {
      const mutation = mutate(protocol, corpus[random.int(0, corpus.length - 1)]!, random)
      chunk.push(mutation)
      byKind[mutation.kind] = (byKind[mutation.kind] ?? 0) + 1
      const before = flowBatch.count
      packetErrors = 0
      try {
        direct(mutation.payload)
      } catch (error) {
        exceptions.push(`${mutation.kind}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n  datagram ${hex(mutation.payload)}`)
      }
      directErrors.push(packetErrors)
      flows += flowBatch.count - before
      if (flowBatch.count > before) checkRows(flowBatch, before, defects)
    }
    loopErrorsOf = []
    try {
      loop.decoder.decode(chunk.map((m) => raw(m.payload)))
    } catch (error) {
      exceptions.push(`decode loop: ${error instanceof Error ? error.message : String(error)}`)
    }
    chunk.forEach((mutation, j) => {
      if (mutation.mustFail !== undefined && (directErrors[j] === 0 || !(loopErrorsOf[j]! > 0))) {
        silent.push(`${mutation.kind} (${mutation.mustFail}): decoder errors ${directErrors[j]}, loop errors ${loopErrorsOf[j]}\n  datagram ${hex(mutation.payload)}`)
      }
    })
  }
  if ((loopErrors.exception ?? 0) > 0) defects.push(`the decode loop caught ${loopErrors.exception} exceptions`)
  return {
    protocol,
    packets,
    byKind,
    flows,
    errors,
    loopErrors,
    loopPackets,
    exceptions: exceptions.slice(0, 20),
    silent: silent.slice(0, 20),
    defects: defects.slice(0, 20),
    seconds: (performance.now() - started) / 1000,
  }
}

/** Rows a decoder wrote must hold plausible values: byte/packet counts finite and not negative. */
function checkRows(batch: FlowBatch, from: number, defects: string[]): void {
  for (const column of ['Bytes', 'Packets'] as const) {
    if (!batch.has(column)) continue
    const values = batch.u64(column)
    for (let r = from; r < batch.count; r++) {
      const v = values[r]!
      if (!Number.isFinite(v) || v < 0) defects.push(`${column} ${v} in row ${r}`)
    }
  }
}

/** One mutation of a real datagram, chosen at random among the kinds that apply to the protocol. */
export function mutate(protocol: FuzzProtocol, original: Uint8Array, random: SeededRandom): Mutation {
  const templated = protocol === 'netflow-v9' || protocol === 'ipfix'
  const roll = random.next()
  if (roll < 0.3) return bitFlips(original, random)
  if (roll < 0.5) return byteChanges(original, random)
  if (roll < 0.65) return truncation(protocol, original, random)
  if (roll < 0.85) return lengthLie(protocol, original, random) ?? bitFlips(original, random)
  return templated ? templateBomb(protocol, random) : sampleBomb(protocol, original, random)
}

function bitFlips(original: Uint8Array, random: SeededRandom): Mutation {
  const payload = new Uint8Array(original)
  const flips = random.int(1, 8)
  for (let i = 0; i < flips; i++) payload[random.int(0, payload.length - 1)]! ^= 1 << random.int(0, 7)
  return { kind: 'bit-flips', payload }
}

const INTERESTING = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe]

function byteChanges(original: Uint8Array, random: SeededRandom): Mutation {
  const payload = new Uint8Array(original)
  const changes = random.int(1, 4)
  for (let i = 0; i < changes; i++) {
    const at = random.int(0, payload.length - 1)
    payload[at] = random.next() < 0.5 ? random.pick(INTERESTING) : random.int(0, 255)
  }
  return { kind: 'byte-changes', payload }
}

/** Offsets where each NetFlow v9/IPFIX set starts, and the end of the last one. */
function setBoundaries(protocol: FuzzProtocol, b: Uint8Array): number[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const header = protocol === 'ipfix' ? 16 : 20
  const end = protocol === 'ipfix' ? Math.min(b.length, dv.getUint16(2)) : b.length
  const out = [header]
  for (let pos = header; pos + 4 <= end; ) {
    const length = dv.getUint16(pos + 2)
    if (length < 4 || pos + length > end) break
    pos += length
    out.push(pos)
  }
  return out
}

function truncation(protocol: FuzzProtocol, original: Uint8Array, random: SeededRandom): Mutation {
  const cut = random.int(0, original.length - 1)
  const payload = original.slice(0, cut)
  let mustFail: string | undefined = `cut to ${cut} of ${original.length} bytes`
  const dv = new DataView(original.buffer, original.byteOffset, original.byteLength)
  if (protocol === 'netflow-v5' && original.length >= 4 && cut >= 24 + 48 * dv.getUint16(2)) mustFail = undefined
  // The v9 header count is advisory (exporters get it wrong): a cut between two flowsets leaves a
  // valid, shorter datagram; fewer than 4 bytes after the last flowset are taken as padding.
  if (protocol === 'netflow-v9' && setBoundaries(protocol, original).some((b) => cut >= b && cut < b + 4)) mustFail = undefined
  // sFlow has no total length: bytes after the announced samples are ignored (some of the
  // testdata captures carry such a tail), so only a cut inside them must fail.
  if (protocol === 'sflow' && cut >= sflowSamplesEnd(original)) mustFail = undefined
  return { kind: 'truncation', payload, mustFail }
}

/** Offset of the sFlow samples list (after the header, whose agent address is 4 or 16 bytes). */
const sflowSamplesAt = (dv: DataView): number => (dv.byteLength >= 8 && dv.getUint32(4) === 2 ? 40 : 28)

/** Where the samples the sFlow header announces end (the datagram's length if they do not fit). */
function sflowSamplesEnd(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  let pos = sflowSamplesAt(dv)
  if (pos > b.length) return b.length
  const count = dv.getUint32(pos - 4)
  for (let i = 0; i < count; i++) {
    if (pos + 8 > b.length) return b.length
    pos += 8 + dv.getUint32(pos + 4)
    if (pos > b.length) return b.length
  }
  return pos
}

/** A length or count field set to a value the datagram cannot satisfy. */
function lengthLie(protocol: FuzzProtocol, original: Uint8Array, random: SeededRandom): Mutation | undefined {
  const payload = new Uint8Array(original)
  const dv = new DataView(payload.buffer)
  if (protocol === 'netflow-v5') {
    if (payload.length < 24) return undefined
    const room = Math.floor((payload.length - 24) / 48)
    const count = random.next() < 0.5 ? room + random.int(1, 5) : random.int(room + 1, 0xffff)
    dv.setUint16(2, count)
    return { kind: 'length-lie', payload, mustFail: `count ${count} with room for ${room} records` }
  }
  if (protocol === 'netflow-v9' || protocol === 'ipfix') {
    const bounds = setBoundaries(protocol, payload)
    if (protocol === 'ipfix' && random.next() < 0.3) {
      const length = random.next() < 0.5 ? payload.length + random.int(1, 2000) : random.int(0, 15)
      dv.setUint16(2, Math.min(length, 0xffff))
      return { kind: 'length-lie', payload, mustFail: `message length ${length} for ${payload.length} bytes` }
    }
    if (bounds.length < 2) return undefined
    const i = random.int(0, bounds.length - 2)
    const at = bounds[i]!
    const left = payload.length - at
    const length = random.next() < 0.5 ? Math.min(0xffff, left + random.int(1, 3000)) : random.int(0, 3)
    dv.setUint16(at + 2, length)
    return { kind: 'length-lie', payload, mustFail: `set at ${at} of length ${length}, ${left} bytes left` }
  }
  // sFlow: the sample count, or one sample's length, beyond what the datagram holds.
  if (payload.length < 8) return undefined
  const first = sflowSamplesAt(dv)
  const samplesAt = first - 4
  if (payload.length < first) return undefined
  if (random.next() < 0.5) {
    // Each sample takes at least 8 bytes (format and length): more than fit.
    const count = Math.floor((payload.length - first) / 8) + random.int(1, 1000)
    dv.setUint32(samplesAt, count)
    return { kind: 'length-lie', payload, mustFail: `${count} samples announced in ${payload.length - first} bytes` }
  }
  if (payload.length < first + 8) return undefined
  const left = payload.length - first - 8
  const length = left + 4 * random.int(1, 1000)
  dv.setUint32(first + 4, length)
  return { kind: 'length-lie', payload, mustFail: `first sample of ${length} bytes, ${left} left` }
}

/**
 * A synthetic NetFlow v9/IPFIX datagram built to exhaust template state or decode loops: many
 * templates at once, a huge field count, zero-length fields, or a data set for such a template.
 */
function templateBomb(protocol: FuzzProtocol, random: SeededRandom): Mutation {
  const ipfix = protocol === 'ipfix'
  // Many-template bombs are costly (each template compiles its decode code) and a few suffice to
  // fill every domain to its limit: they are one bomb in eight.
  const variant = random.next() < 0.125 ? 0 : random.int(1, 3)
  const words: number[] = []
  let mustFail: string | undefined
  const templateSetId = ipfix ? 2 : 0
  if (variant === 0) {
    // Many templates in one set: 100–400 ids with 1–8 random elements; the 513th template of a
    // domain must be refused ('template-limit'), which the test checks over the whole run.
    const count = random.int(100, 400)
    const set: number[] = []
    for (let t = 0; t < count; t++) {
      const fields = random.int(1, 8)
      set.push(random.int(256, 0xffff), fields)
      for (let f = 0; f < fields; f++) set.push(random.int(1, 250), random.pick([1, 2, 4, 8, 16]))
    }
    words.push(templateSetId, 4 + set.length * 2, ...set)
  } else if (variant === 1) {
    // A field count far beyond the set: 65535 fields announced, a handful present.
    words.push(templateSetId, 4 + 4 + 4 * 4, random.int(256, 0xffff), 0xffff, 8, 4, 12, 4, 1, 4, 2, 4)
    mustFail = '65535 fields announced in a 24-byte set'
  } else if (variant === 2) {
    // More fields than any template may have (default limit 256), all present.
    const fields = random.int(300, 1000)
    const set: number[] = [random.int(256, 0xffff), fields]
    for (let f = 0; f < fields; f++) set.push(random.int(1, 250), 4)
    words.push(templateSetId, 4 + set.length * 2, ...set)
    mustFail = `template of ${fields} fields`
  } else {
    // Every field zero bytes long: a record of length 0 would make a data set loop forever.
    const id = random.int(256, 0xffff)
    const fields = random.int(1, 20)
    const set: number[] = [id, fields]
    for (let f = 0; f < fields; f++) set.push(random.int(1, 250), 0)
    words.push(templateSetId, 4 + set.length * 2, ...set)
    // Followed by a data set for that template.
    words.push(id, 4 + 32, ...new Array<number>(16).fill(0))
    mustFail = `template ${id} of ${fields} zero-length fields`
  }
  const body = new Uint8Array(words.length * 2)
  const bodyView = new DataView(body.buffer)
  words.forEach((w, i) => bodyView.setUint16(i * 2, w))
  const headerLength = ipfix ? 16 : 20
  const payload = new Uint8Array(headerLength + body.length)
  const dv = new DataView(payload.buffer)
  dv.setUint16(0, ipfix ? 10 : 9)
  if (ipfix) {
    dv.setUint16(2, Math.min(payload.length, 0xffff))
    dv.setUint32(4, TIME)
    dv.setUint32(8, random.nextUint32())
    dv.setUint32(12, random.int(0, 3)) // observation domain
  } else {
    dv.setUint16(2, 1)
    dv.setUint32(4, 1000)
    dv.setUint32(8, TIME)
    dv.setUint32(12, random.nextUint32())
    dv.setUint32(16, random.int(0, 3)) // source id
  }
  payload.set(body, headerLength)
  if (ipfix && payload.length > 0xffff) mustFail = 'message longer than 65535 bytes'
  return { kind: 'template-bomb', payload, mustFail }
}

/** sFlow/v5 equivalent of a template bomb: counts claiming millions of samples or records. */
function sampleBomb(protocol: FuzzProtocol, original: Uint8Array, random: SeededRandom): Mutation {
  const payload = new Uint8Array(original)
  const dv = new DataView(payload.buffer)
  if (protocol === 'netflow-v5') {
    if (payload.length >= 4) dv.setUint16(2, 0xffff)
    return { kind: 'sample-bomb', payload, mustFail: 'count 65535' }
  }
  const samplesAt = sflowSamplesAt(dv) - 4
  if (payload.length >= samplesAt + 4) dv.setUint32(samplesAt, 0xffffffff - random.int(0, 16))
  return { kind: 'sample-bomb', payload, mustFail: 'billions of samples announced' }
}
