// Shared plumbing for test servers run as child processes on loopback: free ports, temp
// dirs, installing a missing Debian package, waiting for a port, and stopping without leaks.

import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, beforeEach } from 'vitest'

const execFileAsync = promisify(execFile)

/**
 * A loopback port nobody listens on right now, for TCP and UDP. It is drawn at random below the
 * kernel's ephemeral range: a port the OS picks with listen(0) comes from that range, so an
 * outgoing connection of a parallel test can take it as its source port between this call and
 * the server's own listen (the EADDRINUSE that once failed a multi-process run).
 */
export async function freePort(): Promise<number> {
  const [low, high] = (outsideEphemeral ??= portsOutsideEphemeral())
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low))
    if (handedOut.has(port)) continue
    if ((await canBind(port, 'tcp')) && (await canBind(port, 'udp'))) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error(`no free loopback port between ${low} and ${high} after 200 tries`)
}

const handedOut = new Set<number>()
let outsideEphemeral: [number, number] | undefined

/**
 * [first, last) of the ports to draw from: those under the kernel's ephemeral range, or over it
 * when it starts low; the whole unprivileged range only when the ephemeral range covers it.
 */
function portsOutsideEphemeral(): [number, number] {
  let [ephemeralLow, ephemeralHigh] = [32768, 60999]
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (low && high) [ephemeralLow, ephemeralHigh] = [low, high]
  } catch {
    // not Linux: keep the usual range
  }
  if (ephemeralLow >= 12000) return [10000, ephemeralLow]
  if (ephemeralHigh <= 63000) return [ephemeralHigh + 1, 65536]
  return [1024, 65536]
}

function canBind(port: number, protocol: 'tcp' | 'udp'): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === 'udp') {
      const socket = createSocket('udp4')
      socket.once('error', () => resolve(false))
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)))
      return
    }
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A fresh directory under os.tmpdir(); the caller removes it with removeDir. */
export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `flowbus-${prefix}-`))
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 })
}

/** Absolute path of an executable on PATH (plus the sbin dirs Debian packages use), or undefined. */
export async function findExecutable(command: string): Promise<string | undefined> {
  const path = [process.env.PATH ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin'].join(':')
  try {
    const { stdout } = await execFileAsync('sh', ['-c', `command -v "$0"`, command], {
      env: { ...process.env, PATH: path },
    })
    const found = stdout.trim()
    return found === '' ? undefined : found
  } catch {
    return undefined
  }
}

/**
 * Returns the path of `command`, installing the Debian package `aptPackage` first when it is
 * missing. The dpkg lock timeout lets parallel test workers install the same package safely.
 */
export async function ensureExecutable(command: string, aptPackage: string): Promise<string> {
  const existing = await findExecutable(command)
  if (existing) return existing
  const apt = ['-o', 'DPkg::Lock::Timeout=300', '-q']
  try {
    await execFileAsync('apt-get', [...apt, 'update'], { maxBuffer: 64 << 20 })
    await execFileAsync('apt-get', [...apt, 'install', '-y', '--no-install-recommends', aptPackage], {
      maxBuffer: 64 << 20,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
  } catch (error) {
    throw new Error(`${command} is not installed and apt-get install ${aptPackage} failed: ${errorText(error)}`)
  }
  const installed = await findExecutable(command)
  if (!installed) throw new Error(`apt-get installed ${aptPackage} but ${command} is still not on PATH`)
  return installed
}

export interface ServerProcessOptions {
  /** Shown in errors, e.g. `nats-server`. */
  readonly name: string
  readonly command: string
  readonly args: readonly string[]
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string>>
}

/** A child server process whose output tail is kept for error messages. */
export interface ServerProcess {
  readonly name: string
  readonly child: ChildProcess
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>
  /** Last few kilobytes of stdout+stderr. */
  output(): string
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>
  /** SIGKILL now, without waiting (simulates a crash). */
  kill(): void
}

const OUTPUT_TAIL_BYTES = 16 * 1024
const running = new Set<ChildProcess>()
let exitHookInstalled = false

/** If a test worker exits without stopping its servers, kill them so nothing outlives the run. */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL')
  })
}

