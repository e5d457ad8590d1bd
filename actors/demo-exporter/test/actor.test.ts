// The demo-exporter actor running for real on loopback, next to the actors it feeds on the
// in-process bus: flows leave from each exporter's own address, its SNMP agents answer snmpget,
// snmpwalk and the snmp-poller actor, and its BMP sessions fill the bmp-rib actor's RIB so that
// routing.lookup finds the origin AS and path of content prefixes, again after a collector restart;
// through the receiver and decoder actors its flows come out decoded.
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import {
  type FlowRow,
  type InterfaceInfo,
  type RouteInfo,
  exporterStateKey,
  flowBatchToRows,
  flowsDecoded,
  formatIP,
  interfaceStateKey,
  metadataExporters,
  metadataInterfaces,
  metadataRequests,
  parseIP,
  routingLookup,
} from '@flowbus/bus-schemas'
import { type ActorDefinition, type BusService, type HttpEndpoint, type ResolvedConfig, configSchema, loadConfig, makeBus, makeMetrics, runActors, writePcap } from '@flowbus/runtime'
import { Effect, Exit, Fiber, Scope } from 'effect'
import { afterEach, describe, expect, it } from 'vitest'
import { startUdpCollector } from '../../../test/src/harness/exporters.js'
import { metricSample } from '../../../test/src/harness/metrics.js'
import { freePort, skipReason } from '../../../test/src/harness/process.js'
import { ensureSnmpTools, freeUdpPort, parseSnmpOutput } from '../../../test/src/harness/snmpd.js'
// Other actors and the in-process transport are not this package's dependencies; tests reach for them.
import { bmpRibActor } from '../../bmp-rib/src/actor.js'
import { decoderActor } from '../../decoder/src/actor.js'
import { receiverActor } from '../../receiver/src/actor.js'
import { createMemoryBus } from '../../runtime/src/bus/memory.js'
import { snmpPollerActor } from '../../snmp-poller/src/actor.js'
import { demoExporterActor } from '../src/actor.js'
import { defaultExporters } from '../src/default-network.js'

const execFileAsync = promisify(execFile)
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const waitFor = async (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await sleep(50)
  }
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const actors: ActorDefinition<any>[] = [bmpRibActor, snmpPollerActor, receiverActor, decoderActor, demoExporterActor]

interface Running {
  metrics: () => Promise<string>
  stop: () => Promise<void>
}

/** The whole setup on one in-process bus; each runActors call its own transport, like processes. */
const setup = async (demo: Record<string, unknown>, options: { toReceiver?: boolean } = {}) => {
  const memory = createMemoryBus()
  const resolved = loadConfig(configSchema(actors), { env: {} }) as ResolvedConfig
  const bmpPort = await freePort()
  const snmpPort = await freeUdpPort()
  const collector = await startUdpCollector()
  cleanups.push(() => collector.close())
  const receiverPort = await freeUdpPort()
  const config = {
    ...resolved,
    http: { listen: '127.0.0.1:0' },
    receiver: { ...(resolved.receiver as object), listeners: [{ name: 'demo', listen: [`127.0.0.1:${receiverPort}`], workers: 1 }] },
    'bmp-rib': { ...(resolved['bmp-rib'] as object), listenAddress: '127.0.0.1', port: bmpPort, peerGraceTime: 0 },
    'snmp-poller': {
      ...(resolved['snmp-poller'] as object),
      agents: [{ subnet: '127.0.0.0/24', version: '2c', communities: ['public'], port: snmpPort }],
      coalesceDelay: 20,
      retries: 1,
    },
    'demo-exporter': {
      ...(resolved['demo-exporter'] as object),
      rate: 300,
      flowTarget: `127.0.0.1:${options.toReceiver ? receiverPort : collector.port}`,
      sflowTarget: `127.0.0.1:${options.toReceiver ? receiverPort : collector.port}`,
      snmp: { enabled: true, port: snmpPort, community: 'public' },
      bmp: { enabled: true, collector: `127.0.0.1:${bmpPort}`, reconnectDelay: 200 },
      ...demo,
    },
  } as ResolvedConfig
  const testTransport = await memory.connect()
  cleanups.push(() => testTransport.close())
  const bus: BusService = makeBus(testTransport, resolved.bus, makeMetrics())

  const start = async (list: ActorDefinition<any>[]): Promise<Running> => {
    const transport = await memory.connect()
    let endpoint: HttpEndpoint | undefined
    const fiber = Effect.runFork(runActors({ actors: list, config, transport, onReady: (e) => (endpoint = e) }))
    await waitFor(() => `${list.map((a) => a.name).join(', ')} to start`, () => endpoint !== undefined)
    let stopped = false
    const stop = async () => {
      if (stopped) return
      stopped = true
      await run(Fiber.interrupt(fiber))
      await transport.close()
    }
    cleanups.push(stop)
    return { metrics: async () => (await fetch(`http://127.0.0.1:${endpoint!.address!.port}/metrics`)).text(), stop }
  }
  return { bus, collector, snmpPort, start }
}

