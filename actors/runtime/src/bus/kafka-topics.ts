// Kafka topic names and topic administration for the Kafka transport: create topics with the
// settings a stream or bucket asks for, grow partitions, and keep retention configs in step.

import kafkajs, { type Admin } from 'kafkajs'

// kafkajs is CommonJS and Node's ESM loader sees only some of its named exports.
const { ConfigResourceTypes, ConfigSource } = kafkajs

/** Kafka's own rule for topic names (249 bytes of [a-zA-Z0-9._-]). */
const LEGAL_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/

/**
 * Topic for a plain subject (request/reply, broadcast): `routing.lookup.v1` becomes
 * `flowbus-routing-lookup-v1`, the same name kafkaTopic() gives the subject in bus-schemas.
 */
export const kafkaTopicForSubject = (subject: string): string => {
  const topic = `flowbus-${subject.replace(/\./g, '-')}`
  if (!LEGAL_TOPIC.test(topic)) {
    throw new Error(
      `subject "${subject}" cannot be a Kafka topic name (${topic}): use letters, digits, '.', '_' and '-' only, 240 characters at most`,
    )
  }
  return topic
}

/** What the transport wants a topic to look like; anything else an operator set is kept. */
export interface TopicSettings {
  readonly topic: string
  readonly partitions: number
  readonly replicas: number
  /** Topic-level configs the transport owns, e.g. cleanup.policy, retention.ms. */
  readonly configs: Readonly<Record<string, string>>
}

/** Extra room over the payload limit for the record batch framing, key and headers. */
export const RECORD_OVERHEAD_BYTES = 64 * 1024

/** Retention configs of a stream: Kafka counts retention.bytes per partition, the stream spec per stream. */
export const retentionConfigs = (
  maxAgeSeconds: number,
  maxBytes: number,
  partitions: number,
): Record<string, string> => ({
  'retention.ms': maxAgeSeconds > 0 ? String(maxAgeSeconds * 1000) : '-1',
  'retention.bytes': maxBytes > 0 ? String(Math.max(1, Math.ceil(maxBytes / partitions))) : '-1',
})

/**
 * Creates missing topics and reconciles existing ones: partitions only ever grow (shrinking
 * would reshuffle keys and lose data) and owned configs are updated. Safe to run concurrently
 * from many processes: "already exists" answers are treated as success and re-checked.
 */
export async function reconcileTopics(admin: Admin, wanted: readonly TopicSettings[]): Promise<void> {
  if (wanted.length === 0) return
  for (const spec of wanted) {
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
      throw new Error(`topic ${spec.topic}: partitions must be a positive integer, got ${spec.partitions}`)
    }
  }
  const existing = new Set(await admin.listTopics())
  const missing = wanted.filter((spec) => !existing.has(spec.topic))
  if (missing.length > 0) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicas,
          configEntries: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
        })),
      })
    } catch (error) {
      // Another process may have created some of them meanwhile, or the broker created them but
      // its metadata lagged behind (waitForLeaders gives up with "does not host this
      // topic-partition" on a busy broker): what is still missing after a while is a real error.
      const stillMissing = await awaitTopics(admin, missing, isRequestError(error) ? 0 : TOPIC_APPEARANCE_MS)
      if (stillMissing.length > 0) {
        const names = stillMissing.map((s) => `${s.topic} (${s.partitions} partitions, ${s.replicas} replicas)`)
        throw new Error(`could not create Kafka topics ${names.join(', ')}: ${describeError(error)}`)
      }
    }
  }
  const present = wanted.filter((spec) => existing.has(spec.topic))
  if (present.length === 0) return
  await growPartitions(admin, present)
  await updateConfigs(admin, present)
}

/** How long topics whose creation answered oddly get to show up in the metadata. */
const TOPIC_APPEARANCE_MS = 10_000

/** Errors about the request itself: waiting will not make those topics appear. */
const isRequestError = (error: unknown): boolean => {
  // kafkajs reports per-topic failures of CreateTopics as an aggregate of typed errors.
  const { type, errors } = (error ?? {}) as { type?: string; errors?: unknown[] }
  if (Array.isArray(errors) && errors.some(isRequestError)) return true
  return type !== undefined && REQUEST_ERRORS.has(type)
}

