// Which shard a partition key goes to: one stable hash shared by every transport, so memory,
// NATS and Kafka agree and a key keeps its shard (and thus its order) across restarts and transports.

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193
const utf8 = new TextEncoder()

/** FNV-1a, 32 bits, over raw bytes. */
export const fnv1a32 = (bytes: Uint8Array): number => {
  let hash = FNV_OFFSET
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i]!
    hash = Math.imul(hash, FNV_PRIME)
  }
  return hash >>> 0
}

/** FNV-1a over the UTF-8 bytes of a string, without allocating for ASCII keys (the usual case). */
const fnv1a32String = (key: string): number => {
  let hash = FNV_OFFSET
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i)
    if (code >= 0x80) return fnv1a32(utf8.encode(key))
    hash ^= code
    hash = Math.imul(hash, FNV_PRIME)
  }
  return hash >>> 0
}

/**
 * Shard of a partition key among `partitions` shards: FNV-1a 32-bit of the key's bytes (UTF-8
 * for strings) modulo the shard count. A string and its UTF-8 bytes map to the same shard.
 */
export const shardOf = (key: string | Uint8Array, partitions: number): number => {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions must be a positive integer, got ${partitions}`)
  }
  const hash = typeof key === 'string' ? fnv1a32String(key) : fnv1a32(key)
  return hash % partitions
}