export function startProcess(options: ServerProcessOptions): ServerProcess {
  installExitHook()
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let tail = ''
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (error) => {
      keep(Buffer.from(`\n${errorText(error)}\n`))
      running.delete(child)
      resolve('spawn-error')
    })
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve(code ?? signal ?? 'unknown')
    })
  })
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null || !running.has(child)

  return {
    name: options.name,
    child,
    exited,
    output: () => tail,
    async stop(graceMs = 5_000) {
      if (gone()) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
    kill() {
      if (!gone()) child.kill('SIGKILL')
    },
  }
}

/**
 * Resolves once host:port accepts TCP connections. Fails early with the server's output when
 * the process exits first, and after timeoutMs otherwise.
 */
export async function waitForPort(
  port: number,
  options: { host?: string; timeoutMs?: number; process?: ServerProcess } = {},
): Promise<void> {
  const host = options.host ?? '127.0.0.1'
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  let exitedWith: number | string | undefined
  void options.process?.exited.then((code) => {
    exitedWith = code
  })
  for (;;) {
    if (exitedWith !== undefined) {
      throw new Error(
        `${options.process?.name} exited (${exitedWith}) before listening on ${host}:${port}:\n${options.process?.output()}`,
      )
    }
    if (await canConnect(host, port)) return
    if (Date.now() > deadline) {
      const name = options.process?.name ?? 'server'
      throw new Error(`${name} did not listen on ${host}:${port} in time:\n${options.process?.output() ?? ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1_000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const stderr = (error as { stderr?: unknown }).stderr
    return typeof stderr === 'string' && stderr.trim() !== '' ? `${error.message}\n${stderr.trim()}` : error.message
  }
  return String(error)
}

/**
 * For test files that must decide at collection time (e.g. `describe.skipIf`): runs probe (which
 * may install the server) and returns undefined when the service can run, else the reason to skip.
 * With CI=true an unavailable service throws instead, failing the file: CI must not pass by skipping.
 */
export async function skipReason(name: string, probe: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await probe()
    return undefined
  } catch (error) {
    const reason = `${name} unavailable: ${errorText(error)}`
    if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: real servers are required, not skipped)`)
    console.warn(`skipping tests that need ${name}: ${reason}`)
    return reason
  }
}

/** Anything the harness starts: a server that can be stopped. */
export interface StoppableService {
  stop(): Promise<void>
}

/** What serviceOrSkip hands a test file: the running service, once beforeAll has run. */
export interface ServiceHandle<S> {
  /** The service; throws when called while the suite is being skipped. */
  get(): S
  /** Why the service is unavailable (set after beforeAll when it could not start). */
  readonly unavailable: string | undefined
}

/**
 * Starts a service for the enclosing describe block (or file) and stops it afterwards.
 * When it cannot be installed or started, the tests fail if CI=true (a CI run must not pass
 * by skipping), and are otherwise skipped with the reason printed, so a laptop without the
 * server still runs the rest of the suite.
 */
export function serviceOrSkip<S extends StoppableService>(name: string, start: () => Promise<S>): ServiceHandle<S> {
  let service: S | undefined
  let unavailable: string | undefined
  beforeAll(async () => {
    try {
      service = await start()
    } catch (error) {
      const reason = `${name} unavailable: ${errorText(error)}`
      if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: real servers are required, not skipped)`)
      unavailable = reason
      console.warn(`skipping tests that need ${name}: ${reason}`)
    }
  })
  beforeEach((context) => {
    if (!service) context.skip(unavailable ?? `${name} unavailable`)
  })
  afterAll(async () => {
    await service?.stop()
  })
  return {
    get() {
      if (!service) throw new Error(unavailable ?? `${name} is not started yet (call get() inside a test or hook)`)
      return service
    },
    get unavailable() {
      return unavailable
    },
  }
}

/**
 * Polls `condition` until it holds, or fails naming `what` (evaluated at the end, so it can
 * report the last state) after `timeoutMs`. For tests waiting on other processes or actors.
 */
export async function waitFor(
  what: () => string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
