// The snmp-poller as its own OS process (`flowbus actor snmp-poller --config f.yaml`) on NATS,
// against a real snmpd: YAML agents with a wrong community first, bucket entries equal to snmpget,
// and a poller killed with SIGKILL whose successor reloads the buckets instead of polling again.
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { type InterfaceInfo, interfaceStateKey, metadataInterfaces, metadataRequests, parseIP } from '@flowbus/bus-schemas'
import { type ResolvedConfig, type StateStore, configSchema, connectTransport, loadConfig, makeBus, makeMetrics } from '@flowbus/runtime'
import { snmpPollerActor } from '@flowbus/snmp-poller'
import { Effect } from 'effect'
import { afterAll, describe, expect, it } from 'vitest'
import { metricSample } from '../src/harness/metrics.js'
import { type NatsServer, startNats } from '../src/harness/nats.js'
import { freePort, removeDir, serviceOrSkip, startProcess, tempDir, type ServerProcess } from '../src/harness/process.js'
import { type Snmpd, startSnmpd } from '../src/harness/snmpd.js'
import { waitFor as harnessWaitFor } from '../src/harness/process.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
// The `flowbus` command from TypeScript sources (shared with the decoder's cross-process tests).
const cli = fileURLToPath(new URL('../decoder/fixtures/flowbus.ts', import.meta.url))
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
const EXPORTER = parseIP('127.0.0.1')
const IF_NAME = '1.3.6.1.2.1.31.1.1.1.1'

const waitFor = (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000) =>
  harnessWaitFor(what, condition, timeoutMs, 50)

describe('snmp-poller as a process on NATS', () => {
  const nats = serviceOrSkip<NatsServer>('nats-server', () => startNats())
  const agent = serviceOrSkip<Snmpd>('snmpd', () => startSnmpd({ communities: ['flowbus-ro'] }))
  const processes: ServerProcess[] = []
  let dir: string | undefined
  afterAll(async () => {
    for (const p of processes) await p.stop()
    if (dir) await removeDir(dir)
  })

  const startPoller = async (name: string, yaml: string) => {
    const port = await freePort()
    const file = join(dir!, `${name}.yaml`)
    writeFileSync(file, `${yaml}\nhttp:\n  listen: 127.0.0.1:${port}\nlog:\n  format: json\n`)
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_'))) as Record<string, string>
    const child = startProcess({
      name: `snmp-poller ${name}`,
      command: process.execPath,
      args: ['--import', tsx, '--conditions=source', cli, 'actor', 'snmp-poller', '--config', file],
      cwd: root,
      env,
    })
    processes.push(child)
    const base = `http://127.0.0.1:${port}`
    let exited: number | string | undefined
    void child.exited.then((code) => (exited = code))
    await waitFor(
      () => `snmp-poller ${name} to be ready:\n${child.output()}`,
      async () => {
        if (exited !== undefined) throw new Error(`snmp-poller ${name} exited (${exited}):\n${child.output()}`)
        return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200
      },
    )
    return { child, metrics: async () => (await fetch(`${base}/metrics`)).text() }
  }

  it('polls on request, survives SIGKILL by reloading the buckets', async () => {
    const snmpd = agent.get()
    dir = await tempDir('snmp-poller')
    const url = nats.get().url
    const yaml = [
      'bus:',
      '  transport: nats',
      `  nats:\n    servers: [${url}]`,
      'snmp-poller:',
      '  timeout: 500ms',
      '  retries: 0',
      '  agents:',
      '    - subnet: 127.0.0.0/8',
      `      port: ${snmpd.port}`,
      '      communities: [wrong-community, flowbus-ro]',
    ].join('\n')

    const config = loadConfig(configSchema([snmpPollerActor]), { env: {} }) as ResolvedConfig
    const busConfig = { ...config.bus, transport: 'nats' as const, nats: { ...config.bus.nats, servers: [url] } }
    const transport = await connectTransport(busConfig)
    try {
      const bus = makeBus(transport, busConfig, makeMetrics())
      const interfaces: StateStore<InterfaceInfo> = await run(bus.state(metadataInterfaces))
      const walked = await snmpd.walk({ community: 'flowbus-ro' }, '1.3.6.1.2.1.2.2.1.1')
      const ifIndexes = [...walked.values()].map((v) => (v.kind === 'number' ? v.value : -1))
      const names = await snmpd.walk({ community: 'flowbus-ro' }, IF_NAME)
      const request = () => run(bus.broadcast(metadataRequests, { requests: [{ exporterAddress: EXPORTER, ifIndexes }] }))
      const allStored = async () => {
        for (const i of ifIndexes) if ((await run(interfaces.get(interfaceStateKey(EXPORTER, i)))) === undefined) return false
        return true
      }

      const first = await startPoller('first', yaml)
      // Broadcasts are not durable: ask again until answered, as enricher shards do.
      await waitFor(() => 'every interface in the bucket', async () => {
        if (await allStored()) return true
        await request()
        await sleep(300)
        return false
      })
      for (const ifIndex of ifIndexes) {
        const info = await run(interfaces.get(interfaceStateKey(EXPORTER, ifIndex)))
        const reference = names.get(`${IF_NAME}.${ifIndex}`)
        expect(Buffer.from(info!.name, 'utf8').toString('hex')).toBe(reference?.kind === 'bytes' ? reference.hex : 'missing')
      }
      const text = await first.metrics()
      expect(metricSample(text, 'flowbus_snmp_poller_successes_total', { exporter: '127.0.0.1' })).toBeGreaterThanOrEqual(1)
      // The wrong community was tried once; afterwards the right one is asked first.
      expect(metricSample(text, 'flowbus_snmp_poller_timeouts_total', { exporter: '127.0.0.1' })).toBe(1)

      first.child.kill()
      await first.child.exited
      const second = await startPoller('second', yaml)
      expect(metricSample(await second.metrics(), 'flowbus_snmp_poller_loaded_total', { kind: 'interfaces' })).toBe(ifIndexes.length)
      await waitFor(() => 'the request answered from the reloaded cache', async () => {
        if (metricSample(await second.metrics(), 'flowbus_snmp_poller_demanded_interfaces_total', { outcome: 'cached' }) >= ifIndexes.length) return true
        await request()
        await sleep(200)
        return false
      })
      const after = await second.metrics()
      expect(metricSample(after, 'flowbus_snmp_poller_demanded_interfaces_total', { outcome: 'polled' })).toBe(0)
      expect(metricSample(after, 'flowbus_snmp_poller_requests_total')).toBe(0)
    } finally {
      await transport.close()
    }
  }, 120_000)
})
