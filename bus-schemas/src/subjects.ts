// The subject catalogue: every subject flowbus uses, defined once with its message codec.
// Provisioning, docs and the typed bus iterate over `catalogue`; actors import the subjects they use.

import { flowBatchCodec } from './flow-batch-codec.js'
import type { FlowBatch } from './flow-batch.js'
import type {
  ExporterInfo,
  ExporterOptionsRecord,
  InterfaceCountersBatch,
  InterfaceInfo,
  MetadataRequestBatch,
  RoutingLookupRequest,
  RoutingLookupResponse,
  TemplateRecord,
  WriterBatchRecord,
} from './generated/flowbus.js'
import {
  exporterInfoCodec,
  interfaceCountersBatchCodec,
  interfaceInfoCodec,
  reflectionCodec,
  routingLookupRequestCodec,
  routingLookupResponseCodec,
  templateRecordCodec,
} from './proto-codecs.js'
import { rawPacketBatchCodec, type RawPacketBatch } from './raw-packets.js'
import type { AnySubject, BroadcastSubject, RequestSubject, StateBucket, StreamSubject } from './subject.js'

export const flowsRaw: StreamSubject<RawPacketBatch> = {
  kind: 'stream',
  name: 'flows.raw',
  version: 1,
  description: 'datagrams from exporters as received (receiver → decoder)',
  codec: rawPacketBatchCodec,
  partitionKey: 'exporter address',
  retention: 'flows',
}

export const flowsDecoded: StreamSubject<FlowBatch> = {
  kind: 'stream',
  name: 'flows.decoded',
  version: 1,
  description: 'decoded flows, columnar batches (decoder → enricher)',
  codec: flowBatchCodec,
  partitionKey: 'exporter address',
  retention: 'flows',
}

export const flowsEnriched: StreamSubject<FlowBatch> = {
  kind: 'stream',
  name: 'flows.enriched',
  version: 1,
  description: 'enriched flows, columnar batches (enricher → clickhouse-writer, external consumers)',
  codec: flowBatchCodec,
  partitionKey: 'exporter address',
  retention: 'flows',
}

export const countersInterfaces: StreamSubject<InterfaceCountersBatch> = {
  kind: 'stream',
  name: 'counters.interfaces',
  version: 1,
  description: 'interface counters exporters send beside flows, e.g. sFlow counter samples (decoder → clickhouse-writer)',
  codec: interfaceCountersBatchCodec,
  partitionKey: 'exporter address',
  retention: 'flows',
}

export const templates: StateBucket<TemplateRecord> = {
  kind: 'state',
  name: 'templates',
  version: 1,
  description: 'NetFlow v9 / IPFIX templates per exporter, port, observation domain and template id (key: templateStateKey)',
  codec: templateRecordCodec,
}

export const exporterOptions: StateBucket<ExporterOptionsRecord> = {
  kind: 'state',
  name: 'exporter.options',
  version: 1,
  description:
    'NetFlow v9 / IPFIX options data (sampling rates, interface and VRF names) per exporter, port, protocol and observation domain (key: <exporter>.<port>.<protocol>.<domain>)',
  codec: reflectionCodec<ExporterOptionsRecord>('flowbus.v1.ExporterOptionsRecord'),
}

export const metadataInterfaces: StateBucket<InterfaceInfo> = {
  kind: 'state',
  name: 'metadata.interfaces',
  version: 1,
  description: 'interface name, description, speed and classification per exporter and ifIndex (key: interfaceStateKey)',
  codec: interfaceInfoCodec,
}

export const metadataExporters: StateBucket<ExporterInfo> = {
  kind: 'state',
  name: 'metadata.exporters',
  version: 1,
  description: 'exporter name and classification per exporter (key: exporterStateKey)',
  codec: exporterInfoCodec,
}

export const writerBatches: StateBucket<WriterBatchRecord> = {
  kind: 'state',
  name: 'writer.batches',
  version: 1,
  description:
    'clickhouse-writer inserts that group several bus messages, recorded before the insert so redelivered messages regroup identically (key: <group>.<stream>.<shard>.<first position>)',
  codec: reflectionCodec<WriterBatchRecord>('flowbus.v1.WriterBatchRecord'),
}

export const metadataRequests: BroadcastSubject<MetadataRequestBatch> = {
  kind: 'broadcast',
  name: 'metadata.requests',
  version: 1,
  description: 'exporters and ifIndexes seen in flows without metadata yet, not durable (enricher → snmp-poller)',
  codec: reflectionCodec<MetadataRequestBatch>('flowbus.v1.MetadataRequestBatch'),
}

export const routingLookup: RequestSubject<RoutingLookupRequest, RoutingLookupResponse> = {
  kind: 'request',
  name: 'routing.lookup',
  version: 1,
  description: 'routes (AS path, communities, prefix length) covering a batch of addresses (enricher → bmp-rib)',
  request: routingLookupRequestCodec,
  response: routingLookupResponseCodec,
}

export const flowsLive: BroadcastSubject<FlowBatch> = {
  kind: 'broadcast',
  name: 'flows.live',
  version: 1,
  description: 'a sample of enriched flows for live views, not durable (enricher → gateway)',
  codec: flowBatchCodec,
}

/** Every subject by its TypeScript name. */
export const subjects = {
  flowsRaw,
  flowsDecoded,
  flowsEnriched,
  countersInterfaces,
  templates,
  exporterOptions,
  metadataInterfaces,
  metadataExporters,
  writerBatches,
  metadataRequests,
  routingLookup,
  flowsLive,
} as const

/** Every subject, for provisioning (streams, buckets) and generated docs. */
export const catalogue: readonly AnySubject[] = Object.values(subjects)
