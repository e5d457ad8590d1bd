// `npm start` as a newcomer runs it: the command of the root package.json `start` script (the built
// CLI with the embedded example config), in an empty directory, must show live demo traffic through
// GraphQL with names, AS names, countries and routes, stop cleanly on Ctrl-C and keep its data.
// Ports are moved to free ones with FLOWBUS_* overrides, so the test runs beside anything else.
import { readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { askGraphql } from '../src/harness/graphql.js'
import { type ServerProcess, freePort, removeDir, startProcess, tempDir } from '../src/harness/process.js'

const root = new URL('../..', import.meta.url).pathname
const EXPORTERS = ['edge1.ams', 'edge2.fra', 'edge3.par']

/** The `start` script's last command (after the build step), with repository paths made absolute. */
const startCommand = (): { command: string; args: string[] } => {
  const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts
  const last = scripts.start!.split('&&').at(-1)!.trim().split(/\s+/)
  expect(last[0], `the start script runs node: ${scripts.start}`).toBe('node')
  expect(last, 'npm start runs the embedded example config').toContain('deploy/examples/embedded.yaml')
  const args = last.slice(1).map((arg) => (/^[\w.-]+\//.test(arg) && !isAbsolute(arg) ? join(root, arg) : arg))
  return { command: process.execPath, args }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

type Row = Record<string, unknown>

interface Ports {
  readonly gateway: number
  readonly http: number
  readonly netflow: number
  readonly sflow: number
  readonly bmp: number
  readonly snmp: number
}

const start = (dir: string, ports: Ports): ServerProcess => {
  const { command, args } = startCommand()
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_'))) as Record<string, string>
  return startProcess({
    name: 'npm start',
    command,
    args,
    cwd: dir, // ./data lands in the temp dir
    env: {
      ...env,
      FLOWBUS_LOG__FORMAT: 'json',
      FLOWBUS_GATEWAY__LISTEN: `127.0.0.1:${ports.gateway}`,
      FLOWBUS_HTTP__LISTEN: `127.0.0.1:${ports.http}`,
      FLOWBUS_RECEIVER__LISTENERS: `[{name: netflow, listen: [127.0.0.1:${ports.netflow}]}, {name: sflow, listen: [127.0.0.1:${ports.sflow}]}]`,
      FLOWBUS_DEMO_EXPORTER__FLOW_TARGET: `127.0.0.1:${ports.netflow}`,
      FLOWBUS_DEMO_EXPORTER__SFLOW_TARGET: `127.0.0.1:${ports.sflow}`,
      FLOWBUS_BMP_RIB__LISTEN_ADDRESS: '127.0.0.1',
      FLOWBUS_BMP_RIB__PORT: String(ports.bmp),
      FLOWBUS_DEMO_EXPORTER__BMP__COLLECTOR: `127.0.0.1:${ports.bmp}`,
      FLOWBUS_DEMO_EXPORTER__BMP__RECONNECT_DELAY: '1s',
      FLOWBUS_DEMO_EXPORTER__SNMP__PORT: String(ports.snmp),
      FLOWBUS_SNMP_POLLER__AGENTS: `[{subnet: 127.0.0.0/8, communities: [public], port: ${ports.snmp}}]`,
    },
  })
}


/** A flow with everything the home page shows: names from SNMP, classification, AS numbers, country, AS path. */
const complete = (row: Row): boolean =>
  EXPORTERS.includes(row.ExporterName as string) &&
  row.InIfName !== '' &&
  row.InIfDescription !== '' &&
  row.OutIfName !== '' &&
  row.InIfProvider !== '' &&
  row.InIfBoundary === 'external' &&
  row.InIfConnectivity !== '' &&
  (row.SrcAS as number) > 0 &&
  (row.DstAS as number) > 0 &&
  row.SrcCountry !== '' &&
  (row.DstASPath as number[]).length > 0

// One query at a time: the gateway allows 4 concurrent queries per user, and each field is one.
const HOME = [
  `{ flows(limit: 300) }`,
  `{ home { flowRate exporterCount } }`,
  `{ home { top(dimension: "ExporterName", limit: 10, unit: FLOWS) { rows { dimensions } } } }`,
  `{ asNames: filterComplete(filter: "SrcAS = ") { label detail } }`,
]

const homePage = async (port: number): Promise<Record<string, any>> => {
  const [flows, counts, top, asNames] = [await askGraphql(port, HOME[0]!), await askGraphql(port, HOME[1]!), await askGraphql(port, HOME[2]!), await askGraphql(port, HOME[3]!)]
  return { flows: flows.flows, home: { ...counts.home, ...top.home }, asNames: asNames.asNames }
}

/** Polls GraphQL until the home page has everything; returns the last answer. */
const waitForHome = async (child: ServerProcess, port: number, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  let exited: number | string | undefined
  void child.exited.then((code) => (exited = code))
  let last: Record<string, any> | undefined
  let problem = 'no answer yet'
  for (;;) {
    if (exited !== undefined) throw new Error(`npm start exited (${exited}):\n${child.output()}`)
    try {
      last = await homePage(port)
      const rows = last.flows as Row[]
      const exporters = (last.home.top.rows as { dimensions: string[] }[]).map((r) => r.dimensions[0])
      const named = (last.asNames as { detail: string | null }[]).filter((s) => s.detail)
      if (rows.length === 0) problem = 'no flows stored'
      else if (!rows.some(complete)) problem = `no complete flow among the last ${rows.length}, e.g. ${JSON.stringify(rows[0])}`
      else if (!EXPORTERS.every((e) => exporters.includes(e))) problem = `exporters seen: ${exporters.join(', ')}`
      else if (last.home.exporterCount !== EXPORTERS.length) problem = `home.exporterCount ${last.home.exporterCount}`
      else if (named.length === 0) problem = `no AS name in ${JSON.stringify(last.asNames)}`
      else return last
    } catch (error) {
      problem = (error as Error).message
    }
    if (Date.now() > deadline) throw new Error(`the home page is not complete after ${timeoutMs} ms: ${problem}\n${child.output().slice(-3000)}`)
    await sleep(1000)
  }
}

/** When the first flow was stored, and how many flows were stored in the first minute since. */
const firstMinute = async (port: number, since?: number): Promise<{ first: number; flows: number }> => {
  const [row] = (await askGraphql(port, `{ flows(limit: 1, orderBy: TIME_ASC) }`)).flows as Row[]
  const first = since ?? (row!.TimeReceived as number)
  const range = `{ start: "${new Date(first * 1000).toISOString()}", end: "${new Date((first + 60) * 1000).toISOString()}" }`
  const top = await askGraphql(port, `{ topN(range: ${range}, dimensions: ["ExporterName"], unit: FLOWS) { all { total } } }`)
  return { first: row!.TimeReceived as number, flows: top.topN.all.total as number }
}

describe('npm start (embedded example config)', () => {
  it('shows live demo traffic with names, AS names, countries and routes; stops on Ctrl-C; keeps its data', { timeout: 720_000 }, async () => {
    const dir = await tempDir('npm-start')
    const ports: Ports = {
      gateway: await freePort(),
      http: await freePort(),
      netflow: await freePort(),
      sflow: await freePort(),
      bmp: await freePort(),
      snmp: await freePort(),
    }
    let child = start(dir, ports)
    try {
      const home = await waitForHome(child, ports.gateway, 300_000)
      expect(home.home.flowRate).toBeGreaterThan(0)
      const row = (home.flows as Row[]).find(complete)!
      // Classification of the demo's descriptions ("Transit: Cogent" -> provider Cogent, transit).
      const description = row.InIfDescription as string
      const [kind, provider] = description.split(': ')
      expect(row.InIfProvider).toBe(provider)
      expect(row.InIfConnectivity).toBe(kind!.toLowerCase())
      // AS names come from the orchestrator's dictionary (the demo's private ASes from the config).
      const details = (home.asNames as { label: string; detail: string | null }[]).map((s) => `${s.label} ${s.detail ?? ''}`).join('\n')
      expect(details).toMatch(/\S+ \S+/)
      expect(child.output()).toContain(`http://127.0.0.1:${ports.gateway}/graphql`)

      // Ctrl-C: a clean exit, every actor stopped.
      const before = await firstMinute(ports.gateway)
      expect(before.flows).toBeGreaterThan(0)
      child.child.kill('SIGINT')
      const code = await Promise.race([child.exited, sleep(60_000).then(() => 'still running 60 s after SIGINT')])
      expect(code, child.output().slice(-3000)).toBe(0)

      // Restart on the same directory: the earliest flows are still there (the first minute may
      // have grown with what was in flight at Ctrl-C), and new ones arrive.
      child = start(dir, ports)
      const again = await waitForHome(child, ports.gateway, 300_000)
      const after = await firstMinute(ports.gateway, before.first)
      expect(after.first).toBe(before.first)
      expect(after.flows).toBeGreaterThanOrEqual(before.flows)
      expect((again.flows as Row[]).length).toBeGreaterThan(0)
      child.child.kill('SIGINT')
      expect(await Promise.race([child.exited, sleep(60_000).then(() => 'still running')])).toBe(0)
    } finally {
      await child.stop(1000)
      await removeDir(dir)
    }
  })
})
