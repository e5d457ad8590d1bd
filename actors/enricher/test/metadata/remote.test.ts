// Remote metadata sources: a local HTTP server serves exporters (JSON, nested, mapped by JSON
// pointers), interfaces (CSV) and network attributes (JSON); the enricher picks every change up
// on its schedule, keeps the last good content when a fetch fails, and counts bad records.
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type FlowRow, flowBatchToRows, flowsDecoded } from '@flowbus/bus-schemas'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { metricSample } from '../../../../test/src/harness/metrics.js'
import { parseCsv, parseDocument, readPointer, recordsToTable } from '../../src/metadata/remote.js'
import { TableProvider } from '../../src/metadata/table.js'
import { decodedBatch } from '../flows.js'
import { type EnricherHarness, makeHarness, run, waitFor } from '../harness.js'

describe('remote document parsing', () => {
  it('reads JSON pointers (escapes, arrays) and never reaches prototype members', () => {
    const doc = { a: { 'b/c': [{ 'd~e': 7 }] } }
    expect(readPointer(doc, '/a/b~1c/0/d~0e')).toBe(7)
    expect(readPointer(doc, 'a')).toEqual(doc.a)
    expect(readPointer(doc, '/a/missing')).toBeUndefined()
    expect(readPointer({}, '/__proto__')).toBeUndefined()
    expect(readPointer({}, '/constructor')).toBeUndefined()
  })

  it('parses CSV with quotes, doubled quotes, CRLF and blank lines', () => {
    expect(parseCsv('exporter,ifIndex,description\r\n192.0.2.1,3,"Transit: ""A"", B"\r\n\r\n192.0.2.1,4,plain\n')).toEqual([
      { exporter: '192.0.2.1', ifIndex: '3', description: 'Transit: "A", B' },
      { exporter: '192.0.2.1', ifIndex: '4', description: 'plain' },
    ])
    expect(() => parseCsv('a\n"open')).toThrow(/quoted field/)
  })

  it('maps records to exporter tables and reports bad ones by index', () => {
    const records = parseDocument(JSON.stringify({ items: [{ ip: '192.0.2.0/24', host: { name: 'r1' } }, { ip: 'nope' }, { host: {} }] }), 'json', '/items')
    const result = recordsToTable('exporters', records, { subnet: '/ip', name: '/host/name' }, 'json')
    expect(result.rejected).toBe(2)
    expect(result.problems[0]).toMatch(/^record 1: /)
    expect(result.problems[1]).toMatch(/^record 2: no subnet field/)
    const provider = new TableProvider('t', result.value)
    expect(provider.exporter(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 192, 0, 2, 77]))).toEqual({ name: 'r1' })
    expect(() => parseDocument('{"items": 3}', 'json', '/items')).toThrow(/not an array/)
  })
})

/** Documents the test changes while the enricher runs. */
const served = new Map<string, { status: number; body: string }>()
let server: Server
let base: string

beforeAll(async () => {
  server = createServer((request, response) => {
    const doc = served.get(request.url ?? '')
    response.writeHead(doc?.status ?? 404, { 'content-type': 'text/plain' })
    response.end(doc?.body ?? 'not found')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
})

const harnesses: EnricherHarness[] = []
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close()
})

const exportersDoc = (name: string) => JSON.stringify({ data: { routers: [{ address: '192.0.2.1', info: { hostname: name, site: 'fra1' } }] } })
const interfacesCsv = (description: string) => `router,index,alias,speed,boundary\n192.0.2.1,1,${description},10000,external\n192.0.2.1,2,core,100000,internal\n`
const networksDoc = (name: string) => JSON.stringify([{ net: '10.0.0.0/16', label: name, asn: 'AS64500' }, { net: '10.0.1.0/24', label: 'bad', asn: 'x' }])

