// A real SNMP agent for the snmp-poller tests: Debian's snmpd on a loopback UDP port with a
// generated config (v2c communities, v3 users), answering the machine's own IF-MIB, and the
// `snmp` package's snmpget/snmpwalk/snmpset as the reference client the poller is compared with.

import { execFile } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ensureExecutable, errorText, removeDir, startProcess, tempDir, type ServerProcess } from './process.js'

const execFileAsync = promisify(execFile)

export interface SnmpTools {
  readonly snmpd: string
  readonly snmpget: string
  readonly snmpwalk: string
  readonly snmpset: string
}

let toolsPromise: Promise<SnmpTools> | undefined

/** Paths of snmpd (package snmpd) and snmpget/snmpwalk/snmpset (package snmp), installed on demand. */
export function ensureSnmpTools(): Promise<SnmpTools> {
  toolsPromise ??= (async () => {
    const snmpd = await ensureExecutable('snmpd', 'snmpd')
    const snmpget = await ensureExecutable('snmpget', 'snmp')
    const snmpwalk = await ensureExecutable('snmpwalk', 'snmp')
    const snmpset = await ensureExecutable('snmpset', 'snmp')
    return { snmpd, snmpget, snmpwalk, snmpset }
  })().catch((error: unknown) => {
    toolsPromise = undefined
    throw error
  })
  return toolsPromise
}

/** A USM user created in the agent (net-snmp's createUser spelling of the protocols). */
export interface SnmpdUser {
  readonly name: string
  readonly auth: 'MD5' | 'SHA' | 'SHA-224' | 'SHA-256' | 'SHA-384' | 'SHA-512'
  readonly authPassword: string
  readonly priv?: 'DES' | 'AES'
  readonly privPassword?: string
}

export interface SnmpdOptions {
  /** Read-only v2c communities (default `flowbus-ro`). */
  readonly communities?: readonly string[]
  /** A read-write community, for tests that set ifAlias through the agent. */
  readonly writeCommunity?: string
  readonly users?: readonly SnmpdUser[]
  /** Also listen on [::1] (same port), for IPv6 agents. */
  readonly ipv6?: boolean
}

/** How the reference tools authenticate: a community or a user. */
export type SnmpCredentials = { readonly community: string } | { readonly user: SnmpdUser }

/** A value as snmpget prints it with -On -Ox: octet strings as hex, numbers, or missing. */
export type ReferenceValue =
  | { readonly kind: 'bytes'; readonly hex: string }
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'missing' }
  | { readonly kind: 'other'; readonly text: string }

export interface Snmpd {
  readonly host: '127.0.0.1'
  readonly port: number
  readonly communities: readonly string[]
  readonly tools: SnmpTools
  /** snmpget of these numeric OIDs, values by OID (without the leading dot). */
  get(credentials: SnmpCredentials, oids: readonly string[]): Promise<Map<string, ReferenceValue>>
  /** snmpwalk of a subtree, values by OID. */
  walk(credentials: SnmpCredentials, oid: string): Promise<Map<string, ReferenceValue>>
  /** snmpset of one string value (needs writeCommunity). */
  setString(oid: string, value: string): Promise<void>
  output(): string
  stop(): Promise<void>
}

/** A loopback UDP port nobody is bound to right now. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, '127.0.0.1', () => resolve())
  })
  const port = socket.address().port
  await new Promise<void>((resolve) => socket.close(() => resolve()))
  return port
}

/** Whether this machine has an IPv6 loopback to bind (containers may have IPv6 disabled). */
export async function ipv6LoopbackAvailable(): Promise<boolean> {
  const socket = createSocket('udp6')
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(0, '::1', () => resolve())
    })
    return true
  } catch {
    return false
  } finally {
    socket.close()
  }
}

const credentialArgs = (credentials: SnmpCredentials): string[] => {
  if ('community' in credentials) return ['-v2c', '-c', credentials.community]
  const u = credentials.user
  const args = ['-v3', '-u', u.name, '-a', u.auth, '-A', u.authPassword]
  return u.priv ? [...args, '-l', 'authPriv', '-x', u.priv, '-X', u.privPassword ?? ''] : [...args, '-l', 'authNoPriv']
}

/**
 * Parses `-On -Ox` output: `.1.3.6… = Hex-STRING: 6C 6F` (continued on following lines for long
 * strings), `= ""`, `= Gauge32: 10`, `= INTEGER: 1`, `= No Such Instance…`.
 */
