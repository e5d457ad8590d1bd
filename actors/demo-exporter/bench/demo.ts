// Benchmark of the demo exporter on one core: flows generated and encoded per second (NetFlow v9,
// IPFIX and sFlow exporters of the default network), then the same plus UDP sends to a loopback
// socket read in the same process (the kernel's copies included). CPU time of the process.
import { createSocket } from 'node:dgram'
import { Schema } from 'effect'
import { DemoExporterConfig, DemoSimulation } from '../src/index.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const BATCH = 1_000
const config = Schema.decodeUnknownSync(DemoExporterConfig)({ seed: 1 })

const cpuSeconds = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

// encode: generation + encoding only.
{
  const sim = new DemoSimulation(config, Date.now())
  const start = cpuSeconds()
  let now = Date.now()
  let flows = 0
  while (cpuSeconds() - start < SECONDS) {
    for (const out of sim.burst(BATCH, (now += 10))) {
      flows += out.flows
    }
  }
  const elapsed = cpuSeconds() - start
  console.log(`bench demo.encode ${Math.round(flows / elapsed)} flows/s`)
}

// send: generation, encoding and sendto() from each exporter's address to a loopback sink.
{
  const sink = createSocket({ type: 'udp4', recvBufferSize: 32 << 20 })
  await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', () => resolve()))
  // Read and dropped: the receive side shares the core, as in a one-process demo.
  sink.on('message', () => {})
  const port = sink.address().port
  const sockets = await Promise.all(
    config.exporters.map(
      (e) =>
        new Promise<ReturnType<typeof createSocket>>((resolve) => {
          const s = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 })
          s.bind(0, e.address, () => resolve(s))
        }),
    ),
  )
  const sim = new DemoSimulation(config, Date.now())
  const start = cpuSeconds()
  let now = Date.now()
  let flows = 0
  let datagrams = 0
  while (cpuSeconds() - start < SECONDS) {
    const outputs = sim.burst(BATCH, (now += 10))
    let pending = 0
    await new Promise<void>((resolve) => {
      outputs.forEach((out, i) => {
        flows += out.flows
        for (const d of out.datagrams) {
          pending++
          datagrams++
          sockets[i]!.send(d, port, '127.0.0.1', () => {
            if (--pending === 0) resolve()
          })
        }
      })
      if (pending === 0) resolve()
    })
  }
  const elapsed = cpuSeconds() - start
  console.log(`bench demo.send ${Math.round(flows / elapsed)} flows/s`)
  console.log(`bench demo.send_datagrams ${Math.round(datagrams / elapsed)} datagrams/s`)
  for (const s of sockets) s.close()
  sink.close()
}
