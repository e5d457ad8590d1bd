// The JSON export of enriched flows for consumers without flowbus (NetObserv "no storage" use):
// each message holds JSON lines, one object per flow keyed by the column names, exactly as
// `flowbus decode` prints them (bus-schemas flowBatchToRows), split when over the bus limit.
import { type BroadcastSubject, type Codec, type FlowBatch, type StreamSubject, flowBatchToRows } from '@flowbus/bus-schemas'

const utf8 = new TextEncoder()

/** JSON lines pass as bytes: the export writes them itself. */
const jsonLinesCodec: Codec<Uint8Array> = { typeName: 'application/x-ndjson', encode: (bytes) => bytes, decode: (bytes) => bytes }

const description = 'enriched flows as JSON lines, one object per flow keyed by the column names (enricher → external consumers)'

/** The export as a durable stream, partitioned by exporter like flows.enriched. */
export const jsonExportStream = (name: string): StreamSubject<Uint8Array> => ({
  kind: 'stream',
  name,
  version: 1,
  description,
  codec: jsonLinesCodec,
  partitionKey: 'exporter address',
  retention: 'flows',
})

/** The export as a best-effort broadcast (a core NATS subject; a one-partition Kafka topic). */
export const jsonExportBroadcast = (name: string): BroadcastSubject<Uint8Array> => ({ kind: 'broadcast', name, version: 1, description, codec: jsonLinesCodec })

/** One line per flow, each ending with a newline. */
export const jsonLines = (batch: FlowBatch): string[] => flowBatchToRows(batch).map((row) => `${JSON.stringify(row)}\n`)

/** The lines packed into messages of at most maxBytes each (a single longer line travels alone). */
export const jsonMessages = (lines: readonly string[], maxBytes: number): Uint8Array[] => {
  const messages: Uint8Array[] = []
  let parts: string[] = []
  let size = 0
  for (const line of lines) {
    const bytes = Buffer.byteLength(line)
    if (parts.length > 0 && size + bytes > maxBytes) {
      messages.push(utf8.encode(parts.join('')))
      parts = []
      size = 0
    }
    parts.push(line)
    size += bytes
  }
  if (parts.length > 0) messages.push(utf8.encode(parts.join('')))
  return messages
}
