// Pure parts of the Kafka transport: topic names, retention configs, and how the record sender
// coalesces sends and numbers offsets (against a stand-in producer that answers like a broker).
import type { Producer, ProducerBatch, RecordMetadata } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { RecordSender } from '../src/bus/kafka-producer.js'
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

/** Answers sendBatch like a broker: appends per topic-partition and reports base offsets. */
const brokerLikeProducer = (options: { fail?: boolean } = {}) => {
  const logs = new Map<string, string[]>()
  const requests: number[] = []
  let release: (() => void) | undefined
  let gate: Promise<void> = Promise.resolve()
  const producer = {
    async sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]> {
      await gate
      requests.push(batch.topicMessages!.reduce((n, t) => n + t.messages.length, 0))
      if (options.fail) throw new Error('broker said no')
      const answers: RecordMetadata[] = []
      for (const { topic, messages } of batch.topicMessages!) {
        const byPartition = new Map<number, string[]>()
        for (const m of messages) byPartition.set(m.partition!, [...(byPartition.get(m.partition!) ?? []), String(m.value)])
        for (const [partition, values] of byPartition) {
          const log = logs.get(`${topic}/${partition}`) ?? []
          answers.push({ topicName: topic, partition, errorCode: 0, baseOffset: String(log.length) })
          log.push(...values)
          logs.set(`${topic}/${partition}`, log)
        }
      }
      return answers
    },
  }
  return {
    producer: producer as unknown as Producer,
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
  it('sends what queued during a request as the next request, resolving each record with its offset', async () => {
    const broker = brokerLikeProducer()
    const sender = new RecordSender(broker.producer, 1 << 20)
    broker.hold()
    const first = sender.send(record(0, 'a'))
    const rest = [sender.send(record(1, 'b')), sender.send(record(0, 'c')), sender.send(record(0, 'd'))]
    broker.release()
    expect(await first).toBe(0)
    expect(await Promise.all(rest)).toEqual([0, 1, 2])
    expect(broker.requests).toEqual([1, 3])
    expect(broker.logs.get('t/0')).toEqual(['a', 'c', 'd'])
  })

  it('splits a queue larger than the request cap, keeping order', async () => {
    const broker = brokerLikeProducer()
    const sender = new RecordSender(broker.producer, 10)
    broker.hold()
    const sends = ['aaaa', 'bbbb', 'cccc', 'dddd', 'eeee'].map((v) => sender.send(record(0, v)))
    broker.release()
    expect(await Promise.all(sends)).toEqual([0, 1, 2, 3, 4])
    expect(broker.requests).toEqual([1, 2, 2])
    await sender.drained()
  })

  it('rejects every record of a failed request', async () => {
    const broker = brokerLikeProducer({ fail: true })
    const sender = new RecordSender(broker.producer, 1 << 20)
    await expect(sender.send(record(0, 'x'))).rejects.toThrow('broker said no')
  })
})
