// The enricher actor on the in-process bus, end to end: decoded batches in, enriched batches out
// (one per decoded message, byte-identical on redelivery), static metadata on every row, the
// unknown-metadata policies, the snmp-poller's buckets and requests, the live sample and the JSON export.
import {
  type FlowRow,
  type MetadataRequestBatch,
  flowBatchCodec,
  flowBatchToRows,
  flowsDecoded,
  flowsLive,
  metadataExporters,
  metadataInterfaces,
  metadataRequests,
  parseIP,
} from '@flowbus/bus-schemas'
import { Effect, Exit, Scope } from 'effect'
import { afterEach, describe, expect, it } from 'vitest'
import { metricSample } from '../../../../test/src/harness/metrics.js'
import { akvoradoTestdata } from '../../../../test/src/harness/testdata.js'
import { jsonExportStream } from '../../src/outputs/json-export.js'
import { decodedBatch } from '../flows.js'
import { type EnricherHarness, makeHarness, run, waitFor } from '../harness.js'

const harnesses: EnricherHarness[] = []
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close()
})
const harness = async () => {
  const h = await makeHarness()
  harnesses.push(h)
  return h
}

const rowsOf = (h: EnricherHarness): FlowRow[] => h.enriched.flatMap((e) => flowBatchToRows(e.batch))

const staticMetadata = {
  exporters: [
    {
      subnet: '192.0.2.0/24',
      name: 'edge1.par',
      site: 'par1',
      role: 'peering',
      interfaces: [
        { ifIndex: 1, name: 'et-0/0/1', description: 'Transit: Cogent', speed: 100000, provider: 'cogent', connectivity: 'transit', boundary: 'external' },
        { ifIndex: 2, name: 'et-0/0/2', description: 'core', speed: 400000, boundary: 'internal' },
      ],
      defaultInterface: { speed: 10000 },
    },
    { subnet: '192.0.2.7', name: 'edge7.par' },
  ],
  defaults: { exporter: { tenant: 'acme' } },
}

