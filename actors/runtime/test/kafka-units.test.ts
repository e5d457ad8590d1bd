// Pure parts of the Kafka transport: topic names, retention configs, and how the record sender
// coalesces sends and numbers offsets (against a stand-in producer that answers like a broker).
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { crc32c, crc32cFinish, crc32cImplementation, crc32cUpdate, crc32cUpdateJs, CRC32C_START } from '../src/bus/kafka-crc32c.js'
import { RecordSender } from '../src/bus/kafka-producer.js'
import { encodeRecordBatch, type BatchWriter, type OutgoingRecord, type PartitionOutcome } from '../src/bus/kafka-wire-producer.js'
import { kafkaTopicForSubject, retentionConfigs } from '../src/bus/kafka-topics.js'

describe('kafka topic names', () => {
  it('derives the same name bus-schemas gives a subject', () => {
    expect(kafkaTopicForSubject('routing.lookup.v1')).toBe('flowbus-routing-lookup-v1')
  })
  it('rejects a subject Kafka cannot name, quoting it', () => {
    expect(() => kafkaTopicForSubject('flows live.v1')).toThrow(/"flows live\.v1"/)
    expect(() => kafkaTopicForSubject(`x.${'a'.repeat(260)}`)).toThrow(/cannot be a Kafka topic/)
  })
})

describe('kafka retention configs', () => {
  it('turns a stream-wide byte cap into a per-partition one and 0 into unlimited', () => {
    expect(retentionConfigs(3_600, 10 * 1024, 4)).toEqual({ 'retention.ms': '3600000', 'retention.bytes': '2560' })
    expect(retentionConfigs(0, 0, 8)).toEqual({ 'retention.ms': '-1', 'retention.bytes': '-1' })
  })
})

/** Answers write() like a broker: appends per topic-partition and reports base offsets. */
const brokerLikeProducer = (options: { fail?: boolean } = {}) => {
  const logs = new Map<string, string[]>()
  const requests: number[] = []
  let release: (() => void) | undefined
  let gate: Promise<void> = Promise.resolve()
  const producer: BatchWriter = {
    async write(records: readonly OutgoingRecord[]): Promise<PartitionOutcome[]> {
      await gate
      requests.push(records.length)
      if (options.fail) throw new Error('broker said no')
      const byPartition = new Map<string, { topic: string; partition: number; values: string[] }>()
      for (const r of records) {
        const key = `${r.topic}/${r.partition}`
        const entry = byPartition.get(key) ?? { topic: r.topic, partition: r.partition, values: [] }
        entry.values.push(String(r.value))
        byPartition.set(key, entry)
      }
      return [...byPartition].map(([key, { topic, partition, values }]) => {
        const log = logs.get(key) ?? []
        const baseOffset = log.length
        log.push(...values)
        logs.set(key, log)
        return { topic, partition, baseOffset }
      })
    },
  }
  return {
    producer,
    logs,
    requests,
    hold: () => {
      gate = new Promise((resolve) => (release = resolve))
    },
    release: () => release?.(),
  }
}

const record = (partition: number, value: string) => ({ topic: 't', partition, key: null, value: Buffer.from(value) })

describe('RecordSender', () => {
  it('sends a burst as one request, then what queued during it as the next, resolving each record with its offset', async () => {
    const broker = brokerLikeProducer()
    const sender = new RecordSender(broker.producer, { maxPartitionBytes: 1 << 20 })
    broker.hold()
    const burst = [sender.send(record(0, 'a')), sender.send(record(1, 'b'))]
    await new Promise((resolve) => setImmediate(resolve))
    const later = [sender.send(record(0, 'c')), sender.send(record(0, 'd'))]
    broker.release()
    expect(await Promise.all(burst)).toEqual([0, 0])
    expect(await Promise.all(later)).toEqual([1, 2])
    expect(broker.requests).toEqual([2, 2])
    expect(broker.logs.get('t/0')).toEqual(['a', 'c', 'd'])
  })

  it('caps bytes per partition, not per request, keeping each partition in order', async () => {
    const broker = brokerLikeProducer()
    // Room for one 4-byte record (plus framing) per partition in a request.
    const sender = new RecordSender(broker.producer, { maxPartitionBytes: 40 })
    const sends = [record(0, 'aaaa'), record(1, 'bbbb'), record(2, 'cccc'), record(0, 'dddd'), record(1, 'eeee')].map((r) => sender.send(r))
    expect(await Promise.all(sends)).toEqual([0, 0, 0, 1, 1])
    // The second record of partition 0 ends the first request, though partition 1 had room left.
    expect(broker.requests).toEqual([3, 2])
    await sender.drained()
  })

  it('caps bytes per request across partitions', async () => {
    const broker = brokerLikeProducer()
    const sender = new RecordSender(broker.producer, { maxPartitionBytes: 1 << 20, maxRequestBytes: 80 })
    const sends = [0, 1, 2, 3, 4].map((p) => sender.send(record(p, 'xxxx')))
    expect(await Promise.all(sends)).toEqual([0, 0, 0, 0, 0])
    expect(broker.requests).toEqual([2, 2, 1])
  })

  it('gives each partition to one lane, so lanes send side by side and each partition stays in order', async () => {
    const lanes = [brokerLikeProducer(), brokerLikeProducer()]
    const sender = new RecordSender(
      lanes.map((lane) => lane.producer),
      { maxPartitionBytes: 1 << 20 },
    )
    const sends = Array.from({ length: 40 }, (_, i) => sender.send(record(i % 4, `v${i}`)))
    await Promise.all(sends)
    await sender.drained()
    // Every partition landed whole in exactly one lane, in send order.
    for (let partition = 0; partition < 4; partition++) {
      const owners = lanes.filter((lane) => lane.logs.has(`t/${partition}`))
      expect(owners).toHaveLength(1)
      expect(owners[0]!.logs.get(`t/${partition}`)).toEqual(Array.from({ length: 10 }, (_, k) => `v${partition + 4 * k}`))
    }
    expect(lanes.every((lane) => lane.requests.length > 0)).toBe(true)
  })

  it('rejects every record of a failed request', async () => {
    const broker = brokerLikeProducer({ fail: true })
    const sender = new RecordSender(broker.producer, { maxPartitionBytes: 1 << 20 })
    await expect(sender.send(record(0, 'x'))).rejects.toThrow('broker said no')
  })
})

