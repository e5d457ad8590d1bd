// The decoder actor on the in-process bus, end to end: raw batches in, flow batches and counter
// samples out, inputs acknowledged, bad datagrams counted, templates shared through the bucket.
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type FlowBatch,
  type FlowRow,
  type InterfaceCounters,
  countersInterfaces,
  type RawPacket,
  type RawPacketBatch,
  flowBatchToRows,
  flowsDecoded,
  flowsRaw,
  exporterOptions,
  sniffProtocol,
  templates,
} from '@flowbus/bus-schemas'
import {
  type BusService,
  type HttpEndpoint,
  type ResolvedConfig,
  configSchema,
  loadConfig,
  makeBus,
  makeMetrics,
  runActors,
} from '@flowbus/runtime'
import { Effect, Fiber, Scope, Exit } from 'effect'
import { afterEach, describe, expect, it } from 'vitest'
import { metricSample } from '../../../test/src/harness/metrics.js'
// The in-process transport is not part of the runtime's public surface; tests reach for it.
import { createMemoryBus } from '../../runtime/src/bus/memory.js'
import { decoderActor } from '../src/actor.js'
import { rawPackets } from './captures.js'
import { DecodeTally } from '../src/metrics.js'
import { createDecoder } from '../src/protocols.js'
import { bytes, concat, EXPORTER, ipfix, set, template } from './netflow/packets.js'



const waitFor = async (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await sleep(10)
  }
}

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** A hand-built datagram from 192.0.2.1 port 4739, received now. */
const builtPacket = (payload: Uint8Array): RawPacket => ({
  exporterAddress: EXPORTER,
  exporterPort: 4739,
  receivedNs: BigInt(Date.now()) * 1_000_000n,
  protocol: sniffProtocol(payload),
  payload,
})

interface Harness {
  bus: BusService
  memory: ReturnType<typeof createMemoryBus>
  decoded: { key: string; batch: FlowBatch }[]
  counters: { key: string; counters: InterfaceCounters[] }[]
  rows: () => FlowRow[]
  startDecoder: (section?: Record<string, unknown>, maxMessageBytes?: number) => Promise<{ metrics: () => Promise<string>; stop: () => Promise<void> }>
  close: () => Promise<void>
}

const harnesses: Harness[] = []
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close()
})

const makeHarness = async (): Promise<Harness> => {
  const memory = createMemoryBus()
  const resolved = loadConfig(configSchema([decoderActor]), { env: {} }) as ResolvedConfig
  const bus = makeBus(memory.connect(), resolved.bus, makeMetrics())
  const scope = await run(Scope.make())
  const decoded: { key: string; batch: FlowBatch }[] = []
  await run(
    bus.subscribe(flowsDecoded, { group: 'test-reader' }, (m) => Effect.sync(() => decoded.push({ key: m.key, batch: m.value }))).pipe(
      Scope.extend(scope),
    ),
  )
  const counters: { key: string; counters: InterfaceCounters[] }[] = []
  await run(
    bus
      .subscribe(countersInterfaces, { group: 'test-reader' }, (m) => Effect.sync(() => counters.push({ key: m.key, counters: m.value.counters })))
      .pipe(Scope.extend(scope)),
  )
  const stops: (() => Promise<void>)[] = []
  const harness: Harness = {
    bus,
    memory,
    decoded,
    counters,
    rows: () => decoded.flatMap((d) => flowBatchToRows(d.batch)),
    startDecoder: async (section = {}, maxMessageBytes) => {
      const transport = memory.connect()
      // A decoder whose bus takes smaller messages than the test's, to make its output too large.
      if (maxMessageBytes !== undefined) Object.defineProperty(transport, 'maxMessageBytes', { value: maxMessageBytes })
      const withSection = { ...resolved, http: { listen: '127.0.0.1:0' }, decoder: { ...(resolved.decoder as object), ...section } }
      let endpoint: HttpEndpoint | undefined
      const fiber = Effect.runFork(
        runActors({ actors: [decoderActor], config: withSection as ResolvedConfig, transport, onReady: (e) => (endpoint = e) }),
      )
      await waitFor(() => 'the decoder to start', () => endpoint !== undefined)
      const url = `http://127.0.0.1:${endpoint!.address!.port}/metrics`
      const stop = async () => {
        await run(Fiber.interrupt(fiber))
      }
      stops.push(stop)
      return { metrics: async () => (await fetch(url)).text(), stop }
    },
    close: async () => {
      for (const stop of stops) await stop()
      await run(Scope.close(scope, Exit.void))
    },
  }
  harnesses.push(harness)
  return harness
}

