// One poll against a real agent (Debian's snmpd answering this machine's IF-MIB): every field the
// poller reads must equal what snmpget reports for the same OIDs, over v2c and v3.
import { describe, expect, it } from 'vitest'
import { serviceOrSkip } from '../../../test/src/harness/process.js'
import { type ReferenceValue, type Snmpd, type SnmpCredentials, type SnmpdUser, ipv6LoopbackAvailable, startSnmpd } from '../../../test/src/harness/snmpd.js'
import type { AgentSettings } from '../src/agents.js'
import { type AuthProtocol, type PrivProtocol, netSnmpClient } from '../src/net-snmp.js'
import { OID, type PollResult, pollExporter, pollOids } from '../src/poll.js'

const users: SnmpdUser[] = [
  { name: 'flowbus-sha-aes', auth: 'SHA', authPassword: 'sha-auth-secret', priv: 'AES', privPassword: 'aes-priv-secret' },
  { name: 'flowbus-md5-des', auth: 'MD5', authPassword: 'md5-auth-secret', priv: 'DES', privPassword: 'des-priv-secret' },
  { name: 'flowbus-sha512-aes', auth: 'SHA-512', authPassword: 'sha512-auth-secret', priv: 'AES', privPassword: 'aes-priv-secret' },
  { name: 'flowbus-sha256-auth', auth: 'SHA-256', authPassword: 'sha256-auth-secret' },
]
const authOf: Record<SnmpdUser['auth'], AuthProtocol> = {
  MD5: 'md5',
  SHA: 'sha',
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
}
const privOf: Record<NonNullable<SnmpdUser['priv']>, PrivProtocol> = { DES: 'des', AES: 'aes' }

// ifAlias is empty on Linux until someone sets it: set one (in the agent, not the kernel) so the
// description's preference for ifAlias is checked against a real value, with non-ASCII text.
const ALIAS = 'transit: AS64500 "uplink" – é'

const ipv6 = await ipv6LoopbackAvailable()
if (!ipv6) console.warn('skipping the IPv6 agent test: no ::1 on this machine')

interface Agent {
  snmpd: Snmpd
  ifIndexes: number[]
  aliased: number
}

const agent = serviceOrSkip<Agent & { stop(): Promise<void> }>('snmpd', async () => {
  const snmpd = await startSnmpd({ communities: ['flowbus-ro'], writeCommunity: 'flowbus-rw', users, ipv6 })
  try {
    const walked = await snmpd.walk({ community: 'flowbus-ro' }, '1.3.6.1.2.1.2.2.1.1')
    const ifIndexes = [...walked.values()].map((v) => (v.kind === 'number' ? v.value : NaN))
    if (ifIndexes.length === 0 || ifIndexes.some(Number.isNaN)) throw new Error(`unexpected ifIndex walk: ${JSON.stringify([...walked])}`)
    const aliased = ifIndexes[ifIndexes.length - 1]!
    await snmpd.setString(`${OID.ifAlias}.${aliased}`, ALIAS)
    return { snmpd, ifIndexes, aliased, stop: () => snmpd.stop() }
  } catch (error) {
    await snmpd.stop()
    throw error
  }
})

const settings = (snmpd: Snmpd, credentials: AgentSettings['credentials'], port = snmpd.port): AgentSettings => ({
  address: '127.0.0.1',
  port,
  credentials,
  subnet: '127.0.0.1/32',
})

const hex = (text: string) => Buffer.from(text, 'utf8').toString('hex')
const refText = (v: ReferenceValue | undefined) => (v?.kind === 'bytes' ? v.hex : `not a string: ${JSON.stringify(v)}`)
const refNumber = (v: ReferenceValue | undefined) => (v?.kind === 'number' ? v.value : `not a number: ${JSON.stringify(v)}`)

/** Field by field, the poll against snmpget of the same OIDs with the same credentials. */
const expectSameAsSnmpget = async (a: Agent, credentials: SnmpCredentials, result: PollResult) => {
  if (!result.ok) throw new Error(`poll failed: ${result.reason}: ${result.message}`)
  const reference = await a.snmpd.get(credentials, pollOids(a.ifIndexes))
  expect(hex(result.sysName)).toBe(refText(reference.get(OID.sysName)))
  expect(result.sysName).not.toBe('')
  expect([...result.interfaces.keys()]).toEqual(a.ifIndexes)
  for (const ifIndex of a.ifIndexes) {
    const polled = result.interfaces.get(ifIndex)
    expect(polled, `ifIndex ${ifIndex}`).toBeDefined()
    expect({ ifIndex, ifName: hex(polled!.ifName), ifDescr: hex(polled!.ifDescr), ifAlias: hex(polled!.ifAlias), ifHighSpeed: polled!.ifHighSpeed }).toEqual({
      ifIndex,
      ifName: refText(reference.get(`${OID.ifName}.${ifIndex}`)),
      ifDescr: refText(reference.get(`${OID.ifDescr}.${ifIndex}`)),
      ifAlias: refText(reference.get(`${OID.ifAlias}.${ifIndex}`)),
      ifHighSpeed: refNumber(reference.get(`${OID.ifHighSpeed}.${ifIndex}`)),
    })
  }
  expect(result.interfaces.get(a.aliased)?.ifAlias).toBe(ALIAS)
  expect(result.interfaces.get(1)?.ifName).toBe('lo')
}

