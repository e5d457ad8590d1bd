// A real BGP speaker for the bmp-rib tests: gobgpd (Debian package gobgpd) configured to send BMP
// to a loopback collector, its gRPC API on a free loopback port, routes driven with the gobgp CLI.
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ensureExecutable, freePort, removeDir, startProcess, tempDir, waitForPort, type ServerProcess } from './process.js'

const execFileAsync = promisify(execFile)

export interface GobgpTools {
  readonly gobgpd: string
  readonly gobgp: string
}

/** gobgpd and the gobgp CLI, installing the Debian package on demand. */
export async function ensureGobgp(): Promise<GobgpTools> {
  const gobgpd = await ensureExecutable('gobgpd', 'gobgpd')
  const gobgp = await ensureExecutable('gobgp', 'gobgpd')
  return { gobgpd, gobgp }
}

export interface GobgpdOptions {
  /** Loopback port of the BMP collector gobgpd connects to. */
  readonly bmpPort: number
  /** Which RIBs gobgpd monitors over BMP; routes of `gobgp global rib add` are in the Loc-RIB. */
  readonly routeMonitoringPolicy?: 'pre-policy' | 'post-policy' | 'both' | 'local-rib' | 'all'
  readonly asn?: number
  readonly routerId?: string
}

export interface GobgpRoute {
  /** `192.0.2.0/24` or `2001:db8::/48`. */
  readonly prefix: string
  readonly asPath?: readonly number[]
  /** `65000:100` */
  readonly communities?: readonly string[]
  /** `65000:1:2` */
  readonly largeCommunities?: readonly string[]
  readonly nextHop?: string
}

export interface Gobgpd {
  readonly apiPort: number
  readonly process: ServerProcess
  /** Runs the gobgp CLI against this daemon; resolves with its output. */
  cli(args: readonly string[]): Promise<string>
  addRoute(route: GobgpRoute): Promise<void>
  deleteRoute(prefix: string): Promise<void>
  stop(): Promise<void>
}

const familyOf = (prefix: string): 'ipv4' | 'ipv6' => (prefix.includes(':') ? 'ipv6' : 'ipv4')

/**
 * Starts gobgpd with a generated TOML config: a global AS and router id, BGP listening disabled
 * (port -1), and one BMP server at 127.0.0.1:bmpPort. gobgpd retries the BMP connection on its
 * own, so the collector may start before or after it.
 */
export async function startGobgpd(options: GobgpdOptions): Promise<Gobgpd> {
  const tools = await ensureGobgp()
  const dir = await tempDir('gobgpd')
  const apiPort = await freePort()
  const config = [
    '[global.config]',
    `  as = ${options.asn ?? 65000}`,
    `  router-id = "${options.routerId ?? '192.0.2.254'}"`,
    '  port = -1',
    '[[bmp-servers]]',
    '  [bmp-servers.config]',
    '    address = "127.0.0.1"',
    `    port = ${options.bmpPort}`,
    `    route-monitoring-policy = "${options.routeMonitoringPolicy ?? 'local-rib'}"`,
    '',
  ].join('\n')
  const configFile = join(dir, 'gobgpd.toml')
  await writeFile(configFile, config)
  const process = startProcess({
    name: 'gobgpd',
    command: tools.gobgpd,
    args: ['-f', configFile, '-t', 'toml', '--api-hosts', `127.0.0.1:${apiPort}`, '--pprof-disable', '-p'],
    cwd: dir,
  })
  try {
    await waitForPort(apiPort, { process })
  } catch (error) {
    await process.stop()
    await removeDir(dir)
    throw error
  }
  const cli = async (args: readonly string[]): Promise<string> => {
    try {
      const { stdout } = await execFileAsync(tools.gobgp, ['-u', '127.0.0.1', '-p', String(apiPort), ...args])
      return stdout
    } catch (error) {
      throw new Error(`gobgp ${args.join(' ')} failed: ${(error as Error).message}\n${process.output()}`)
    }
  }
  return {
    apiPort,
    process,
    cli,
    async addRoute(route) {
      const args = ['global', 'rib', 'add', route.prefix]
      if (route.nextHop) args.push('nexthop', route.nextHop)
      if (route.asPath?.length) args.push('aspath', route.asPath.join(','))
      if (route.communities?.length) args.push('community', route.communities.join(','))
      if (route.largeCommunities?.length) args.push('large-community', route.largeCommunities.join(','))
      await cli([...args, '-a', familyOf(route.prefix)])
    },
    async deleteRoute(prefix) {
      await cli(['global', 'rib', 'del', prefix, '-a', familyOf(prefix)])
    },
    async stop() {
      await process.stop()
      await removeDir(dir)
    },
  }
}