describe('crc32c', () => {
  it('gives the standard check value of CRC-32C', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283)
    expect(crc32c(new Uint8Array(0))).toBe(0)
  })

  it('agrees with kafkajs\'s own checksum at every length and offset around its 16-byte stride', () => {
    const original = createRequire(import.meta.url)('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number
    // Short chunks take the TypeScript loop, longer ones the WebAssembly one.
    const bytes = Buffer.alloc(1500)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 13
    for (let start = 0; start < 17; start++) {
      for (let end = start; end < bytes.length; end += start < 3 ? 7 : 61) {
        const slice = bytes.subarray(start, end)
        expect(crc32c(slice)).toBe(original(slice) >>> 0)
      }
    }
  })

  it('gives the same result in WebAssembly as in TypeScript, across its block size', () => {
    expect(crc32cImplementation()).toBe('webassembly')
    const bytes = Buffer.alloc(400_000)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 40503) >>> 5
    for (const [start, end] of [[0, 400_000], [1, 114_689], [5, 114_690], [3, 1000]] as const) {
      const slice = bytes.subarray(start, end)
      expect(crc32cUpdate(12345, slice)).toBe(crc32cUpdateJs(12345, slice))
    }
  })

  it('gives the same checksum over chunks as over the whole', () => {
    const bytes = Buffer.alloc(1000)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 40503) >>> 7
    let state = CRC32C_START
    for (const [start, end] of [[0, 5], [5, 5], [5, 300], [300, 317], [317, 1000]] as const) state = crc32cUpdate(state, bytes.subarray(start, end))
    expect(crc32cFinish(state)).toBe(crc32c(bytes))
  })
})

describe('record batch encoding', () => {
  const require = createRequire(import.meta.url)
  const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown
  const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<{
    producerId: string
    producerEpoch: number
    firstSequence: number
    records: Array<{ offset: string; key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer> }>
  }>

  it('encodes what kafkajs decodes: keys, nulls, headers, large values passed through, and a valid checksum', async () => {
    const large = Buffer.alloc(10_000, 7)
    const records: OutgoingRecord[] = [
      { topic: 't', partition: 0, key: Buffer.from('k1'), value: Buffer.from('small'), headers: { h: 'v', empty: '' } },
      { topic: 't', partition: 0, key: null, value: large },
      { topic: 't', partition: 0, key: Buffer.from('gone'), value: null },
    ]
    const { chunks, size } = encodeRecordBatch(records, { id: 42n, epoch: 3 }, 1000, 1_700_000_000_000)
    // The large value is handed over as it is, not copied.
    expect(chunks).toContain(large)
    const bytes = Buffer.concat(chunks)
    expect(bytes.length).toBe(size)
    const batch = await decodeBatch(new Decoder(bytes))
    expect([batch.producerId, batch.producerEpoch, batch.firstSequence]).toEqual(['42', 3, 1000])
    expect(batch.records.map((r) => r.offset)).toEqual(['0', '1', '2'])
    expect(batch.records[0]!.key?.toString()).toBe('k1')
    expect(batch.records[0]!.value?.toString()).toBe('small')
    expect(Object.fromEntries(Object.entries(batch.records[0]!.headers).map(([k, v]) => [k, v.toString()]))).toEqual({ h: 'v', empty: '' })
    expect(batch.records[1]!.key).toBeNull()
    expect(batch.records[1]!.value?.equals(large)).toBe(true)
    expect(batch.records[2]!.value).toBeNull()
    // The stored checksum covers attributes to the end, as the broker checks it.
    expect(bytes.readUInt32BE(17)).toBe(crc32c(bytes.subarray(21)))
  })
})