describe('polling a real snmpd', () => {
  it('v2c: a wrong community times out, the next one answers and is remembered', async () => {
    const a = agent.get()
    const plan = { agent: settings(a.snmpd, { version: '2c', communities: ['not-this-one', 'flowbus-ro'] }), ifIndexes: a.ifIndexes, preferredCommunity: 0 }
    const first = await pollExporter(netSnmpClient, plan, { timeoutMs: 300, retries: 0, maxOidsPerRequest: 40 })
    expect(first).toMatchObject({ ok: true, community: 1, timeouts: 1, requests: 2 })
    await expectSameAsSnmpget(a, { community: 'flowbus-ro' }, first)

    // The community that answered goes first next time: no timeout.
    const again = await pollExporter(netSnmpClient, { ...plan, preferredCommunity: 1 }, { timeoutMs: 300, retries: 0, maxOidsPerRequest: 40 })
    expect(again).toMatchObject({ ok: true, community: 1, timeouts: 0, requests: 1 })
  })

  it.skipIf(!ipv6)('v2c over IPv6 (udp6 socket to [::1])', async () => {
    const a = agent.get()
    const plan = { agent: { ...settings(a.snmpd, { version: '2c', communities: ['flowbus-ro'] }), address: '::1' }, ifIndexes: a.ifIndexes, preferredCommunity: 0 }
    await expectSameAsSnmpget(a, { community: 'flowbus-ro' }, await pollExporter(netSnmpClient, plan, { timeoutMs: 2000, retries: 1, maxOidsPerRequest: 40 }))
  })

  it('v2c: many interfaces are split over several GETs with the same answers', async () => {
    const a = agent.get()
    const plan = { agent: settings(a.snmpd, { version: '2c', communities: ['flowbus-ro'] }), ifIndexes: a.ifIndexes, preferredCommunity: 0 }
    const result = await pollExporter(netSnmpClient, plan, { timeoutMs: 2000, retries: 1, maxOidsPerRequest: 3 })
    expect(result.requests).toBe(Math.ceil((1 + 4 * a.ifIndexes.length) / 3))
    await expectSameAsSnmpget(a, { community: 'flowbus-ro' }, result)
  })

  it('v2c: an ifIndex the agent does not have is reported absent, the others are read', async () => {
    const a = agent.get()
    const plan = { agent: settings(a.snmpd, { version: '2c', communities: ['flowbus-ro'] }), ifIndexes: [1, 987654], preferredCommunity: 0 }
    const result = await pollExporter(netSnmpClient, plan, { timeoutMs: 2000, retries: 1, maxOidsPerRequest: 40 })
    if (!result.ok) throw new Error(result.message)
    expect(result.interfaces.get(1)?.ifName).toBe('lo')
    expect(result.interfaces.has(987654)).toBe(true)
    expect(result.interfaces.get(987654)).toBeUndefined()
  })

  for (const user of users) {
    it(`v3 ${user.auth}${user.priv ? `/${user.priv}` : ' without privacy'}: the same values as snmpget with that user`, async () => {
      const a = agent.get()
      const credentials = {
        version: '3' as const,
        user: {
          name: user.name,
          authProtocol: authOf[user.auth],
          authPassword: user.authPassword,
          privProtocol: user.priv ? privOf[user.priv] : ('none' as const),
          privPassword: user.privPassword ?? '',
        },
      }
      const result = await pollExporter(netSnmpClient, { agent: settings(a.snmpd, credentials), ifIndexes: a.ifIndexes, preferredCommunity: 0 }, {
        timeoutMs: 2000,
        retries: 1,
        maxOidsPerRequest: 40,
      })
      await expectSameAsSnmpget(a, { user }, result)
    })
  }

  it('v3 with a wrong auth password or an unknown user fails as auth (the agent reports it), never a crash', async () => {
    const a = agent.get()
    for (const [name, authPassword] of [
      [users[0]!.name, 'wrong-password'],
      ['nobody-here', 'sha-auth-secret'],
    ] as const) {
      const credentials = {
        version: '3' as const,
        user: { name, authProtocol: 'sha' as const, authPassword, privProtocol: 'aes' as const, privPassword: 'aes-priv-secret' },
      }
      const result = await pollExporter(netSnmpClient, { agent: settings(a.snmpd, credentials), ifIndexes: [1], preferredCommunity: 0 }, {
        timeoutMs: 2000,
        retries: 0,
        maxOidsPerRequest: 40,
      })
      expect(result).toMatchObject({ ok: false, reason: 'auth', timeouts: 0 })
    }
  })

  it('a closed port times out after the retries', async () => {
    const a = agent.get()
    const { freeUdpPort } = await import('../../../test/src/harness/snmpd.js')
    const closed = await freeUdpPort()
    const plan = { agent: settings(a.snmpd, { version: '2c', communities: ['flowbus-ro', 'other'] }, closed), ifIndexes: [1], preferredCommunity: 0 }
    const result = await pollExporter(netSnmpClient, plan, { timeoutMs: 200, retries: 1, maxOidsPerRequest: 40 })
    expect(result).toMatchObject({ ok: false, reason: 'timeout', requests: 2, timeouts: 2 })
  })
})