describe('remote sources in the running enricher', () => {
  it('picks up changing JSON exporters and CSV interfaces; keeps the last good content on failure', async () => {
    served.set('/exporters.json', { status: 200, body: exportersDoc('core1.fra') })
    served.set('/interfaces.csv', { status: 200, body: interfacesCsv('Transit: A') })
    const h = await makeHarness()
    harnesses.push(h)
    const enricher = await h.start({
      metadata: {
        remote: [
          { name: 'routers', url: `${base}/exporters.json`, kind: 'exporters', root: '/data/routers', fields: { subnet: '/address', name: '/info/hostname', site: '/info/site' }, interval: '100ms' },
          { name: 'ports', url: `${base}/interfaces.csv`, kind: 'interfaces', format: 'csv', fields: { exporter: 'router', ifIndex: 'index', description: 'alias' }, interval: '100ms' },
        ],
      },
    })
    // Rows whose ifIndexes the remote source lists, the others unnamed.
    const rowsAfter = async (first: number): Promise<FlowRow[]> => {
      const before = h.enriched.length
      await run(h.bus.publish(flowsDecoded, '192.0.2.1', decodedBatch('192.0.2.1', first, 6, { ifIndexes: [1, 2] })))
      await waitFor(() => 'an enriched batch', () => h.enriched.length > before)
      return flowBatchToRows(h.enriched[before]!.batch)
    }
    // Every source is fetched once before consuming starts.
    await waitFor(() => 'the networks source', async () => metricSample(await enricher.metrics(), 'flowbus_enricher_remote_fetches_total', { source: 'routers', outcome: 'ok' }) > 0)
    const first = await rowsAfter(0)
    expect(first[0]).toMatchObject({ ExporterName: 'core1.fra', ExporterSite: 'fra1' })
    const in1 = first.find((r) => r.InIf === 1)!
    expect(in1).toMatchObject({ InIfDescription: 'Transit: A', InIfSpeed: 10000, InIfBoundary: 1, InIfName: '1' })
    expect(first.find((r) => r.InIf === 2)).toMatchObject({ InIfDescription: 'core', InIfBoundary: 2 })

    served.set('/exporters.json', { status: 200, body: exportersDoc('core2.fra') })
    served.set('/interfaces.csv', { status: 200, body: interfacesCsv('Transit: B') })
    let later: FlowRow[] = []
    let id = 100
    await waitFor(
      () => `new remote content (${JSON.stringify(later[0])})`,
      async () => {
        later = await rowsAfter((id += 10))
        return later[0]!.ExporterName === 'core2.fra' && later.find((r) => r.InIf === 1)?.InIfDescription === 'Transit: B'
      },
    )
    // A failing source keeps its last good content.
    served.set('/exporters.json', { status: 500, body: 'oops' })
    await waitFor(() => 'a failed fetch', async () => metricSample(await enricher.metrics(), 'flowbus_enricher_remote_fetches_total', { source: 'routers', outcome: 'failed' }) > 0)
    expect((await rowsAfter(500))[0]).toMatchObject({ ExporterName: 'core2.fra' })
  })

  it('swaps network attributes served remotely into the networks stage, skipping bad records', async () => {
    served.set('/networks.json', { status: 200, body: networksDoc('office') })
    const h = await makeHarness()
    harnesses.push(h)
    const enricher = await h.start({
      metadata: { remote: [{ name: 'nets', url: `${base}/networks.json`, kind: 'networks', fields: { prefix: '/net', name: '/label' }, interval: '100ms' }] },
      networks: { '10.0.0.0/8': { site: 'lab' } },
      asn: { asProviders: ['networks'] },
    })
    const rowsAfter = async (first: number): Promise<FlowRow[]> => {
      const before = h.enriched.length
      await run(h.bus.publish(flowsDecoded, '192.0.2.1', decodedBatch('192.0.2.1', first, 4)))
      await waitFor(() => 'an enriched batch', () => h.enriched.length > before)
      return flowBatchToRows(h.enriched[before]!.batch)
    }
    // Source addresses are 10.0.x.y: the remote /16 wins over the configured /8 and inherits its site.
    expect((await rowsAfter(0))[0]).toMatchObject({ SrcNetName: 'office', SrcNetSite: 'lab', SrcAS: 64500 })
    expect(metricSample(await enricher.metrics(), 'flowbus_enricher_remote_rejected_records_total', { source: 'nets' })).toBeGreaterThan(0)
    served.set('/networks.json', { status: 200, body: networksDoc('branch') })
    let id = 10
    await waitFor(
      () => 'the new network name',
      async () => (await rowsAfter((id += 10)))[0]!.SrcNetName === 'branch',
    )
  })
})