export function parseSnmpOutput(stdout: string): Map<string, ReferenceValue> {
  const values = new Map<string, ReferenceValue>()
  const records = stdout.split(/\n(?=\.\d)/)
  for (const record of records) {
    const match = /^\.([\d.]+) = ([\s\S]*)$/.exec(record.trimEnd())
    if (!match) continue
    const [, oid, rest] = match as unknown as [string, string, string]
    let value: ReferenceValue
    if (rest === '""') value = { kind: 'bytes', hex: '' }
    else if (rest.startsWith('Hex-STRING:')) value = { kind: 'bytes', hex: rest.slice('Hex-STRING:'.length).replace(/\s+/g, '').toLowerCase() }
    else if (/^No Such (Instance|Object)/.test(rest) || rest.startsWith('No more variables')) value = { kind: 'missing' }
    else {
      const number = /^(?:INTEGER|Gauge32|Counter32|Timeticks|Counter64): \(?(\d+)/.exec(rest)
      value = number ? { kind: 'number', value: Number(number[1]) } : { kind: 'other', text: rest }
    }
    values.set(oid, value)
  }
  return values
}

const configText = (options: Required<Pick<SnmpdOptions, 'communities'>> & SnmpdOptions): string => {
  const lines = ['# generated by the flowbus test harness']
  for (const community of options.communities) {
    lines.push(`rocommunity ${community} 127.0.0.1`)
    if (options.ipv6) lines.push(`rocommunity6 ${community} ::1`)
  }
  if (options.writeCommunity) lines.push(`rwcommunity ${options.writeCommunity} 127.0.0.1`)
  for (const u of options.users ?? []) {
    lines.push(`rouser ${u.name} ${u.priv ? 'authPriv' : 'authNoPriv'}`)
    lines.push(`createUser ${u.name} ${u.auth} "${u.authPassword}"${u.priv ? ` ${u.priv} "${u.privPassword}"` : ''}`)
  }
  return `${lines.join('\n')}\n`
}

/**
 * Starts snmpd as the current user in the foreground on 127.0.0.1:<free port>, reading only the
 * generated config (-C -c), keeping its persistent state (v3 users' keys) in a temp dir, logging
 * to stdout. Resolves once the agent answers a v2c GET.
 */
export async function startSnmpd(options: SnmpdOptions = {}): Promise<Snmpd> {
  const tools = await ensureSnmpTools()
  const communities = options.communities ?? ['flowbus-ro']
  const dir = await tempDir('snmpd')
  try {
    await mkdir(join(dir, 'persist'), { recursive: true })
    await mkdir(join(dir, 'mibs'), { recursive: true })
    const conf = join(dir, 'snmpd.conf')
    await writeFile(conf, configText({ ...options, communities }))
    // Isolated from the machine's /etc/snmp and /var/lib/snmp; no MIB files loaded (numeric OIDs).
    const env = { SNMP_PERSISTENT_DIR: join(dir, 'persist'), SNMPCONFPATH: dir, MIBS: '', MIBDIRS: join(dir, 'mibs'), HOME: dir }
    let server: ServerProcess | undefined
    let lastOutput = ''
    let port = 0
    // The port is free when picked but may be taken before snmpd binds it: try a few.
    for (let attempt = 0; attempt < 3 && !server; attempt++) {
      port = await freeUdpPort()
      const candidate = startProcess({
        name: 'snmpd',
        command: tools.snmpd,
        args: ['-f', '-Lo', '-C', '-c', conf, '-p', join(dir, 'snmpd.pid'), `127.0.0.1:${port}`, ...(options.ipv6 ? [`udp6:[::1]:${port}`] : [])],
        env,
      })
      const ready = await waitForAgent(tools, port, communities[0]!, env, candidate)
      if (ready) server = candidate
      else {
        lastOutput = candidate.output()
        await candidate.stop()
      }
    }
    if (!server) throw new Error(`snmpd could not bind a free loopback port:\n${lastOutput}`)
    const running = server
    const run = async (command: string, args: string[]) => {
      try {
        const { stdout } = await execFileAsync(command, args, { env: { ...process.env, ...env }, maxBuffer: 16 << 20 })
        return stdout
      } catch (error) {
        throw new Error(`${command} ${args.join(' ')} failed: ${errorText(error)}\n${running.output()}`)
      }
    }
    const target = `udp:127.0.0.1:${port}`
    return {
      host: '127.0.0.1',
      port,
      communities,
      tools,
      get: async (credentials, oids) =>
        parseSnmpOutput(await run(tools.snmpget, [...credentialArgs(credentials), '-On', '-Ox', '-t', '2', '-r', '1', target, ...oids])),
      walk: async (credentials, oid) =>
        parseSnmpOutput(await run(tools.snmpwalk, [...credentialArgs(credentials), '-On', '-Ox', '-t', '2', '-r', '1', target, oid])),
      setString: async (oid, value) => {
        if (!options.writeCommunity) throw new Error('startSnmpd: setString needs options.writeCommunity')
        await run(tools.snmpset, ['-v2c', '-c', options.writeCommunity, target, oid, 's', value])
      },
      output: () => running.output(),
      stop: async () => {
        await running.stop()
        await removeDir(dir)
      },
    }
  } catch (error) {
    await removeDir(dir)
    throw error
  }
}

/** True once the agent answers sysName over v2c; false when snmpd exited (port taken) first. */
async function waitForAgent(
  tools: SnmpTools,
  port: number,
  community: string,
  env: Record<string, string>,
  server: ServerProcess,
): Promise<boolean> {
  let exited = false
  void server.exited.then(() => {
    exited = true
  })
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (exited) {
      if (/Error opening specified endpoint/.test(server.output())) return false
      throw new Error(`snmpd exited before answering:\n${server.output()}`)
    }
    try {
      await execFileAsync(tools.snmpget, ['-v2c', '-c', community, '-t', '0.3', '-r', '0', `udp:127.0.0.1:${port}`, '1.3.6.1.2.1.1.5.0'], {
        env: { ...process.env, ...env },
      })
      return true
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  await server.stop()
  throw new Error(`snmpd did not answer on 127.0.0.1:${port} in time:\n${server.output()}`)
}
