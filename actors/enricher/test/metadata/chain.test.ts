// The metadata chain alone: providers merged field by field in priority order, defaults last,
// cached answers dropped when a provider changes, and coalesced, rate-limited requests.
import { FlowBatch, InterfaceBoundary, flowBatchToRows, parseIP } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { MetadataChain, type UnknownEntity } from '../../src/metadata/chain.js'
import { BucketProvider, MetadataRequests } from '../../src/metadata/snmp.js'
import { staticTable } from '../../src/metadata/static.js'
import { TableProvider } from '../../src/metadata/table.js'
import { decodedBatch } from '../flows.js'

const EXPORTER = parseIP('192.0.2.1')

const staticProvider = () =>
  new TableProvider(
    'static',
    staticTable([
      { subnet: '192.0.2.0/24', site: 'par1', interfaces: [{ ifIndex: 1, provider: 'cogent' }], defaultInterface: { connectivity: 'core' } },
      { subnet: '192.0.2.1/32', role: 'edge', interfaces: [{ ifIndex: 1, connectivity: 'transit' }] },
    ]),
  )

const snmpWith = (name: string) => {
  const snmp = new BucketProvider()
  snmp.setExporter('192.0.2.1', { address: EXPORTER, name: '', sysName: name, group: '', role: 'snmp-role', site: '', region: '', tenant: '', updatedUnixMs: 0 })
  snmp.setInterface('192.0.2.1.1', {
    exporterAddress: EXPORTER,
    ifIndex: 1,
    name: 'xe-0/0/1',
    description: 'Transit: Cogent',
    speed: 10000,
    provider: 'other',
    connectivity: '',
    boundary: InterfaceBoundary.EXTERNAL,
    updatedUnixMs: 0,
  })
  return snmp
}

const enrich = (chain: MetadataChain, batch: FlowBatch) => {
  const unknown: UnknownEntity[] = []
  const drop = new Uint8Array(batch.count)
  const tally = chain.apply(batch, batch.count, EXPORTER, drop, (e) => unknown.push(e))
  return { rows: flowBatchToRows(batch), unknown, tally, drop }
}

describe('metadata chain', () => {
  it('takes each field from the first provider that has it, then the defaults', () => {
    const chain = new MetadataChain([staticProvider(), snmpWith('edge1')], { exporter: { tenant: 'acme', role: 'ignored' }, iface: { speed: 1 } }, 'pass')
    const { rows, unknown } = enrich(chain, decodedBatch('192.0.2.1', 0, 3, { ifIndexes: [1, 2, 3] }))
    // Static first: its role and site win over SNMP's role; SNMP gives the name; defaults the tenant.
    expect(rows[0]).toMatchObject({ ExporterName: 'edge1', ExporterRole: 'edge', ExporterSite: 'par1', ExporterTenant: 'acme' })
    // ifIndex 1: static provider and connectivity (the /32 listing beats the /24 default), SNMP the rest.
    expect(rows.find((r) => r.InIf === 1)).toMatchObject({
      InIfName: 'xe-0/0/1',
      InIfDescription: 'Transit: Cogent',
      InIfProvider: 'cogent',
      InIfConnectivity: 'transit',
      InIfSpeed: 10000,
      InIfBoundary: 1,
    })
    // ifIndex 2: only the /24 default and the configured default speed; no name: named by its ifIndex.
    expect(rows.find((r) => r.InIf === 2)).toMatchObject({ InIfName: '2', InIfConnectivity: 'core', InIfSpeed: 1 })
    expect(unknown.map((e) => e.ifIndex).sort()).toEqual([2, 3])
  })

  it('follows the configured provider order and drops cached answers when a provider changes', () => {
    const snmp = snmpWith('edge1')
    const chain = new MetadataChain([snmp, staticProvider()], { exporter: {}, iface: {} }, 'pass')
    expect(enrich(chain, decodedBatch('192.0.2.1', 0, 1)).rows[0]).toMatchObject({ ExporterName: 'edge1', ExporterRole: 'snmp-role', InIfProvider: 'other' })
    snmp.setExporter('192.0.2.1', { address: EXPORTER, name: 'renamed', sysName: '', group: '', role: '', site: '', region: '', tenant: '', updatedUnixMs: 0 })
    expect(enrich(chain, decodedBatch('192.0.2.1', 0, 1)).rows[0]).toMatchObject({ ExporterName: 'renamed', ExporterRole: 'edge' })
  })

  it('keeps interface names the flow carries when no provider names the interface', () => {
    const chain = new MetadataChain([], { exporter: {}, iface: {} }, 'pass')
    const batch = decodedBatch('192.0.2.1', 0, 2, { ifIndexes: [7] })
    batch.setString('InIfName', 0, 'from-options')
    const { rows, tally } = enrich(chain, batch)
    expect(rows[0]).toMatchObject({ InIfName: 'from-options', OutIfName: '7', ExporterName: '192.0.2.1' })
    expect(rows[1]).toMatchObject({ InIfName: '7' })
    expect(tally.unknownExporterFlows).toBe(2)
  })

  it('marks rows for dropping under the drop policy, and IPv6 exporters work alike', () => {
    const v6 = parseIP('2001:db8::1')
    const chain = new MetadataChain([new TableProvider('static', staticTable([{ subnet: '2001:db8::/64', name: 'v6', interfaces: [{ ifIndex: 1, name: 'a' }, { ifIndex: 2, name: 'b' }] }]))], { exporter: {}, iface: {} }, 'drop')
    const batch = decodedBatch('2001:db8::1', 0, 6, { ifIndexes: [1, 2, 3] })
    const drop = new Uint8Array(6)
    const tally = chain.apply(batch, 6, v6, drop, () => {})
    // Rows with ifIndex 3 on either side go: ids 1 (in 2, out 3), 2 (in 3, out 1), 4, 5.
    expect(Array.from(drop)).toEqual([0, 1, 1, 0, 1, 1])
    expect(tally.droppedFlows).toBe(4)
    expect(flowBatchToRows(batch)[0]).toMatchObject({ ExporterName: 'v6', InIfName: 'a', OutIfName: 'b' })
  })
})

