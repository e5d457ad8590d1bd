// The TCP listener with several routers at once (loopback addresses 127.0.0.1 and 127.0.0.2
// replaying Akvorado's captures): sessions are kept apart, a router sending garbage loses only its
// own session, and connections beyond maxSessions are refused and counted.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { formatIP, parseIP } from '@flowbus/bus-schemas'
import { readPcapTcpStreams } from '@flowbus/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { akvoradoTestdata } from '../../../test/src/harness/testdata.js'
import { BmpCollector, listenBmp, type BmpListener } from '../src/index.js'

const DIR = join(akvoradoTestdata, 'routing-provider-bmp')
const stream = (name: string): Uint8Array => readPcapTcpStreams(readFileSync(join(DIR, name)), name)[0]!.payload

const waitFor = async (what: string, condition: () => boolean, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const router = async (port: number, localAddress: string): Promise<Socket> => {
  const socket = connect({ host: '127.0.0.1', port, localAddress })
  await once(socket, 'connect')
  cleanups.push(() => void socket.destroy())
  return socket
}

describe('BMP listener', () => {
  it('serves several routers at once, closes only a misbehaving one, refuses beyond maxSessions', async () => {
    const errors: string[] = []
    const collector = new BmpCollector({ graceMs: 0, onSessionError: (r, e) => errors.push(`${r} ${e.reason}`) })
    const listener: BmpListener = await listenBmp(collector, { host: '127.0.0.1', port: 0, maxSessions: 2 })
    cleanups.push(() => listener.close())
    const table = Buffer.concat(['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-reach.pcap'].map((c) => stream(c)))
    const a = await router(listener.port, '127.0.0.1')
    const b = await router(listener.port, '127.0.0.2')
    // Cut inside a message: framing must not depend on how TCP splits the stream.
    a.write(table.subarray(0, 1000))
    a.write(table.subarray(1000))
    b.write(table)
    await waitFor('both routers\' routes', () => collector.rib.size === 20)
    const routers = () => [...new Set(collector.rib.peerIds().map((id) => formatIP(collector.rib.peer(id)!.routerAddress)))].sort()
    expect(routers()).toEqual(['127.0.0.1', '127.0.0.2'])

    const third = await router(listener.port, '127.0.0.3')
    await once(third, 'close')
    expect(listener.refused()).toBe(1)

    // Router b sends a BMP header with version 9: its session closes, its routes go (grace 0).
    b.write(Uint8Array.from([9, 0, 0, 0, 6, 4]))
    await once(b, 'close')
    await waitFor('router b removed', () => collector.rib.size === 10)
    expect(routers()).toEqual(['127.0.0.1'])
    expect(errors).toEqual(['127.0.0.2 bmp-bad-version'])
    expect(collector.sessions.size).toBe(1)
    // Router a carries on.
    a.write(stream('bmp-unreach.pcap'))
    await waitFor('router a withdrawals', () => collector.rib.size === 0)
    expect(collector.rib.peer(collector.rib.peerIds()[0]!)!.routerAddress).toEqual(parseIP('127.0.0.1'))
  })
})
