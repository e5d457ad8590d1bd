// The multi-process scenario shared by the NATS and Kafka tests: the whole topology as separate
// processes, counted demo traffic sent while the decoder, one enricher shard and the storage process
// are each SIGKILLed and restarted; then every flow sent is stored (after deduplication) with its
// SNMP names, classification, GeoIP country, AS numbers and BMP AS path, read through GraphQL.
import { expect } from 'vitest'
import { removeDir, tempDir } from '../src/harness/process.js'
import { DemoTraffic, flowKey } from './demo-traffic.js'
import { LAYOUT, bmpSessionsUp, openTopology, sleep, waitFor } from './topology.js'

type Row = Record<string, any>

const TICKS = 60
const FLOWS_PER_TICK = 40 // per exporter
const TICK_MS = 100
/** Which member is crashed at which tick; it is restarted while traffic keeps flowing. */
const CRASHES: Readonly<Record<number, string>> = { 8: 'decoder', 24: 'enricher-1', 40: 'storage' }

export const pipelineScenario = async (bus: Record<string, unknown>): Promise<void> => {
  const dir = await tempDir('multiprocess')
  const topology = await openTopology(dir, bus, { demoRate: 0 })
  let traffic: DemoTraffic | undefined
  try {
    await Promise.all(Object.keys(LAYOUT).map((name) => topology.start(name)))
    traffic = await DemoTraffic.open({
      flowTarget: { host: '127.0.0.1', port: topology.ports.netflow },
      sflowTarget: { host: '127.0.0.1', port: topology.ports.sflow },
      remember: true,
    })
    const exporters = traffic.exporters
    await waitFor(() => 'the demo exporters\' BMP sessions', () => bmpSessionsUp(topology, exporters), 60_000)
    const from = new Date(Date.now() - 60_000).toISOString()

    const restarts: Promise<unknown>[] = []
    for (let tick = 0; tick < TICKS; tick++) {
      const crashed = CRASHES[tick]
      if (crashed) {
        await topology.crash(crashed)
        restarts.push(topology.start(crashed))
      }
      await traffic.send(FLOWS_PER_TICK)
      await sleep(TICK_MS)
    }
    await Promise.all(restarts)
    const sent = traffic.sent
    expect(traffic.keys.size).toBeGreaterThan(sent * 0.99) // random flows almost never repeat

    // Everything stored: poll the flow count, then read every row once.
    const range = () => `{ start: "${from}", end: "${new Date(Date.now() + 60_000).toISOString()}" }`
    let stored = 0
    await waitFor(
      () => `${sent} flows stored (now ${stored})`,
      async () => {
        try {
          const top = await topology.graphql(`{ topN(range: ${range()}, dimensions: ["ExporterName"], unit: FLOWS) { all { total } } }`)
          stored = top.topN.all.total as number
        } catch {
          // the storage process restarting
        }
        return stored >= sent
      },
      120_000,
    )
    await sleep(3000) // redeliveries still in flight would show as duplicates
    const rows = (await topology.graphql(`{ flows(range: ${range()}, limit: 100000) }`)).flows as Row[]
    const keys = new Set(rows.map((row) => flowKey(row as Parameters<typeof flowKey>[0])))
    const missing = [...traffic.keys].filter((k) => !keys.has(k))
    const unexpected = [...keys].filter((k) => !traffic!.keys.has(k))
    console.log(
      `multiprocess ${String(bus.transport)}: sent ${sent} flows (${traffic.keys.size} distinct), stored ${rows.length} rows (${keys.size} distinct, ${rows.length - keys.size} duplicates), missing ${missing.length}`,
    )
    expect(missing.slice(0, 5)).toEqual([])
    expect(unexpected.slice(0, 5)).toEqual([])

    // Enrichment across processes: SNMP names, classification, GeoIP, AS numbers, BMP routes.
    const problems: string[] = []
    const count = (what: string, ok: (row: Row) => boolean) => {
      const bad = rows.filter((r) => !ok(r))
      if (bad.length > 0) problems.push(`${bad.length}/${rows.length} rows without ${what}, e.g. ${JSON.stringify(bad[0])}`)
    }
    count('an exporter name', (r) => exporters.includes(r.ExporterName))
    count('interface names from SNMP', (r) => r.InIfName !== '' && r.InIfName !== String(r.InIf) && r.OutIfName !== '' && r.OutIfName !== String(r.OutIf))
    count('interface descriptions', (r) => r.InIfDescription !== '' && r.OutIfDescription !== '')
    count('a classified input interface', (r) => r.InIfBoundary === 'external' ? r.InIfProvider !== '' && r.InIfConnectivity !== '' : r.InIfConnectivity !== '')
    count('AS numbers', (r) => r.SrcAS > 0 && r.DstAS > 0)
    count('a country', (r) => r.SrcCountry !== '' || r.DstCountry !== '')
    count('a BMP AS path', (r) => (r.DstASPath as number[]).length > 0)
    if (problems.length > 0) {
      // What the enricher shards saw of their metadata and routing lookups, to tell why.
      for (const shard of ['enricher-1', 'enricher-2']) {
        const text = await topology.metrics(shard).catch(() => '')
        problems.push(`${shard}: ${text.split('\n').filter((l) => /^flowbus_enricher_(routing_lookups|metadata_holds|unknown_metadata)/.test(l)).join('; ')}`)
      }
    }
    expect(problems).toEqual([])

    // The GraphQL API answers the home page's questions.
    const home = await topology.graphql(`{ home { exporterCount } }`)
    expect(home.home.exporterCount).toBe(exporters.length)
  } finally {
    traffic?.close()
    await topology.stop()
    await removeDir(dir)
  }
}
