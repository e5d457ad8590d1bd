// Benchmark: FlowBatches published, consumed and acknowledged through the typed Bus on each
// transport (memory, NATS JetStream, Kafka on loopback), timed from first publish to last ack.
// Run: npm run bench -- bus   (prints "bench bus.<transport>_<case> <value> <unit>")
// For NATS it also times the same encoded batches straight through the Transport (no typed layer),
// publish-only, consume-only and both at once, to tell transport cost from encode/decode cost;
// "_cpu" figures are this process's CPU per batch, steadier than rates on a shared machine.
import { type FlowBatch, encodeFlowBatch, flowsDecoded } from '@flowbus/bus-schemas'
import { Bus, BusLive, BusSection, MetricsLive, type StreamSpec, type Transport } from '@flowbus/runtime'
import { readFileSync } from 'node:fs'
import { Effect, Layer, ManagedRuntime, Schema, Scope, Exit } from 'effect'
import { sampleFlowBatch } from '../../bus-schemas/test/fixtures/sample-flows.js'
import { createMemoryTransport } from '../../actors/runtime/src/bus/memory.js'
import { createNatsTransport } from '../../actors/runtime/src/bus/nats.js'
import { createKafkaTransport } from '../../actors/runtime/src/bus/kafka.js'
import { startKafka, startNats } from '../src/harness/index.js'

const FLOWS_PER_BATCH = 2000
const EXPORTERS = 16
/** Bounded load: this many batches per transport, or this many seconds, whichever comes first. */
const MAX_BATCHES = Number(process.env.BENCH_BATCHES ?? 1000)
const MAX_SECONDS = 30
const PUBLISH_CONCURRENCY = 8

const print = (name: string, value: number, unit: string): void =>
  console.log(`bench ${name} ${value >= 100 ? Math.round(value) : value.toFixed(1)} ${unit}`)

/** CPU time this process used since `since` (a process.cpuUsage() reading), in milliseconds. */
const cpuMsSince = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1000
}

/** CPU seconds a process used so far, from /proc (Linux); undefined elsewhere or when it is gone. */
const processCpuSeconds = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100/s).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

/** Server process whose CPU the NATS figures also report (`_server_cpu`). */
let serverPid: number | undefined

/** Server CPU per batch since `since` (a processCpuSeconds() reading), printed when known. */
const printServerCpu = (name: string, since: number | undefined, batches: number): void => {
  const now = processCpuSeconds(serverPid)
  if (since === undefined || now === undefined) return
  print(name, ((now - since) * 1000) / Math.max(1, batches), 'ms/batch')
}

/** Resolves after ms without keeping the process alive once the race it is in is over. */
const deadline = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref())

const batches: FlowBatch[] = Array.from({ length: 8 }, (_, i) => sampleFlowBatch(FLOWS_PER_BATCH, i + 1))
const bytesPerBatch = batches.reduce((sum, b) => sum + encodeFlowBatch(b).length, 0) / batches.length

const config = Schema.decodeUnknownSync(BusSection)({
  partitions: 8,
  maxMessageBytes: '1MiB',
  consumer: { maxInFlight: 64, maxInFlightBytes: '64MiB' },
})

