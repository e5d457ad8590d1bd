// Kernel receive-queue drops of our UDP sockets, from Linux's /proc/net/udp and /proc/net/udp6:
// datagrams the kernel discarded because the socket buffer was full, which no counter in Node sees.
import { readFile } from 'node:fs/promises'

/** One socket line of /proc/net/udp or /proc/net/udp6. */
export interface UdpSocketEntry {
  /** Local address, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  localAddress: Uint8Array
  localPort: number
  /** Bytes waiting in the receive queue. */
  receiveQueue: number
  inode: number
  /** Datagrams dropped since the socket was created. */
  drops: number
}

/**
 * Parses the text of /proc/net/udp or /proc/net/udp6. Addresses are written as 32-bit words in the
 * kernel's byte order (little-endian on x86 and arm64), hex; ports and queues as big hex numbers.
 * Lines that do not parse (the header, a future format) are ignored.
 */
export function parseProcNetUdp(text: string, littleEndian = true): UdpSocketEntry[] {
  const entries: UdpSocketEntry[] = []
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 13 || !/^\d+:$/.test(fields[0]!)) continue
    const [address, port] = fields[1]!.split(':') as [string, string | undefined]
    const queues = fields[4]!.split(':')
    if (port === undefined || (address.length !== 8 && address.length !== 32) || queues.length !== 2) continue
    const localAddress = new Uint8Array(16)
    if (address.length === 8) {
      localAddress[10] = localAddress[11] = 0xff
      writeWord(localAddress, 12, address, littleEndian)
    } else {
      for (let w = 0; w < 4; w++) writeWord(localAddress, w * 4, address.slice(w * 8, w * 8 + 8), littleEndian)
    }
    entries.push({
      localAddress,
      localPort: parseInt(port, 16),
      receiveQueue: parseInt(queues[1]!, 16),
      inode: Number(fields[9]),
      drops: Number(fields[12] ?? 0),
    })
  }
  return entries
}

function writeWord(out: Uint8Array, at: number, hex: string, littleEndian: boolean): void {
  const word = parseInt(hex, 16)
  for (let i = 0; i < 4; i++) {
    const byte = (word >>> (8 * (littleEndian ? i : 3 - i))) & 0xff
    out[at + i] = byte
  }
}

/**
 * Sum of kernel drops of the sockets bound to any of `ports`, IPv4 and IPv6. An absent file (not
 * Linux, or no IPv6) counts as no socket. Matching by port is exact for the receiver: the port is
 * held by our sockets only (SO_REUSEPORT lets only the same user share it).
 */
export async function readUdpDrops(ports: ReadonlySet<number>, files = ['/proc/net/udp', '/proc/net/udp6']): Promise<Map<number, number>> {
  const drops = new Map<number, number>()
  for (const file of files) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch {
      continue
    }
    for (const entry of parseProcNetUdp(text)) {
      if (ports.has(entry.localPort)) drops.set(entry.localPort, (drops.get(entry.localPort) ?? 0) + entry.drops)
    }
  }
  return drops
}
