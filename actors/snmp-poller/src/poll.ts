// One poll of one exporter: sysName plus ifName, ifDescr, ifAlias and ifHighSpeed of the wanted
// ifIndexes, in as few GETs as the agent takes, trying v2c communities in order until one answers.
import type { AgentSettings } from './agents.js'
import { type SnmpClient, SnmpFailure, type SnmpFailureReason, type SnmpSession, type SnmpTarget, type SnmpValue } from './net-snmp.js'

/** Numeric OIDs (no MIB files needed): SNMPv2-MIB sysName, IF-MIB ifDescr and ifXTable columns. */
export const OID = {
  sysName: '1.3.6.1.2.1.1.5.0',
  ifDescr: '1.3.6.1.2.1.2.2.1.2',
  ifName: '1.3.6.1.2.1.31.1.1.1.1',
  ifHighSpeed: '1.3.6.1.2.1.31.1.1.1.15',
  ifAlias: '1.3.6.1.2.1.31.1.1.1.18',
} as const

const INTERFACE_COLUMNS = [OID.ifName, OID.ifDescr, OID.ifAlias, OID.ifHighSpeed] as const

/** What the agent said about one interface; absent columns read as empty (0 for the speed). */
export interface PolledInterface {
  readonly ifName: string
  readonly ifDescr: string
  readonly ifAlias: string
  /** Mbps. */
  readonly ifHighSpeed: number
}

export interface PollPlan {
  readonly agent: AgentSettings
  readonly ifIndexes: readonly number[]
  /** Index in agent's communities of the one that answered last time (tried first). */
  readonly preferredCommunity: number
}

interface PollCounts {
  /** GETs sent (each may be retried by the client). */
  readonly requests: number
  /** GETs that got no answer. */
  readonly timeouts: number
}

export type PollResult =
  | (PollCounts & {
      readonly ok: true
      readonly sysName: string
      /** Every wanted ifIndex: undefined when the agent has no such interface. */
      readonly interfaces: ReadonlyMap<number, PolledInterface | undefined>
      /** Index of the v2c community that answered (0 for v3). */
      readonly community: number
    })
  | (PollCounts & { readonly ok: false; readonly reason: SnmpFailureReason; readonly message: string })

export interface PollOptions {
  readonly timeoutMs: number
  readonly retries: number
  readonly maxOidsPerRequest: number
}

const utf8 = new TextDecoder('utf-8')

// DisplayStrings are ASCII by the MIB, UTF-8 in practice; invalid bytes become U+FFFD.
const text = (value: SnmpValue | undefined): string => (value?.kind === 'bytes' ? utf8.decode(value.bytes) : '')
const number = (value: SnmpValue | undefined): number => (value?.kind === 'number' ? value.value : 0)
const present = (value: SnmpValue | undefined): boolean => value !== undefined && value.kind !== 'missing'

/** The OIDs of one poll, sysName first, then the four columns of each ifIndex in order. */
export const pollOids = (ifIndexes: readonly number[]): string[] => {
  const oids: string[] = [OID.sysName]
  for (const ifIndex of ifIndexes) for (const column of INTERFACE_COLUMNS) oids.push(`${column}.${ifIndex}`)
  return oids
}

/** Reads a poll's values back (same order as pollOids). An interface with neither ifName nor ifDescr is absent. */
export const readPoll = (ifIndexes: readonly number[], values: readonly SnmpValue[]): { sysName: string; interfaces: Map<number, PolledInterface | undefined> } => {
  const interfaces = new Map<number, PolledInterface | undefined>()
  ifIndexes.forEach((ifIndex, i) => {
    const [ifName, ifDescr, ifAlias, ifHighSpeed] = values.slice(1 + 4 * i, 5 + 4 * i)
    interfaces.set(
      ifIndex,
      present(ifName) || present(ifDescr)
        ? { ifName: text(ifName), ifDescr: text(ifDescr), ifAlias: text(ifAlias), ifHighSpeed: number(ifHighSpeed) }
        : undefined,
    )
  })
  return { sysName: text(values[0]), interfaces }
}

/** Polls one exporter. Never rejects: failures come back as a result with their reason. */
export const pollExporter = async (client: SnmpClient, plan: PollPlan, options: PollOptions): Promise<PollResult> => {
  let requests = 0
  let timeouts = 0
  const { agent } = plan
  const targetWith = (credentials: SnmpTarget['credentials']): SnmpTarget => ({
    address: agent.address,
    port: agent.port,
    credentials,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
  })
  // A GET the agent answers with tooBig is split in halves until each half fits.
  const get = async (session: SnmpSession, oids: readonly string[]): Promise<SnmpValue[]> => {
    requests++
    try {
      return await session.get(oids)
    } catch (error) {
      const failure = error instanceof SnmpFailure ? error : new SnmpFailure('socket', String(error))
      if (failure.reason === 'timeout') timeouts++
      if (failure.reason !== 'too-big' || oids.length < 2) throw failure
      const middle = Math.ceil(oids.length / 2)
      return [...(await get(session, oids.slice(0, middle))), ...(await get(session, oids.slice(middle)))]
    }
  }

  const oids = pollOids(plan.ifIndexes)
  const chunks: string[][] = []
  for (let i = 0; i < oids.length; i += options.maxOidsPerRequest) chunks.push(oids.slice(i, i + options.maxOidsPerRequest))

  const sessions: SnmpSession[] = []
  const open = (credentials: SnmpTarget['credentials']): SnmpSession => {
    const session = client.open(targetWith(credentials))
    sessions.push(session)
    return session
  }
  try {
    const values: SnmpValue[] = []
    let session: SnmpSession | undefined
    let community = 0
    if (agent.credentials.version === '3') {
      session = open({ version: '3', user: agent.credentials.user })
      values.push(...(await get(session, chunks[0]!)))
    } else {
      // Agents drop requests with a community they do not know, so a wrong one reads as a timeout:
      // the next community is tried on timeouts only, starting from the one that answered last.
      const communities = agent.credentials.communities
      let lastFailure: SnmpFailure | undefined
      for (let i = 0; i < communities.length && !session; i++) {
        const index = (plan.preferredCommunity + i) % communities.length
        const candidate = open({ version: '2c', community: communities[index]! })
        try {
          values.push(...(await get(candidate, chunks[0]!)))
          session = candidate
          community = index
        } catch (error) {
          lastFailure = error as SnmpFailure
          if (lastFailure.reason !== 'timeout') throw lastFailure
        }
      }
      if (!session) throw lastFailure ?? new SnmpFailure('timeout', 'no community answered')
    }
    for (const chunk of chunks.slice(1)) values.push(...(await get(session, chunk)))
    return { ok: true, ...readPoll(plan.ifIndexes, values), community, requests, timeouts }
  } catch (error) {
    const failure = error instanceof SnmpFailure ? error : new SnmpFailure('socket', String(error))
    return { ok: false, reason: failure.reason, message: failure.message, requests, timeouts }
  } finally {
    for (const session of sessions) session.close()
  }
}