const REQUEST_ERRORS = new Set([
  'INVALID_CONFIG',
  'INVALID_REPLICATION_FACTOR',
  'INVALID_PARTITIONS',
  'POLICY_VIOLATION',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
])

/** The specs still absent from the cluster's topic list after up to waitMs. */
async function awaitTopics(admin: Admin, specs: readonly TopicSettings[], waitMs: number): Promise<TopicSettings[]> {
  const deadline = Date.now() + waitMs
  for (;;) {
    const now = new Set(await admin.listTopics())
    const absent = specs.filter((spec) => !now.has(spec.topic))
    if (absent.length === 0 || Date.now() >= deadline) return absent
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

async function growPartitions(admin: Admin, specs: readonly TopicSettings[]): Promise<void> {
  const metadata = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) })
  const counts = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]))
  const grow = specs.filter((spec) => (counts.get(spec.topic) ?? 0) < spec.partitions)
  if (grow.length === 0) return
  try {
    await admin.createPartitions({ topicPartitions: grow.map((spec) => ({ topic: spec.topic, count: spec.partitions })) })
  } catch (error) {
    const after = await admin.fetchTopicMetadata({ topics: grow.map((s) => s.topic) })
    const now = new Map(after.topics.map((t) => [t.name, t.partitions.length]))
    const short = grow.filter((spec) => (now.get(spec.topic) ?? 0) < spec.partitions)
    if (short.length > 0) {
      const names = short.map((s) => `${s.topic} (to ${s.partitions})`)
      throw new Error(`could not add partitions to Kafka topics ${names.join(', ')}: ${describeError(error)}`)
    }
  }
}

/**
 * AlterConfigs replaces a topic's whole dynamic config (kafkajs has no incremental variant),
 * so the configs an operator set on the topic are read first and written back with ours.
 */
async function updateConfigs(admin: Admin, specs: readonly TopicSettings[]): Promise<void> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: specs.map((spec) => ({ type: ConfigResourceTypes.TOPIC, name: spec.topic })),
  })
  const current = new Map<string, Map<string, string>>()
  for (const resource of described.resources) {
    const dynamic = new Map<string, string>()
    for (const entry of resource.configEntries) {
      if (entry.configSource === ConfigSource.TOPIC_CONFIG && !entry.isSensitive) dynamic.set(entry.configName, entry.configValue)
    }
    current.set(resource.resourceName, dynamic)
  }
  const changed = specs.filter((spec) => {
    const dynamic = current.get(spec.topic) ?? new Map<string, string>()
    return Object.entries(spec.configs).some(([name, value]) => dynamic.get(name) !== value)
  })
  if (changed.length === 0) return
  await admin.alterConfigs({
    validateOnly: false,
    resources: changed.map((spec) => {
      const merged = new Map(current.get(spec.topic))
      for (const [name, value] of Object.entries(spec.configs)) merged.set(name, value)
      return {
        type: ConfigResourceTypes.TOPIC,
        name: spec.topic,
        configEntries: [...merged].map(([name, value]) => ({ name, value })),
      }
    }),
  })
}

export const describeError = (error: unknown): string => {
  if (error instanceof Error) {
    const nested = (error as { errors?: unknown[] }).errors
    if (Array.isArray(nested) && nested.length > 0) return nested.map(describeError).join('; ')
    return error.message
  }
  return String(error)
}

/**
 * End offset of every partition of a topic. Right after a topic is created its partitions may
 * still be electing a leader: the broker answers NOT_LEADER_FOR_PARTITION or
 * LEADER_NOT_AVAILABLE, and kafkajs, whose metadata does not hold the partitions yet, may even
 * throw a TypeError of its own ("Cannot destructure property 'partitions'…"). Any failure is
 * asked again every 200 ms for about 10 s before it fails the actor's start.
 */
export async function topicEndOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  for (let attempt = 1; ; attempt++) {
    try {
      const ends = await admin.fetchTopicOffsets(topic)
      return new Map(ends.map((end) => [end.partition, Number(end.high)]))
    } catch (error) {
      if (attempt >= 50) throw error
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}
