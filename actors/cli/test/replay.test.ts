// `flowbus replay` sending real testdata captures to UDP sockets on loopback (IPv4 and IPv6): the
// payloads arrive in file order, repeated with --loop; bad files and bad options give exit 1 and 2.
import dgram from 'node:dgram'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readPcapUdpAll } from '@flowbus/runtime'
import { describe, expect, it } from 'vitest'
import { runCli } from '../src/main.js'
import { knownActors } from '../src/registry.js'
import { akvoradoTestdata } from '../../../test/src/harness/testdata.js'

const TESTDATA = akvoradoTestdata
const templates = join(TESTDATA, 'flow-decoder-netflow', 'template.pcap')
const data = join(TESTDATA, 'flow-decoder-netflow', 'data.pcap')
const sflow = join(TESTDATA, 'flow-decoder-sflow', 'data-sflow-ipv4-data.pcap')

async function cli(argv: string[], isTTY = false): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(argv, {
    actors: knownActors,
    env: {},
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    isTTY,
  })
  return { code, stdout, stderr }
}

/** A UDP socket on loopback collecting every datagram it gets. */
async function collector(type: 'udp4' | 'udp6'): Promise<{ port: number; received: Buffer[]; close(): void }> {
  const socket = dgram.createSocket({ type, recvBufferSize: 4 << 20 })
  const received: Buffer[] = []
  socket.on('message', (m) => received.push(m))
  await new Promise<void>((r) => socket.bind(0, type === 'udp6' ? '::1' : '127.0.0.1', () => r()))
  return { port: socket.address().port, received, close: () => socket.close() }
}

const payloadsOf = (...files: string[]): Buffer[] => files.flatMap((f) => readPcapUdpAll(readFileSync(f), f).records.map((r) => Buffer.from(r.payload)))

const waitFor = async (check: () => boolean, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
}

describe('flowbus replay', () => {
  it('sends the payloads of several captures in order, looped, to an IPv4 collector', async () => {
    const target = await collector('udp4')
    try {
      const expected = payloadsOf(templates, data, sflow)
      expect(expected.length).toBeGreaterThanOrEqual(3)
      const result = await cli(['replay', '--pcap', templates, '--pcap', data, '--pcap', sflow, '--to', `127.0.0.1:${target.port}`, '--loop', '3'])
      expect(result.stderr).toContain(`${templates}: `)
      expect(result.code).toBe(0)
      const total = expected.length * 3
      expect(result.stdout).toMatch(new RegExp(`^sent ${total} datagrams \\(\\d+ bytes\\) to 127\\.0\\.0\\.1:${target.port} in [\\d.]+ s: \\d+ datagrams/s\\n$`))
      await waitFor(() => target.received.length >= total)
      expect(target.received).toEqual([...expected, ...expected, ...expected])
    } finally {
      target.close()
    }
  })

  it('sends to an IPv6 collector at a capped rate, drawing progress on a terminal', async () => {
    const target = await collector('udp6')
    try {
      const expected = payloadsOf(data)
      const result = await cli(['replay', '--pcap', data, '--to', `[::1]:${target.port}`, '--rate', '200', '--loop', '4'], true)
      expect(result.code).toBe(0)
      expect(result.stderr).toMatch(/\r\[#+\] 100% \d+\/\d+ datagrams .*\n$/)
      await waitFor(() => target.received.length >= expected.length * 4)
      expect(target.received).toEqual([...expected, ...expected, ...expected, ...expected])
    } finally {
      target.close()
    }
  })

  it('exits 1 naming a file that is missing or not a capture, sending nothing', async () => {
    const target = await collector('udp4')
    const notPcap = join(tmpdir(), `flowbus-replay-${process.pid}.txt`)
    writeFileSync(notPcap, 'not a capture at all\n')
    try {
      const missing = await cli(['replay', '--pcap', data, '--pcap', '/nonexistent/x.pcap', '--to', `127.0.0.1:${target.port}`])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toMatch(/^flowbus replay: \/nonexistent\/x\.pcap: .*no such file/im)
      const bad = await cli(['replay', '--pcap', notPcap, '--to', `127.0.0.1:${target.port}`])
      expect(bad.code).toBe(1)
      expect(bad.stderr).toBe(`flowbus replay: ${notPcap}: not a pcap or pcapng file (magic 0x6e6f7420)\n`)
      await new Promise((r) => setTimeout(r, 50))
      expect(target.received).toEqual([])
    } finally {
      target.close()
    }
  })

  it('exits 2 on usage errors and prints help', async () => {
    for (const [argv, message] of [
      [['replay', '--to', '127.0.0.1:2055'], 'needs at least one --pcap'],
      [['replay', '--pcap', data], 'needs --to HOST:PORT'],
      [['replay', '--pcap', data, '--to', '::1:2055'], '--to must be HOST:PORT'],
      [['replay', '--pcap', data, '--to', '127.0.0.1:0'], 'port must be 1-65535'],
      [['replay', '--pcap', data, '--to', '127.0.0.1:2055', '--rate', 'fast'], '--rate must be a number'],
      [['replay', '--pcap', data, '--to', '127.0.0.1:2055', '--loop', '0'], '--loop must be a whole number'],
    ] as const) {
      const result = await cli([...argv])
      expect(result.code, argv.join(' ')).toBe(2)
      expect(result.stderr).toContain(message)
    }
    const help = await cli(['replay', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: flowbus replay --pcap FILE')
    expect(help.stdout).toContain('--rate PPS')
  })
})
