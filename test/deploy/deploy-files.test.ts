// The deployment files validate as far as this machine allows without a container engine or a
// Nomad cluster: the compose files with the Docker Compose client (`config` needs no daemon), the
// Nomad jobs with HashiCorp's HCL2 parser (@cdktf/hcl2json, the Go library compiled to wasm), the
// Dockerfile's shape, and every example config and compose service environment with `flowbus config`.
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parse as parseHcl } from '@cdktf/hcl2json'
import { knownActors, runCli } from '@flowbus/cli'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { ensureExecutable, findExecutable, skipReason } from '../src/harness/process.js'

const execFileAsync = promisify(execFile)
const root = new URL('../..', import.meta.url).pathname
const deploy = join(root, 'deploy')
const actorNames = knownActors.map((a) => a.name)
const pipelineActors = actorNames.filter((name) => name !== 'demo-exporter')

/** `flowbus config` in-process: exit code and stderr. */
const flowbusConfig = async (file: string, env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> => {
  let stderr = ''
  const code = await runCli(['config', '--config', file], {
    actors: knownActors,
    env,
    stdout: () => undefined,
    stderr: (text) => void (stderr += text),
    isTTY: false,
  })
  return { code, stderr }
}

describe('example configs', () => {
  const examples = readdirSync(join(deploy, 'examples')).filter((f) => f.endsWith('.yaml'))
  it('include the embedded and the multi-process topologies', () => {
    expect(examples).toEqual(expect.arrayContaining(['embedded.yaml', 'cluster.yaml']))
  })
  it.each(examples)('%s resolves with flowbus config', async (file) => {
    const result = await flowbusConfig(join(deploy, 'examples', file))
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
  })
  it('embedded.yaml turns the demo on and cluster.yaml leaves it off', () => {
    const embedded = parseYaml(readFileSync(join(deploy, 'examples', 'embedded.yaml'), 'utf8'))
    const cluster = parseYaml(readFileSync(join(deploy, 'examples', 'cluster.yaml'), 'utf8'))
    expect(embedded['demo-exporter'].enabled).toBe(true)
    expect(embedded.bus.transport).toBe('memory')
    expect(cluster['demo-exporter'].enabled).toBe(false)
    expect(cluster.bus.transport).toBe('nats')
    expect(cluster.clickhouse.mode).toBe('server')
  })
})

// docker compose v2 (plugin) when present, else the standalone docker-compose (Debian package).
const compose = async (): Promise<string[]> => {
  const docker = await findExecutable('docker')
  if (docker) {
    const v2 = await execFileAsync(docker, ['compose', 'version']).then(
      () => true,
      () => false,
    )
    if (v2) return [docker, 'compose']
  }
  return [await ensureExecutable('docker-compose', 'docker-compose')]
}
const composeSkip = await skipReason('docker compose', compose)

interface ComposeService {
  image?: string
  command?: string[]
  container_name?: string
  ports?: unknown[]
  profiles?: string[]
  healthcheck?: { test: string[] | string }
  environment?: Record<string, string | null> | string[]
  depends_on?: unknown
}

describe.skipIf(composeSkip !== undefined)('docker compose files', () => {
  const run = async (...args: string[]): Promise<string> => {
    const [command, ...prefix] = await compose()
    const { stdout } = await execFileAsync(command!, [...prefix, '--project-directory', deploy, ...args], {
      cwd: deploy,
      maxBuffer: 16 << 20,
    })
    return stdout
  }
  const resolved = async (...args: string[]): Promise<Record<string, ComposeService>> =>
    (parseYaml(await run(...args, 'config')) as { services: Record<string, ComposeService> }).services
  const environment = (service: ComposeService): Record<string, string> =>
    Array.isArray(service.environment)
      ? Object.fromEntries(service.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))
      : (Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, v ?? ''])) as Record<string, string>)
  const actorOf = (service: ComposeService): string | undefined => (service.command?.[0] === 'actor' ? service.command[1] : undefined)

  it('docker-compose.yml: every actor a service of the one image, with health checks; the enricher scalable', async () => {
    const services = await resolved('-f', 'docker-compose.yml', '--profile', 'demo')
    for (const infra of ['nats', 'clickhouse']) expect(services[infra]?.healthcheck, infra).toBeDefined()
    const actors = Object.entries(services).filter(([, s]) => actorOf(s) !== undefined)
    expect(new Set(actors.map(([, s]) => actorOf(s)))).toEqual(new Set(actorNames))
    for (const [name, service] of actors) {
      expect(service.image, name).toBe(services.enricher!.image)
      expect(JSON.stringify(service.healthcheck?.test), name).toMatch(/\/readyz/)
      expect(service.command, name).toEqual(['actor', actorOf(service), '--config', '/etc/flowbus/config.yaml'])
    }
    // --scale enricher=3 needs no fixed name and no host port.
    expect(services.enricher!.container_name).toBeUndefined()
    expect(services.enricher!.ports ?? []).toEqual([])
    expect(services.decoder!.container_name).toBeUndefined()
    // The demo exporters only in the demo profile.
    const demo = actors.filter(([, s]) => actorOf(s) === 'demo-exporter')
    expect(demo.length).toBe(3)
    for (const [name, service] of demo) expect(service.profiles, name).toEqual(['demo'])
  })

  it('every actor service resolves its configuration (the file plus its environment)', async () => {
    const services = await resolved('-f', 'docker-compose.yml', '--profile', 'demo')
    for (const [name, service] of Object.entries(services)) {
      if (!actorOf(service)) continue
      const result = await flowbusConfig(join(deploy, 'examples', 'cluster.yaml'), environment(service))
      expect(`${name}: ${result.stderr}`).toBe(`${name}: `)
      expect(result.code, name).toBe(0)
    }
  })

  it('docker-compose.kafka.yml swaps NATS for Kafka on every actor', async () => {
    const services = await resolved('-f', 'docker-compose.yml', '-f', 'docker-compose.kafka.yml', '--profile', 'demo')
    expect(services.kafka?.healthcheck).toBeDefined()
    expect(services.nats?.profiles).toEqual(['nats'])
    for (const [name, service] of Object.entries(services)) {
      if (!actorOf(service)) continue
      const env = environment(service)
      expect(env.FLOWBUS_BUS__TRANSPORT, name).toBe('kafka')
      const result = await flowbusConfig(join(deploy, 'examples', 'cluster.yaml'), env)
      expect(result.code, `${name}: ${result.stderr}`).toBe(0)
    }
  })
})

