// The enricher's configuration section: consumer group, exporter and interface metadata
// (static, remote HTTP sources, the snmp-poller's buckets), the unknown-metadata policy,
// routing lookups, the live fan-out, the JSON export, and the enrichment stages' options.
import { Duration, ParsedText, withDefaults } from '@flowbus/runtime'
import { Schema } from 'effect'
import { ASNConfig } from './asn/stage.js'
import { ClassificationConfig } from './classification/stage.js'
import { GeoIPConfig } from './geoip/stage.js'
import { parseSubnet } from './metadata/table.js'
import { NetworksConfig } from './networks/table.js'
import { SamplingConfig } from './sampling/stage.js'

const positiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())
const nonNegativeInt = Schema.Number.pipe(Schema.int(), Schema.nonNegative())
const optionalText = (description: string) => Schema.optional(Schema.String).annotations({ description })

const Subnet = ParsedText(parseSubnet).annotations({ description: 'an IP prefix (192.0.2.0/24, 2001:db8::/32) or a single address' })

const Boundary = Schema.Literal('external', 'internal', 'undefined').annotations({
  description: 'external (towards other networks), internal, or undefined',
})

const InterfaceFields = {
  name: optionalText('interface name (InIfName/OutIfName)'),
  description: optionalText('interface description (…IfDescription)'),
  speed: Schema.optional(nonNegativeInt).annotations({ description: 'speed in Mbps (…IfSpeed)' }),
  provider: optionalText('provider behind the interface (…IfProvider)'),
  connectivity: optionalText('connectivity: transit, ix, pni, customer… (…IfConnectivity)'),
  boundary: Schema.optional(Boundary),
}

const ExporterFields = {
  name: optionalText('exporter name (ExporterName)'),
  group: optionalText('ExporterGroup'),
  role: optionalText('ExporterRole'),
  site: optionalText('ExporterSite'),
  region: optionalText('ExporterRegion'),
  tenant: optionalText('ExporterTenant'),
}

export const StaticInterface = Schema.Struct({
  ifIndex: positiveInt.annotations({ description: 'SNMP ifIndex of the interface' }),
  ...InterfaceFields,
})

export const StaticExporter = Schema.Struct({
  subnet: Subnet.annotations({ description: 'exporters whose address is in this subnet (most specific subnet wins, fields merge)' }),
  ...ExporterFields,
  interfaces: Schema.optionalWith(Schema.Array(StaticInterface), { default: () => [] }).annotations({
    description: 'interfaces of these exporters by ifIndex',
  }),
  defaultInterface: Schema.optional(Schema.Struct(InterfaceFields)).annotations({
    description: 'fields for interfaces of these exporters that are not listed',
  }),
})

export const RemoteSource = Schema.Struct({
  name: Schema.optional(Schema.String).annotations({ description: 'label in metrics and logs (default: the URL)' }),
  url: Schema.String.pipe(Schema.pattern(/^https?:\/\//)).annotations({ description: 'http:// or https:// URL fetched with GET' }),
  kind: Schema.Literal('exporters', 'interfaces', 'networks').annotations({
    description:
      'what the records are: exporters (subnet + exporter fields), interfaces (exporter + ifIndex + interface fields) or networks (network attributes by subnet)',
  }),
  format: Schema.optionalWith(Schema.Literal('json', 'csv'), { default: () => 'json' as const }).annotations({
    description: 'json: a document holding an array of records; csv: a header line then one record per line',
  }),
  root: Schema.optionalWith(Schema.String, { default: () => '' }).annotations({
    description: 'JSON only: pointer to the array of records in the document (RFC 6901, e.g. /data/items); empty: the document itself',
  }),
  fields: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }).annotations({
    description:
      'transform: target field → where to read it in a record, a JSON pointer (/site/name) for json or a column name for csv; fields not listed are read from the same name',
  }),
  interval: Schema.optionalWith(Duration, { default: () => 60_000 }).annotations({ description: 'time between fetches' }),
  timeout: Schema.optionalWith(Duration, { default: () => 10_000 }).annotations({ description: 'a fetch taking longer fails (the last good content stays)' }),
})