describe('enricher actor on the memory bus', () => {
  it('writes static exporter and interface metadata on every row, one enriched message per decoded message', async () => {
    const h = await harness()
    const enricher = await h.start({ metadata: staticMetadata, live: { oneIn: 0 } })
    await run(h.bus.publish(flowsDecoded, '192.0.2.1', decodedBatch('192.0.2.1', 0, 500)))
    await run(h.bus.publish(flowsDecoded, '192.0.2.7', decodedBatch('192.0.2.7', 500, 500)))
    await waitFor(() => `1000 flows, got ${rowsOf(h).length}`, () => rowsOf(h).length >= 1000)
    expect(h.enriched.map((e) => [e.key, e.batch.count]).sort()).toEqual([
      ['192.0.2.1', 500],
      ['192.0.2.7', 500],
    ])
    for (const row of rowsOf(h)) {
      const id = row.Bytes as number
      if (row.ExporterAddress === '192.0.2.1') {
        expect(row).toMatchObject({ ExporterName: 'edge1.par', ExporterSite: 'par1', ExporterRole: 'peering', ExporterTenant: 'acme' })
        const inIf = [1, 2, 3][id % 3]
        expect(row.InIf).toBe(inIf)
        if (inIf === 1) expect(row).toMatchObject({ InIfName: 'et-0/0/1', InIfProvider: 'cogent', InIfConnectivity: 'transit', InIfBoundary: 1, InIfSpeed: 100000 })
        if (inIf === 2) expect(row).toMatchObject({ InIfName: 'et-0/0/2', InIfDescription: 'core', InIfBoundary: 2, InIfSpeed: 400000 })
        // Not listed: the exporter's default speed, and the ifIndex as its name (pass policy).
        if (inIf === 3) expect(row).toMatchObject({ InIfName: '3', InIfSpeed: 10000, InIfBoundary: 0 })
      } else {
        // The /32 entry wins for the name; the /24 it sits in gives what it does not set.
        expect(row).toMatchObject({ ExporterAddress: '192.0.2.7', ExporterName: 'edge7.par', ExporterSite: 'par1', ExporterTenant: 'acme' })
      }
    }
    const metrics = await enricher.metrics()
    expect(metricSample(metrics, 'flowbus_actor_received_total', { actor: 'enricher', kind: 'flows' })).toBe(1000)
    expect(metricSample(metrics, 'flowbus_actor_emitted_total', { actor: 'enricher', kind: 'flows' })).toBe(1000)
    expect(metricSample(metrics, 'flowbus_bus_acked_total', { subject: 'flows.decoded.v1', group: 'enricher' })).toBe(2)
    // ifIndex 3 has no name from any provider.
    expect(metricSample(metrics, 'flowbus_enricher_unknown_metadata_flows_total', { entity: 'interface', policy: 'pass' })).toBeGreaterThan(0)
  })

  it('runs every stage in order: metadata, classification, sampling, GeoIP, networks, AS numbers', async () => {
    const h = await harness()
    const geoip = `${akvoradoTestdata}/geoip`
    const enricher = await h.start({
      metadata: { exporters: [{ subnet: '192.0.2.1', name: 'edge1', interfaces: [{ ifIndex: 1, name: 'et-1', description: 'Transit: Zayo' }] }] },
      classification: {
        exporterRules: ['Exporter.Name matches "^edge" -> role = "edge"'],
        interfaceRules: ['Interface.Description matches "^Transit: (\\S+)" -> provider = $1, connectivity = "transit", boundary = external'],
      },
      sampling: { defaultSamplingRate: { '192.0.2.0/24': 512 } },
      geoip: { geoDatabases: [`${geoip}/GeoLite2-City-Test.mmdb`], asnDatabases: [`${geoip}/GeoLite2-ASN-Test.mmdb`], embedded: false },
      networks: { '10.0.0.0/8': { name: 'lan', asn: 64999 } },
      asn: { asProviders: ['flow', 'geoip', 'networks'] },
    })
    const batch = decodedBatch('192.0.2.1', 0, 6, { samplingRate: 0 })
    batch.setIP('DstAddr', 0, parseIP('81.2.69.142'))
    await run(h.bus.publish(flowsDecoded, '192.0.2.1', batch))
    await waitFor(() => 'enriched flows', () => rowsOf(h).length >= 6)
    const rows = rowsOf(h)
    expect(rows[0]).toMatchObject({ DstCountry: 'GB', DstGeoCity: 'London', SrcNetName: 'lan', SrcAS: 64999, SamplingRate: 512, ExporterRole: 'edge' })
    for (const row of rows.filter((r) => r.InIf === 1)) expect(row).toMatchObject({ InIfName: 'et-1', InIfProvider: 'Zayo', InIfConnectivity: 'transit', InIfBoundary: 1 })
    const metrics = await enricher.metrics()
    for (const stage of ['classification', 'sampling', 'geoip', 'networks', 'asn']) {
      expect(metrics, stage).toMatch(new RegExp(`flowbus_enricher_stage_total\\{stage="${stage}",`))
    }
  })

  it('enriches a redelivered decoded message into byte-identical output', async () => {
    const h = await harness()
    await h.start({ metadata: staticMetadata, networks: { '10.0.0.0/8': { name: 'lan', site: 'par1' } }, sampling: { defaultSamplingRate: 100 } })
    const batch = decodedBatch('192.0.2.1', 0, 500)
    const bytes = flowBatchCodec.encode(batch)
    // The same decoded message twice, as after a crash before the ack.
    await run(h.bus.publish(flowsDecoded, '192.0.2.1', flowBatchCodec.decode(bytes)))
    await run(h.bus.publish(flowsDecoded, '192.0.2.1', flowBatchCodec.decode(bytes)))
    await waitFor(() => `2 enriched messages, got ${h.enriched.length}`, () => h.enriched.length >= 2)
    const [a, b] = h.enriched.map((e) => flowBatchCodec.encode(e.batch))
    expect(Buffer.from(a!).equals(Buffer.from(b!))).toBe(true)
    expect(flowBatchToRows(h.enriched[0]!.batch)[0]).toMatchObject({ SrcNetName: 'lan', SrcNetSite: 'par1', ExporterName: 'edge1.par' })
  })

  it('applies the unknown-metadata policies: pass names by address, pass-empty leaves names empty, drop drops and counts', async () => {
    const pass = await harness()
    await pass.start()
    await run(pass.bus.publish(flowsDecoded, '198.51.100.9', decodedBatch('198.51.100.9', 0, 10)))
    await waitFor(() => 'pass flows', () => rowsOf(pass).length >= 10)
    expect(rowsOf(pass)[0]).toMatchObject({ ExporterName: '198.51.100.9', InIfName: '1', OutIfName: '2' })

    const empty = await harness()
    await empty.start({ metadata: { unknown: { policy: 'pass-empty' } } })
    await run(empty.bus.publish(flowsDecoded, '198.51.100.9', decodedBatch('198.51.100.9', 0, 10)))
    await waitFor(() => 'pass-empty flows', () => rowsOf(empty).length >= 10)
    // Empty everywhere: the columns are not even sent (absent reads as empty).
    const row = rowsOf(empty)[0]!
    expect([row.ExporterName, row.InIfName, row.OutIfName]).toEqual([undefined, undefined, undefined])
    expect(empty.enriched[0]!.batch.getString('ExporterName', 0)).toBe('')

    const drop = await harness()
    const dropper = await drop.start({ metadata: { ...staticMetadata, unknown: { policy: 'drop' } } })
    await run(drop.bus.publish(flowsDecoded, '198.51.100.9', decodedBatch('198.51.100.9', 0, 10)))
    // Known exporter, interfaces 1 and 2 known, 3 not: rows touching ifIndex 3 go.
    await run(drop.bus.publish(flowsDecoded, '192.0.2.1', decodedBatch('192.0.2.1', 100, 30)))
    await waitFor(() => 'the known exporter flows', () => rowsOf(drop).length > 0)
    await waitFor(
      () => `drops counted`,
      async () => metricSample(await dropper.metrics(), 'flowbus_enricher_dropped_flows_total', { reason: 'unknown-metadata' }) === 10 + 20,
    )
    const kept = rowsOf(drop)
    expect(kept.length).toBe(10)
    for (const row of kept) expect([row.InIf, row.OutIf].sort()).toEqual([1, 2])
  })

  it("takes names from the snmp-poller's buckets and asks for what they lack (hold policy)", async () => {
    const h = await harness()
    const requestsSeen: MetadataRequestBatch[] = []
    const scope = await run(Scope.make())
    const exporters = await run(h.bus.state(metadataExporters))
    const interfaces = await run(h.bus.state(metadataInterfaces))
    // A stand-in for the snmp-poller: answers each request by writing the buckets.
    await run(
      h.bus
        .listen(metadataRequests, (batch) => {
          requestsSeen.push(batch)
          for (const request of batch.requests) {
            const exporter = request.exporterAddress
            void run(exporters.put('203.0.113.5', { address: exporter, name: '', group: '', role: '', site: '', region: '', tenant: '', sysName: 'core1.fra', updatedUnixMs: Date.now() }))
            for (const ifIndex of request.ifIndexes) {
              void run(
                interfaces.put(`203.0.113.5.${ifIndex}`, {
                  exporterAddress: exporter,
                  ifIndex,
                  name: `xe-0/0/${ifIndex}`,
                  description: `port ${ifIndex}`,
                  speed: 10000,
                  provider: '',
                  connectivity: '',
                  boundary: 2,
                  updatedUnixMs: Date.now(),
                }),
              )
            }
          }
        })
        .pipe(Scope.extend(scope)),
    )
    try {
      const enricher = await h.start({ metadata: { unknown: { policy: 'hold', holdFor: '10s' }, snmp: { requestInterval: '50ms' } } })
      await run(h.bus.publish(flowsDecoded, '203.0.113.5', decodedBatch('203.0.113.5', 0, 20, { ifIndexes: [4, 5] })))
      await waitFor(() => 'held flows', () => rowsOf(h).length >= 20)
      for (const row of rowsOf(h)) {
        expect(row.ExporterName).toBe('core1.fra')
        expect(row.InIfName).toBe(`xe-0/0/${row.InIf}`)
        expect(row).toMatchObject({ InIfSpeed: 10000, InIfBoundary: 2 })
      }
      expect(requestsSeen.length).toBe(1)
      expect(requestsSeen[0]!.requests).toEqual([{ exporterAddress: parseIP('203.0.113.5'), ifIndexes: [4, 5] }])
      const metrics = await enricher.metrics()
      expect(metricSample(metrics, 'flowbus_enricher_metadata_holds_total', { outcome: 'resolved' })).toBe(1)
      expect(metricSample(metrics, 'flowbus_enricher_metadata_requests_total', { kind: 'interfaces' })).toBe(2)
    } finally {
      await run(Scope.close(scope, Exit.void))
    }
  })

  it('holds a batch at most holdFor when nobody answers, once per exporter, and backs off routing without bmp-rib', async () => {
    const h = await harness()
    const enricher = await h.start({ metadata: { unknown: { policy: 'hold', holdFor: '300ms' } }, routing: { backoffMin: '1m' } })
    await run(h.bus.publish(flowsDecoded, '198.51.100.9', decodedBatch('198.51.100.9', 0, 10)))
    await run(h.bus.publish(flowsDecoded, '198.51.100.9', decodedBatch('198.51.100.9', 10, 10)))
    await waitFor(() => 'held flows', () => rowsOf(h).length >= 20)
    // After the hold, the pass policy's names.
    expect(rowsOf(h)[0]).toMatchObject({ ExporterName: '198.51.100.9', InIfName: '1' })
    const metrics = await enricher.metrics()
    expect(metricSample(metrics, 'flowbus_enricher_metadata_holds_total', { outcome: 'timeout' })).toBe(1)
    expect(metricSample(metrics, 'flowbus_enricher_metadata_holds_total', { outcome: 'resolved' })).toBe(0)
    // The first batch found no routing responder; the second did not ask.
    expect(metricSample(metrics, 'flowbus_enricher_routing_lookups_total', { outcome: 'no-responders' })).toBe(1)
    expect(metricSample(metrics, 'flowbus_enricher_routing_lookups_total', { outcome: 'backoff' })).toBe(1)
  })

  it('sends one flow in N to flows.live and every flow to the JSON export, with the column names as keys', async () => {
    const h = await harness()
    const scope = await run(Scope.make())
    const live: FlowRow[] = []
    const exported: string[] = []
    await run(h.bus.listen(flowsLive, (batch) => void live.push(...flowBatchToRows(batch))).pipe(Scope.extend(scope)))
    await run(
      h.bus
        .subscribe(jsonExportStream('flows.json'), { group: 'external' }, (m) => Effect.sync(() => void exported.push(...new TextDecoder().decode(m.value).split('\n').filter(Boolean))))
        .pipe(Scope.extend(scope)),
    )
    try {
      await h.start({ metadata: staticMetadata, live: { oneIn: 10 }, export: { enabled: true } })
      await run(h.bus.publish(flowsDecoded, '192.0.2.1', decodedBatch('192.0.2.1', 0, 500)))
      await run(h.bus.publish(flowsDecoded, '192.0.2.1', decodedBatch('192.0.2.1', 500, 205)))
      await waitFor(() => `exported ${exported.length}`, () => exported.length >= 705 && live.length >= 70)
      expect(exported.map((line) => JSON.parse(line))).toEqual(rowsOf(h))
      expect(live.length).toBe(70)
      expect(live.map((r) => r.Bytes)).toEqual(Array.from({ length: 70 }, (_, i) => i * 10 + 9))
      expect(live[0]).toMatchObject({ ExporterName: 'edge1.par' })
    } finally {
      await run(Scope.close(scope, Exit.void))
    }
  })
})
