// Benchmark: the highest loss-free rate from UDP datagrams to rows committed in ClickHouse, for the
// embedded shape (every actor in one process, memory bus, chDB) and the multi-process shape on NATS
// (the compose topology as OS processes). Demo traffic (the demo network's generator and encoders,
// SNMP and BMP from a demo-exporter actor) is sent at increasing rates; a step is loss-free when
// every flow sent is counted in ClickHouse within the drain time.
// Run: npm run bench -- e2e   (BENCH_SECONDS per step, BENCH_RATES="50000,100000", BENCH_SHAPES=embedded,nats,
// BENCH_DRAIN_SECONDS). Prints e2e.<shape>_loss_free_rate and e2e.<shape>_committed_rate (sustained).
import type { Socket } from 'node:dgram'
import { metricSample, startNats } from '../src/harness/index.js'
import { removeDir, tempDir } from '../src/harness/process.js'
import { DemoTraffic, sendAll } from '../multiprocess/demo-traffic.js'
import { LAYOUT, type Topology, bmpSessionsUp, openTopology, sleep, waitFor } from '../multiprocess/topology.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const RATES = (process.env.BENCH_RATES ?? '10000,25000,50000,100000,150000,200000,300000').split(',').map(Number)
const SHAPES = (process.env.BENCH_SHAPES ?? 'embedded,nats').split(',')
/** After the last datagram, how long rows may take to be committed before the step counts as lossy. */
// Short next to the step: a pipeline slower than the rate would otherwise pass by draining a
// backlog. The sustained figure is printed apart (committed_rate: flows over the time until the last
// row of the step was committed).
const DRAIN_SECONDS = Number(process.env.BENCH_DRAIN_SECONDS ?? 10)
const TICK_MS = 20

const print = (name: string, value: number, unit: string): void => console.log(`bench ${name} ${Math.round(value)} ${unit}`)

type Datagram = { socket: Socket; datagram: Uint8Array; port: number; host: string }

/** Flows stored so far (all of the table: the bench starts from an empty directory). */
const storedFlows = async (topology: Topology): Promise<number> => {
  const range = `{ start: "${new Date(Date.now() - 86_400_000).toISOString()}", end: "${new Date(Date.now() + 3_600_000).toISOString()}" }`
  const top = await topology.graphql(`{ topN(range: ${range}, dimensions: ["ExporterName"], unit: FLOWS) { all { total } } }`)
  return top.topN.all.total as number
}

/**
 * One step: encodes rate × SECONDS flows up front (so the sender is not the bottleneck), sends them
 * paced in TICK_MS slices, then waits for the rows. Returns flows sent and stored.
 */
const step = async (
  topology: Topology,
  traffic: DemoTraffic,
  rate: number,
  receiver: string,
): Promise<{ sent: number; stored: number; seconds: number; committedSeconds: number; kernelDrops: number }> => {
  const drops = async () => metricSample(await topology.metrics(receiver).catch(() => ''), 'flowbus_receiver_kernel_drops')
  const dropsBefore = await drops()
  const before = await storedFlows(topology)
  const sentBefore = traffic.sent
  const ticks = Math.round((SECONDS * 1000) / TICK_MS)
  const perTick = Math.max(1, Math.round((rate * TICK_MS) / 1000 / traffic.exporters.length))
  const slices: Datagram[][] = []
  const now = Date.now()
  for (let t = 0; t < ticks; t++) slices.push(traffic.encode(perTick, now + t * TICK_MS))
  const sent = traffic.sent - sentBefore
  const started = performance.now()
  for (let t = 0; t < ticks; t++) {
    await sendAll(slices[t]!)
    const due = started + (t + 1) * TICK_MS
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
  }
  const seconds = (performance.now() - started) / 1000
  // Counting is a ClickHouse query in the storage process: once a second, not to compete with inserts.
  let stored = 0
  const deadline = performance.now() + DRAIN_SECONDS * 1000
  while (performance.now() < deadline) {
    stored = (await storedFlows(topology).catch(() => before + stored)) - before
    if (stored >= sent) break
    await sleep(1000)
  }
  const committedSeconds = (performance.now() - started) / 1000
  return { sent, stored, seconds, committedSeconds, kernelDrops: (await drops()) - dropsBefore }
}

const run = async (shape: string): Promise<void> => {
  const dir = await tempDir(`bench-e2e-${shape}`)
  const nats = shape === 'nats' ? await startNats() : undefined
  const embedded = shape === 'embedded'
  const all = ['receiver', 'orchestrator', 'decoder', 'enricher', 'snmp-poller', 'bmp-rib', 'clickhouse-writer', 'gateway', 'demo-exporter']
  const topology = await openTopology(dir, embedded ? { transport: 'memory' } : { transport: 'nats', nats: { servers: [nats!.url] } }, {
    demoRate: 0,
    example: embedded ? 'embedded.yaml' : 'cluster.yaml',
    layout: embedded ? { flowbus: all } : LAYOUT,
    // A larger kernel buffer for bursts; the enricher's live sample off (no browser).
    extra: { enricher: { live: { oneIn: 0 } } },
  })
  let traffic: DemoTraffic | undefined
  try {
    await Promise.all(Object.keys(embedded ? { flowbus: all } : LAYOUT).map((name) => topology.start(name)))
    traffic = await DemoTraffic.open({
      flowTarget: { host: '127.0.0.1', port: topology.ports.netflow },
      sflowTarget: { host: '127.0.0.1', port: topology.ports.sflow },
    })
    const exporters = traffic.exporters
    await waitFor(() => 'BMP sessions', () => bmpSessionsUp(topology, exporters, embedded ? 'flowbus' : 'demo-exporter'), 60_000)
    // Warm-up: templates, SNMP names and routes in place before the first measured step.
    await traffic.send(200)
    await waitFor(() => 'warm-up rows', async () => (await storedFlows(topology).catch(() => 0)) >= traffic!.sent, 120_000)
    let best = 0
    let committed = 0
    for (const rate of RATES) {
      const result = await step(topology, traffic, rate, embedded ? 'flowbus' : 'receiver')
      const achieved = result.sent / result.seconds
      const lossFree = result.stored >= result.sent
      committed = Math.max(committed, result.stored / result.committedSeconds)
      console.error(
        `# ${shape} at ${rate} flows/s: sent ${result.sent} in ${result.seconds.toFixed(1)} s (${Math.round(achieved)} flows/s), stored ${result.stored} (by ${result.committedSeconds.toFixed(1)} s)${lossFree ? '' : ` — ${result.sent - result.stored} not stored within ${DRAIN_SECONDS} s`}, kernel dropped ${result.kernelDrops} datagrams`,
      )
      if (!lossFree) {
        // Where the missing flows went: every counted drop of every process.
        for (const name of topology.members.keys()) {
          const text = await topology.metrics(name).catch(() => '')
          const drops = text.split('\n').filter((l) => /^flowbus_(actor_dropped_total|receiver_errors_total|decoder_errors_total|enricher_dropped_flows_total|writer_rejected_rows_total)\{/.test(l) && !l.endsWith(' 0'))
          if (drops.length > 0) console.error(`#   ${name}: ${drops.join('; ')}`)
        }
        break
      }
      best = Math.max(best, achieved)
    }
    print(`e2e.${shape}_loss_free_rate`, best, 'flows/s')
    print(`e2e.${shape}_committed_rate`, committed, 'flows/s')
  } finally {
    traffic?.close()
    await topology.stop()
    await nats?.stop()
    await removeDir(dir)
  }
}

for (const shape of SHAPES) await run(shape)
