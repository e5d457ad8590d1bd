// Configuration: YAML + environment overrides + schema defaults, and errors that name the key.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Effect, Schema } from 'effect'
import { describe, expect, it } from 'vitest'
import {
  ConfigError,
  configSchema,
  defineActor,
  formatConfig,
  formatByteSize,
  formatDuration,
  loadConfig,
  parseByteSize,
  parseDuration,
} from '../src/index.js'

const demo = defineActor({
  name: 'snmp-poller',
  description: 'test actor with a hyphenated name',
  config: Schema.Struct({
    interval: Schema.optionalWith(Schema.Number, { default: () => 60 }),
    communities: Schema.optionalWith(Schema.Array(Schema.String), { default: () => ['public'] }),
    authPassword: Schema.optional(Schema.String),
  }),
  consumes: [],
  produces: [],
  start: () => Effect.void,
})


const schema = configSchema([demo])
const dir = mkdtempSync(join(tmpdir(), 'flowbus-config-'))
const file = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}
const load = (path: string | undefined, env: Record<string, string> = {}) => loadConfig(schema, { file: path, env }) as any
const issuesOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return (error as ConfigError).issues
  }
  throw new Error('expected a ConfigError')
}

describe('configuration', () => {
  it('gives every section its defaults when there is no file', () => {
    const config = load(undefined)
    expect(config.bus.transport).toBe('memory')
    expect(config.bus.consumer.ackWait).toBe(30_000)
    expect(config.bus.maxMessageBytes).toBe(1024 * 1024)
    expect(config.http.listen).toBe('127.0.0.1:8080')
    expect(config['snmp-poller']).toEqual({ enabled: true, interval: 60, communities: ['public'] })
  })

  it('reads units and merges partial sections with defaults', () => {
    const config = load(
      file('units.yaml', 'bus:\n  transport: nats\n  maxMessageBytes: 2MiB\n  consumer:\n    ackWait: 1m30s\n  nats:\n    servers: [nats://10.0.0.1:4222]\n'),
    )
    expect(config.bus.transport).toBe('nats')
    expect(config.bus.maxMessageBytes).toBe(2 * 1024 * 1024)
    expect(config.bus.consumer.ackWait).toBe(90_000)
    expect(config.bus.consumer.maxInFlight).toBe(64)
    expect(config.bus.nats.servers).toEqual(['nats://10.0.0.1:4222'])
  })

  it('applies FLOWBUS_ environment overrides over the file, matching keys loosely', () => {
    const config = load(file('env.yaml', 'bus:\n  transport: nats\n'), {
      FLOWBUS_BUS__TRANSPORT: 'kafka',
      FLOWBUS_BUS__MAX_MESSAGE_BYTES: '512KiB',
      FLOWBUS_BUS__KAFKA__BROKERS: '[10.0.0.1:9092, 10.0.0.2:9092]',
      FLOWBUS_SNMP_POLLER__INTERVAL: '30',
      FLOWBUS_SNMP_POLLER__AUTH_PASSWORD: '12345',
      FLOWBUS_CONFIG: '/ignored/because/reserved.yaml',
      OTHER: 'x',
    })
    expect(config.bus.transport).toBe('kafka')
    expect(config.bus.maxMessageBytes).toBe(512 * 1024)
    expect(config.bus.kafka.brokers).toEqual(['10.0.0.1:9092', '10.0.0.2:9092'])
    expect(config['snmp-poller'].interval).toBe(30)
    // A key that only takes text keeps digits as text.
    expect(config['snmp-poller'].authPassword).toBe('12345')
  })

  it('names the key path, the expectation and the file line of a bad value', () => {
    const issues = issuesOf(() => load(file('bad.yaml', 'log:\n  level: info\nbus:\n  transport: natz\n  consumer:\n    ackWait: soon\n')))
    expect(issues).toHaveLength(2)
    const transport = issues.find((i) => i.path === 'bus.transport')!
    expect(transport.message).toMatch(/"memory" \| "nats" \| "kafka"/)
    expect(transport.message).toContain('natz')
    expect(transport.source).toMatch(/bad\.yaml:4$/)
    const ackWait = issues.find((i) => i.path === 'bus.consumer.ackWait')!
    expect(ackWait.message).toMatch(/expected a duration.*"soon"/)
    expect(ackWait.source).toMatch(/bad\.yaml:6$/)
  })

  it('rejects unknown keys instead of ignoring typos', () => {
    const issues = issuesOf(() => load(file('typo.yaml', 'bus:\n  transprt: nats\n')))
    expect(issues[0]!.path).toBe('bus.transprt')
    expect(issues[0]!.message).toMatch(/unknown key/)
  })

  it('attributes a bad environment value to its variable', () => {
    const issues = issuesOf(() => load(undefined, { FLOWBUS_BUS__PARTITIONS: 'many' }))
    expect(issues[0]!.path).toBe('bus.partitions')
    expect(issues[0]!.source).toBe('environment FLOWBUS_BUS__PARTITIONS')
  })

  it('rejects an environment variable naming no key', () => {
    const issues = issuesOf(() => load(undefined, { FLOWBUS_BUS__NOPE: '1' }))
    expect(issues[0]!.message).toMatch(/unknown key "NOPE".*transport/)
    expect(issues[0]!.source).toBe('environment FLOWBUS_BUS__NOPE')
  })

  it('reports YAML syntax errors with the line', () => {
    const issues = issuesOf(() => load(file('syntax.yaml', 'bus:\n  transport: [nats\n')))
    expect(issues[0]!.message).toMatch(/YAML syntax/)
    expect(issues[0]!.source).toMatch(/syntax\.yaml:\d+/)
  })

  it('reports a missing file by name', () => {
    const issues = issuesOf(() => load(join(dir, 'absent.yaml')))
    expect(issues[0]!.source).toContain('absent.yaml')
  })

  it('prints the resolved configuration with units as text and secrets masked', () => {
    const config = load(undefined, { FLOWBUS_BUS__NATS__PASS: 'hunter2', FLOWBUS_BUS__CONSUMER__ACK_WAIT: '90s' })
    const text = formatConfig(schema, config)
    expect(text).toContain('ackWait: 1m30s')
    expect(text).toContain('maxMessageBytes: 1MiB')
    expect(text).toContain('pass: "********"')
    expect(text).not.toContain('hunter2')
    // What is printed loads back to the same configuration (secrets aside).
    const reloaded = load(file('printed.yaml', text.replace('pass: "********"', 'pass: hunter2').replace(/(communities:\n\s+- )"\*{8}"/, '$1public')))
    expect(reloaded).toEqual(config)
  })

  it('masks SNMP communities and v3 passwords, keeping how many communities there are', () => {
    const Agents = Schema.Struct({
      agents: Schema.Array(Schema.Struct({ communities: Schema.Array(Schema.String), user: Schema.Struct({ authPassword: Schema.String }) })),
    })
    const text = formatConfig(Agents, { agents: [{ communities: ['s3cret-ro', 'public'], user: { authPassword: 'authpass99' } }] })
    expect(text).not.toMatch(/s3cret-ro|public|authpass99/)
    expect(text).toMatch(/communities:\n\s+- "\*{8}"\n\s+- "\*{8}"\n/)
    expect(text).toContain('authPassword: "********"')
  })
})

describe('units', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['1h30m', 5_400_000],
    ['7d', 604_800_000],
    ['1.5s', 1_500],
    ['0', 0],
  ])('parses duration %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
    expect(parseDuration(formatDuration(ms))).toBe(ms)
  })
  it.each(['', 's', '10', '1x', '1h 30m', '-1s'])('rejects duration %j', (text) => {
    expect(parseDuration(text)).toBeUndefined()
  })
  it.each([
    ['512', 512],
    ['64MiB', 64 * 1024 ** 2],
    ['1GB', 1e9],
    ['1.5KiB', 1536],
  ])('parses size %s', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes)
    expect(parseByteSize(formatByteSize(bytes))).toBe(bytes)
  })
  it.each(['', 'MiB', '1 parsec', '-1B'])('rejects size %j', (text) => {
    expect(parseByteSize(text)).toBeUndefined()
  })
})
