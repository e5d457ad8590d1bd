// Runs enricher actors on an in-process memory bus for tests: config from a plain object (decoded
// by the real schema, so defaults and validation apply), /metrics on a free port, clean stop.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type FlowBatch, flowsEnriched } from '@flowbus/bus-schemas'
import { type BusService, type HttpEndpoint, type ResolvedConfig, configSchema, loadConfig, makeBus, makeMetrics, runActors } from '@flowbus/runtime'
import { Effect, Exit, Fiber, Scope } from 'effect'
import { createMemoryBus } from '../../runtime/src/bus/memory.js'
import { enricherActor } from '../src/actor.js'
import { waitFor as harnessWaitFor } from '../../../test/src/harness/process.js'

export const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

export const waitFor = (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000) =>
  harnessWaitFor(what, condition, timeoutMs, 10)

/** The whole configuration from a document, as `flowbus` would load it from a file. */
export const resolveConfig = (document: Record<string, unknown>): ResolvedConfig => {
  const dir = mkdtempSync(join(tmpdir(), 'enricher-config-'))
  try {
    const file = join(dir, 'flowbus.json')
    writeFileSync(file, JSON.stringify(document))
    return loadConfig(configSchema([enricherActor]), { file, env: {} }) as ResolvedConfig
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface EnricherHarness {
  readonly bus: BusService
  readonly memory: ReturnType<typeof createMemoryBus>
  readonly enriched: { key: string; batch: FlowBatch }[]
  start(section?: Record<string, unknown>): Promise<{ metrics: () => Promise<string>; stop: () => Promise<void> }>
  close(): Promise<void>
}

export const makeHarness = async (): Promise<EnricherHarness> => {
  const memory = createMemoryBus()
  const base = resolveConfig({})
  const bus = makeBus(memory.connect(), base.bus, makeMetrics())
  const scope = await run(Scope.make())
  const enriched: { key: string; batch: FlowBatch }[] = []
  await run(bus.subscribe(flowsEnriched, { group: 'test-reader' }, (m) => Effect.sync(() => enriched.push({ key: m.key, batch: m.value }))).pipe(Scope.extend(scope)))
  const stops: (() => Promise<void>)[] = []
  return {
    bus,
    memory,
    enriched,
    start: async (section = {}) => {
      // Without the embedded GeoIP data unless a test asks for it: loading it takes seconds per start.
      const config = resolveConfig({ http: { listen: '127.0.0.1:0' }, log: { level: 'warning' }, enricher: { geoip: { embedded: false }, ...section } })
      let endpoint: HttpEndpoint | undefined
      let failure: unknown
      const fiber = Effect.runFork(runActors({ actors: [enricherActor], config, transport: memory.connect(), onReady: (e) => (endpoint = e) }))
      fiber.addObserver((exit) => {
        if (Exit.isFailure(exit)) failure = exit.cause
      })
      await waitFor(
        () => `the enricher to start (${String(failure)})`,
        () => {
          if (failure !== undefined) throw new Error(`the enricher failed to start: ${String(failure)}`)
          return endpoint !== undefined
        },
      )
      const url = `http://127.0.0.1:${endpoint!.address!.port}/metrics`
      const stop = async () => void (await run(Fiber.interrupt(fiber)))
      stops.push(stop)
      return { metrics: async () => (await fetch(url)).text(), stop }
    },
    close: async () => {
      for (const stop of stops.splice(0)) await stop()
      await run(Scope.close(scope, Exit.void))
    },
  }
}