type HclBlock = Record<string, any>
const first = (value: unknown): HclBlock => (Array.isArray(value) ? value[0] : value) as HclBlock

describe('Nomad job files', () => {
  const files = readdirSync(join(deploy, 'nomad')).filter((f) => f.endsWith('.nomad.hcl'))
  const parsed = async (file: string) => parseHcl(file, readFileSync(join(deploy, 'nomad', file), 'utf8')) as Promise<HclBlock>

  it('cover every pipeline actor once', async () => {
    const tasks: string[] = []
    for (const file of files) {
      const job = first(Object.values((await parsed(file)).job)[0])
      for (const groups of Object.values(job.group as HclBlock)) tasks.push(...Object.keys(first(groups).task))
    }
    expect(tasks.sort()).toEqual([...pipelineActors].sort())
  })

  it.each(files)('%s: one job, counts, service checks on /readyz, the actor chosen by the command, the config templated', async (file) => {
    const hcl = await parsed(file)
    const jobs = Object.entries(hcl.job as HclBlock)
    expect(jobs.length).toBe(1)
    const [jobName, jobBlocks] = jobs[0]!
    expect(file).toBe(`${jobName}.nomad.hcl`)
    const job = first(jobBlocks)
    const variables = hcl.variable as HclBlock
    // A count is a number or a variable with a numeric default.
    const count = (value: unknown): number => {
      if (typeof value === 'number') return value
      const match = /^\$\{var\.(\w+)\}$/.exec(String(value))
      expect(match, `count ${String(value)}`).not.toBeNull()
      return first(variables[match![1]!]).default as number
    }
    for (const [groupName, groupBlocks] of Object.entries(job.group as HclBlock)) {
      const group = first(groupBlocks)
      expect(count(group.count), groupName).toBeGreaterThanOrEqual(1)
      if (groupName === 'enricher') expect(count(group.count)).toBeGreaterThanOrEqual(2)
      const services = group.service as HclBlock[]
      const checks = services.flatMap((s) => s.check as HclBlock[])
      expect(checks.some((c) => c.type === 'http' && c.path === '/readyz'), groupName).toBe(true)
      const [taskName, taskBlocks] = Object.entries(group.task as HclBlock)[0]!
      expect(taskName).toBe(groupName)
      const task = first(taskBlocks)
      expect(task.driver).toBe('docker')
      const config = first(task.config)
      expect(config.image).toBe('${var.image}')
      expect(config.args).toEqual(['actor', groupName, '--config', '/local/config.yaml'])
      const templates = task.template as HclBlock[]
      expect(templates.some((t) => t.destination === 'local/config.yaml')).toBe(true)
      expect(first(task.env).FLOWBUS_HTTP__LISTEN).toBe('0.0.0.0:8080')
      expect(pipelineActors).toContain(groupName)
    }
    expect(first(variables.config_file).default).toBe('deploy/examples/cluster.yaml')
  })
})

describe('Dockerfile', () => {
  const text = readFileSync(join(deploy, 'Dockerfile'), 'utf8')
  it('is multi-stage on a supported Node LTS, builds with npm ci, runs the flowbus command', () => {
    const version = /^ARG NODE_VERSION=(\d+)$/m.exec(text)?.[1]
    expect(['22', '24']).toContain(version)
    expect(text.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2)
    expect(text).toMatch(/npm ci/)
    expect(text).toMatch(/^ENTRYPOINT \["node", "\/app\/actors\/cli\/bin\/flowbus\.js"\]$/m)
    expect(text).toMatch(/^HEALTHCHECK /m)
    expect(text).toMatch(/^USER node$/m)
    // What it copies from the repository exists.
    const used = [...text.matchAll(/(?:cp|node) ((?:deploy|ui)\/\S+)/g)].map(([, path]) => path!)
    expect(used).toEqual(expect.arrayContaining(['deploy/examples/cluster.yaml', 'ui/scripts/build-if-stale.mjs']))
    for (const path of used) expect(() => readFileSync(join(root, path)), path).not.toThrow()
  })
})