/** Publishes MAX_BATCHES batches over EXPORTERS keys and waits until a group acked them all. */
const run = async (name: string, producer: Transport, consumer: Transport): Promise<void> => {
  const layer = (t: Transport) => BusLive(config, t).pipe(Layer.provide(MetricsLive))
  const publishing = ManagedRuntime.make(layer(producer))
  const consuming = ManagedRuntime.make(layer(consumer))
  let acked = 0
  let ackedFlows = 0
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => (done = resolve))
  const scope = await consuming.runPromise(Scope.make())
  // Make sure the stream exists before the group joins, then join (the group starts from the oldest message).
  await publishing.runPromise(Effect.flatMap(Bus, (bus) => bus.publish(flowsDecoded, 'warm-up', batches[0]!)))
  let expected = Infinity
  await consuming.runPromise(
    Effect.flatMap(Bus, (bus) =>
      bus.subscribe(flowsDecoded, { group: `bench-${name}-${Date.now()}` }, (message) =>
        Effect.sync(() => {
          acked++
          ackedFlows += message.value.count
          if (acked >= expected) done()
        }),
      ),
    ).pipe(Scope.extend(scope)),
  )
  const start = performance.now()
  const cpuStart = process.cpuUsage()
  const serverCpuStart = processCpuSeconds(serverPid)
  let published = 0
  await publishing.runPromise(
    Effect.forEach(
      Array.from({ length: MAX_BATCHES }, (_, i) => i),
      (i) =>
        performance.now() - start > MAX_SECONDS * 1000
          ? Effect.void
          : Effect.flatMap(Bus, (bus) => bus.publish(flowsDecoded, `exporter-${i % EXPORTERS}`, batches[i % batches.length]!)).pipe(
              Effect.tap(() => Effect.sync(() => published++)),
            ),
      { concurrency: PUBLISH_CONCURRENCY, discard: true },
    ),
  )
  const publishSeconds = (performance.now() - start) / 1000
  expected = published + 1
  if (acked >= expected) done()
  await Promise.race([finished, deadline(120_000)])
  const seconds = (performance.now() - start) / 1000
  const cpuMs = cpuMsSince(cpuStart)
  if (acked < expected) console.error(`# ${name}: only ${acked} of ${expected} batches acked within the time limit`)
  print(`bus.${name}_publish`, (published * FLOWS_PER_BATCH) / publishSeconds, 'flows/s')
  print(`bus.${name}_end_to_end`, ackedFlows / seconds, 'flows/s')
  print(`bus.${name}_end_to_end_bytes`, (acked * bytesPerBatch) / seconds / 1e6, 'MB/s')
  print(`bus.${name}_end_to_end_cpu`, cpuMs / Math.max(1, acked), 'ms/batch')
  printServerCpu(`bus.${name}_end_to_end_server_cpu`, serverCpuStart, acked)
  await consuming.runPromise(Scope.close(scope, Exit.void))
  await publishing.dispose()
  await consuming.dispose()
}

const encodedBatches = batches.map((batch) => encodeFlowBatch(batch))

/** A stream like flows.decoded (same shards and retention, so the same server-side layout) for raw bytes. */
const rawStream = (label: string): StreamSpec => ({
  base: `bench.transport.${label}`,
  natsStream: `BENCH_TRANSPORT_${label.toUpperCase()}`,
  kafkaTopic: `bench-transport-${label}`,
  partitions: config.partitions,
  replicas: config.replicas,
  maxAgeSeconds: Math.round(config.retention.flows.maxAge / 1000),
  maxBytes: config.retention.flows.maxBytes,
})

/** Publishes `count` encoded batches to `stream` straight through the transport, PUBLISH_CONCURRENCY at a time. */
const publishRaw = async (transport: Transport, stream: StreamSpec, count: number): Promise<void> => {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      await transport.publish(stream, i % stream.partitions, `exporter-${i % EXPORTERS}`, encodedBatches[i % encodedBatches.length]!)
    }
  }
  await Promise.all(Array.from({ length: PUBLISH_CONCURRENCY }, worker))
}

/** Joins a new group on `stream` that acks every delivery; `acked(n)` resolves once n were acked. */
const consumeRaw = async (transport: Transport, stream: StreamSpec) => {
  let acked = 0
  let target = Infinity
  let reached: () => void = () => {}
  const subscription = await transport.consume(
    stream,
    {
      group: `bench-raw-${Date.now()}`,
      maxInFlight: config.consumer.maxInFlight,
      maxInFlightBytes: config.consumer.maxInFlightBytes,
      ackWaitMs: config.consumer.ackWait,
    },
    async (delivery) => {
      await delivery.ack()
      if (++acked >= target) reached()
    },
  )
  const acknowledged = (count: number): Promise<boolean> => {
    target = count
    const done = new Promise<void>((resolve) => (reached = resolve))
    if (acked >= target) reached()
    return Promise.race([done.then(() => true), deadline(120_000).then(() => false)])
  }
  return { subscription, acknowledged }
}

