// Starts a real nats-server with JetStream on a free loopback port in a fresh temp dir, for
// tests; installs the Debian package when the binary is missing.
//
// Server version we rely on: 2.9.10 (Debian bookworm's `nats-server` package) or newer.
// 2.9 has everything the NATS transport uses: JetStream pull consumers with max_bytes,
// nak with delay, KV buckets with TTL (max_age), direct get and headers.

import { constants } from 'node:fs'
import { access, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ensureExecutable, freePort, removeDir, startProcess, tempDir, waitForPort, type ServerProcess } from './process.js'

export interface NatsServerOptions {
  /** Server max_payload in bytes (server default: 1 MiB). */
  readonly maxPayload?: number
  /** Require this user/password from clients. */
  readonly user?: string
  readonly pass?: string
  /** Extra lines appended to the generated server config file. */
  readonly extraConfig?: string
}

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** JetStream store directory (inside the temp dir removed by stop). */
  readonly storeDir: string
  /** Process id of the running server (changes on restart), e.g. to read its CPU time in benchmarks. */
  readonly pid: number | undefined
  /** SIGTERM (then SIGKILL), and remove the temp dir. */
  stop(): Promise<void>
  /** SIGKILL without cleanup, to simulate a crash; stop() still removes the dir afterwards. */
  kill(): void
  /** Stop the server (SIGTERM) and start it again on the same port with the same JetStream data. */
  restart(): Promise<void>
}

/**
 * Path of the nats-server to run: $NATS_SERVER_BIN when set (e.g. to test against a newer server),
 * else the one on PATH, installing the Debian package if needed. Throws saying why not.
 */
export async function ensureNatsServer(): Promise<string> {
  const chosen = process.env.NATS_SERVER_BIN
  if (chosen) {
    try {
      await access(chosen, constants.X_OK)
      return chosen
    } catch {
      throw new Error(`NATS_SERVER_BIN=${chosen} is not an executable file`)
    }
  }
  return ensureExecutable('nats-server', 'nats-server')
}

export async function startNats(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = await ensureNatsServer()
  const dir = await tempDir('nats')
  try {
    const port = await freePort()
    const storeDir = join(dir, 'jetstream')
    const configFile = join(dir, 'nats.conf')
    await writeFile(configFile, serverConfig(options))
    const launch = async (): Promise<ServerProcess> => {
      const server = startProcess({
        name: 'nats-server',
        command: binary,
        args: ['-c', configFile, '-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)],
        cwd: dir,
      })
      try {
        await waitForPort(port, { process: server, timeoutMs: 30_000 })
      } catch (error) {
        server.kill()
        await server.exited
        throw error
      }
      return server
    }
    let server = await launch()
    return {
      url: `nats://127.0.0.1:${port}`,
      port,
      storeDir,
      get pid() {
        return server.child.pid
      },
      async stop() {
        await server.stop()
        await removeDir(dir)
      },
      kill() {
        server.kill()
      },
      async restart() {
        await server.stop()
        server = await launch()
      },
    }
  } catch (error) {
    await removeDir(dir)
    throw error
  }
}

function serverConfig(options: NatsServerOptions): string {
  const lines: string[] = []
  // Memory streams are not used: cap them well below the default (75% of RAM). File storage keeps
  // the server default, since streams with max_bytes (flows: 10 GiB) reserve that much up front.
  lines.push('jetstream { max_memory_store: 256MB }')
  if (options.maxPayload !== undefined) lines.push(`max_payload: ${options.maxPayload}`)
  if (options.user !== undefined) {
    lines.push(`authorization { user: ${JSON.stringify(options.user)}, password: ${JSON.stringify(options.pass ?? '')} }`)
  }
  if (options.extraConfig) lines.push(options.extraConfig)
  return `${lines.join('\n')}\n`
}
