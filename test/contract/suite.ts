// The transport contract as executable tests: one suite, run unchanged against memory, NATS and Kafka,
// so the typed Bus layer can rely on the same ordering, redelivery, backpressure and fan-out everywhere.
/**
 * How to use it (one file per transport, e.g. `test/contract/nats.test.ts`):
 *
 * ```ts
 * import { defineTransportContract, spawnFixtureConsumer } from './suite.js'
 *
 * let url = ''
 * defineTransportContract('nats', {
 *   beforeAll: async () => { server = await startNats(); url = server.url },   // optional hooks
 *   afterAll: async () => { await server.stop() },
 *   create: () => createNatsTransport({ servers: [url] }),                      // a NEW client each call
 *   spawnConsumer: (args) => spawnFixtureConsumer({ transport: 'nats', options: { servers: [url] } }, args),
 *   features: { redeliveryCountAfterMemberLoss: true },
 *   skip: natsAvailable ? undefined : 'nats-server not installed',
 * })
 * ```
 *
 * - `create()` must return a new client of the same broker at each call: two calls model two
 *   processes. The suite closes every client (and every subscription first) after each test.
 * - `spawnConsumer` runs `fixtures/consumer.ts` in a child process (see `spawnFixtureConsumer`).
 *   The fixture builds the transport by name: it imports `actors/runtime/src/bus/<transport>.ts`
 *   and calls `create<Name>Transport(options)` with the JSON-serialisable `options` given here.
 *   Without `spawnConsumer` (memory) the out-of-process tests are skipped.
 * - `features.redeliveryCountAfterMemberLoss: false` for transports that cannot know a message was
 *   delivered to a member that died (Kafka keeps no per-message delivery count): the suite then
 *   still requires the redelivery, but not `deliveryCount > 1` on it.
 * - `skip` skips the whole block with the reason shown in its name (a server that cannot run here).
 * - `contractStream(tag, partitions)` is exported for transport-specific tests: fresh names each call.
 *
 * Every test uses fresh stream/group/bucket/subject names, provisions streams with 4 partitions,
 * starts its consumers and waits for their shard assignment before publishing (so no test depends
 * on where a brand-new group starts reading), and waits with deadlines, never on timings.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { shardOf } from '../../actors/runtime/src/bus/sharding.js'
import {
  TransportMessageTooLarge,
  TransportNoResponders,
  TransportTimeout,
  type BucketSpec,
  type Closeable,
  type ConsumeOptions,
  type Delivery,
  type DeliveryHandler,
  type KvEntry,
  type StreamSpec,
  type Subscription,
  type Transport,
} from '../../actors/runtime/src/bus/transport.js'
import { CHILD_ENV, type ChildConnection, type ChildJob, type ConsumerChildArgs, type ConsumerChildEvent } from './fixtures/protocol.js'

export type { ChildConnection, ConsumerChildArgs, ConsumerChildEvent } from './fixtures/protocol.js'

const fixturePath = fileURLToPath(new URL('./fixtures/consumer.ts', import.meta.url))
const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/**
 * Spawns the fixture consumer with `node --import tsx --conditions=source`, stdout piped (one
 * JSON event per line), stderr piped. Use it as the body of `ContractSetup.spawnConsumer`.
 */