describe('metadata columns', () => {
  it('adds a column only when a row of that side gets a value, per exporter run in a mixed batch', () => {
    const table = staticTable([
      { subnet: '192.0.2.1/32', name: 'edge', interfaces: [{ ifIndex: 1, name: 'up', connectivity: 'transit' }, { ifIndex: 2, name: 'down' }] },
      { subnet: '192.0.2.2/32', name: 'core', site: 'par1', interfaces: [{ ifIndex: 2, name: 'x' }] },
    ])
    const chain = new MetadataChain([new TableProvider('static', table)], { exporter: {}, iface: {} }, 'drop')
    const batch = new FlowBatch(5)
    const exporters = ['192.0.2.1', '192.0.2.1', '198.51.100.9', '192.0.2.2', '192.0.2.1']
    exporters.forEach((e, r) => {
      batch.appendRow()
      batch.setIP('ExporterAddress', r, parseIP(e))
      batch.u32('InIf')[r] = r === 3 ? 2 : 1
      batch.u32('OutIf')[r] = 2
    })
    const { rows, drop, tally } = enrich(chain, batch)
    expect(Array.from(drop)).toEqual([0, 0, 1, 0, 0])
    expect(tally).toEqual({ unknownExporterFlows: 1, unknownInterfaceFlows: 0, droppedFlows: 1 })
    expect(rows.map((r) => [r.ExporterName, r.ExporterSite, r.InIfName, r.InIfConnectivity, r.OutIfName])).toEqual([
      ['edge', '', 'up', 'transit', 'down'],
      ['edge', '', 'up', 'transit', 'down'],
      ['', '', '', '', ''],
      ['core', 'par1', 'x', '', 'x'],
      ['edge', '', 'up', 'transit', 'down'],
    ])
    // No out interface has a connectivity, no interface a description: those columns stay absent.
    expect([batch.has('InIfConnectivity'), batch.has('OutIfConnectivity'), batch.has('InIfDescription'), batch.has('ExporterSite')]).toEqual([true, false, false, true])
  })

  it('under pass, an unknown interface keeps the name and description the flow carries, per side', () => {
    const chain = new MetadataChain([new TableProvider('static', staticTable([{ subnet: '192.0.2.0/24', name: 'e', interfaces: [{ ifIndex: 1, name: 'one', description: 'd1' }] }]))], { exporter: {}, iface: {} }, 'pass')
    const batch = decodedBatch('192.0.2.1', 0, 3, { ifIndexes: [1, 9, 1] })
    batch.setString('InIfName', 1, 'carried')
    batch.setString('InIfDescription', 1, 'own')
    batch.setString('OutIfDescription', 0, 'own-out')
    const { rows, tally } = enrich(chain, batch)
    expect(rows.map((r) => [r.InIf, r.InIfName, r.InIfDescription, r.OutIf, r.OutIfName, r.OutIfDescription])).toEqual([
      [1, 'one', 'd1', 9, '9', ''],
      [9, 'carried', 'own', 1, 'one', 'd1'],
      [1, 'one', 'd1', 1, 'one', 'd1'],
    ])
    // Row 0 names its out interface by ifIndex (the flow carries a description, not a name):
    // unknown. Row 1 carries its in interface's name.
    expect(tally.unknownInterfaceFlows).toBe(1)
  })
})

describe('metadata requests', () => {
  it('coalesces what was noted into one message and does not ask again before repeatMs', () => {
    const requests = new MetadataRequests(60_000)
    requests.note(EXPORTER, '192.0.2.1', 0, 0)
    requests.note(EXPORTER, '192.0.2.1', 5, 0)
    requests.note(EXPORTER, '192.0.2.1', 3, 0)
    requests.note(EXPORTER, '192.0.2.1', 5, 10)
    expect(requests.take(10)).toEqual({ requests: [{ exporterAddress: EXPORTER, ifIndexes: [3, 5] }] })
    expect(requests.take(20)).toBeUndefined()
    requests.note(EXPORTER, '192.0.2.1', 5, 30_000)
    expect(requests.take(30_000)).toBeUndefined()
    requests.note(EXPORTER, '192.0.2.1', 5, 60_000)
    expect(requests.take(60_000)).toEqual({ requests: [{ exporterAddress: EXPORTER, ifIndexes: [5] }] })
  })
})
