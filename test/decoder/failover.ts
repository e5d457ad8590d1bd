// Template state failover across processes, for any durable transport: decoder A learns a
// template and is killed with SIGKILL; data sent afterwards is decoded by a new decoder B from the
// templates bucket alone, without the exporter resending its template.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type FlowBatch,
  type FlowRow,
  type RawPacket,
  flowBatchToRows,
  flowsDecoded,
  flowsRaw,
  formatIP,
  sniffProtocol,
  templates,
} from '@flowbus/bus-schemas'
import { DecodeTally, createDecoder, decoderActor } from '@flowbus/decoder'
import {
  type BusService,
  type ResolvedConfig,
  type Transport,
  configSchema,
  connectTransport,
  loadConfig,
  makeBus,
  makeMetrics,
  readPcapUdpAll,
} from '@flowbus/runtime'
import { Effect, Exit, Scope } from 'effect'
import { expect } from 'vitest'
import { metricSample } from '../src/harness/metrics.js'
import { freePort, startProcess, tempDir, removeDir, type ServerProcess } from '../src/harness/process.js'
import { akvoradoTestdata } from '../src/harness/testdata.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const captures = join(akvoradoTestdata, 'flow-decoder-netflow')
const fixture = fileURLToPath(new URL('./fixtures/flowbus.ts', import.meta.url))

export interface FailoverSetup {
  /** The bus section of the decoders' YAML configuration (transport and servers). */
  readonly busYaml: string
  /** The same as environment overrides, for the test's own bus client. */
  readonly busEnv: Record<string, string>
  /** Resolves once the decoders' group committed its position past the first raw message. */
  readonly rawAcknowledged: () => Promise<boolean>
}

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const waitFor = async (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await sleep(50)
  }
}

const packetsOf = (file: string): RawPacket[] =>
  readPcapUdpAll(readFileSync(join(captures, file)), file).records.map((r) => ({
    exporterAddress: r.srcAddress,
    exporterPort: r.srcPort,
    receivedNs: r.timestampNs,
    protocol: sniffProtocol(r.payload),
    payload: r.payload,
  }))

/** The flows the same captures give in one process, decoded in order: what B must produce. */
const referenceRows = (files: string[]): FlowRow[] => {
  const { decoder } = createDecoder({ observer: new DecodeTally() })
  return files.flatMap((f) => decoder.decode(packetsOf(f)).flows.flatMap((o) => flowBatchToRows(o.batch)))
}

interface DecoderProcess {
  readonly process: ServerProcess
  metrics(): Promise<string>
}

const startDecoder = async (dir: string, name: string, busYaml: string): Promise<DecoderProcess> => {
  const port = await freePort()
  const file = join(dir, `${name}.yaml`)
  writeFileSync(file, `${busYaml}\nhttp:\n  listen: 127.0.0.1:${port}\nlog:\n  format: json\n`)
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_'))) as Record<string, string>
  const child = startProcess({
    name: `decoder ${name}`,
    command: process.execPath,
    args: ['--import', tsx, '--conditions=source', fixture, 'actor', 'decoder', '--config', file],
    cwd: root,
    env,
  })
  const base = `http://127.0.0.1:${port}`
  let exited: number | string | undefined
  void child.exited.then((code) => (exited = code))
  await waitFor(
    () => `decoder ${name} to be ready (exited: ${exited}):\n${child.output()}`,
    async () => {
      if (exited !== undefined) throw new Error(`decoder ${name} exited (${exited}):\n${child.output()}`)
      return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200
    },
  )
  return { process: child, metrics: async () => (await fetch(`${base}/metrics`)).text() }
}

/** The whole scenario; assertions inside. */
export const templateFailover = async (setup: FailoverSetup): Promise<void> => {
  const dir = await tempDir('decoder-failover')
  const config = loadConfig(configSchema([decoderActor]), { env: setup.busEnv }) as ResolvedConfig
  const transport: Transport = await connectTransport(config.bus)
  const bus: BusService = makeBus(transport, config.bus, makeMetrics())
  const scope = await run(Scope.make())
  const processes: ServerProcess[] = []
  try {
    const decoded: FlowBatch[] = []
    await run(
      bus.subscribe(flowsDecoded, { group: `failover-reader-${Date.now()}` }, (m) => Effect.sync(() => decoded.push(m.value))).pipe(
        Scope.extend(scope),
      ),
    )
    const templatePackets = packetsOf('template.pcap')
    const dataPackets = packetsOf('data.pcap')
    const key = formatIP(templatePackets[0]!.exporterAddress)
    expect(formatIP(dataPackets[0]!.exporterAddress)).toBe(key)

    // A learns the template from the exporter and stores it before acknowledging the datagram.
    const a = await startDecoder(dir, 'a', setup.busYaml)
    processes.push(a.process)
    await run(bus.publish(flowsRaw, key, { receiver: 'failover-test', packets: templatePackets }))
    const store = await run(bus.state(templates))
    await waitFor(() => 'the template in the bucket', async () => (await run(store.keys)).length > 0)
    await waitFor(() => 'the template datagram acknowledged for good', setup.rawAcknowledged)
    const stored = await run(store.keys)
    expect(metricSample(await a.metrics(), 'flowbus_decoder_templates_loaded_total', { source: 'packet' })).toBe(stored.length)

    a.process.kill()
    await a.process.exited

    // The exporter goes on with data only; B starts afterwards and has never seen a template packet.
    await run(bus.publish(flowsRaw, key, { receiver: 'failover-test', packets: dataPackets }))
    const b = await startDecoder(dir, 'b', setup.busYaml)
    processes.push(b.process)
    const expected = referenceRows(['template.pcap', 'data.pcap'])
    expect(expected.length).toBeGreaterThan(0)
    const rows = () => decoded.flatMap((batch) => flowBatchToRows(batch))
    await waitFor(() => `${expected.length} flows from B, got ${rows().length}\n${b.process.output()}`, () => rows().length >= expected.length, 90_000)
    await sleep(200)
    expect(rows()).toEqual(expected)

    const metrics = await b.metrics()
    expect(metricSample(metrics, 'flowbus_decoder_templates_loaded_total', { source: 'bucket' })).toBe(stored.length)
    expect(metricSample(metrics, 'flowbus_decoder_templates_loaded_total', { source: 'packet' })).toBe(0)
    expect(metricSample(metrics, 'flowbus_decoder_errors_total')).toBe(0)
    expect(metricSample(metrics, 'flowbus_decoder_flows_total', { exporter: key, protocol: 'netflow-v9' })).toBe(expected.length)
  } finally {
    for (const p of processes) await p.stop()
    await run(Scope.close(scope, Exit.void))
    await transport.close()
    await removeDir(dir)
  }
}