export const spawnFixtureConsumer = (connection: ChildConnection, args: ConsumerChildArgs): ChildProcess => {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  return spawn(process.execPath, ['--import', tsx, '--conditions=source', fixturePath], {
    cwd: repoRoot,
    env: { ...process.env, [CHILD_ENV]: JSON.stringify({ connection, args } satisfies ChildJob) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

export interface ContractSetup {
  /** A new client of the shared broker at each call (two calls = two processes). */
  create(): Promise<Transport>
  /** Runs a consumer in another OS process; absent → the out-of-process tests are skipped. */
  spawnConsumer?: (args: ConsumerChildArgs) => ChildProcess
  /** Start/stop the broker around the block (run inside the describe). */
  beforeAll?: () => Promise<void>
  afterAll?: () => Promise<void>
  features?: {
    /** Whether a message a dead/closed member saw comes back with deliveryCount > 1 (default true). */
    readonly redeliveryCountAfterMemberLoss?: boolean
  }
  /** Reason to skip the whole block (e.g. the server cannot start on this machine). */
  skip?: string
}

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the tests.

const PARTITIONS = 4
/** Waits are generous: Kafka rebalances after session timeouts of seconds. */
const DEADLINE_MS = 60_000
const SLOW_TEST = { timeout: 180_000 }
const TEST = { timeout: 90_000 }

const utf8 = new TextEncoder()
const text = new TextDecoder()
const bytes = (s: string): Uint8Array => utf8.encode(s)
const str = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : text.decode(b))

const suffix = (): string => `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`

/** A fresh stream for one test: NATS, Kafka and memory names all derived from one tag. */
export const contractStream = (tag: string, partitions = PARTITIONS): StreamSpec => {
  const id = `${tag}${suffix()}`
  return {
    base: `contract.${id}.v1`,
    natsStream: `FLOWBUS_CONTRACT_${id.toUpperCase()}_V1`,
    kafkaTopic: `flowbus-contract-${id}-v1`,
    partitions,
    replicas: 1,
    maxAgeSeconds: 3600,
    maxBytes: 0,
  }
}

const contractBucket = (tag: string): BucketSpec => {
  const id = `${tag}${suffix()}`
  return { natsBucket: `flowbus_contract_${id}_v1`, kafkaTopic: `flowbus-contract-${id}-v1`, replicas: 1 }
}

const contractSubject = (tag: string): string => `contract.${tag}${suffix()}.v1`

const consumeOptions = (group: string, overrides: Partial<ConsumeOptions> = {}): ConsumeOptions => ({
  group,
  maxInFlight: 64,
  maxInFlightBytes: 8 * 1024 * 1024,
  ackWaitMs: 30_000,
  ...overrides,
})

const group = (tag: string): string => `contract-${tag}-${suffix()}`

/** Polls until `condition` holds; fails naming what it waited for. */
const waitFor = async (
  what: string | (() => string),
  condition: () => boolean | Promise<boolean>,
  timeoutMs = DEADLINE_MS,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`)
    }
    await sleep(25)
  }
}

const sorted = (ns: readonly number[]): number[] => [...ns].sort((a, b) => a - b)
const allShards = (n = PARTITIONS): number[] => Array.from({ length: n }, (_, i) => i)

/**
 * Publishes rounds of one message per shard until `received()` says every member got some: an
 * assignment report may lead the moment a member really stops pulling a shard it gave away, so
 * a single burst right after the report could all land on the previous owner. Returns the texts.
 */
const publishUntilShared = async (
  t: Transport,
  stream: StreamSpec,
  prefix: string,
  received: () => readonly number[],
): Promise<string[]> => {
  const sent: string[] = []
  const deadline = Date.now() + DEADLINE_MS
  for (let round = 0; ; round++) {
    for (let shard = 0; shard < stream.partitions; shard++) {
      const m = `${prefix}${round}.${shard}`
      await t.publish(stream, shard, m, bytes(m))
      sent.push(m)
    }
    if (round >= 9 && received().every((n) => n > 0)) return sent
    if (Date.now() > deadline) {
      throw new Error(`timed out publishing until every member got a message: received ${JSON.stringify(received())}`)
    }
    if (round >= 9) await sleep(100)
  }
}

/** A consumer in the test process that records what it got. */
interface Recorder {
  readonly deliveries: Delivery[]
  /** Payload texts in arrival order. */
  readonly texts: string[]
  readonly distinct: Set<string>
}

const recorder = (): Recorder => ({ deliveries: [], texts: [], distinct: new Set() })

const record = (r: Recorder, d: Delivery): string => {
  const t = text.decode(d.data)
  r.deliveries.push(d)
  r.texts.push(t)
  r.distinct.add(t)
  return t
}

/** A child consumer process seen through its stdout events. */
class ChildConsumer {
  readonly deliveries: Extract<ConsumerChildEvent, { event: 'delivery' }>[] = []
  readonly distinct = new Set<string>()
  shards: readonly number[] = []
  ready = false
  exited = false
  private stderr = ''
  private errors: string[] = []

  constructor(readonly process: ChildProcess) {
    let buffered = ''
    process.stdout?.setEncoding('utf8')
    process.stdout?.on('data', (chunk: string) => {
      buffered += chunk
      let newline: number
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim()
        buffered = buffered.slice(newline + 1)
        if (line !== '') this.onLine(line)
      }
    })
    process.stderr?.setEncoding('utf8')
    process.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-8000)
    })
    process.on('exit', () => {
      this.exited = true
    })
  }

  private onLine(line: string): void {
    let event: ConsumerChildEvent
    try {
      event = JSON.parse(line) as ConsumerChildEvent
    } catch {
      this.errors.push(`unparsable line: ${line}`)
      return
    }
    switch (event.event) {
      case 'ready':
        this.ready = true
        break
      case 'shards':
        this.shards = event.shards
        break
      case 'delivery':
        this.deliveries.push(event)
        this.distinct.add(event.data)
        break
      case 'error':
        this.errors.push(event.message)
        break
    }
  }

  /** Throws if the child died or reported an error: a broken fixture must not look like a slow broker. */
  check(): void {
    if (this.errors.length > 0) throw new Error(`child consumer reported: ${this.errors.join('; ')}\n${this.stderr}`)
    if (this.exited) throw new Error(`child consumer exited early:\n${this.stderr}`)
  }

  async kill(): Promise<void> {
    if (this.exited) return
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()))
    this.process.kill('SIGKILL')
    await exited
  }
}

/**
 * Declares the contract tests for one transport as a vitest `describe` block.
 * See the module comment for the `setup` fields.
 */
export const defineTransportContract = (name: string, setup: ContractSetup): void => {
  const title = setup.skip ? `${name} transport contract (skipped: ${setup.skip})` : `${name} transport contract`
  const countsAfterLoss = setup.features?.redeliveryCountAfterMemberLoss ?? true

  describe.skipIf(setup.skip !== undefined)(title, () => {
    if (setup.beforeAll) beforeAll(setup.beforeAll)
    if (setup.afterAll) afterAll(setup.afterAll)

    /**
     * Per-test resources, released after the test: children killed, then subscriptions and other
     * closeables (a second close() of an already closed subscription must be harmless), then clients.
     */
    const resources = () => {
      const closeables: Closeable[] = []
      const clients: Transport[] = []
      const children: ChildConsumer[] = []
      onTestFinished(async () => {
        for (const child of children) await child.kill()
        for (const c of closeables.reverse()) await c.close().catch(() => {})
        for (const t of clients.reverse()) await t.close().catch(() => {})
      })
      return {
        client: async (): Promise<Transport> => {
          const t = await setup.create()
          clients.push(t)
          return t
        },
        track: <C extends Closeable>(c: C): C => {
          closeables.push(c)
          return c
        },
        child: (args: ConsumerChildArgs): ChildConsumer => {
          const child = new ChildConsumer(setup.spawnConsumer!(args))
          children.push(child)
          return child
        },
      }
    }

    const subscribe = async (
      t: Transport,
      track: <C extends Closeable>(c: C) => C,
      stream: StreamSpec,
      options: ConsumeOptions,
      handler: DeliveryHandler,
    ): Promise<Subscription> => track(await t.consume(stream, options, handler))

    const waitForShards = (what: string, owners: () => (readonly number[])[], n = PARTITIONS) =>
      waitFor(
        () => `${what}: shard assignment ${JSON.stringify(owners())} to cover ${n} shards once`,
        () => {
          const all = owners().flat()
          return all.length === n && new Set(all).size === n
        },
      )

    it('delivers every message exactly once, in order per key, one handler at a time per shard', TEST, async () => {
      const r = resources()
      const t = await r.client()
      const stream = contractStream('order')
      await t.provision([stream], [])

      const keys = Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}`)
      const perKey = 25
      const got = new Map<string, number[]>()
      const running = new Map<number, number>()
      let overlaps = 0
      let total = 0
      let wrongShard = 0
      const sub = await subscribe(t, r.track, stream, consumeOptions(group('order')), async (d) => {
        running.set(d.shard, (running.get(d.shard) ?? 0) + 1)
        if (running.get(d.shard)! > 1) overlaps++
        const [key, seq] = text.decode(d.data).split('#') as [string, string]
        if (d.key !== key || d.shard !== shardOf(key, PARTITIONS)) wrongShard++
        got.set(key, [...(got.get(key) ?? []), Number(seq)])
        total++
        await sleep(0)
        await d.ack()
        running.set(d.shard, running.get(d.shard)! - 1)
      })
      await waitForShards('single member', () => [sub.assignedShards()])

      // Keys publish concurrently, each key's sequence in order (as one exporter's batches would).
      await Promise.all(
        keys.map(async (key) => {
          for (let seq = 0; seq < perKey; seq++) {
            await t.publish(stream, shardOf(key, PARTITIONS), key, bytes(`${key}#${seq}`))
          }
        }),
      )
      await waitFor(() => `${keys.length * perKey} deliveries, got ${total}`, () => total >= keys.length * perKey)
      await sleep(200) // a duplicate would show up here; the assertion below is on content only

      expect(total).toBe(keys.length * perKey)
      for (const key of keys) expect(got.get(key), key).toEqual(Array.from({ length: perKey }, (_, i) => i))
      expect(overlaps).toBe(0)
      expect(wrongShard).toBe(0)
    })

    it('carries headers and keys through to the consumer', TEST, async () => {
      const r = resources()
      const [producer, consumer] = [await r.client(), await r.client()]
      const stream = contractStream('headers')
      await producer.provision([stream], [])
      const got: Delivery[] = []
      const sub = await subscribe(consumer, r.track, stream, consumeOptions(group('headers')), async (d) => {
        got.push(d)
        await d.ack()
      })
      await waitForShards('single member', () => [sub.assignedShards()])
      await producer.publish(stream, 2, 'exporter-a', bytes('with headers'), { 'flowbus-schema': 'x.v1', trace: '42' })
      await producer.publish(stream, 3, 'exporter-b', bytes('without headers'))
      await waitFor('2 deliveries', () => got.length >= 2)
      const withHeaders = got.find((d) => str(d.data) === 'with headers')!
      const without = got.find((d) => str(d.data) === 'without headers')!
      expect([withHeaders.shard, withHeaders.key, withHeaders.deliveryCount]).toEqual([2, 'exporter-a', 1])
      expect(withHeaders.headers).toMatchObject({ 'flowbus-schema': 'x.v1', trace: '42' })
      expect([without.shard, without.key]).toEqual([3, 'exporter-b'])
    })

    it('redelivers what a closed member never acked', TEST, async () => {
      const r = resources()
      const [producer, first, second] = [await r.client(), await r.client(), await r.client()]
      const stream = contractStream('closed')
      const g = group('closed')
      await producer.provision([stream], [])

      const seenByFirst = recorder()
      const sub1 = await subscribe(first, r.track, stream, consumeOptions(g), async (d) => {
        record(seenByFirst, d) // never acks
      })
      await waitForShards('first member', () => [sub1.assignedShards()])
      const all = Array.from({ length: 20 }, (_, i) => `m${i}`)
      for (const [i, m] of all.entries()) await producer.publish(stream, i % PARTITIONS, m, bytes(m))
      await waitFor('first member to see all 20', () => seenByFirst.distinct.size === all.length)
      await sub1.close()

      const seenBySecond = recorder()
      const sub2 = await subscribe(second, r.track, stream, consumeOptions(g), async (d) => {
        record(seenBySecond, d)
        await d.ack()
      })
      await waitFor(
        () => `second member to get the 20 unacked messages, has ${seenBySecond.distinct.size}`,
        () => seenBySecond.distinct.size === all.length,
      )
      expect(sorted(sub2.assignedShards())).toEqual(allShards())
      if (countsAfterLoss) {
        for (const d of seenBySecond.deliveries) expect(d.deliveryCount, str(d.data)).toBeGreaterThan(1)
      }
      // Positions: defined, increasing in publication order within a shard, the same on redelivery.
      const firstPosition = new Map(seenByFirst.deliveries.map((d) => [str(d.data), d.position]))
      for (const d of seenBySecond.deliveries) expect(d.position, str(d.data)).toBe(firstPosition.get(str(d.data)))
      for (let shard = 0; shard < PARTITIONS; shard++) {
        const positions = all.filter((_, i) => i % PARTITIONS === shard).map((m) => firstPosition.get(m))
        for (const p of positions) expect(Number.isSafeInteger(p), `shard ${shard} positions ${positions}`).toBe(true)
        expect(positions, `shard ${shard}`).toEqual([...positions].sort((a, b) => a! - b!))
        expect(new Set(positions).size, `shard ${shard}`).toBe(positions.length)
      }
    })

    it.skipIf(!setup.spawnConsumer)(
      'redelivers everything a SIGKILLed consumer process received but never acked',
      SLOW_TEST,
      async () => {
        const r = resources()
        const [producer, survivor] = [await r.client(), await r.client()]
        const stream = contractStream('sigkill')
        const g = group('sigkill')
        await producer.provision([stream], [])
        const options = consumeOptions(g, { ackWaitMs: 3_000 })

        const child = r.child({ stream, consume: options, mode: 'hold' })
        await waitFor('child consumer to own every shard', () => {
          child.check()
          return child.ready && sorted(child.shards).join() === allShards().join()
        })
        const all = Array.from({ length: 40 }, (_, i) => `k${i}`)
        for (const [i, m] of all.entries()) await producer.publish(stream, i % PARTITIONS, m, bytes(m))
        await waitFor(
          () => `child to report all 40 deliveries, has ${child.distinct.size}`,
          () => {
            child.check()
            return child.distinct.size === all.length
          },
        )
        await child.kill()

        const got = recorder()
        await subscribe(survivor, r.track, stream, options, async (d) => {
          record(got, d)
          await d.ack()
        })
        await waitFor(
          () => `survivor to receive all 40 messages, has ${got.distinct.size}`,
          () => got.distinct.size === all.length,
        )
        expect([...got.distinct].sort()).toEqual([...all].sort())
        if (countsAfterLoss) {
          for (const d of got.deliveries) expect(d.deliveryCount, str(d.data)).toBeGreaterThan(1)
        }
      },
    )

    it('shares shards between two members of a group and hands them over when one closes', SLOW_TEST, async () => {
      const r = resources()
      const [producer, a, b] = [await r.client(), await r.client(), await r.client()]
      const stream = contractStream('share')
      const g = group('share')
      await producer.provision([stream], [])

      const gotA = recorder()
      const gotB = recorder()
      const subA = await subscribe(a, r.track, stream, consumeOptions(g), async (d) => {
        record(gotA, d)
        await d.ack()
      })
      const subB = await subscribe(b, r.track, stream, consumeOptions(g), async (d) => {
        record(gotB, d)
        await d.ack()
      })
      await waitForShards('two members', () => [subA.assignedShards(), subB.assignedShards()])
      expect(subA.assignedShards().length).toBeGreaterThan(0)
      expect(subB.assignedShards().length).toBeGreaterThan(0)

      const first = await publishUntilShared(producer, stream, 'first', () => [gotA.texts.length, gotB.texts.length])
      await waitFor(
        () => `both members together to get ${first.length} messages, have ${gotA.distinct.size}+${gotB.distinct.size}`,
        () => gotA.distinct.size + gotB.distinct.size >= first.length,
      )
      expect(gotA.texts.length).toBeGreaterThan(0)
      expect(gotB.texts.length).toBeGreaterThan(0)
      expect(gotA.texts.length + gotB.texts.length).toBe(first.length) // nobody got a message twice
      expect(new Set([...gotA.texts, ...gotB.texts])).toEqual(new Set(first))

      await subB.close()
      await waitForShards('after B closed', () => [subA.assignedShards()])
      const afterClose = Array.from({ length: 40 }, (_, i) => `second${i}`)
      for (const [i, m] of afterClose.entries()) await producer.publish(stream, i % PARTITIONS, m, bytes(m))
      await waitFor(
        () => `A to get the 40 messages published after B closed`,
        () => afterClose.every((m) => gotA.distinct.has(m)),
      )
      expect(afterClose.some((m) => gotB.distinct.has(m))).toBe(false)
    })

    it.skipIf(!setup.spawnConsumer)(
      'hands the shards of a SIGKILLed member process over to the surviving member',
      SLOW_TEST,
      async () => {
        const r = resources()
        const [producer, survivor] = [await r.client(), await r.client()]
        const stream = contractStream('takeover')
        const g = group('takeover')
        await producer.provision([stream], [])
        const options = consumeOptions(g, { ackWaitMs: 3_000 })

        const got = recorder()
        const sub = await subscribe(survivor, r.track, stream, options, async (d) => {
          record(got, d)
          await d.ack()
        })
        await waitForShards('survivor alone', () => [sub.assignedShards()])
        const child = r.child({ stream, consume: options, mode: 'ack' })
        await waitForShards('survivor and child', () => {
          child.check()
          return [sub.assignedShards(), child.shards]
        })

        const before = await publishUntilShared(producer, stream, 'before', () => {
          child.check()
          return [got.texts.length, child.deliveries.length]
        })
        await waitFor(
          () => `survivor and child to get ${before.length} messages, have ${got.distinct.size}+${child.distinct.size}`,
          () => {
            child.check()
            return got.distinct.size + child.distinct.size >= before.length
          },
        )
        expect(got.texts.length).toBeGreaterThan(0)
        expect(child.deliveries.length).toBeGreaterThan(0)
        expect(got.texts.length + child.deliveries.length).toBe(before.length)

        await child.kill()
        await waitForShards('survivor after the kill', () => [sub.assignedShards()])
        const after = Array.from({ length: 40 }, (_, i) => `after${i}`)
        for (const [i, m] of after.entries()) await producer.publish(stream, i % PARTITIONS, m, bytes(m))
        await waitFor(
          () => `survivor to get the 40 messages published after the kill`,
          () => after.every((m) => got.distinct.has(m)),
        )
      },
    )

    it('serves requests round the responders, times out, and reports missing responders', TEST, async () => {
      const r = resources()
      const [one, two, requester] = [await r.client(), await r.client(), await r.client()]
      const subject = contractSubject('echo')
      const served = { one: 0, two: 0 }
      const responderOne = await one.serve(subject, async (req) => {
        served.one++
        return bytes(`one:${str(req)}`)
      })
      r.track(
        await two.serve(subject, async (req) => {
          served.two++
          return bytes(`two:${str(req)}`)
        }),
      )
      for (let i = 0; i < 40; i++) {
        const reply = str(await requester.request(subject, bytes(`q${i}`), 10_000))
        expect([`one:q${i}`, `two:q${i}`]).toContain(reply)
      }
      expect(served.one + served.two).toBe(40)
      expect(served.one).toBeGreaterThan(0)
      expect(served.two).toBeGreaterThan(0)

      // A closed responder no longer gets requests.
      await responderOne.close()
      const oneBefore = served.one
      for (let i = 0; i < 10; i++) expect(str(await requester.request(subject, bytes(`r${i}`), 10_000))).toBe(`two:r${i}`)
      expect(served.one).toBe(oneBefore)

      // A responder that never answers: the request fails with TransportTimeout naming the subject.
      const silent = contractSubject('silent')
      let release: () => void = () => {}
      const gate = new Promise<void>((resolve) => (release = resolve))
      onTestFinished(() => release())
      r.track(
        await one.serve(silent, async () => {
          await gate
          return bytes('late')
        }),
      )
      const timedOut = await requester.request(silent, bytes('anyone?'), 500).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(timedOut).toBeInstanceOf(TransportTimeout)
      expect((timedOut as TransportTimeout).subject).toBe(silent)
      expect((timedOut as TransportTimeout).timeoutMs).toBe(500)

      // Nobody serves the subject: NoResponders where the transport can tell, else a timeout.
      const nobody = contractSubject('nobody')
      const missing = await requester.request(nobody, bytes('hello?'), 2_000).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(missing instanceof TransportNoResponders || missing instanceof TransportTimeout, String(missing)).toBe(true)
      expect((missing as TransportNoResponders | TransportTimeout).subject).toBe(nobody)
    })

    it('rejects an oversized message with TransportMessageTooLarge and keeps working', TEST, async () => {
      const r = resources()
      const t = await r.client()
      const stream = contractStream('large')
      await t.provision([stream], [])
      const got: string[] = []
      const sub = await subscribe(t, r.track, stream, consumeOptions(group('large')), async (d) => {
        got.push(text.decode(d.data))
        await d.ack()
      })
      await waitForShards('single member', () => [sub.assignedShards()])

      const oversized = new Uint8Array(t.maxMessageBytes + 1)
      const error = await t.publish(stream, 1, 'big', oversized).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(TransportMessageTooLarge)
      const tooLarge = error as TransportMessageTooLarge
      expect([stream.base, stream.natsStream, stream.kafkaTopic].some((n) => tooLarge.subject.includes(n))).toBe(true)
      expect(tooLarge.message).toContain(tooLarge.subject)
      expect(tooLarge.size).toBeGreaterThan(t.maxMessageBytes)
      expect(tooLarge.limit).toBe(t.maxMessageBytes)

      await t.publish(stream, 1, 'small', bytes('still flowing'))
      await waitFor('the message published after the rejection', () => got.includes('still flowing'))
      expect(got).toEqual(['still flowing'])
    })

    it('redelivers after nak and after the ack wait, counting deliveries', TEST, async () => {
      const r = resources()
      const [producer, consumer] = [await r.client(), await r.client()]
      const stream = contractStream('nak')
      await producer.provision([stream], [])

      const seen: { data: string; count: number }[] = []
      const sub = await subscribe(
        consumer,
        r.track,
        stream,
        consumeOptions(group('nak'), { ackWaitMs: 1_000 }),
        async (d) => {
          const data = text.decode(d.data)
          seen.push({ data, count: d.deliveryCount })
          if (data === 'nak-me') {
            if (d.deliveryCount === 1) await d.nak(200)
            else if (d.deliveryCount === 2) await d.nak()
            else await d.ack()
          } else if (data === 'forget-me') {
            if (d.deliveryCount > 1) await d.ack() // the first delivery is left to the ack wait
          } else {
            await d.ack()
          }
        },
      )
      await waitForShards('single member', () => [sub.assignedShards()])
      await producer.publish(stream, 0, 'n', bytes('nak-me'))
      await producer.publish(stream, 1, 'f', bytes('forget-me'))
      await waitFor(
        () => `3 deliveries of nak-me and 2 of forget-me, saw ${JSON.stringify(seen)}`,
        () =>
          seen.filter((s) => s.data === 'nak-me').length >= 3 && seen.filter((s) => s.data === 'forget-me').length >= 2,
      )
      await sleep(300)
      expect(seen.filter((s) => s.data === 'nak-me').map((s) => s.count)).toEqual([1, 2, 3])
      expect(seen.filter((s) => s.data === 'forget-me').map((s) => s.count)).toEqual([1, 2])
    })

    it('stores, lists, deletes and watches key/value entries across clients', TEST, async () => {
      const r = resources()
      const [writer, watcher] = [await r.client(), await r.client()]
      const bucket = contractBucket('kv')
      await writer.provision([], [bucket])
      const kv = await writer.kv(bucket)

      expect(await kv.get('missing')).toBeUndefined()
      await kv.put('exporter.192_0_2_1', bytes('edge-1'))
      await kv.put('exporter.192_0_2_2', bytes('edge-2'))
      await kv.put('exporter.192_0_2_3', bytes('edge-3'))
      await kv.delete('exporter.192_0_2_3')
      expect(str(await kv.get('exporter.192_0_2_1'))).toBe('edge-1')
      expect(await kv.get('exporter.192_0_2_3')).toBeUndefined()
      expect((await kv.keys()).sort()).toEqual(['exporter.192_0_2_1', 'exporter.192_0_2_2'])

      const other = await watcher.kv(bucket)
      await waitFor('second client to read the put value', async () => str(await other.get('exporter.192_0_2_2')) === 'edge-2')
      const seen: { key: string; value: string | undefined }[] = []
      r.track(
        await other.watch((e: KvEntry) => {
          seen.push({ key: e.key, value: str(e.value) })
        }),
      )
      const latest = () => new Map(seen.map((s) => [s.key, s.value]))
      await waitFor(
        () => `watch to replay current values, saw ${JSON.stringify(seen)}`,
        () => latest().get('exporter.192_0_2_1') === 'edge-1' && latest().get('exporter.192_0_2_2') === 'edge-2',
      )
      expect(seen.some((s) => s.key === 'exporter.192_0_2_3' && s.value !== undefined)).toBe(false)

      await kv.put('exporter.192_0_2_1', bytes('edge-1-renamed'))
      await kv.delete('exporter.192_0_2_2')
      await kv.put('exporter.192_0_2_4', bytes('edge-4'))
      await waitFor(
        () => `watch to see the update, delete and new key, saw ${JSON.stringify(seen)}`,
        () =>
          latest().get('exporter.192_0_2_1') === 'edge-1-renamed' &&
          latest().has('exporter.192_0_2_2') &&
          latest().get('exporter.192_0_2_2') === undefined &&
          latest().get('exporter.192_0_2_4') === 'edge-4',
      )
      expect((await other.keys()).sort()).toEqual(['exporter.192_0_2_1', 'exporter.192_0_2_4'])
    })

    it('drains in-flight work on close and leaves exactly the unacked messages to the next member', SLOW_TEST, async () => {
      const r = resources()
      const [producer, first, second] = [await r.client(), await r.client(), await r.client()]
      const stream = contractStream('drain')
      const g = group('drain')
      await producer.provision([stream], [])

      const ackedByFirst = new Set<string>()
      let running = 0
      let started = 0
      let closed = false
      let calledAfterClose = 0
      const sub1 = await subscribe(first, r.track, stream, consumeOptions(g, { maxInFlight: 8 }), async (d) => {
        if (closed) calledAfterClose++
        running++
        started++
        await sleep(50)
        await d.ack()
        ackedByFirst.add(text.decode(d.data))
        running--
      })
      await waitForShards('first member', () => [sub1.assignedShards()])
      const all = Array.from({ length: 80 }, (_, i) => `d${i}`)
      for (const [i, m] of all.entries()) await producer.publish(stream, i % PARTITIONS, m, bytes(m))
      await waitFor('first member to ack 8 messages', () => ackedByFirst.size >= 8)
      await sub1.close()
      closed = true
      expect(running).toBe(0) // close() waited for the handlers it had called
      expect(ackedByFirst.size).toBe(started) // and each of them acked before close resolved
      expect(ackedByFirst.size).toBeLessThan(all.length) // messages were still pending: the test means something

      const gotBySecond = new Set<string>()
      await subscribe(second, r.track, stream, consumeOptions(g), async (d) => {
        gotBySecond.add(text.decode(d.data))
        await d.ack()
      })
      const expected = all.filter((m) => !ackedByFirst.has(m))
      await waitFor(
        () => `second member to get the ${expected.length} unacked messages, has ${gotBySecond.size}`,
        () => expected.every((m) => gotBySecond.has(m)),
      )
      await sleep(200)
      expect([...gotBySecond].filter((m) => ackedByFirst.has(m))).toEqual([]) // acked work is never redone
      expect(calledAfterClose).toBe(0)
    })

    it('keeps at most maxInFlight messages and maxInFlightBytes outstanding per member', SLOW_TEST, async () => {
      const r = resources()
      const [producer, consumer] = [await r.client(), await r.client()]

      // Waits until `reach` deliveries are outstanding, gives the transport room to over-deliver,
      // checks the bounds, then releases everything and checks nothing was lost.
      const bounded = async (limits: { maxInFlight: number; maxInFlightBytes: number }, size: number, reach: number) => {
        const stream = contractStream('inflight')
        await producer.provision([stream], [])
        const held: Delivery[] = []
        const received = new Set<string>()
        let outstanding = 0
        let outstandingBytes = 0
        let maxOutstanding = 0
        let maxOutstandingBytes = 0
        let released = false
        // A delivery stops being outstanding when ack() is called: the transport may hand out the
        // next one before the ack's promise resolves.
        const settle = async (d: Delivery) => {
          const acked = d.ack()
          outstanding--
          outstandingBytes -= d.data.byteLength
          await acked
        }
        const sub = await subscribe(
          consumer,
          r.track,
          stream,
          consumeOptions(group('inflight'), { ...limits, ackWaitMs: 120_000 }),
          async (d) => {
            outstanding++
            outstandingBytes += d.data.byteLength
            maxOutstanding = Math.max(maxOutstanding, outstanding)
            maxOutstandingBytes = Math.max(maxOutstandingBytes, outstandingBytes)
            received.add(text.decode(d.data.subarray(0, 16)).trim())
            if (released) await settle(d)
            else held.push(d)
          },
        )
        await waitForShards('single member', () => [sub.assignedShards()])
        const all = Array.from({ length: 40 }, (_, i) => `b${i}`)
        for (const [i, m] of all.entries()) {
          const data = new Uint8Array(size).fill(0x20)
          data.set(bytes(m))
          await producer.publish(stream, i % PARTITIONS, m, data)
        }
        await waitFor(
          () => `${reach} outstanding deliveries, have ${outstanding}`,
          () => outstanding >= reach,
        )
        await sleep(500) // room for a transport that over-delivers to show it
        expect(maxOutstanding).toBeLessThanOrEqual(limits.maxInFlight)
        expect(maxOutstandingBytes).toBeLessThanOrEqual(limits.maxInFlightBytes)
        expect(received.size).toBe(maxOutstanding) // held deliveries were distinct messages

        released = true
        for (const d of held.splice(0)) await settle(d)
        await waitFor(
          () => `all 40 messages once released, have ${received.size}`,
          () => received.size === all.length,
        )
        expect(maxOutstanding).toBeLessThanOrEqual(limits.maxInFlight)
        expect(maxOutstandingBytes).toBeLessThanOrEqual(limits.maxInFlightBytes)
      }

      // 5 by count; by bytes, 3 × 1000-byte messages fit in 3000 (2 for a transport counting overhead).
      await bounded({ maxInFlight: 5, maxInFlightBytes: 8 * 1024 * 1024 }, 100, 5)
      await bounded({ maxInFlight: 100, maxInFlightBytes: 3_000 }, 1_000, 2)
    })

    it('fans broadcasts out to current listeners only', TEST, async () => {
      const r = resources()
      const [one, two, late, sender] = [await r.client(), await r.client(), await r.client(), await r.client()]
      const subject = contractSubject('live')
      const gotOne: string[] = []
      const gotTwo: string[] = []
      const gotLate: string[] = []
      r.track(await one.listen(subject, (d) => gotOne.push(text.decode(d))))
      r.track(await two.listen(subject, (d) => gotTwo.push(text.decode(d))))

      await sender.broadcast(subject, bytes('early'))
      await waitFor('both listeners to get the first broadcast', () => gotOne.includes('early') && gotTwo.includes('early'))

      r.track(await late.listen(subject, (d) => gotLate.push(text.decode(d))))
      await sender.broadcast(subject, bytes('later'))
      await waitFor(
        'all three listeners to get the second broadcast',
        () => gotOne.includes('later') && gotTwo.includes('later') && gotLate.includes('later'),
      )
      expect(gotOne).toEqual(['early', 'later'])
      expect(gotTwo).toEqual(['early', 'later'])
      expect(gotLate).toEqual(['later'])
    })
  })
}
