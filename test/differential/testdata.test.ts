// Differential test on the real captures of ../shared/testdata/akvorado: every capture decodes
// through `flowbus decode` without an exception, and every flow tshark decodes agrees field by field.

import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type FlowTools, ensureFlowTools, removeDir, skipReason, tempDir, tsharkDecode } from '@flowbus/test/harness'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NETFLOW_FIELDS, SFLOW_COMPARED, compareFlows, describeDisagreements, flowbusDecode, tsharkNetflowFlows, tsharkSflowFlows } from './support.js'
import { akvoradoTestdata } from '../src/harness/testdata.js'

const execFileAsync = promisify(execFile)
const testdata = akvoradoTestdata
const netflowDir = join(testdata, 'flow-decoder-netflow')
const sflowDir = join(testdata, 'flow-decoder-sflow')
const haveTestdata = existsSync(netflowDir) && existsSync(sflowDir)
if (!haveTestdata && process.env.CI === 'true') throw new Error(`captures missing under ${testdata} (CI=true: they are required)`)
const unavailable = haveTestdata ? await skipReason('tshark', ensureFlowTools) : 'no testdata'

const pcaps = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.pcap')).sort() : [])

/** Data captures need their template capture first: the list of files each decode run reads. */
const netflowRuns: string[][] = pcaps(netflowDir)
  .filter((f) => !f.endsWith('-template.pcap') && f !== 'template.pcap')
  .map((f) => {
    const template = f === 'data.pcap' ? 'template.pcap' : f.replace(/-data\.pcap$/, '-template.pcap')
    return template !== f && existsSync(join(netflowDir, template)) ? [template, f] : [f]
  })

// UDP ports the captures use that tshark does not dissect as NetFlow/IPFIX/sFlow by default.
const DECODE_AS = { 2055: 'cflow', 2100: 'cflow', 9990: 'cflow', 8096: 'cflow', 6343: 'sflow' } as const

/**
 * Flows flowbus decodes that tshark cannot, with the reason: the only ones allowed to be extra.
 * data+templates.pcap: a data set comes before its template in the same datagram; flowbus holds it
 * and decodes it once the template arrives, tshark reports "no template found".
 */
const EXTRA_FLOWS: Readonly<Record<string, number>> = { 'data+templates.pcap': 11 }

describe.skipIf(unavailable !== undefined)('real captures: flowbus decode agrees with tshark', () => {
  let tools: FlowTools
  let dir: string
  const summary: string[] = []
  beforeAll(async () => {
    tools = await ensureFlowTools()
    dir = await tempDir('differential-testdata')
  })
  afterAll(async () => {
    if (summary.length > 0) console.info(`tshark comparison of the testdata captures:\n${summary.join('\n')}`)
    await removeDir(dir)
  })

  it.each(netflowRuns.map((files) => [files.join(' + '), files] as const))('NetFlow/IPFIX %s', async (name, files) => {
    const paths = files.map((f) => join(netflowDir, f))
    const run = await flowbusDecode(paths)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).not.toMatch(/exception|TypeError|RangeError/)
    // tshark needs the template and data in one file to decode the data.
    let merged = paths[0]!
    if (paths.length > 1) {
      merged = join(dir, `${files.at(-1)}.merged.pcap`)
      await execFileAsync(tools.mergecap, ['-a', '-F', 'pcap', '-w', merged, ...paths])
    }
    const reference = tsharkNetflowFlows(await tsharkDecode(tools, merged, DECODE_AS))
    const result = compareFlows(run.rows, reference)
    summary.push(`  ${name}: ${result.matched}/${reference.length} tshark flows matched, fields ${Object.entries(result.compared).map(([c, n]) => `${c}×${n}`).join(' ')}`)
    expect(result.missing, `flows tshark decodes and flowbus does not`).toEqual([])
    expect(result.disagreements, describeDisagreements(result.disagreements)).toEqual([])
    expect(result.extra.length, 'flows flowbus decodes that tshark does not').toBe(EXTRA_FLOWS[files.at(-1)!] ?? 0)
  })

  it.each(pcaps(sflowDir))('sFlow %s', async (file) => {
    const path = join(sflowDir, file)
    const run = await flowbusDecode([path])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).not.toMatch(/exception|TypeError|RangeError/)
    const reference = tsharkSflowFlows(await tsharkDecode(tools, path, DECODE_AS))
    expect(reference.length).toBeGreaterThan(0)
    const result = compareFlows(run.rows, reference, SFLOW_COMPARED)
    summary.push(`  ${file}: ${result.matched}/${reference.length} tshark samples matched, fields ${Object.entries(result.compared).map(([c, n]) => `${c}×${n}`).join(' ')}`)
    expect(result.missing, 'samples tshark decodes and flowbus does not').toEqual([])
    expect(result.disagreements, describeDisagreements(result.disagreements)).toEqual([])
    expect(result.extra).toEqual([])
  })

  it('compares every NetFlow/IPFIX column listed, each on at least one capture', () => {
    // Guards the mapping: a tshark field renamed in a new version would silently compare nothing.
    const compared = new Set(summary.flatMap((line) => [...line.matchAll(/ (\w+)×/g)].map((m) => m[1]!)))
    for (const column of ['SrcAddr', 'DstAddr', 'SrcPort', 'DstPort', 'Proto', 'Bytes', 'Packets', 'InIf', 'OutIf', 'SrcAS', 'DstAS', 'SrcNetMask', 'TCPFlags']) {
      expect(compared, column).toContain(column)
    }
    expect(NETFLOW_FIELDS.length).toBeGreaterThan(20)
  })
})