const publishRaw = (bus: BusService, packets: RawPacket[]) => {
  const batch: RawPacketBatch = { receiver: 'test', packets }
  return run(bus.publish(flowsRaw, '192.0.2.1', batch))
}

describe('decoder actor on the memory bus', () => {
  it('decodes raw batches into flow batches keyed by exporter, acknowledging the input', async () => {
    const h = await makeHarness()
    const decoder = await h.startDecoder()
    const v5 = rawPackets('flow-decoder-netflow/nfv5.pcap')
    const sflow = rawPackets('flow-decoder-sflow/data-sflow-ipv4-data.pcap')
    await publishRaw(h.bus, [...v5, ...sflow])
    await waitFor(() => `30 flows, got ${h.rows().length}`, () => h.rows().length >= 30)
    expect(new Map(h.decoded.map((d) => [d.key, d.batch.count]))).toEqual(
      new Map([
        ['10.19.144.41', 29],
        ['192.0.2.100', 1],
      ]),
    )
    expect(h.rows()[0]).toMatchObject({ SrcAddr: '161.202.212.212', DstAddr: '202.152.70.24', Bytes: 133 })
    await waitFor(
      () => 'the raw batch to be acknowledged',
      async () => metricSample(await decoder.metrics(), 'flowbus_bus_acked_total', { subject: 'flows.raw.v1', group: 'decoder' }) === 1,
    )
    const metrics = await decoder.metrics()
    expect(metricSample(metrics, 'flowbus_decoder_packets_total', { exporter: '10.19.144.41', protocol: 'netflow-v5' })).toBe(1)
    expect(metricSample(metrics, 'flowbus_decoder_flows_total', { exporter: '10.19.144.41', protocol: 'netflow-v5' })).toBe(29)
    expect(metricSample(metrics, 'flowbus_actor_received_total', { actor: 'decoder', kind: 'packets' })).toBe(2)
    expect(metricSample(metrics, 'flowbus_actor_emitted_total', { actor: 'decoder', kind: 'flows' })).toBe(30)
  })

  it('publishes sFlow counter samples on counters.interfaces, keyed by exporter', async () => {
    const h = await makeHarness()
    await h.startDecoder()
    // An sFlow v5 datagram from agent 192.0.2.9 with one counter sample: generic interface
    // counters of ifIndex 7 (RFC 3176 / sFlow v5 counters_sample, record format 1, 88 bytes).
    const words: number[] = [5, 1, 0xc0000209, 0, 42, 1000, 1]
    words.push(2, 12 + 8 + 88, 3, 7, 1, 1, 88)
    words.push(7, 6, 0, 1_000_000_000, 1, 3, 0, 123_456, 10, 2, 1, 0, 0, 0, 0, 654_321, 20, 4, 3, 0, 0, 0)
    const payload = new Uint8Array(words.length * 4)
    const view = new DataView(payload.buffer)
    words.forEach((w, i) => view.setUint32(i * 4, w))
    const [template] = rawPackets('flow-decoder-sflow/data-sflow-ipv4-data.pcap')
    await publishRaw(h.bus, [{ ...template!, protocol: sniffProtocol(payload), payload }])
    await waitFor(() => 'a counters batch', () => h.counters.length > 0)
    expect(h.counters[0]!.key).toBe('192.0.2.100')
    expect(h.counters[0]!.counters).toHaveLength(1)
    expect(h.counters[0]!.counters[0]).toMatchObject({ ifIndex: 7, ifType: 6, ifSpeed: 1_000_000_000, inOctets: 123_456, outOctets: 654_321, inUnicastPackets: 10, outUnicastPackets: 20 })
    expect(h.decoded).toHaveLength(0)
  })

  it('splits an exporter\'s flows into messages of the configured size', async () => {
    const h = await makeHarness()
    await h.startDecoder({ maxFlowsPerMessage: 40 })
    const v5 = rawPackets('flow-decoder-netflow/nfv5.pcap')
    await publishRaw(h.bus, [v5[0]!, v5[0]!, v5[0]!])
    await waitFor(() => `87 flows, got ${h.rows().length}`, () => h.rows().length >= 87)
    expect(h.decoded.map((d) => d.batch.count)).toEqual([58, 29])
  })

  it('splits a batch the bus finds too large until its halves fit', async () => {
    const h = await makeHarness()
    // 87 NetFlow v5 flows encode to about 4 KB; each 29-flow datagram to about 1.5 KB.
    const decoder = await h.startDecoder({}, 2500)
    const [v5] = rawPackets('flow-decoder-netflow/nfv5.pcap')
    await publishRaw(h.bus, [v5!, v5!, v5!])
    await waitFor(() => `87 flows, got ${h.rows().length}`, () => h.rows().length >= 87)
    expect(h.decoded.length).toBeGreaterThan(1)
    expect(h.decoded.every((d) => d.batch.count < 87)).toBe(true)
    expect(h.rows()).toEqual([...Array(3)].flatMap(() => h.rows().slice(0, 29)))
    await waitFor(
      () => 'every message counted',
      async () => metricSample(await decoder.metrics(), 'flowbus_actor_emitted_total', { actor: 'decoder', kind: 'batches' }) === h.decoded.length,
    )
    expect(metricSample(await decoder.metrics(), 'flowbus_bus_deadlettered_total')).toBe(0)
  })

  it('rate-limits an exporter, kept flows carrying the dropped flows\' weight in SamplingRate', async () => {
    const h = await makeHarness()
    const decoder = await h.startDecoder({ rateLimit: 10 })
    const [v5] = rawPackets('flow-decoder-netflow/nfv5.pcap')
    await publishRaw(h.bus, [v5!, v5!, v5!])
    await waitFor(
      () => 'the raw batch to be acknowledged',
      async () => metricSample(await decoder.metrics(), 'flowbus_bus_acked_total', { subject: 'flows.raw.v1', group: 'decoder' }) === 1,
    )
    // One raw batch of one exporter, under the split size: one flows message.
    await waitFor(() => 'the decoded batch', () => h.decoded.length === 1)
    const rows = h.rows()
    const dropped = metricSample(await decoder.metrics(), 'flowbus_decoder_rate_limited_flows_total', { exporter: '10.19.144.41' })
    expect(rows.length).toBeLessThan(87)
    expect(rows.length + dropped).toBe(87)
    // Each kept flow stands for itself and the flows dropped before it (v5 SamplingRate 0 = 1).
    const weight = rows.reduce((n, r) => n + Math.max(1, r.SamplingRate as number), 0)
    expect(weight).toBeLessThanOrEqual(87)
    expect(weight).toBeGreaterThan(87 - 10)
    expect(metricSample(await decoder.metrics(), 'flowbus_actor_dropped_total', { actor: 'decoder', reason: 'rate-limit' })).toBe(dropped)
  })

  it('counts bad datagrams per exporter and reason and decodes the rest of the batch', async () => {
    const h = await makeHarness()
    const decoder = await h.startDecoder()
    const [good] = rawPackets('flow-decoder-netflow/nfv5.pcap')
    const truncated: RawPacket = { ...good!, payload: good!.payload.subarray(0, 30) }
    const unknown: RawPacket = { ...good!, protocol: sniffProtocol(Uint8Array.of(1, 2, 3, 4)), payload: Uint8Array.of(1, 2, 3, 4) }
    await publishRaw(h.bus, [truncated, unknown, good!])
    await waitFor(() => `29 flows, got ${h.rows().length}`, () => h.rows().length >= 29)
    await waitFor(
      () => 'the error counters',
      async () => metricSample(await decoder.metrics(), 'flowbus_decoder_errors_total', { exporter: '10.19.144.41' }) === 2,
    )
    const metrics = await decoder.metrics()
    expect(metricSample(metrics, 'flowbus_decoder_errors_total', { exporter: '10.19.144.41', reason: 'bad-version' })).toBe(1)
    expect(metricSample(metrics, 'flowbus_decoder_errors_total', { exporter: '10.19.144.41', reason: 'truncated' })).toBe(1)
    expect(metricSample(metrics, 'flowbus_bus_deadlettered_total')).toBe(0)
  })

  it('stores templates in the bucket, and a second decoder decodes data with them and no resend', async () => {
    const h = await makeHarness()
    const first = await h.startDecoder()
    await publishRaw(h.bus, rawPackets('flow-decoder-netflow/template.pcap'))
    const store = await run(h.bus.state(templates))
    await waitFor(() => 'a template in the bucket', async () => (await run(store.keys)).length > 0)
    const keys = await run(store.keys)
    expect(keys.every((k) => /^[\d.]+\.\d+\.2\.\d+\.\d+$/.test(k))).toBe(true)
    await first.stop()

    const second = await h.startDecoder()
    await publishRaw(h.bus, rawPackets('flow-decoder-netflow/data.pcap'))
    await waitFor(() => `flows from data.pcap, got ${h.rows().length}`, () => h.rows().length > 0)
    const metrics = await second.metrics()
    expect(metricSample(metrics, 'flowbus_decoder_templates_loaded_total', { source: 'bucket' })).toBe(keys.length)
    expect(metricSample(metrics, 'flowbus_decoder_templates_loaded_total', { source: 'packet' })).toBe(0)
    expect(metricSample(metrics, 'flowbus_decoder_errors_total')).toBe(0)
    expect(h.rows()).toHaveLength(4)
  })

  it('deletes a withdrawn template from the bucket, and the other decoder forgets it', async () => {
    const h = await makeHarness()
    const a = await h.startDecoder()
    const b = await h.startDecoder()
    const store = await run(h.bus.state(templates))
    const templatesKnown = async (d: { metrics: () => Promise<string> }) => metricSample(await d.metrics(), 'flowbus_decoder_templates')
    const fields = [[8, 4], [12, 4], [1, 8], [2, 8]] as const
    await publishRaw(h.bus, [builtPacket(ipfix([set(2, concat(template(300, fields), template(301, fields)))], { domain: 7 }))])
    await waitFor(() => 'both templates in the bucket', async () => (await run(store.keys)).length === 2)
    // One decoder learnt them from the packet (the group gives it the exporter), the other from the bucket.
    await waitFor(() => 'both decoders to know both templates', async () => (await templatesKnown(a)) === 2 && (await templatesKnown(b)) === 2)
    const loaded = async (d: { metrics: () => Promise<string> }, source: string) =>
      metricSample(await d.metrics(), 'flowbus_decoder_templates_loaded_total', { source })
    const [owner, replica] = (await loaded(a, 'packet')) === 2 ? [a, b] : [b, a]
    expect([await loaded(owner, 'packet'), await loaded(replica, 'packet'), await loaded(replica, 'bucket')]).toEqual([2, 0, 2])

    // The exporter withdraws template 300 (IPFIX: a template record with no fields).
    await publishRaw(h.bus, [builtPacket(ipfix([set(2, bytes().u16(300).u16(0).build())], { domain: 7 }))])
    await waitFor(() => 'template 300 out of the bucket', async () => (await run(store.keys)).length === 1)
    expect((await run(store.keys))[0]).toMatch(/\.301$/)
    await waitFor(() => 'the replica to forget template 300', async () => (await templatesKnown(replica)) === 1 && (await templatesKnown(owner)) === 1)
    expect(metricSample(await owner.metrics(), 'flowbus_decoder_templates_stored_total', { outcome: 'deleted' })).toBe(1)
    expect(metricSample(await replica.metrics(), 'flowbus_decoder_templates_stored_total')).toBe(0)

    // Data for 300 is now held by its decoder; for 301 it still decodes.
    const data = (id: number) => set(id, bytes().ip('10.0.0.1').ip('10.0.0.2').u64(100).u64(1).build())
    await publishRaw(h.bus, [builtPacket(ipfix([data(300), data(301)], { domain: 7 }))])
    await waitFor(() => `one flow, got ${h.rows().length}`, () => h.rows().length === 1)
    await waitFor(() => 'data for 300 held', async () => metricSample(await owner.metrics(), 'flowbus_decoder_held_data_sets') === 1)
  })

  it('shares options data through the bucket: a second decoder has the sampling rate without the options resend', async () => {
    const files = ['options-template.pcap', 'options-data.pcap', 'template.pcap', 'data.pcap'].map((f) => rawPackets(`flow-decoder-netflow/${f}`))
    // What one decoder that saw everything gives.
    const { decoder: reference } = createDecoder({ observer: new DecodeTally() })
    const expected = files.flatMap((packets) => reference.decode(packets).flows.flatMap((o) => flowBatchToRows(o.batch)))
    expect(expected).toHaveLength(4)
    expect(expected.every((r) => Number(r.SamplingRate) > 1)).toBe(true)

    const h = await makeHarness()
    const first = await h.startDecoder()
    for (const packets of files.slice(0, 3)) await publishRaw(h.bus, packets)
    const options = await run(h.bus.state(exporterOptions))
    await waitFor(() => 'options data in the bucket', async () => (await run(options.keys)).length > 0)
    const [key] = await run(options.keys)
    expect(key).toMatch(/^[\d.]+\.\d+\.2\.\d+$/)
    const record = (await run(options.get(key!)))!
    expect(record.samplers.length + (record.samplingRate > 0 ? 1 : 0)).toBeGreaterThan(0)
    expect(metricSample(await first.metrics(), 'flowbus_decoder_options_stored_total', { outcome: 'stored' })).toBe(1)
    await first.stop()

    const second = await h.startDecoder()
    await publishRaw(h.bus, files[3]!)
    await waitFor(() => `flows from data.pcap, got ${h.rows().length}`, () => h.rows().length === 4)
    const metrics = await second.metrics()
    expect(metricSample(metrics, 'flowbus_decoder_options_loaded_total')).toBe(1)
    expect(metricSample(metrics, 'flowbus_decoder_templates_loaded_total', { source: 'packet' })).toBe(0)
    expect(h.rows().map((r) => r.SamplingRate)).toEqual(expected.map((r) => r.SamplingRate))
  })

  it('decodes held data when its template arrives through the bucket from another decoder', async () => {
    const h = await makeHarness()
    // The capture is years old: hold its data long enough not to expire it by the wall clock.
    const decoder = await h.startDecoder({ holdMaxAge: '3650d' })
    await publishRaw(h.bus, rawPackets('flow-decoder-netflow/data.pcap'))
    await waitFor(
      () => 'the data to be held',
      async () => metricSample(await decoder.metrics(), 'flowbus_decoder_held_data_sets') === 1,
    )
    expect(h.rows()).toHaveLength(0)
    // Another replica learnt the template: it only reaches this decoder through the bucket.
    const reference = await makeHarness()
    const other = await reference.startDecoder()
    await publishRaw(reference.bus, rawPackets('flow-decoder-netflow/template.pcap'))
    const otherStore = await run(reference.bus.state(templates))
    await waitFor(() => 'the template in the other bus', async () => (await run(otherStore.keys)).length > 0)
    await other.stop()
    const store = await run(h.bus.state(templates))
    for (const key of await run(otherStore.keys)) await run(store.put(key, (await run(otherStore.get(key)))!))
    await waitFor(() => `held flows, got ${h.rows().length}`, () => h.rows().length === 4)
    const metrics = await decoder.metrics()
    expect(metricSample(metrics, 'flowbus_decoder_flows_total', { protocol: 'late' })).toBe(4)
    expect(metricSample(metrics, 'flowbus_decoder_held_data_sets')).toBe(0)
  })
})
