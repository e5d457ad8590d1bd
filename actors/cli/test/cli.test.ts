// The flowbus command as users run it: help, config printing, bad configuration, and a
// real `flowbus start` process that serves health and stops cleanly on SIGTERM.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const bin = join(root, 'actors/cli/bin/flowbus.js')
const dir = mkdtempSync(join(tmpdir(), 'flowbus-cli-'))
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_')))

const flowbus = (args: string[], extraEnv: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...args], { cwd: root, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 30_000 })

describe('flowbus CLI', () => {
  it('prints help listing the commands', () => {
    const result = flowbus(['--help'])
    expect(result.status).toBe(0)
    for (const command of ['start', 'actor', 'config']) expect(result.stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
  })

  it.each(['start', 'actor', 'config'])('prints help for %s', (command) => {
    const result = flowbus([command, '--help'])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain(`Usage: flowbus ${command}`)
  })

  it('rejects an unknown command with exit code 2', () => {
    const result = flowbus(['frobnicate'])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('unknown command "frobnicate"')
  })

  it('prints the resolved configuration with environment overrides applied', () => {
    const file = join(dir, 'ok.yaml')
    writeFileSync(file, 'bus:\n  transport: nats\n')
    const result = flowbus(['config', '--config', file], { FLOWBUS_BUS__PARTITIONS: '16' })
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^bus:\n  transport: nats\n  partitions: 16\n/)
    expect(result.stdout).toContain('listen: 127.0.0.1:8080')
  })

  it('exits 2 and names the bad key of a bad configuration', () => {
    const file = join(dir, 'bad.yaml')
    writeFileSync(file, 'bus:\n  partitions: lots\n')
    const result = flowbus(['config', '--config', file])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('bus.partitions')
    expect(result.stderr).toContain(`${file}:2`)
  })

  it('takes the configuration file from FLOWBUS_CONFIG', () => {
    const file = join(dir, 'from-env.yaml')
    writeFileSync(file, 'log:\n  level: debug\n')
    const result = flowbus(['config'], { FLOWBUS_CONFIG: file })
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/log:\n  level: debug/)
  })

  it('prints a JSON Schema describing every section', () => {
    const result = flowbus(['config', '--json-schema'])
    expect(result.status).toBe(0)
    const schema = JSON.parse(result.stdout)
    expect(schema.title).toBe('flowbus configuration')
    expect(JSON.stringify(schema)).toContain('"transport"')
  })

  it('keeps docs/config.schema.json equal to what the command prints', () => {
    const result = flowbus(['config', '--json-schema'])
    const committed = readFileSync(join(root, 'docs/config.schema.json'), 'utf8')
    // If this fails after a config change, regenerate: npx flowbus config --json-schema > docs/config.schema.json
    expect(committed).toBe(result.stdout)
  })

  it('refuses an unknown actor', () => {
    const result = flowbus(['actor', 'nope'])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('unknown actor "nope"')
  })

  it('starts, serves /healthz, /readyz and /metrics, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [bin, 'start'], {
      cwd: root,
      env: {
        ...env,
        FLOWBUS_HTTP__LISTEN: '127.0.0.1:0',
        FLOWBUS_LOG__FORMAT: 'json',
        FLOWBUS_CLICKHOUSE__PATH: join(dir, 'clickhouse'),
        // Not the default 2055/4739/6343: other tests may be receiving there.
        FLOWBUS_RECEIVER__LISTENERS: '[{"name":"netflow","listen":["127.0.0.1:0"]}]',
        // The BMP listener and the gateway too: ephemeral loopback ports, not 10179 and 8081.
        FLOWBUS_BMP_RIB__LISTEN_ADDRESS: '127.0.0.1',
        FLOWBUS_BMP_RIB__PORT: '0',
        FLOWBUS_GATEWAY__LISTEN: '127.0.0.1:0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no HTTP address logged:\n${stderr}`)), 20_000)
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
        const match = /metrics and health on (http:\/\/[^" ]+)/.exec(stderr)
        if (match) {
          clearTimeout(timer)
          resolve(match[1]!)
        }
      })
      child.once('exit', (code) => reject(new Error(`exited early (${code}):\n${stderr}`)))
    })
    expect(stderr.split('\n').filter(Boolean).every((line) => JSON.parse(line).level)).toBe(true)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    // Actors finish starting after the endpoint is up (the embedded ClickHouse engine loads in
    // about half a second): readiness must turn true, and stay reported as such.
    let ready = await fetch(`${url}/readyz`)
    for (let i = 0; i < 300 && ready.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      ready = await fetch(`${url}/readyz`)
    }
    expect(ready.status).toBe(200)
    expect(((await ready.json()) as { ready: boolean }).ready).toBe(true)
    const metrics = await (await fetch(`${url}/metrics`)).text()
    expect(metrics).toContain('flowbus_process_')
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(stderr).toContain('shutting down')
  })
})