/** Times the encoded batches through the transport alone: publish-only, consume-only, then both at once. */
const runRaw = async (name: string, producer: Transport, consumer: Transport): Promise<void> => {
  const count = MAX_BATCHES
  let serverCpu: number | undefined
  const report = (phase: string, seconds: number, cpuMs: number): void => {
    print(`bus.${name}_transport_${phase}`, (count * FLOWS_PER_BATCH) / seconds, 'flows/s')
    print(`bus.${name}_transport_${phase}_bytes`, (count * bytesPerBatch) / seconds / 1e6, 'MB/s')
    print(`bus.${name}_transport_${phase}_cpu`, cpuMs / count, 'ms/batch')
    printServerCpu(`bus.${name}_transport_${phase}_server_cpu`, serverCpu, count)
  }
  const stored = rawStream(`${name}_stored`)
  const live = rawStream(`${name}_live`)
  await producer.provision([stored, live], [])
  let start = performance.now()
  let cpu = process.cpuUsage()
  serverCpu = processCpuSeconds(serverPid)
  await publishRaw(producer, stored, count)
  report('publish', (performance.now() - start) / 1000, cpuMsSince(cpu))

  start = performance.now()
  cpu = process.cpuUsage()
  serverCpu = processCpuSeconds(serverPid)
  const backlog = await consumeRaw(consumer, stored)
  if (!(await backlog.acknowledged(count))) console.error(`# ${name} transport consume: not all ${count} batches acked in time`)
  report('consume', (performance.now() - start) / 1000, cpuMsSince(cpu))
  await backlog.subscription.close()

  const following = await consumeRaw(consumer, live)
  start = performance.now()
  cpu = process.cpuUsage()
  serverCpu = processCpuSeconds(serverPid)
  await publishRaw(producer, live, count)
  if (!(await following.acknowledged(count))) console.error(`# ${name} transport end to end: not all ${count} batches acked in time`)
  report('end_to_end', (performance.now() - start) / 1000, cpuMsSince(cpu))
  await following.subscription.close()
}

console.error(`# ${FLOWS_PER_BATCH} flows per batch, ${Math.round(bytesPerBatch)} bytes per batch, up to ${MAX_BATCHES} batches`)
print('bus.batch_bytes', bytesPerBatch, 'B')

const wanted = (process.env.BENCH_TRANSPORTS ?? 'memory,nats,kafka').split(',')

if (wanted.includes('memory')) {
  const transport = createMemoryTransport({ maxMessageBytes: config.maxMessageBytes })
  await run('memory', transport, transport)
  await transport.close()
}

if (wanted.includes('nats')) {
  const server = await startNats()
  serverPid = server.pid
  try {
    const producer = await createNatsTransport({ servers: [server.url], maxMessageBytes: config.maxMessageBytes })
    const consumer = await createNatsTransport({ servers: [server.url], maxMessageBytes: config.maxMessageBytes })
    await run('nats', producer, consumer)
    await runRaw('nats', producer, consumer)
    await producer.close()
    await consumer.close()
  } finally {
    serverPid = undefined
    await server.stop()
  }
}

if (wanted.includes('kafka')) {
  const broker = await startKafka()
  serverPid = broker.pid
  try {
    const producer = await createKafkaTransport({ brokers: broker.brokers, maxMessageBytes: config.maxMessageBytes })
    const consumer = await createKafkaTransport({ brokers: broker.brokers, maxMessageBytes: config.maxMessageBytes })
    await run('kafka', producer, consumer)
    await runRaw('kafka', producer, consumer)
    await producer.close()
    await consumer.close()
  } finally {
    serverPid = undefined
    await broker.stop()
  }
}
