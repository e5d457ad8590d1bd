// A typed view of the few net-snmp calls the poller makes (the package ships no typings): one
// SNMP GET to one agent, v2c or v3, with its failure sorted into a reason the metrics count.
import { createRequire } from 'node:module'
import { type DesAlgorithmSlot, type PasswordToKey, installDesFallback } from './des.js'

/** One value an agent returned; `missing` when the agent has no such object or instance. */
export type SnmpValue =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'missing' }
  | { readonly kind: 'other'; readonly type: number }

export type AuthProtocol = 'none' | 'md5' | 'sha' | 'sha224' | 'sha256' | 'sha384' | 'sha512'
export type PrivProtocol = 'none' | 'des' | 'aes' | 'aes256b' | 'aes256r'

export interface SnmpV3User {
  readonly name: string
  readonly authProtocol: AuthProtocol
  readonly authPassword: string
  readonly privProtocol: PrivProtocol
  readonly privPassword: string
}

/** Where and how to send one request: a v2c community or a v3 user. */
export interface SnmpTarget {
  readonly address: string
  readonly port: number
  readonly credentials: { readonly version: '2c'; readonly community: string } | { readonly version: '3'; readonly user: SnmpV3User }
  readonly timeoutMs: number
  readonly retries: number
}

/** Why a request failed, as counted in the poller's metrics. */
export type SnmpFailureReason = 'timeout' | 'too-big' | 'auth' | 'agent-error' | 'invalid-response' | 'socket'

export class SnmpFailure extends Error {
  constructor(
    readonly reason: SnmpFailureReason,
    message: string,
  ) {
    super(message)
    this.name = 'SnmpFailure'
  }
}

/** An open conversation with one agent (for v3, engine discovery happens once per session). */
export interface SnmpSession {
  /** Values of `oids` in the same order, or rejects with an SnmpFailure. */
  get(oids: readonly string[]): Promise<SnmpValue[]>
  close(): void
}

/** Opens sessions; the actor uses net-snmp, unit tests of the polling logic their own. */
export interface SnmpClient {
  open(target: SnmpTarget): SnmpSession
}

// What net-snmp exposes that we use, typed here once.
interface Varbind {
  readonly oid: string
  readonly type: number
  readonly value: unknown
}
interface Session {
  get(oids: string[], callback: (error: Error | null, varbinds?: Varbind[]) => void): void
  close(): void
  on(event: 'error', listener: (error: Error) => void): void
}
interface SessionOptions {
  port: number
  retries: number
  timeout: number
  transport: 'udp4' | 'udp6'
  version?: number
}
interface NetSnmpModule {
  createSession(target: string, community: string, options: SessionOptions): Session
  createV3Session(target: string, user: Record<string, unknown>, options: SessionOptions): Session
  readonly Version2c: number
  readonly SecurityLevel: Readonly<Record<'noAuthNoPriv' | 'authNoPriv' | 'authPriv', number>>
  readonly AuthProtocols: Readonly<Record<AuthProtocol, number>>
  readonly PrivProtocols: Readonly<Record<PrivProtocol, number>>
  readonly ObjectType: Readonly<Record<'Integer' | 'OctetString' | 'Counter' | 'Gauge' | 'TimeTicks' | 'NoSuchObject' | 'NoSuchInstance' | 'EndOfMibView', number>>
  readonly ErrorStatus: Readonly<Record<'TooBig', number>>
  readonly RequestTimedOutError: new (...args: never[]) => Error
  readonly RequestFailedError: new (...args: never[]) => Error & { status: number }
  readonly ResponseInvalidError: new (...args: never[]) => Error & { code: number }
  readonly ResponseInvalidCode: Readonly<Record<'ECouldNotDecrypt' | 'EAuthFailure' | 'EUnexpectedReport' | 'ENotInTimeWindow', number>>
  readonly Authentication: { readonly passwordToKey: PasswordToKey }
  readonly Encryption: { readonly algorithms: Record<number, DesAlgorithmSlot> }
}

const snmp = createRequire(import.meta.url)('net-snmp') as NetSnmpModule
// Node 17+ (OpenSSL 3) lacks single DES: without this, DES users fail with "unsupported".
installDesFallback(snmp.Encryption.algorithms[snmp.PrivProtocols.des]!, snmp.Authentication.passwordToKey)

