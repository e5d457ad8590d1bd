// The demo-exporter section: off in `flowbus start` unless enabled, bad values refused naming the
// key, network rules checked before the start, and a user's own network driving the flows.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configSchema, loadConfig } from '@flowbus/runtime'
import { Schema } from 'effect'
import { afterAll, describe, expect, it } from 'vitest'
import { decoderActor } from '../../decoder/src/actor.js'
import { DemoExporterConfig, DemoSimulation, configProblem, demoExporterActor } from '../src/index.js'

const dirs: string[] = []
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
})
const load = async (yaml: string) => {
  const dir = await mkdtemp(join(tmpdir(), 'flowbus-demo-config-'))
  dirs.push(dir)
  await writeFile(join(dir, 'flowbus.yaml'), yaml)
  return loadConfig(configSchema([decoderActor, demoExporterActor]), { file: join(dir, 'flowbus.yaml'), env: {} }) as unknown as Record<string, { enabled: boolean }>
}

const decode = Schema.decodeUnknownSync(DemoExporterConfig)

describe('demo-exporter configuration', () => {
  it('is off unless its section enables it, while other actors default to on', async () => {
    const none = await load('{}\n')
    expect(none['demo-exporter']!.enabled).toBe(false)
    expect(none.decoder!.enabled).toBe(true)
    const on = await load('demo-exporter:\n  enabled: true\n  rate: 50\n')
    expect(on['demo-exporter']).toMatchObject({ enabled: true, rate: 50, seed: 1 })
    const onlyRate = await load('demo-exporter:\n  rate: 50\n')
    expect(onlyRate['demo-exporter']!.enabled).toBe(false)
  })

  it('refuses bad values naming them', () => {
    expect(() => decode({ flowTarget: 'localhost' })).toThrow(/flowTarget[\s\S]*not host:port/)
    expect(() => decode({ exporters: [{ name: 'x', address: '127.0.0.300', interfaces: [] }] })).toThrow(/address/)
    expect(() => decode({ profiles: [{ name: 'x', asn: 1, prefixes: ['10.0.0.0/33'], weight: 1 }] })).toThrow(/10\.0\.0\.0\/33/)
  })

  const transit = { ifIndex: 1, name: 'xe-0/0/0', description: 'Transit: Cogent', speed: 10_000, kind: 'transit', peers: [{ asn: 174, address: '192.0.2.1' }] }
  const customer = {
    ifIndex: 2,
    name: 'xe-0/0/1',
    description: 'Customer: Lab',
    speed: 1_000,
    kind: 'customer',
    peers: [{ asn: 64496, address: '192.0.2.5' }],
    prefixes: ['198.18.0.0/16', '2001:db8:1::/48'],
  }

  it('checks the network before the start', () => {
    const twice = decode({ exporters: [{ name: 'a', address: '127.0.0.21', interfaces: [transit, customer] }, { name: 'b', address: '127.0.0.21', interfaces: [transit, customer] }] })
    expect(configProblem(twice)).toMatch(/two exporters use address 127\.0\.0\.21/)
    const noTransit = decode({ exporters: [{ name: 'a', address: '127.0.0.21', interfaces: [customer, { ...customer, ifIndex: 3 }] }] })
    expect(configProblem(noTransit)).toMatch(/a has no transit interface/)
    const sameIndex = decode({ exporters: [{ name: 'a', address: '127.0.0.21', interfaces: [transit, { ...customer, ifIndex: 1 }] }] })
    expect(configProblem(sameIndex)).toMatch(/ifIndex 1 twice/)
    expect(configProblem(decode({}))).toBeUndefined()
  })

  it('drives the flows with a user network', () => {
    const config = decode({
      seed: 3,
      exporters: [{ name: 'lab1', address: '127.0.0.21', protocol: 'ipfix', samplingRate: 100, interfaces: [transit, customer] }],
      profiles: [{ name: 'Cloudflare', asn: 13335, prefixes: ['1.1.1.0/24'], weight: 1 }],
    })
    const sim = new DemoSimulation(config, Date.UTC(2026, 0, 1))
    const [out] = sim.burst(100, Date.UTC(2026, 0, 1))
    expect(out!.flows).toBe(100)
    // IPv4 only: the profile has no IPv6 prefix.
    expect(sim.network.exporters[0]!.peers.map((p) => p.routes.map((r) => `${r.prefix.text} ${r.asPath.join(' ')}`))).toEqual([['1.1.1.0/24 174 13335'], ['198.18.0.0/16 64496', '2001:db8:1::/48 64496']])
  })
})
