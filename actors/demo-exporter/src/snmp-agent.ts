// One SNMP v2c agent per simulated exporter (net-snmp's agent, bound on the exporter's address):
// sysName, sysDescr, sysLocation and the IF-MIB columns the snmp-poller reads for each interface.
import { createRequire } from 'node:module'
import type { Socket } from 'node:dgram'
import type { ExporterConfig } from './config.js'

// net-snmp ships no typings; the few calls used here, typed.
interface NetSnmpMib {
  registerProvider(provider: object): void
  setScalarValue(name: string, value: unknown): void
  addTableRow(name: string, row: unknown[]): void
}
interface NetSnmpAgent {
  getMib(): NetSnmpMib
  getAuthorizer(): { addCommunity(community: string): void }
  close(callback?: () => void): void
  listener: { sockets: Record<string, Socket> }
}
interface NetSnmp {
  createAgent(options: object, callback: (error: Error | null, data: unknown) => void): NetSnmpAgent
  MibProviderType: { Scalar: number; Table: number }
  ObjectType: { OctetString: number; Integer: number; Gauge: number }
  MaxAccess: Record<string, number>
}

const snmp = createRequire(import.meta.url)('net-snmp') as NetSnmp

export interface AgentCounters {
  answered: (exporter: string) => void
  failed: (exporter: string, reason: string) => void
}

export interface DemoSnmpAgent {
  readonly port: number
  close(): Promise<void>
}

const readOnly = () => snmp.MaxAccess['read-only']!

/** Starts the agent; resolves once its socket is bound (rejects naming the address otherwise). */
export async function startSnmpAgent(exporter: ExporterConfig, port: number, community: string, counters: AgentCounters): Promise<DemoSnmpAgent> {
  const transport = exporter.address.includes(':') ? 'udp6' : 'udp4'
  let bound = false
  let bindError: ((error: Error) => void) | undefined
  const agent = snmp.createAgent({ port, address: exporter.address, transport, disableAuthorization: false }, (error) => {
    if (error === null) counters.answered(exporter.name)
    else if (!bound && bindError !== undefined) bindError(error)
    else counters.failed(exporter.name, /auth|community/i.test(error.message) ? 'auth' : 'request')
  })
  agent.getAuthorizer().addCommunity(community)
  const mib = agent.getMib()
  const scalar = (name: string, oid: string, value: string) => {
    mib.registerProvider({ name, type: snmp.MibProviderType.Scalar, oid, scalarType: snmp.ObjectType.OctetString, maxAccess: readOnly() })
    mib.setScalarValue(name, value)
  }
  scalar('sysDescr', '1.3.6.1.2.1.1.1', `flowbus demo router ${exporter.name} (${exporter.protocol})`)
  scalar('sysName', '1.3.6.1.2.1.1.5', exporter.name)
  scalar('sysLocation', '1.3.6.1.2.1.1.6', exporter.site)
  mib.registerProvider({
    name: 'ifTable',
    type: snmp.MibProviderType.Table,
    oid: '1.3.6.1.2.1.2.2.1',
    maxAccess: snmp.MaxAccess['not-accessible'],
    tableColumns: [
      { number: 1, name: 'ifIndex', type: snmp.ObjectType.Integer, maxAccess: readOnly() },
      { number: 2, name: 'ifDescr', type: snmp.ObjectType.OctetString, maxAccess: readOnly() },
      { number: 3, name: 'ifType', type: snmp.ObjectType.Integer, maxAccess: readOnly() },
      { number: 5, name: 'ifSpeed', type: snmp.ObjectType.Gauge, maxAccess: readOnly() },
      { number: 8, name: 'ifOperStatus', type: snmp.ObjectType.Integer, maxAccess: readOnly() },
    ],
    tableIndex: [{ columnName: 'ifIndex' }],
  })
  mib.registerProvider({
    name: 'ifXTable',
    type: snmp.MibProviderType.Table,
    oid: '1.3.6.1.2.1.31.1.1.1',
    maxAccess: snmp.MaxAccess['not-accessible'],
    tableColumns: [
      { number: 1, name: 'ifName', type: snmp.ObjectType.OctetString, maxAccess: readOnly() },
      { number: 15, name: 'ifHighSpeed', type: snmp.ObjectType.Gauge, maxAccess: readOnly() },
      { number: 18, name: 'ifAlias', type: snmp.ObjectType.OctetString, maxAccess: readOnly() },
    ],
    tableAugments: 'ifTable',
  })
  for (const iface of exporter.interfaces) {
    // ifType 6 ethernetCsmacd; ifSpeed saturates at 2^32-1 bit/s (IF-MIB), ifHighSpeed is in Mbit/s.
    mib.addTableRow('ifTable', [iface.ifIndex, iface.name, 6, Math.min(4294967295, iface.speed * 1_000_000), 1])
    mib.addTableRow('ifXTable', [iface.ifIndex, iface.name, iface.speed, iface.description])
  }
  const sockets = Object.values(agent.listener.sockets)
  try {
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve, reject) => {
            bindError = (error) => reject(new Error(`demo-exporter: SNMP agent of ${exporter.name} cannot listen on ${exporter.address}:${port}: ${error.message}`))
            socket.once('listening', () => resolve())
          }),
      ),
    )
  } catch (error) {
    agent.close()
    throw error
  }
  bound = true
  const boundPort = sockets[0]?.address().port ?? port
  return {
    port: boundPort,
    close: () => new Promise<void>((resolve) => agent.close(() => resolve())),
  }
}
