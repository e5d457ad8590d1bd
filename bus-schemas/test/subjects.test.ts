// The subject catalogue: names, kinds, derived transport names, codecs, keys, and generated files being current.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { packageDir, renderGenerated } from '../scripts/codegen.js'
import { FlowBatch } from '../src/flow-batch.js'
import { FlowProtocol } from '../src/generated/flowbus.js'
import { parseIP } from '../src/ip.js'
import { exporterPartitionKey, exporterStateKey, interfaceStateKey, templateStateKey } from '../src/keys.js'
import { kafkaTopic, natsBucketName, natsStreamName, natsSubject, preEncoded, type AnySubject } from '../src/subject.js'
import { catalogue, exporterOptions, flowsDecoded, flowsEnriched, flowsLive, flowsRaw, metadataExporters, metadataInterfaces, routingLookup, subjects, templates } from '../src/subjects.js'

describe('catalogue', () => {
  it('lists every subject once, with the kinds and message types of the design', () => {
    const summary = catalogue.map((s: AnySubject) => [s.name, s.kind, s.kind === 'request' ? `${s.request.typeName} → ${s.response.typeName}` : s.codec.typeName])
    expect(summary).toEqual([
      ['flows.raw', 'stream', 'flowbus.v1.RawPacketBatch'],
      ['flows.decoded', 'stream', 'flowbus.v1.FlowBatch'],
      ['flows.enriched', 'stream', 'flowbus.v1.FlowBatch'],
      ['counters.interfaces', 'stream', 'flowbus.v1.InterfaceCountersBatch'],
      ['templates', 'state', 'flowbus.v1.TemplateRecord'],
      ['exporter.options', 'state', 'flowbus.v1.ExporterOptionsRecord'],
      ['metadata.interfaces', 'state', 'flowbus.v1.InterfaceInfo'],
      ['metadata.exporters', 'state', 'flowbus.v1.ExporterInfo'],
      ['writer.batches', 'state', 'flowbus.v1.WriterBatchRecord'],
      ['metadata.requests', 'broadcast', 'flowbus.v1.MetadataRequestBatch'],
      ['routing.lookup', 'request', 'flowbus.v1.RoutingLookupRequest → flowbus.v1.RoutingLookupResponse'],
      ['flows.live', 'broadcast', 'flowbus.v1.FlowBatch'],
    ])
    expect(Object.keys(subjects).length).toBe(catalogue.length)
    for (const s of [flowsRaw, flowsDecoded, flowsEnriched]) {
      expect(s.partitionKey).toBe('exporter address')
      expect(s.retention).toBe('flows')
    }
    for (const s of catalogue) expect(s.version).toBe(1)
  })

  it('derives the transport names', () => {
    expect(natsSubject(flowsDecoded, 3)).toBe('flows.decoded.v1.3')
    expect(natsStreamName(flowsEnriched)).toBe('FLOWBUS_FLOWS_ENRICHED_V1')
    expect(kafkaTopic(flowsRaw)).toBe('flowbus-flows-raw-v1')
    expect(natsBucketName(metadataInterfaces)).toBe('flowbus_metadata_interfaces_v1')
    expect(kafkaTopic(templates)).toBe('flowbus-templates-v1')
    expect(natsBucketName(exporterOptions)).toBe('flowbus_exporter_options_v1')
  })

  it('each codec roundtrips a message through the catalogue entry', () => {
    const batch = new FlowBatch()
    batch.u32('SrcAS')[batch.appendRow()] = 65000
    expect(flowsLive.codec.decode(flowsLive.codec.encode(batch)).getNumber('SrcAS', 0)).toBe(65000)
    const raw = { receiver: 'r', packets: [{ exporterAddress: parseIP('192.0.2.1'), exporterPort: 2055, receivedNs: 1n, protocol: FlowProtocol.NETFLOW_V9, payload: Uint8Array.of(0, 9) }] }
    expect(flowsRaw.codec.decode(flowsRaw.codec.encode(raw)).packets[0]!.protocol).toBe(FlowProtocol.NETFLOW_V9)
    const exporter = { address: parseIP('192.0.2.1'), name: 'r1', group: '', role: '', site: '', region: '', tenant: '', sysName: '', updatedUnixMs: 0 }
    expect(metadataExporters.codec.decode(metadataExporters.codec.encode(exporter))).toEqual(exporter)
    const options = {
      exporterAddress: parseIP('192.0.2.1'),
      exporterPort: 4739,
      protocol: FlowProtocol.IPFIX,
      observationDomainId: 7,
      samplingRate: 100,
      samplers: [{ id: 2 ** 40, rate: 1000 }],
      interfaces: [{ ifIndex: 3, name: 'et-0/0/1', description: 'transit' }],
      vrfs: [{ vrfId: 5, name: 'blue' }],
      systemInitUnixMs: 1_700_000_000_000,
      updatedUnixMs: 1_700_000_001_000,
    }
    expect(exporterOptions.codec.decode(exporterOptions.codec.encode(options))).toEqual(options)
    const response = { routes: [], distinctRoutes: [], routeIndex: [] }
    expect(routingLookup.response.decode(routingLookup.response.encode(response))).toEqual(response)
  })
})

describe('keys', () => {
  it('are valid NATS KV keys for IPv4 and IPv6 exporters', () => {
    const v4 = parseIP('192.0.2.1')
    const v6 = parseIP('2001:db8::1')
    expect(exporterPartitionKey(v6)).toBe('2001:db8::1')
    expect(exporterStateKey(v4)).toBe('192.0.2.1')
    expect(exporterStateKey(v6)).toBe('2001_db8__1')
    expect(interfaceStateKey(v6, 17)).toBe('2001_db8__1.17')
    const key = templateStateKey({ exporterAddress: v4, exporterPort: 4739, protocol: FlowProtocol.IPFIX, observationDomainId: 0, templateId: 256 })
    expect(key).toBe('192.0.2.1.4739.3.0.256')
    for (const k of [exporterStateKey(v6), interfaceStateKey(v6, 1), key]) expect(k).toMatch(/^[-/_=.a-zA-Z0-9]+$/)
  })
})

describe('generated files', () => {
  it('are what scripts/generate.mjs would write (run it after changing flow-columns.ts or a .proto)', () => {
    for (const [path, text] of renderGenerated()) {
      expect(readFileSync(join(packageDir, path), 'utf8'), `bus-schemas/${path} is stale: node bus-schemas/scripts/generate.mjs`).toBe(text)
    }
  })
})

describe('preEncoded', () => {
  it('is the same stream on every transport, with bytes passing through its codec untouched', () => {
    const encoded = preEncoded(flowsRaw)
    expect([natsStreamName(encoded), kafkaTopic(encoded), natsSubject(encoded, 3)]).toEqual([
      natsStreamName(flowsRaw),
      kafkaTopic(flowsRaw),
      natsSubject(flowsRaw, 3),
    ])
    expect([encoded.partitionKey, encoded.retention, encoded.codec.typeName]).toEqual([flowsRaw.partitionKey, flowsRaw.retention, flowsRaw.codec.typeName])
    const bytes = flowsRaw.codec.encode({ receiver: 'r', packets: [] })
    expect(encoded.codec.encode(bytes)).toBe(bytes)
    expect(encoded.codec.decode(bytes)).toBe(bytes)
  })
})
