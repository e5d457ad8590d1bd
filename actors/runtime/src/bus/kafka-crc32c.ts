// CRC-32C (Castagnoli), the checksum of Kafka record batches, table-driven 16 bytes at a time.
// It covers every produced byte, so its speed bounds publishing: this is about five times
// faster in V8 than a byte-at-a-time loop (kafkajs's), and can run over chunks.

const POLYNOMIAL = 0x82f63b78 // CRC-32C, reversed
const SLICES = 16

/** TABLE[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
const TABLE = (() => {
  const table = new Int32Array(256 * SLICES)
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1
    table[byte] = crc
  }
  for (let k = 1; k < SLICES; k++) {
    for (let byte = 0; byte < 256; byte++) {
      const previous = table[(k - 1) * 256 + byte]!
      table[k * 256 + byte] = (previous >>> 8) ^ table[previous & 0xff]!
    }
  }
  return table
})()

/** CRC-32C of bytes, as an unsigned 32-bit integer. */
export const crc32c = (bytes: Uint8Array): number => crc32cFinish(crc32cUpdate(CRC32C_START, bytes))

/** Running state before any byte: feed chunks with crc32cUpdate, then crc32cFinish. */
export const CRC32C_START = -1

export const crc32cFinish = (state: number): number => (state ^ -1) >>> 0

/** Folds bytes into a running CRC-32C state (from CRC32C_START or a previous update). */
export function crc32cUpdate(state: number, bytes: Uint8Array): number {
  const T = TABLE
  const length = bytes.length
  const end = length - (length & 15)
  let crc = state
  let i = 0
  for (; i < end; i += 16) {
    const a = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))
    crc =
      T[3840 + (a & 0xff)]! ^
      T[3584 + ((a >>> 8) & 0xff)]! ^
      T[3328 + ((a >>> 16) & 0xff)]! ^
      T[3072 + (a >>> 24)]! ^
      T[2816 + bytes[i + 4]!]! ^
      T[2560 + bytes[i + 5]!]! ^
      T[2304 + bytes[i + 6]!]! ^
      T[2048 + bytes[i + 7]!]! ^
      T[1792 + bytes[i + 8]!]! ^
      T[1536 + bytes[i + 9]!]! ^
      T[1280 + bytes[i + 10]!]! ^
      T[1024 + bytes[i + 11]!]! ^
      T[768 + bytes[i + 12]!]! ^
      T[512 + bytes[i + 13]!]! ^
      T[256 + bytes[i + 14]!]! ^
      T[bytes[i + 15]!]!
  }
  for (; i < length; i++) crc = T[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)
  return crc
}
