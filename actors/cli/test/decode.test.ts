// `flowbus decode` on the real captures of ../shared/testdata: every file reads with exit code 0
// and prints flows, with values checked against tshark's decoding of the same packets.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { ensureExecutable } from '../../../test/src/harness/process.js'
import { knownActors } from '../src/registry.js'
import { runCli } from '../src/main.js'
import { akvoradoTestdata } from '../../../test/src/harness/testdata.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const testdata = akvoradoTestdata
const netflow = join(testdata, 'flow-decoder-netflow')
const sflow = join(testdata, 'flow-decoder-sflow')
const haveTestdata = existsSync(netflow) && existsSync(sflow)
if (!haveTestdata && process.env.CI === 'true') throw new Error(`captures missing under ${testdata} (CI=true: they are required)`)

interface Run {
  code: number
  stdout: string
  stderr: string
  rows: Record<string, unknown>[]
}

const decode = async (...args: string[]): Promise<Run> => {
  let stdout = ''
  let stderr = ''
  const code = await runCli(['decode', ...args], {
    actors: knownActors,
    env: {},
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
  })
  const rows = args.includes('table') ? [] : stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
  return { code, stdout, stderr, rows }
}

const pcaps = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.pcap')).sort() : [])

describe.skipIf(!haveTestdata)('flowbus decode on real captures', () => {
  // Data captures need their template capture first; the others decode alone.
  const netflowRuns = pcaps(netflow)
    .filter((f) => !f.endsWith('-template.pcap') && f !== 'template.pcap')
    .map((f) => {
      const template = f === 'data.pcap' ? 'template.pcap' : f.replace(/-data\.pcap$/, '-template.pcap')
      return f !== template && existsSync(join(netflow, template)) ? [template, f] : [f]
    })

  it.each(netflowRuns)('decodes NetFlow/IPFIX %s', async (...files) => {
    const run = await decode(...files.flatMap((f) => ['--pcap', join(netflow, f)]))
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).toMatch(/decoded \d+ flows/)
    expect(run.stderr).not.toMatch(/exception/)
    // Options data alone gives no flows; every other capture does.
    if (!files.at(-1)!.startsWith('options')) expect(run.rows.length, run.stderr).toBeGreaterThan(0)
  })

  it.each(pcaps(sflow))('decodes sFlow %s', async (file) => {
    const run = await decode('--pcap', join(sflow, file))
    expect(run.code, run.stderr).toBe(0)
    expect(run.rows.length).toBeGreaterThan(0)
    expect(run.stderr).not.toMatch(/errors:/)
  })

  it('prints NetFlow v5 flows with the values tshark shows', async () => {
    const run = await decode('--pcap', join(netflow, 'nfv5.pcap'))
    // tshark -r nfv5.pcap -d udp.port==9990,cflow -V: Count 29; first record below.
    expect(run.rows).toHaveLength(29)
    expect(run.rows[0]).toMatchObject({
      ExporterAddress: '10.19.144.41',
      SrcAddr: '161.202.212.212',
      DstAddr: '202.152.70.24',
      SrcPort: 30104,
      DstPort: 11963,
      Bytes: 133,
      SrcAS: 36351,
      DstAS: 10101,
      EType: 2048,
      Proto: 6,
    })
    expect(run.rows[1]).toMatchObject({ SrcAddr: '173.194.4.8', DstAddr: '202.160.21.5', Bytes: 10262 })
  })

  it('decodes data that came before its template in the same datagram (tshark drops it)', async () => {
    const run = await decode('--pcap', join(netflow, 'data+templates.pcap'))
    // tshark: the first data set of template 257 has "no template found"; the second has 10
    // records, the first one 120.120.180.202:443 → 120.120.147.170:53744, 436 octets.
    expect(run.rows).toHaveLength(21)
    const fromTshark = run.rows.slice(11)
    expect(fromTshark[0]).toMatchObject({ SrcAddr: '120.120.180.202', DstAddr: '120.120.147.170', SrcPort: 443, DstPort: 53744, Bytes: 436 })
    expect(fromTshark.map((r) => r.SrcAddr)).toEqual([
      '120.120.180.202',
      '120.120.7.41',
      '120.120.7.22',
      '120.120.15.78',
      '120.120.15.78',
      '120.120.147.178',
      '120.120.150.119',
      '120.120.209.10',
      '120.120.7.100',
      '120.120.208.195',
    ])
  })

  it('carries templates across files, in the order given', async () => {
    const alone = await decode('--pcap', join(netflow, 'data.pcap'))
    expect(alone.rows).toHaveLength(0)
    expect(alone.stderr).toContain('missing-template 1')
    expect(alone.code).toBe(0)
    const both = await decode('--pcap', join(netflow, 'template.pcap'), '--pcap', join(netflow, 'data.pcap'))
    expect(both.rows.length).toBeGreaterThan(0)
    expect(both.stderr).not.toContain('missing-template')
  })

  it('prints sFlow flows with the values tshark shows, MACs and VLANs as text and numbers', async () => {
    const run = await decode('--pcap', join(sflow, 'data-sflow-ipv4-data.pcap'))
    // tshark -d udp.port==6343,sflow -V: sampling rate 256, output interface 182, frame length
    // 1390 holding an IPv4 packet of ip.len 1344 (Bytes count layer 3),
    // 00:fe:c8:99:05:47 → 01:00:5e:2a:aa:04, UDP 46622 → 58631.
    expect(run.rows[0]).toMatchObject({
      SamplingRate: 256,
      OutIf: 182,
      Bytes: 1344,
      SrcMAC: '00:fe:c8:99:05:47',
      DstMAC: '01:00:5e:2a:aa:04',
      SrcPort: 46622,
      DstPort: 58631,
      Proto: 17,
      SrcAddr: '50.50.50.50',
      DstAddr: '51.51.51.51',
    })
  })

  it('prints lists as arrays and IPv6 addresses compressed', async () => {
    const run = await decode('--pcap', join(netflow, 'mpls.pcap'))
    expect(run.rows[0]!.MPLSLabels).toEqual([20005, 524250])
    expect(run.rows[0]!.SrcAddr).toBe('fd00::1:0:1:7:1')
  })

  it('reads pcapng as well (a capture rewritten by Wireshark\'s editcap)', async () => {
    const editcap = await ensureExecutable('editcap', 'wireshark-common')
    const dir = mkdtempSync(join(tmpdir(), 'flowbus-decode-'))
    const pcapng = join(dir, 'nfv5.pcapng')
    const result = spawnSync(editcap, ['-F', 'pcapng', join(netflow, 'nfv5.pcap'), pcapng], { encoding: 'utf8' })
    expect(result.status, result.stderr).toBe(0)
    const run = await decode('--pcap', pcapng)
    expect(run.code, run.stderr).toBe(0)
    expect(run.rows).toEqual((await decode('--pcap', join(netflow, 'nfv5.pcap'))).rows)
    expect(run.rows).toHaveLength(29)
  })

  it('prints an aligned table', async () => {
    const run = await decode('--pcap', join(netflow, 'nfv5.pcap'), '--format', 'table')
    const lines = run.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(30)
    expect(lines[0]).toMatch(/^TimeReceived +SamplingRate +ExporterAddress +SrcAddr/)
    expect(lines[1]!.indexOf('161.202.212.212')).toBe(lines[0]!.indexOf('SrcAddr'))
  })
})

describe('flowbus decode errors', () => {
  it('exits 1 naming a file it cannot read, and still decodes the others', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowbus-decode-'))
    const junk = join(dir, 'junk.pcap')
    writeFileSync(junk, 'this is not a capture at all')
    const run = await decode('--pcap', join(dir, 'missing.pcap'), '--pcap', junk)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('missing.pcap')
    expect(run.stderr).toContain('junk.pcap')
  })

  it('refuses a missing --pcap or an unknown format with a usage error', async () => {
    expect((await decode()).code).toBe(2)
    expect((await decode('--pcap', 'x.pcap', '--format', 'xml')).code).toBe(2)
  })

  it('runs as a process with --help', () => {
    const result = spawnSync(process.execPath, [join(root, 'actors/cli/bin/flowbus.js'), 'decode', '--help'], { encoding: 'utf8', timeout: 30_000 })
    expect(result.status).toBe(0)
    expect(result.stdout).toContain('Usage: flowbus decode --pcap FILE')
  })
})
