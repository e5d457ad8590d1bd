// Which agent settings apply to an exporter: the configured entry with the longest subnet that
// contains the exporter address, and the address and port to poll (agentAddress may override it).
import { formatIP, parseIP } from '@flowbus/bus-schemas'
import { PrefixTrie, parsePrefix } from '@flowbus/runtime'
import type { AgentConfig } from './config.js'
import type { SnmpV3User } from './net-snmp.js'

/** How to poll one exporter: where, and with which credentials (v2c communities in order, or a v3 user). */
export interface AgentSettings {
  /** Address to send requests to, in text form (IPv4-mapped addresses written as IPv4). */
  readonly address: string
  readonly port: number
  readonly credentials: { readonly version: '2c'; readonly communities: readonly string[] } | { readonly version: '3'; readonly user: SnmpV3User }
  /** The subnet of the entry that matched, for logs. */
  readonly subnet: string
}

/** The configured agents by subnet; a lookup finds the longest subnet containing the exporter. */
export class AgentTable {
  private readonly subnets = new PrefixTrie<AgentConfig>(16)

  constructor(agents: readonly AgentConfig[]) {
    for (const agent of agents) {
      const { address, prefixLength } = parsePrefix(agent.subnet)
      // The first entry for a subnet wins, as an operator reading the list top-down expects.
      if (this.subnets.get(address, prefixLength) === undefined) this.subnets.insert(address, prefixLength, agent)
    }
  }

  /** Settings for the exporter at `address` (16 bytes), or undefined when no subnet contains it. */
  resolve(address: Uint8Array): AgentSettings | undefined {
    const agent = this.subnets.lookup(address)
    if (!agent) return undefined
    return {
      address: formatIP(agent.agentAddress === undefined ? address : parseIP(agent.agentAddress)),
      port: agent.port,
      credentials:
        agent.version === '3' && agent.user
          ? { version: '3', user: agent.user }
          : { version: '2c', communities: agent.communities },
      subnet: agent.subnet,
    }
  }
}