export const MetadataConfig = Schema.Struct({
  providers: Schema.optionalWith(Schema.Array(Schema.Literal('static', 'remote', 'snmp')), {
    default: () => ['static', 'remote', 'snmp'] as const,
  }).annotations({
    description: 'metadata providers in priority order; each field comes from the first provider that has it',
  }),
  exporters: Schema.optionalWith(Schema.Array(StaticExporter), { default: () => [] }).annotations({
    description: 'static exporter and interface metadata by subnet',
  }),
  defaults: withDefaults(
    Schema.Struct({
      exporter: Schema.optionalWith(Schema.Struct(ExporterFields), { default: () => ({}) }),
      interface: Schema.optionalWith(Schema.Struct(InterfaceFields), { default: () => ({}) }),
    }),
  ).annotations({ description: 'fields used when no provider has them (lowest priority)' }),
  remote: Schema.optionalWith(Schema.Array(RemoteSource), { default: () => [] }).annotations({
    description: 'sources fetched over HTTP on a schedule (exporters, interfaces or network attributes)',
  }),
  snmp: withDefaults(
    Schema.Struct({
      requestInterval: Schema.optionalWith(Duration, { default: () => 1_000 }).annotations({
        description: 'metadata.requests are coalesced and sent at most this often (one message each time)',
      }),
      requestRepeat: Schema.optionalWith(Duration, { default: () => 300_000 }).annotations({
        description: 'an exporter or ifIndex still without metadata is asked for again after this long',
      }),
    }),
  ).annotations({ description: "the snmp-poller's metadata.exporters/metadata.interfaces buckets and metadata.requests" }),
  unknown: withDefaults(
    Schema.Struct({
      policy: Schema.optionalWith(Schema.Literal('pass', 'pass-empty', 'hold', 'drop'), { default: () => 'pass' as const }).annotations({
        description:
          'flows whose exporter or interface has no name from any provider: pass (exporter address / ifIndex as the name), pass-empty (empty names), hold (wait up to holdFor for the snmp-poller, then pass) or drop',
      }),
      holdFor: Schema.optionalWith(Duration, { default: () => 2_000 }).annotations({
        description: 'hold policy: how long a batch waits for metadata of an exporter or interface seen for the first time',
      }),
    }),
  ),
})

export const RoutingConfig = Schema.Struct({
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }).annotations({
    description: 'look up AS paths, communities and prefix lengths on routing.lookup (the bmp-rib actor)',
  }),
  timeout: Schema.optionalWith(Duration, { default: () => 500 }).annotations({ description: 'a lookup answered later is skipped for that batch' }),
  backoffMin: Schema.optionalWith(Duration, { default: () => 1_000 }).annotations({
    description: 'after a failed lookup (no responder, timeout) lookups pause this long, doubling up to backoffMax',
  }),
  backoffMax: Schema.optionalWith(Duration, { default: () => 60_000 }),
  setNextHop: Schema.optionalWith(Schema.Boolean, { default: () => true }).annotations({
    description: "replace NextHop with the route's BGP next hop when the route has one",
  }),
})

export const LiveConfig = Schema.Struct({
  oneIn: Schema.optionalWith(nonNegativeInt, { default: () => 100 }).annotations({
    description: 'one enriched flow in this many goes to flows.live (0: no live fan-out)',
  }),
})

export const ExportConfig = Schema.Struct({
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => false }).annotations({
    description: 'also publish enriched flows as JSON (one object per flow, keys = column names) for external consumers',
  }),
  subject: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/)), { default: () => 'flows.json' }).annotations({
    description:
      'subject name: NATS subject <subject>.v1.<shard> (stream) or <subject>.v1 (broadcast), Kafka topic flowbus-<subject with . as ->-v1',
  }),
  delivery: Schema.optionalWith(Schema.Literal('stream', 'broadcast'), { default: () => 'stream' as const }).annotations({
    description: 'stream: durable, partitioned by exporter, published before the decoded message is acknowledged; broadcast: best effort',
  }),
})

export const EnricherConfig = Schema.Struct({
  group: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => 'enricher' }).annotations({
    description: 'consumer group on flows.decoded: enricher shards with the same group share the exporters',
  }),
  metadata: withDefaults(MetadataConfig),
  routing: withDefaults(RoutingConfig),
  live: withDefaults(LiveConfig),
  export: withDefaults(ExportConfig),
  // The stages' own sections (schemas from their modules).
  classification: withDefaults(ClassificationConfig).annotations({
    description: 'exporter and interface classification rules, compiled at load: a rule that does not compile stops the start, naming the rule and column',
  }),
  networks: Schema.optionalWith(NetworksConfig, { default: () => ({}) }),
  geoip: withDefaults(GeoIPConfig).annotations({ description: 'GeoIP databases (country, state, city, AS numbers), reloaded when their files change' }),
  sampling: withDefaults(SamplingConfig).annotations({ description: 'sampling rate defaults and overrides by exporter subnet' }),
  asn: withDefaults(ASNConfig).annotations({ description: 'where AS numbers and prefix lengths come from' }),
})

export type EnricherConfig = Schema.Schema.Type<typeof EnricherConfig>
export type MetadataConfig = Schema.Schema.Type<typeof MetadataConfig>
export type RemoteSource = Schema.Schema.Type<typeof RemoteSource>
export type StaticExporter = Schema.Schema.Type<typeof StaticExporter>