const snmpSkip = await skipReason('snmpget/snmpwalk (Debian package snmp)', ensureSnmpTools)

describe('demo-exporter actor', () => {
  it.skipIf(snmpSkip !== undefined)(
    'sends from each exporter address; its agents answer snmpget, snmpwalk and the snmp-poller',
    async () => {
      const { bus, collector, snmpPort, start } = await setup({ bmp: { enabled: false, collector: '127.0.0.1:1', reconnectDelay: 1000 } })
      const demo = await start([demoExporterActor])
      await start([snmpPollerActor])

      // Flows from every exporter's own address.
      await waitFor(
        () => `datagrams from every exporter (got ${collector.datagrams.length})`,
        () => defaultExporters.every((e) => collector.datagrams.some((d) => formatIP(d.srcAddress) === e.address)),
      )
      const text = await demo.metrics()
      for (const e of defaultExporters) expect(metricSample(text, 'flowbus_demo_exporter_flows_total', { exporter: e.name, protocol: e.protocol })).toBeGreaterThan(0)

      const tools = await ensureSnmpTools()
      for (const exporter of defaultExporters) {
        const target = `${exporter.address}:${snmpPort}`
        // The ifXTable ends the agent's MIB: walking its last column ends with endOfMibView, which
        // snmpwalk prints as a line of its own after the last value.
        const walk = async (oid: string) =>
          parseSnmpOutput(
            (await execFileAsync(tools.snmpwalk, ['-v2c', '-c', 'public', '-On', '-Ox', '-t', '2', '-r', '1', target, oid])).stdout
              .split('\n')
              .filter((line) => !line.includes('No more variables'))
              .join('\n'),
          )
        const hex = (text: string) => Buffer.from(text, 'utf8').toString('hex')
        const aliases = await walk('1.3.6.1.2.1.31.1.1.1.18')
        expect([...aliases.entries()]).toEqual(
          exporter.interfaces.map((i) => [`1.3.6.1.2.1.31.1.1.1.18.${i.ifIndex}`, { kind: 'bytes', hex: hex(i.description) }]),
        )
        const speeds = await walk('1.3.6.1.2.1.31.1.1.1.15')
        expect([...speeds.values()]).toEqual(exporter.interfaces.map((i) => ({ kind: 'number', value: i.speed })))
        const got = parseSnmpOutput(
          (await execFileAsync(tools.snmpget, ['-v2c', '-c', 'public', '-On', '-Ox', '-t', '2', '-r', '1', target, '1.3.6.1.2.1.1.5.0', '1.3.6.1.2.1.2.2.1.2.1'])).stdout,
        )
        expect(got.get('1.3.6.1.2.1.1.5.0')).toEqual({ kind: 'bytes', hex: hex(exporter.name) })
        expect(got.get('1.3.6.1.2.1.2.2.1.2.1')).toEqual({ kind: 'bytes', hex: hex(exporter.interfaces[0]!.name) })
        // A wrong community gets no answer.
        await expect(execFileAsync(tools.snmpget, ['-v2c', '-c', 'private', '-t', '1', '-r', '0', target, '1.3.6.1.2.1.1.5.0'])).rejects.toThrow()
      }

      // The snmp-poller, asked as enrichers ask, publishes the configured names.
      const interfaces = await run(bus.state(metadataInterfaces))
      const exporters = await run(bus.state(metadataExporters))
      for (const exporter of defaultExporters) {
        const address = parseIP(exporter.address)
        const ifIndexes = exporter.interfaces.map((i) => i.ifIndex)
        let info: InterfaceInfo | undefined
        await waitFor(
          () => `the snmp-poller to publish ${exporter.name}`,
          async () => {
            await run(bus.broadcast(metadataRequests, { requests: [{ exporterAddress: address, ifIndexes }] }))
            await sleep(200)
            info = await run(interfaces.get(interfaceStateKey(address, ifIndexes[ifIndexes.length - 1]!)))
            return info !== undefined
          },
        )
        expect((await run(exporters.get(exporterStateKey(address))))?.name).toBe(exporter.name)
        for (const iface of exporter.interfaces) {
          const got = await run(interfaces.get(interfaceStateKey(address, iface.ifIndex)))
          expect({ name: got?.name, description: got?.description, speed: got?.speed }).toEqual({ name: iface.name, description: iface.description, speed: iface.speed })
        }
      }
      const last = await demo.metrics()
      expect(metricSample(last, 'flowbus_demo_exporter_snmp_answered_total')).toBeGreaterThan(0)
      expect(metricSample(last, 'flowbus_demo_exporter_snmp_errors_total', { reason: 'auth' })).toBeGreaterThan(0)

      // What went out on the wire decodes with flowbus decode: every flow the metrics counted (and
      // the few sent between the scrape and the stop), from the three exporters, with their sampling.
      await demo.stop()
      await collector.settle(300)
      const dir = await mkdtemp(join(tmpdir(), 'flowbus-demo-'))
      cleanups.push(() => rm(dir, { recursive: true, force: true }))
      await writeFile(join(dir, 'sent.pcap'), writePcap(collector.datagrams))
      const { stdout, stderr } = await execFileAsync(process.execPath, [join(import.meta.dirname, '../../cli/bin/flowbus.js'), 'decode', '--pcap', join(dir, 'sent.pcap')], {
        maxBuffer: 256 << 20,
      })
      expect(stderr).not.toMatch(/errors:/)
      const rows = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { ExporterAddress: string; SamplingRate: number })
      for (const e of defaultExporters) {
        const mine = rows.filter((r) => r.ExporterAddress === e.address)
        expect(mine.length).toBeGreaterThanOrEqual(metricSample(last, 'flowbus_demo_exporter_flows_total', { exporter: e.name }))
        expect(new Set(mine.map((r) => r.SamplingRate))).toEqual(new Set([e.samplingRate]))
      }
      expect(rows.length).toBe(rows.filter((r) => defaultExporters.some((e) => e.address === r.ExporterAddress)).length)
    },
    90_000,
  )

  it('reaches the decoder through the receiver on the in-process bus, every exporter with its sampling rate', async () => {
    const { bus, start } = await setup(
      { snmp: { enabled: false, port: 1161, community: 'public' }, bmp: { enabled: false, collector: '127.0.0.1:1', reconnectDelay: 1000 } },
      { toReceiver: true },
    )
    const rows: FlowRow[] = []
    const scope = await run(Scope.make())
    cleanups.push(() => run(Scope.close(scope, Exit.void)))
    await run(bus.subscribe(flowsDecoded, { group: 'demo-test' }, (m) => Effect.sync(() => rows.push(...flowBatchToRows(m.value)))).pipe(Scope.extend(scope)))
    await start([receiverActor, decoderActor])
    await start([demoExporterActor])
    await waitFor(
      () => `decoded flows from every exporter (got ${rows.length})`,
      () => defaultExporters.every((e) => rows.filter((r) => r.ExporterAddress === e.address).length >= 20),
    )
    for (const e of defaultExporters) {
      const mine = rows.filter((r) => r.ExporterAddress === e.address)
      const ifIndexes = new Set(e.interfaces.map((i) => i.ifIndex))
      for (const r of mine) {
        expect(r.SamplingRate).toBe(e.samplingRate)
        expect(ifIndexes.has(r.InIf as number)).toBe(true)
        expect(ifIndexes.has(r.OutIf as number)).toBe(true)
      }
    }
  }, 90_000)

  it('feeds bmp-rib over BMP: routing.lookup gives origin AS, path and communities, again after the collector restarts', async () => {
    const { bus, start } = await setup({ snmp: { enabled: false, port: 1161, community: 'public' } })
    let rib = await start([bmpRibActor])
    const demo = await start([demoExporterActor])

    const LOCAL = 64500
    const community = (asn: number, value: number) => ((asn << 16) | value) >>> 0
    // exporter, destination, BGP next hop (the neighbour), expected origin, path, communities, large communities.
    const cases = [
      // Google is not a direct peer in Amsterdam: through Cogent (transit, site 1, ifIndex 1).
      ['127.0.0.11', '8.8.8.8', '198.51.100.1', 15169, [174, 15169], [community(LOCAL, 100), community(LOCAL, 1001)], [LOCAL, 1, 1, LOCAL, 2, 1], 24],
      // Netflix over its PNI in Amsterdam.
      ['127.0.0.11', '45.57.1.2', '198.51.100.5', 2906, [2906], [community(LOCAL, 300), community(LOCAL, 1001)], [LOCAL, 1, 1, LOCAL, 2, 3], 17],
      // Cloudflare over AMS-IX.
      ['127.0.0.11', '1.1.1.1', '80.249.208.10', 13335, [13335], [community(LOCAL, 200), community(LOCAL, 1001)], [LOCAL, 1, 1, LOCAL, 2, 2], 24],
      // Google over its PNI in Frankfurt, IPv6.
      ['127.0.0.12', '2001:4860:4860::8888', '2001:db8:ffff:13::1', 15169, [15169], [community(LOCAL, 300), community(LOCAL, 1002)], [LOCAL, 1, 2, LOCAL, 2, 3], 32],
      // Amazon through Arelion in Paris, IPv6.
      ['127.0.0.13', '2600:9000::1', '2001:db8:ffff:21::1', 16509, [1299, 16509], [community(LOCAL, 100), community(LOCAL, 1003)], [LOCAL, 1, 3, LOCAL, 2, 2], 28],
      // An eyeball customer's prefix in Amsterdam.
      ['127.0.0.11', '198.18.0.5', '198.51.100.101', 64510, [64510], [community(LOCAL, 400), community(LOCAL, 1001)], [LOCAL, 1, 1, LOCAL, 2, 10], 17],
    ] as const
    const describeRoute = (r: RouteInfo | undefined) =>
      r?.found ? { asn: r.asn, asPath: [...r.asPath], communities: [...r.communities], large: [...r.largeCommunities], length: r.prefixLength } : 'not found'
    const lookupAll = async () => {
      const answers = []
      for (const [exporter, address, nextHop] of cases) {
        const response = await run(
          bus.request(routingLookup, { exporterAddress: parseIP(exporter), addresses: parseIP(address), nextHops: parseIP(nextHop), sharedRoutes: false }),
        )
        answers.push(describeRoute(response.routes[0]))
      }
      return answers
    }
    const expected = cases.map(([, , , asn, asPath, communities, large, length]) => ({ asn, asPath: [...asPath], communities: [...communities], large: [...large], length }))
    let last: unknown
    const lookupUntil = (what: string) =>
      waitFor(
        () => `${what}: last answers ${JSON.stringify(last)}`,
        async () => {
          last = await lookupAll()
          return JSON.stringify(last) === JSON.stringify(expected)
        },
      )
    await lookupUntil('the routes of every exporter')
    let text = await demo.metrics()
    for (const e of defaultExporters) expect(metricSample(text, 'flowbus_demo_exporter_bmp_session_state', { exporter: e.name })).toBe(2)
    const ribText = await rib.metrics()
    expect(metricSample(ribText, 'flowbus_bmp_sessions')).toBe(defaultExporters.length)
    expect(metricSample(ribText, 'flowbus_bmp_errors_total')).toBe(0)

    // The collector restarts (routes gone at once, grace time 0); every exporter connects again.
    await rib.stop()
    rib = await start([bmpRibActor])
    await lookupUntil('the routes again after the collector restarted')
    text = await demo.metrics()
    for (const e of defaultExporters) expect(metricSample(text, 'flowbus_demo_exporter_bmp_sessions_total', { exporter: e.name })).toBe(2)
  }, 90_000)
})