const securityLevel = (user: SnmpV3User): number =>
  user.authProtocol === 'none'
    ? snmp.SecurityLevel.noAuthNoPriv
    : user.privProtocol === 'none'
      ? snmp.SecurityLevel.authNoPriv
      : snmp.SecurityLevel.authPriv

const openSession = (target: SnmpTarget): Session => {
  const options: SessionOptions = {
    port: target.port,
    retries: target.retries,
    timeout: target.timeoutMs,
    transport: target.address.includes(':') ? 'udp6' : 'udp4',
  }
  const credentials = target.credentials
  if (credentials.version === '2c') return snmp.createSession(target.address, credentials.community, { ...options, version: snmp.Version2c })
  const user = credentials.user
  return snmp.createV3Session(
    target.address,
    {
      name: user.name,
      level: securityLevel(user),
      authProtocol: snmp.AuthProtocols[user.authProtocol],
      authKey: user.authPassword,
      privProtocol: snmp.PrivProtocols[user.privProtocol],
      privKey: user.privPassword,
    },
    options,
  )
}

const toValue = (varbind: Varbind): SnmpValue => {
  const t = snmp.ObjectType
  switch (varbind.type) {
    case t.NoSuchObject:
    case t.NoSuchInstance:
    case t.EndOfMibView:
      return { kind: 'missing' }
    case t.OctetString:
      return { kind: 'bytes', bytes: varbind.value instanceof Uint8Array ? varbind.value : new Uint8Array(0) }
    case t.Integer:
    case t.Counter:
    case t.Gauge:
    case t.TimeTicks:
      return { kind: 'number', value: Number(varbind.value) }
    default:
      return { kind: 'other', type: varbind.type }
  }
}

/** Sorts what net-snmp reports into the poller's reasons. */
export const failureOf = (error: unknown): SnmpFailure => {
  if (error instanceof SnmpFailure) return error
  const message = error instanceof Error ? error.message : String(error)
  if (error instanceof snmp.RequestTimedOutError) return new SnmpFailure('timeout', message)
  if (error instanceof snmp.RequestFailedError) {
    return new SnmpFailure(error.status === snmp.ErrorStatus.TooBig ? 'too-big' : 'agent-error', message)
  }
  if (error instanceof snmp.ResponseInvalidError) {
    const c = snmp.ResponseInvalidCode
    const auth = [c.ECouldNotDecrypt, c.EAuthFailure, c.EUnexpectedReport, c.ENotInTimeWindow].includes(error.code)
    return new SnmpFailure(auth ? 'auth' : 'invalid-response', message)
  }
  return new SnmpFailure('socket', message)
}

/** The SnmpClient over net-snmp: a session is one UDP socket, requests on it one at a time. */
export const netSnmpClient: SnmpClient = {
  open: (target) => {
    let session: Session | undefined
    let opening: SnmpFailure | undefined
    let broken: SnmpFailure | undefined
    let pending: ((error: SnmpFailure) => void) | undefined
    try {
      session = openSession(target)
      // An undecodable datagram is emitted as "error"; without a listener it would throw.
      session.on('error', (error) => {
        broken = new SnmpFailure('invalid-response', error.message)
        pending?.(broken)
      })
    } catch (error) {
      opening = failureOf(error)
    }
    return {
      get: (oids) =>
        new Promise((resolve, reject) => {
          const failure = opening ?? broken
          if (!session || failure) {
            reject(failure ?? new SnmpFailure('socket', 'session closed'))
            return
          }
          let settled = false
          const settle = (error: unknown, values?: SnmpValue[]) => {
            if (settled) return
            settled = true
            pending = undefined
            if (values) resolve(values)
            else reject(failureOf(error))
          }
          pending = (error) => settle(error)
          session.get([...oids], (error, varbinds) => {
            if (error) settle(error)
            else if (!varbinds || varbinds.length !== oids.length) settle(new SnmpFailure('invalid-response', `expected ${oids.length} values`))
            else settle(undefined, varbinds.map(toValue))
          })
        }),
      close: () => {
        try {
          session?.close()
        } catch {
          // Already closed by a socket error: nothing left to release.
        }
        session = undefined
      },
    }
  },
}
