// The poll logic with a scripted agent, for answers a real snmpd on loopback will not give:
// tooBig on large GETs, agent errors, and which community each GET used.
import { describe, expect, it } from 'vitest'
import type { AgentSettings } from '../src/agents.js'
import { type SnmpClient, SnmpFailure, type SnmpTarget, type SnmpValue } from '../src/net-snmp.js'
import { OID, pollExporter } from '../src/poll.js'

const bytes = (text: string): SnmpValue => ({ kind: 'bytes', bytes: new TextEncoder().encode(text) })

/** An agent that knows interfaces 1..8 and refuses GETs of more than `maxOids` OIDs with tooBig. */
const scriptedAgent = (maxOids: number, community = 'right') => {
  const gets: { community: string; oids: number }[] = []
  const value = (oid: string): SnmpValue => {
    if (oid === OID.sysName) return bytes('edge1')
    const ifIndex = Number(oid.slice(oid.lastIndexOf('.') + 1))
    if (ifIndex > 8) return { kind: 'missing' }
    if (oid.startsWith(`${OID.ifHighSpeed}.`)) return { kind: 'number', value: 100 * ifIndex }
    if (oid.startsWith(`${OID.ifAlias}.`)) return bytes(ifIndex % 2 === 0 ? `alias ${ifIndex}` : '')
    if (oid.startsWith(`${OID.ifName}.`)) return bytes(`ge-0/0/${ifIndex}`)
    return bytes(`GigabitEthernet ${ifIndex}`)
  }
  const client: SnmpClient = {
    open: (target: SnmpTarget) => ({
      get: async (oids) => {
        const used = target.credentials.version === '2c' ? target.credentials.community : 'v3'
        gets.push({ community: used, oids: oids.length })
        if (used !== community && used !== 'v3') throw new SnmpFailure('timeout', 'no answer')
        if (oids.length > maxOids) throw new SnmpFailure('too-big', 'tooBig')
        return oids.map(value)
      },
      close: () => {},
    }),
  }
  return { client, gets }
}

const agent: AgentSettings = { address: '192.0.2.1', port: 161, subnet: '192.0.2.0/24', credentials: { version: '2c', communities: ['wrong', 'right'] } }

describe('pollExporter', () => {
  it('halves GETs the agent finds too big until they fit, keeping values in order', async () => {
    const { client, gets } = scriptedAgent(7)
    const result = await pollExporter(client, { agent, ifIndexes: [1, 2, 3, 4, 9], preferredCommunity: 1 }, { timeoutMs: 100, retries: 0, maxOidsPerRequest: 40 })
    if (!result.ok) throw new Error(result.message)
    // 21 OIDs → 11 + 10 → 6 + 5 + 5 + 5.
    expect(gets.map((g) => g.oids)).toEqual([21, 11, 6, 5, 10, 5, 5])
    expect(result.requests).toBe(7)
    expect(result.sysName).toBe('edge1')
    expect(result.interfaces.get(2)).toEqual({ ifName: 'ge-0/0/2', ifDescr: 'GigabitEthernet 2', ifAlias: 'alias 2', ifHighSpeed: 200 })
    expect(result.interfaces.get(4)?.ifHighSpeed).toBe(400)
    expect(result.interfaces.get(9)).toBeUndefined()
  })

  it('tries communities from the remembered one, on timeouts only, and uses the one that answered for the rest', async () => {
    const { client, gets } = scriptedAgent(100)
    const result = await pollExporter(client, { agent, ifIndexes: [1, 2, 3], preferredCommunity: 0 }, { timeoutMs: 100, retries: 0, maxOidsPerRequest: 5 })
    expect(result).toMatchObject({ ok: true, community: 1, timeouts: 1 })
    expect(gets.map((g) => g.community)).toEqual(['wrong', 'right', 'right', 'right'])
  })

  it('a single OID still too big, or an agent error, fails the poll with that reason', async () => {
    const { client } = scriptedAgent(0)
    expect(await pollExporter(client, { agent, ifIndexes: [], preferredCommunity: 1 }, { timeoutMs: 100, retries: 0, maxOidsPerRequest: 40 })).toMatchObject({
      ok: false,
      reason: 'too-big',
    })
    const failing: SnmpClient = {
      open: () => ({
        get: async () => {
          throw new SnmpFailure('agent-error', 'genErr')
        },
        close: () => {},
      }),
    }
    // Not a timeout: the next community is not tried.
    expect(await pollExporter(failing, { agent, ifIndexes: [1], preferredCommunity: 0 }, { timeoutMs: 100, retries: 0, maxOidsPerRequest: 40 })).toMatchObject({
      ok: false,
      reason: 'agent-error',
      requests: 1,
    })
  })
})
