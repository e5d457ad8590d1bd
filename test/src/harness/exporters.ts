// Real flow exporters and reference decoders for differential tests: softflowd and pmacctd export
// a traffic capture to a UDP socket of ours on loopback; nfcapd/nfdump and tshark decode the result.

import { execFile } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseIP } from '@flowbus/bus-schemas'
import type { PcapUdpRecord } from '@flowbus/runtime'
import { errorText, findExecutable, freePort, startProcess } from './process.js'

const execFileAsync = promisify(execFile)

/** Paths of the external tools the differential tests run. */
export interface FlowTools {
  readonly softflowd: string
  readonly pmacctd: string
  readonly nfcapd: string
  readonly nfdump: string
  readonly tshark: string
  /** Wireshark's text-to-pcap converter (package wireshark-common, a dependency of tshark). */
  readonly text2pcap: string
  /** Wireshark's capture concatenation (wireshark-common). */
  readonly mergecap: string
}

// Debian package of each command.
const TOOL_PACKAGES: Readonly<Record<keyof FlowTools, string>> = {
  softflowd: 'softflowd',
  pmacctd: 'pmacct',
  nfcapd: 'nfdump',
  nfdump: 'nfdump',
  tshark: 'tshark',
  text2pcap: 'wireshark-common',
  mergecap: 'wireshark-common',
}

let toolsPromise: Promise<FlowTools> | undefined

/**
 * Paths of softflowd, pmacctd, nfcapd, nfdump, tshark, text2pcap and mergecap, installing the missing
 * Debian packages first with one `apt-get update` and one `apt-get install` (once per process;
 * the dpkg lock timeout lets parallel test workers install safely). Throws saying what failed.
 */
export function ensureFlowTools(): Promise<FlowTools> {
  toolsPromise ??= installFlowTools().catch((error: unknown) => {
    toolsPromise = undefined
    throw error
  })
  return toolsPromise
}

async function installFlowTools(): Promise<FlowTools> {
  const names = Object.keys(TOOL_PACKAGES) as (keyof FlowTools)[]
  const found = await Promise.all(names.map((n) => findExecutable(n)))
  const missing = [...new Set(names.filter((_, i) => found[i] === undefined).map((n) => TOOL_PACKAGES[n]))]
  if (missing.length > 0) {
    const apt = ['-o', 'DPkg::Lock::Timeout=300', '-q']
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    try {
      // wireshark-common asks whether non-root users may capture; we only read files.
      await execFileAsync('sh', ['-c', 'echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections'], { env })
      await execFileAsync('apt-get', [...apt, 'update'], { maxBuffer: 64 << 20 })
      await execFileAsync('apt-get', [...apt, 'install', '-y', '--no-install-recommends', ...missing], { maxBuffer: 64 << 20, env })
    } catch (error) {
      throw new Error(`apt-get install ${missing.join(' ')} failed: ${errorText(error)}`)
    }
  }
  const paths: Partial<Record<keyof FlowTools, string>> = {}
  for (const name of names) {
    const path = await findExecutable(name)
    if (!path) throw new Error(`${name} is not on PATH (Debian package ${TOOL_PACKAGES[name]})`)
    paths[name] = path
  }
  return paths as FlowTools
}

/** A UDP socket on loopback that keeps every datagram it receives, as pcap records. */
export interface UdpCollector {
  readonly port: number
  readonly datagrams: readonly PcapUdpRecord[]
  /** Resolves once no datagram arrived for quietMs (or after timeoutMs), with the count kept. */
  settle(quietMs?: number, timeoutMs?: number): Promise<number>
  close(): Promise<void>
}

