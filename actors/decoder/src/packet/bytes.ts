// Big-endian reads and address copies for wire formats read straight from a Uint8Array.
// Callers check bounds first: these never do, so they stay small enough to inline.

export const readU16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!

export const readU32 = (b: Uint8Array, o: number): number =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0

/** A 64-bit counter as a number: exact up to 2^53, like FlowBatch u64 columns. */
export const readU64 = (b: Uint8Array, o: number): number => readU32(b, o) * 4294967296 + readU32(b, o + 4)

/** A 48-bit MAC address as a number, the form of FlowBatch mac columns. */
export const readMAC = (b: Uint8Array, o: number): number => ((b[o]! << 8) | b[o + 1]!) * 4294967296 + readU32(b, o + 2)

/** Writes the IPv4 address at b[o..o+4) as IPv4-mapped IPv6 into out[at..at+16). */
export function copyIPv4Mapped(out: Uint8Array, at: number, b: Uint8Array, o: number): void {
  for (let i = 0; i < 10; i++) out[at + i] = 0
  out[at + 10] = 0xff
  out[at + 11] = 0xff
  out[at + 12] = b[o]!
  out[at + 13] = b[o + 1]!
  out[at + 14] = b[o + 2]!
  out[at + 15] = b[o + 3]!
}

/** Copies the 16-byte IPv6 address at b[o..o+16) into out[at..at+16). */
export function copyIPv6(out: Uint8Array, at: number, b: Uint8Array, o: number): void {
  for (let i = 0; i < 16; i++) out[at + i] = b[o + i]!
}
