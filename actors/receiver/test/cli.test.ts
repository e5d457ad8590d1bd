// The compiled receiver as an operator runs it (`flowbus actor receiver` from dist): its socket
// thread loads the built worker module, real datagrams on loopback show up in /metrics, SIGTERM stops it.
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { metricSample } from '../../../test/src/harness/metrics.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const bin = join(root, 'actors/cli/bin/flowbus.js')
const built = join(root, 'actors/receiver/dist/socket-worker.js')

/** A port nothing listens on right now (TCP or UDP), for the child's configuration. */
async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const s = dgram.createSocket('udp4')
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))
    const port = s.address().port
    await new Promise<void>((r) => s.close(() => r()))
    return port
  }
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const { port } = server.address() as { port: number }
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

describe('flowbus actor receiver (compiled)', () => {
  it('receives datagrams in its socket thread and counts them on /metrics', async () => {
    // The build is part of the suite's setup (npx tsc -b); without it this test has nothing to run.
    expect(existsSync(built), `${built} is missing: build with npx tsc -b first`).toBe(true)
    const [udp, http] = [await freePort('udp'), await freePort('tcp')]
    const dir = mkdtempSync(join(tmpdir(), 'flowbus-receiver-cli-'))
    const config = join(dir, 'flowbus.yaml')
    writeFileSync(
      config,
      `http:\n  listen: 127.0.0.1:${http}\nreceiver:\n  receiveBuffer: 1MiB\n  listeners:\n    - name: netflow\n      listen: ["127.0.0.1:${udp}"]\n`,
    )
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_') && k !== 'NODE_OPTIONS'))
    const child = spawn(process.execPath, [bin, 'actor', 'receiver', '--config', config], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr.on('data', (c: Buffer) => (output += c.toString()))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const url = `http://127.0.0.1:${http}`
    const get = async (path: string): Promise<{ status: number; text: string }> => {
      try {
        const response = await fetch(`${url}${path}`)
        return { status: response.status, text: await response.text() }
      } catch {
        return { status: 0, text: '' }
      }
    }
    try {
      let ready = 0
      for (const deadline = Date.now() + 30_000; ready !== 200 && child.exitCode === null && Date.now() < deadline; ) {
        ready = (await get('/readyz')).status
        if (ready !== 200) await new Promise((r) => setTimeout(r, 100))
      }
      expect(ready, output).toBe(200)

      const sender = dgram.createSocket('udp4')
      await new Promise<void>((r) => sender.bind(0, '127.0.0.1', () => r()))
      const payload = Buffer.concat([Buffer.from([0, 10]), Buffer.alloc(200, 1)])
      for (let i = 0; i < 50; i++) await new Promise<void>((r, j) => sender.send(payload, udp, '127.0.0.1', (e) => (e ? j(e) : r())))
      await new Promise<void>((r, j) => sender.send(Buffer.from('not a flow'), udp, '127.0.0.1', (e) => (e ? j(e) : r())))
      sender.close()

      let metrics = ''
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
        metrics = (await get('/metrics')).text
        const emitted = metricSample(metrics, 'flowbus_actor_emitted_total', { actor: 'receiver', kind: 'packets' })
        if (emitted >= 50 && metricSample(metrics, 'flowbus_actor_received_total', { actor: 'receiver', kind: 'packets' }) >= 51) break
        await new Promise((r) => setTimeout(r, 100))
      }
      const exporter = { listener: 'netflow', exporter: '127.0.0.1' }
      expect(metricSample(metrics, 'flowbus_receiver_packets_total', exporter), metrics).toBe(51)
      expect(metricSample(metrics, 'flowbus_receiver_bytes_total', exporter)).toBe(50 * 202 + 10)
      expect(metricSample(metrics, 'flowbus_receiver_errors_total', { ...exporter, reason: 'unknown-protocol' })).toBe(1)
      expect(metricSample(metrics, 'flowbus_actor_received_total', { actor: 'receiver', kind: 'packets' })).toBe(51)
      expect(metricSample(metrics, 'flowbus_actor_emitted_total', { actor: 'receiver', kind: 'packets' })).toBe(50)
      expect(metricSample(metrics, 'flowbus_receiver_kernel_drops', { listener: 'netflow', port: String(udp) })).toBe(0)
      expect(metricSample(metrics, 'flowbus_receiver_receive_buffer_bytes', { listener: 'netflow' })).toBeGreaterThan(0)

      child.kill('SIGTERM')
      expect(await exited, output).toBe(0)
      expect(output).toContain(`listening on netflow 127.0.0.1:${udp}`)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  }, 60_000)
})