/** Listens on 127.0.0.1 at a port the OS picks, with a socket buffer large enough for exporter bursts. */
export async function startUdpCollector(): Promise<UdpCollector> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 16 << 20 })
  const datagrams: PcapUdpRecord[] = []
  let lastArrival = Date.now()
  let localPort = 0
  const local = parseIP('127.0.0.1')
  // Wall-clock receive times with the monotonic clock's resolution, so datagrams keep their order.
  const epochNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint()
  socket.on('message', (payload, remote) => {
    lastArrival = Date.now()
    datagrams.push({
      timestampNs: epochNs + process.hrtime.bigint(),
      srcAddress: parseIP(remote.address),
      srcPort: remote.port,
      dstAddress: local,
      dstPort: localPort,
      payload: new Uint8Array(payload),
    })
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, '127.0.0.1', () => resolve())
  })
  localPort = socket.address().port
  return {
    port: localPort,
    datagrams,
    async settle(quietMs = 300, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      while (Date.now() - lastArrival < quietMs && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      return datagrams.length
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}

/** Sends datagrams to 127.0.0.1:port in order, pacing so a small socket buffer keeps up. */
export async function sendDatagrams(port: number, datagrams: readonly PcapUdpRecord[]): Promise<void> {
  const socket = createSocket('udp4')
  try {
    for (let i = 0; i < datagrams.length; i++) {
      await new Promise<void>((resolve, reject) =>
        socket.send(datagrams[i]!.payload, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
      )
      if (i % 32 === 31) await new Promise((resolve) => setTimeout(resolve, 2))
    }
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()))
  }
}

/** What an exporter run printed, for assertions and error messages. */
export interface ExporterRun {
  readonly output: string
}

export interface SoftflowdOptions {
  readonly tools: FlowTools
  /** Traffic capture to read (Ethernet pcap). */
  readonly pcap: string
  /** Loopback UDP port to export to. */
  readonly port: number
  /** NetFlow version: 5, 9 or 10 (IPFIX). */
  readonly version: 5 | 9 | 10
  /** Folder for the pid file. */
  readonly dir: string
  /** IPFIX only: export both directions of a connection as one RFC 5103 biflow record (-b). */
  readonly biflows?: boolean
}

/**
 * Runs softflowd over a capture until it exits. With -r it keeps every flow until the end of the
 * file (only max_flows forces expiry earlier) and exports them all before exiting, so each flow of
 * the traffic gives one record per direction. `-c none`: with a control socket, softflowd 1.1.0
 * blocks in accept() instead of reading the file. IPv6 is tracked (-6) for every version; v5
 * cannot carry it and leaves those flows out.
 */
export async function runSoftflowd(options: SoftflowdOptions): Promise<ExporterRun> {
  const args = ['-r', options.pcap, '-n', `127.0.0.1:${options.port}`, '-v', String(options.version), '-d']
  args.push('-p', join(options.dir, `softflowd-${options.port}.pid`), '-c', 'none', '-m', '65536')
  if (options.version !== 5) args.push('-6')
  if (options.biflows) args.push('-b')
  return runToExit('softflowd', options.tools.softflowd, args, 60_000)
}

export interface PmacctdOptions {
  readonly tools: FlowTools
  readonly pcap: string
  /** Folder for the configuration file and log. */
  readonly dir: string
  /** nfprobe plugins: NetFlow version (9 or 10) → loopback port. */
  readonly nfprobe?: readonly { readonly version: 9 | 10; readonly port: number }[]
  /** sfprobe plugin: loopback port and sampling rate (1 = every packet). */
  readonly sfprobe?: { readonly port: number; readonly samplingRate: number }
}

/**
 * Runs pmacctd over a capture with nfprobe (NetFlow v9/IPFIX) and sfprobe (sFlow v5) plugins,
 * each exporting to its loopback port, until it exits: pmacctd sleeps 2 s before reading a
 * savefile (so plugins are up), reads it, and on exit the nfprobe plugins expire every flow.
 */
export async function runPmacctd(options: PmacctdOptions): Promise<ExporterRun> {
  const plugins: string[] = []
  const lines = ['daemonize: false', `pcap_savefile: ${options.pcap}`, `logfile: ${join(options.dir, 'pmacctd.log')}`]
  for (const probe of options.nfprobe ?? []) {
    const name = `nf${probe.version}`
    plugins.push(`nfprobe[${name}]`)
    lines.push(`nfprobe_receiver[${name}]: 127.0.0.1:${probe.port}`, `nfprobe_version[${name}]: ${probe.version}`)
    // One template per address family, source ID distinct per plugin: both exporters share 127.0.0.1.
    lines.push(`nfprobe_engine[${name}]: ${probe.version}`, `nfprobe_maxflows[${name}]: 65536`)
    lines.push(`plugin_pipe_size[${name}]: 16777216`)
  }
  if (options.sfprobe) {
    plugins.push('sfprobe[sf]')
    lines.push(`sfprobe_receiver[sf]: 127.0.0.1:${options.sfprobe.port}`, 'sfprobe_agentip[sf]: 127.0.0.1')
    lines.push(`sampling_rate[sf]: ${options.sfprobe.samplingRate}`)
    // The whole capture fits in the core-to-plugin queue: no packet is dropped if the plugin lags.
    lines.push('plugin_pipe_size[sf]: 16777216')
  }
  if (plugins.length === 0) throw new Error('runPmacctd: give at least one nfprobe or sfprobe plugin')
  lines.push(`plugins: ${plugins.join(', ')}`)
  const config = join(options.dir, 'pmacctd.conf')
  await writeFile(config, `${lines.join('\n')}\n`)
  const run = await runToExit('pmacctd', options.tools.pmacctd, ['-f', config], 60_000)
  const log = await readFile(join(options.dir, 'pmacctd.log'), 'utf8').catch(() => '')
  return { output: `${run.output}\n${log}` }
}

/** Runs a command to completion (killing it after timeoutMs); throws with its output on failure. */
async function runToExit(name: string, command: string, args: readonly string[], timeoutMs: number): Promise<ExporterRun> {
  const run = startProcess({ name, command, args })
  const timer = setTimeout(() => run.kill(), timeoutMs)
  const code = await run.exited
  clearTimeout(timer)
  if (code !== 0) throw new Error(`${name} ${args.join(' ')} exited with ${code}:\n${run.output()}`)
  return { output: run.output() }
}

/** nfcapd listening on a loopback port, writing its flow files into a folder. */
export interface Nfcapd {
  readonly port: number
  /** SIGTERM: nfcapd writes out the flows it holds, then exits. */
  stop(): Promise<void>
}

export async function startNfcapd(tools: FlowTools, dir: string): Promise<Nfcapd> {
  const port = await freePort()
  const server = startProcess({
    name: 'nfcapd',
    command: tools.nfcapd,
    args: ['-b', '127.0.0.1', '-p', String(port), '-w', dir, '-P', join(dir, 'nfcapd.pid')],
  })
  // nfcapd has no TCP port to wait for: its startup line says it is bound.
  const deadline = Date.now() + 10_000
  while (!server.output().includes('Startup')) {
    if (server.child.exitCode !== null) throw new Error(`nfcapd exited before listening:\n${server.output()}`)
    if (Date.now() > deadline) throw new Error(`nfcapd did not start in time:\n${server.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { port, stop: () => server.stop() }
}

/** One flow record as nfdump prints it with `-o json` (the fields the tests compare). */
export interface NfdumpFlow {
  readonly proto: number
  readonly srcAddr: string
  readonly dstAddr: string
  readonly srcPort: number
  readonly dstPort: number
  readonly packets: number
  readonly bytes: number
  /** ICMP/ICMPv6 type and code (nfdump shows them instead of ports for ICMP flows). */
  readonly icmpType?: number
  readonly icmpCode?: number
}

/** Every flow record nfdump reads from the files nfcapd wrote into dir. */
export async function nfdumpFlows(tools: FlowTools, dir: string): Promise<NfdumpFlow[]> {
  const { stdout } = await execFileAsync(tools.nfdump, ['-R', dir, '-o', 'json'], { maxBuffer: 256 << 20 })
  const records = JSON.parse(stdout.trim() === '' ? '[]' : stdout) as Record<string, unknown>[]
  return records
    .filter((r) => r.type === 'FLOW')
    .map((r) => ({
      proto: Number(r.proto),
      srcAddr: String(r.src4_addr ?? r.src6_addr),
      dstAddr: String(r.dst4_addr ?? r.dst6_addr),
      srcPort: Number(r.src_port ?? 0),
      dstPort: Number(r.dst_port ?? 0),
      packets: Number(r.in_packets),
      bytes: Number(r.in_bytes),
      ...(r.icmp_type !== undefined ? { icmpType: Number(r.icmp_type), icmpCode: Number(r.icmp_code ?? 0) } : {}),
    }))
}

/** One tshark protocol layer as JSON (`-T json --no-duplicate-keys`: repeated keys become arrays). */
export type TsharkTree = { readonly [key: string]: string | TsharkTree | readonly (string | TsharkTree)[] }

/**
 * tshark's decoding of a capture: for each frame, the layers under `_source.layers`. `decodeAs`
 * maps UDP ports to a dissector (`cflow` for NetFlow/IPFIX, `sflow` for sFlow).
 */
export async function tsharkDecode(tools: FlowTools, pcap: string, decodeAs: Readonly<Record<number, 'cflow' | 'sflow'>> = {}): Promise<TsharkTree[]> {
  const args = ['-r', pcap, '-T', 'json', '--no-duplicate-keys']
  for (const [port, dissector] of Object.entries(decodeAs)) args.push('-d', `udp.port==${port},${dissector}`)
  const { stdout } = await execFileAsync(tools.tshark, args, { maxBuffer: 1 << 30 })
  const frames = JSON.parse(stdout) as { _source: { layers: TsharkTree } }[]
  return frames.map((f) => f._source.layers)
}

/** Nested objects of a tshark tree whose key matches `name` (e.g. /^Flow \d+$/), depth first. */
export function tsharkFind(tree: TsharkTree, name: RegExp): TsharkTree[] {
  const found: TsharkTree[] = []
  const walk = (node: TsharkTree): void => {
    for (const [key, value] of Object.entries(node)) {
      const items = Array.isArray(value) ? value : [value]
      for (const item of items) {
        if (typeof item !== 'object') continue
        if (name.test(key)) found.push(item as TsharkTree)
        else walk(item as TsharkTree)
      }
    }
  }
  walk(tree)
  return found
}
