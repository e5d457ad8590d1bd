// Metadata, template and routing messages through the reflection codecs, against protobufjs on the .proto.

import { describe, expect, it } from 'vitest'
import type { ExporterInfo, InterfaceInfo, RoutingLookupRequest, RoutingLookupResponse, TemplateRecord } from '../src/generated/flowbus.js'
import { FlowProtocol, InterfaceBoundary } from '../src/generated/flowbus.js'
import { parseIP } from '../src/ip.js'
import {
  exporterInfoCodec,
  interfaceInfoCodec,
  routingLookupRequestCodec,
  routingLookupResponseCodec,
  templateRecordCodec,
} from '../src/proto-codecs.js'
import type { Codec } from '../src/subject.js'
import { loadReferenceRoot } from './fixtures/reference.js'

const root = loadReferenceRoot()

const exporter: ExporterInfo = {
  address: parseIP('192.0.2.1'),
  name: 'edge1.par',
  group: 'edge',
  role: 'peering',
  site: 'par1',
  region: 'eu-west',
  tenant: '',
  sysName: 'edge1.par.example.net',
  updatedUnixMs: 1_760_000_000_123,
}
const iface: InterfaceInfo = {
  exporterAddress: parseIP('2001:db8::1'),
  ifIndex: 4294967295,
  name: 'et-0/0/1',
  description: 'Transit: Cogent [AS174]',
  speed: 400_000,
  provider: 'cogent',
  connectivity: 'transit',
  boundary: InterfaceBoundary.EXTERNAL,
  updatedUnixMs: 2 ** 53 - 1,
}
const template: TemplateRecord = {
  exporterAddress: parseIP('192.0.2.1'),
  exporterPort: 4739,
  protocol: FlowProtocol.IPFIX,
  observationDomainId: 7,
  templateId: 256,
  options: true,
  scopeFieldCount: 1,
  fields: [
    { enterpriseNumber: 0, type: 149, length: 4 },
    { enterpriseNumber: 29305, type: 1, length: 65535 },
  ],
  lastSeenUnixMs: 1_760_000_000_000,
}
const request: RoutingLookupRequest = {
  exporterAddress: parseIP('192.0.2.1'),
  addresses: Uint8Array.from([...parseIP('198.51.100.1'), ...parseIP('2001:db8::99')]),
  nextHops: new Uint8Array(0),
  sharedRoutes: true,
}
const response: RoutingLookupResponse = {
  routes: [
    { found: true, asn: 64500, asPath: [174, 64500], communities: [65000 * 65536 + 1], largeCommunities: [4200000000, 1, 2], prefixLength: 24, nextHop: parseIP('192.0.2.254') },
    { found: false, asn: 0, asPath: [], communities: [], largeCommunities: [], prefixLength: 0, nextHop: new Uint8Array(0) },
  ],
  distinctRoutes: [
    { found: true, asn: 64501, asPath: [3356, 64501], communities: [], largeCommunities: [], prefixLength: 22, nextHop: new Uint8Array(0) },
  ],
  routeIndex: [1, 0, 1],
}

const cases: [string, Codec<object>, object, string][] = [
  ['ExporterInfo', exporterInfoCodec as Codec<object>, exporter, 'flowbus.v1.ExporterInfo'],
  ['InterfaceInfo', interfaceInfoCodec as Codec<object>, iface, 'flowbus.v1.InterfaceInfo'],
  ['TemplateRecord', templateRecordCodec as Codec<object>, template, 'flowbus.v1.TemplateRecord'],
  ['RoutingLookupRequest', routingLookupRequestCodec as Codec<object>, request, 'flowbus.v1.RoutingLookupRequest'],
  ['RoutingLookupResponse', routingLookupResponseCodec as Codec<object>, response, 'flowbus.v1.RoutingLookupResponse'],
]

describe('reflection codecs', () => {
  for (const [name, codec, value, typeName] of cases) {
    it(`${name} roundtrips every field exactly`, () => {
      expect(codec.typeName).toBe(typeName)
      expect(codec.decode(codec.encode(value))).toEqual(value)
    })

    it(`${name} agrees with protobufjs reading the .proto source`, () => {
      const reference = root.lookupType(typeName)
      const asJson = reference.toObject(reference.decode(codec.encode(value)), { longs: Number, enums: Number, bytes: Array, defaults: true, arrays: true })
      const reEncoded = reference.encode(reference.fromObject(asJson)).finish()
      expect(codec.decode(reEncoded)).toEqual(value)
    })

    it(`${name} rejects malformed bytes with an Error naming the type`, () => {
      const bytes = codec.encode(value)
      expect(() => codec.decode(bytes.subarray(0, bytes.length - 1))).toThrow(`malformed ${typeName}`)
      expect(() => codec.decode(Uint8Array.of(0x0f))).toThrow(`malformed ${typeName}`) // wire type 7
    })
  }

  it('refuses to encode a value of the wrong shape, naming the field', () => {
    expect(() => interfaceInfoCodec.encode({ ...iface, ifIndex: 'three' as never })).toThrow(/InterfaceInfo: ifIndex: integer expected/)
  })

  it('fills defaults for fields a sender left out (older senders)', () => {
    const reference = root.lookupType('flowbus.v1.ExporterInfo')
    const old = reference.encode(reference.fromObject({ name: 'r1' })).finish()
    expect(exporterInfoCodec.decode(old)).toEqual({ address: new Uint8Array(0), name: 'r1', group: '', role: '', site: '', region: '', tenant: '', sysName: '', updatedUnixMs: 0 })
  })
})
