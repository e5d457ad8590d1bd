// The docker compose topology as separate OS processes on loopback: the built `flowbus` command runs
// each actor with deploy/examples/cluster.yaml (addresses rewritten for loopback, the bus pointed
// at the harness's broker), except orchestrator + writer + gateway, which share one process because
// they share the embedded ClickHouse engine (compose uses a ClickHouse server instead).
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { type ServerProcess, freePort, startProcess } from '../src/harness/process.js'
import { askGraphql } from '../src/harness/graphql.js'
import { metricSample } from '../src/harness/metrics.js'

const root = new URL('../..', import.meta.url).pathname
const bin = join(root, 'actors', 'cli', 'bin', 'flowbus.js')

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const waitFor = async (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
    await sleep(250)
  }
}

/** One OS process of the topology. */
export interface Member {
  readonly name: string
  /** The actors it runs (`flowbus actor X`, or `flowbus start --actors a,b`). */
  readonly actors: readonly string[]
  readonly httpPort: number
  process: ServerProcess
}

export interface Topology {
  readonly dir: string
  readonly configFile: string
  readonly ports: { netflow: number; sflow: number; bmp: number; snmp: number; gateway: number }
  readonly members: Map<string, Member>
  /** Starts (or restarts) a member and waits for its /readyz. */
  start(name: string): Promise<Member>
  /** SIGKILL: a crash, nothing drained. */
  crash(name: string): Promise<void>
  metrics(name: string): Promise<string>
  graphql(query: string): Promise<Record<string, any>>
  stop(): Promise<void>
}

/** Process layout: the compose services, writer + gateway + orchestrator together. */
export const LAYOUT: Readonly<Record<string, readonly string[]>> = {
  storage: ['orchestrator', 'clickhouse-writer', 'gateway'],
  receiver: ['receiver'],
  decoder: ['decoder'],
  'enricher-1': ['enricher'],
  'enricher-2': ['enricher'],
  'snmp-poller': ['snmp-poller'],
  'bmp-rib': ['bmp-rib'],
  'demo-exporter': ['demo-exporter'],
}

/**
 * Writes the loopback version of the cluster example: bus from `bus`, ClickHouse embedded under
 * dir, every listener on 127.0.0.1 free ports, the demo exporter's SNMP agents and BMP sessions
 * pointed at them. `demoRate` is the demo actor's own flow rate (0: it only answers SNMP and BMP,
 * the test sends counted flows itself).
 */
export const openTopology = async (
  dir: string,
  bus: Record<string, unknown>,
  options: {
    demoRate: number
    extra?: Record<string, any>
    /** Which example to start from (default cluster.yaml) and how actors map to processes (default LAYOUT). */
    example?: string
    layout?: Readonly<Record<string, readonly string[]>>
  },
): Promise<Topology> => {
  const layout = options.layout ?? LAYOUT
  const cluster = parseYaml(readFileSync(join(root, 'deploy', 'examples', options.example ?? 'cluster.yaml'), 'utf8')) as Record<string, any>
  const ports = { netflow: await freePort(), sflow: await freePort(), bmp: await freePort(), snmp: await freePort(), gateway: await freePort() }
  const config: Record<string, any> = {
    ...cluster,
    bus: { ...cluster.bus, ...bus, consumer: { ackWait: '10s' } },
    // info: a member that stops unexpectedly shows why in the failure message (the last 16 KB of output).
    log: { level: 'info', format: 'json' },
    clickhouse: { mode: 'embedded', path: join(dir, 'clickhouse'), database: 'flowbus' },
    receiver: {
      listeners: [
        { name: 'netflow', listen: [`127.0.0.1:${ports.netflow}`] },
        { name: 'sflow', listen: [`127.0.0.1:${ports.sflow}`] },
      ],
    },
    'snmp-poller': { agents: [{ subnet: '127.0.0.0/8', version: '2c', communities: ['public'], port: ports.snmp }] },
    'bmp-rib': { listenAddress: '127.0.0.1', port: ports.bmp },
    gateway: { listen: `127.0.0.1:${ports.gateway}`, limits: { maxLimit: 100_000, maxCost: 1_000_000, maxConcurrentQueries: 8 } },
    'demo-exporter': {
      enabled: true,
      rate: options.demoRate,
      flowTarget: `127.0.0.1:${ports.netflow}`,
      sflowTarget: `127.0.0.1:${ports.sflow}`,
      snmp: { port: ports.snmp },
      bmp: { collector: `127.0.0.1:${ports.bmp}`, reconnectDelay: '1s' },
    },
  }
  for (const [section, values] of Object.entries(options.extra ?? {})) config[section] = { ...config[section], ...values }
  const configFile = join(dir, 'flowbus.json')
  writeFileSync(configFile, JSON.stringify(config, null, 2))

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_'))) as Record<string, string>
  const members = new Map<string, Member>()

  // A member that dies while starting is started once more, as the compose restart policy or
  // Nomad would; its first output stays in the log. (Seen on Kafka: the storage process was
  // interrupted while starting after a SIGKILL of its predecessor, cause under investigation.)
  const start = async (name: string): Promise<Member> => {
    try {
      return await startOnce(name)
    } catch (error) {
      if (!/exited \(/.test((error as Error).message)) throw error
      console.warn(`multiprocess: ${name} died while starting, starting it again:\n${(error as Error).message}`)
      return await startOnce(name)
    }
  }

  const startOnce = async (name: string): Promise<Member> => {
    const actors = layout[name]!
    const httpPort = members.get(name)?.httpPort ?? (await freePort())
    const args = actors.length === 1 ? ['actor', actors[0]!, '--config', configFile] : ['start', '--actors', actors.join(','), '--config', configFile]
    const child = startProcess({ name, command: process.execPath, args: [bin, ...args], cwd: dir, env: { ...env, FLOWBUS_HTTP__LISTEN: `127.0.0.1:${httpPort}` } })
    const member: Member = { name, actors, httpPort, process: child }
    members.set(name, member)
    let exited: number | string | undefined
    void child.exited.then((code) => (exited = code))
    await waitFor(
      () => `${name} to be ready (exited: ${exited}):\n${child.output().slice(-3000)}`,
      async () => {
        if (exited !== undefined) throw new Error(`${name} exited (${exited}) while starting:\n${child.output().slice(-3000)}`)
        return (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200
      },
      150_000,
    )
    return member
  }

  return {
    dir,
    configFile,
    ports,
    members,
    start,
    async crash(name) {
      const member = members.get(name)!
      member.process.kill()
      await member.process.exited
    },
    async metrics(name) {
      return (await fetch(`http://127.0.0.1:${members.get(name)!.httpPort}/metrics`)).text()
    },
    graphql: (query) => askGraphql(ports.gateway, query),
    async stop() {
      await Promise.all([...members.values()].map((m) => m.process.stop(5_000)))
    },
  }
}

/** BMP sessions up for every demo exporter, as the demo-exporter actor (in process `member`) reports them. */
export const bmpSessionsUp = async (topology: Topology, exporters: readonly string[], member = 'demo-exporter'): Promise<boolean> => {
  const text = await topology.metrics(member).catch(() => '')
  return exporters.every((exporter) => metricSample(text, 'flowbus_demo_exporter_bmp_session_state', { exporter }) === 2)
}
