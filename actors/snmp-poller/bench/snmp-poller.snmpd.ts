// Benchmark of polls against a real snmpd on loopback (the harness's): polls per second of sysName
// and every interface of this machine, v2c and v3 (SHA/AES), one at a time and 8 at a time.
import { setTimeout as sleep } from 'node:timers/promises'
import { startSnmpd } from '../../../test/src/harness/snmpd.js'
import { type AgentSettings } from '../src/agents.js'
import { netSnmpClient } from '../src/net-snmp.js'
import { pollExporter } from '../src/poll.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const user = { name: 'bench', auth: 'SHA' as const, authPassword: 'bench-auth-secret', priv: 'AES' as const, privPassword: 'bench-priv-secret' }
const snmpd = await startSnmpd({ communities: ['bench'], users: [user] })
try {
  const walked = await snmpd.walk({ community: 'bench' }, '1.3.6.1.2.1.2.2.1.1')
  const ifIndexes = [...walked.values()].map((v) => (v.kind === 'number' ? v.value : 0))
  const agents: Record<string, AgentSettings> = {
    v2c: { address: '127.0.0.1', port: snmpd.port, subnet: '127.0.0.1/32', credentials: { version: '2c', communities: ['bench'] } },
    v3: {
      address: '127.0.0.1',
      port: snmpd.port,
      subnet: '127.0.0.1/32',
      credentials: { version: '3', user: { name: user.name, authProtocol: 'sha', authPassword: user.authPassword, privProtocol: 'aes', privPassword: user.privPassword } },
    },
  }
  for (const [version, agent] of Object.entries(agents)) {
    for (const parallel of [1, 8]) {
      let polls = 0
      const deadline = Date.now() + SECONDS * 1000
      const start = process.hrtime.bigint()
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          while (Date.now() < deadline) {
            const result = await pollExporter(netSnmpClient, { agent, ifIndexes, preferredCommunity: 0 }, { timeoutMs: 2000, retries: 1, maxOidsPerRequest: 40 })
            if (!result.ok) throw new Error(`poll failed: ${result.message}`)
            polls++
          }
        }),
      )
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      console.log(`bench snmp-poller.snmpd.${version}-x${parallel} ${(polls / seconds).toFixed(0)} polls/s (${ifIndexes.length} interfaces each)`)
      await sleep(100)
    }
  }
} finally {
  await snmpd.stop()
}
