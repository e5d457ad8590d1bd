// IP and MAC addresses as flowbus carries them: 16 bytes per IP (IPv4 as IPv4-mapped IPv6).
// Text form follows RFC 5952 for IPv6 and prints IPv4-mapped addresses as a plain dotted quad.

/** True when the 16 bytes at offset are an IPv4-mapped address `::ffff:a.b.c.d`. */
export function isIPv4Mapped(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff
}

/** Writes the IPv4-mapped form of an IPv4 address given as a u32 (network order value). */
export function writeIPv4Mapped(out: Uint8Array, offset: number, ipv4: number): void {
  out.fill(0, offset, offset + 10)
  out[offset + 10] = 0xff
  out[offset + 11] = 0xff
  out[offset + 12] = ipv4 >>> 24
  out[offset + 13] = (ipv4 >>> 16) & 0xff
  out[offset + 14] = (ipv4 >>> 8) & 0xff
  out[offset + 15] = ipv4 & 0xff
}

/** 16-byte IPv4-mapped address of an IPv4 address given as a u32. */
export function ipv4ToMapped(ipv4: number): Uint8Array {
  const out = new Uint8Array(16)
  writeIPv4Mapped(out, 0, ipv4)
  return out
}

/**
 * Text form of the 16-byte address at offset: dotted quad for IPv4-mapped addresses,
 * otherwise RFC 5952 (lowercase hex, no leading zeros, longest run of two or more zero
 * groups shortened to `::`, the first such run on a tie).
 */
export function formatIP(bytes: Uint8Array, offset = 0): string {
  if (bytes.length < offset + 16) {
    throw new RangeError(`an IP address needs 16 bytes, got ${Math.max(0, bytes.length - offset)}`)
  }
  if (isIPv4Mapped(bytes, offset)) {
    return `${bytes[offset + 12]}.${bytes[offset + 13]}.${bytes[offset + 14]}.${bytes[offset + 15]}`
  }
  const groups = new Array<number>(8)
  for (let i = 0; i < 8; i++) groups[i] = (bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!
  // Longest run of zero groups; a single zero group is never shortened (RFC 5952 4.2.2).
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = (from: number, to: number): string =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':')
  if (bestStart < 0) return hex(0, 8)
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`
}

const fail = (text: string, why: string): never => {
  throw new Error(`invalid IP address "${text}": ${why}`)
}

function parseIPv4Into(text: string, part: string, out: Uint8Array, offset: number): void {
  const octets = part.split('.')
  if (octets.length !== 4) fail(text, 'an IPv4 address has four dotted decimal parts')
  for (let i = 0; i < 4; i++) {
    const o = octets[i]!
    if (!/^(0|[1-9][0-9]{0,2})$/.test(o) || Number(o) > 255) fail(text, `"${o}" is not a decimal number 0-255`)
    out[offset + i] = Number(o)
  }
}

/**
 * Parses an IPv4 (dotted quad, returned IPv4-mapped) or IPv6 address (any valid RFC 4291
 * text form, including `::` and a trailing dotted quad) into 16 bytes. Throws an Error naming
 * the input when it is not an address; zone ids (`%eth0`) and prefixes (`/24`) are rejected.
 */
export function parseIP(text: string): Uint8Array {
  const out = new Uint8Array(16)
  if (!text.includes(':')) {
    out[10] = 0xff
    out[11] = 0xff
    parseIPv4Into(text, text, out, 12)
    return out
  }
  // A trailing dotted quad stands for the last two groups: parse it aside, keep two placeholders.
  let hex = text
  const lastColon = text.lastIndexOf(':')
  const lastPart = text.slice(lastColon + 1)
  const ipv4 = lastPart.includes('.') ? new Uint8Array(4) : undefined
  if (ipv4) {
    parseIPv4Into(text, lastPart, ipv4, 0)
    hex = `${text.slice(0, lastColon + 1)}0:0`
  }
  const halves = hex.split('::')
  if (halves.length > 2) fail(text, '"::" may appear only once')
  const head = halves[0] === '' ? [] : halves[0]!.split(':')
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1]!.split(':') : []
  if (halves.length === 1 && head.length !== 8) fail(text, 'an IPv6 address without "::" has eight groups')
  if (halves.length === 2 && head.length + tail.length > 7) fail(text, 'too many groups around "::"')
  const write = (groups: string[], at: number): void => {
    groups.forEach((g, i) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) fail(text, `"${g}" is not a group of 1-4 hex digits`)
      const v = parseInt(g, 16)
      out[at + 2 * i] = v >> 8
      out[at + 2 * i + 1] = v & 0xff
    })
  }
  write(head, 0)
  write(tail, 16 - 2 * tail.length)
  if (ipv4) out.set(ipv4, 12)
  return out
}

/** `aa:bb:cc:dd:ee:ff` from a 48-bit MAC held as a number. */
export function formatMAC(mac: number): string {
  const hi = Math.floor(mac / 0x100000000) & 0xffff
  const lo = mac >>> 0
  const b = [hi >>> 8, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff]
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':')
}

/** 48-bit MAC as a number from `aa:bb:cc:dd:ee:ff` (or `-` separated); throws naming the input. */
export function parseMAC(text: string): number {
  const parts = text.split(/[:-]/)
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`invalid MAC address "${text}": expected six hex bytes like aa:bb:cc:dd:ee:ff`)
  }
  return parts.reduce((acc, p) => acc * 256 + parseInt(p, 16), 0)
}
