// Keys derived from message content: partition keys of flow streams and keys of state buckets.
// One definition so every producer and consumer of a bucket agrees; safe for NATS KV and Kafka.

import type { TemplateRecord } from './generated/flowbus.js'
import { formatIP } from './ip.js'

/** Partition key of flow streams: the exporter address in text form (same exporter, same shard). */
export const exporterPartitionKey = (address: Uint8Array): string => formatIP(address)

/**
 * The exporter address as a key token: text form with `:` written `_`, because NATS KV keys allow
 * only `[-/_=.a-zA-Z0-9]` (`2001:db8::1` → `2001_db8__1`, `192.0.2.1` unchanged).
 */
export const exporterStateKey = (address: Uint8Array): string => formatIP(address).replace(/:/g, '_')

/** Key in metadata.interfaces: `<exporter>.<ifIndex>` (watch one exporter with `<exporter>.>`). */
export const interfaceStateKey = (exporterAddress: Uint8Array, ifIndex: number): string =>
  `${exporterStateKey(exporterAddress)}.${ifIndex}`

/** Key in templates: `<exporter>.<port>.<protocol>.<observation domain>.<template id>`. */
export const templateStateKey = (
  t: Pick<TemplateRecord, 'exporterAddress' | 'exporterPort' | 'protocol' | 'observationDomainId' | 'templateId'>,
): string => `${exporterStateKey(t.exporterAddress)}.${t.exporterPort}.${t.protocol}.${t.observationDomainId}.${t.templateId}`
