// Writes generated traffic as a pcap file that exporters (softflowd, pmacctd) read like a capture
// of a real link; Wireshark's text2pcap does the file format, from a hex dump of our frames.

import { execFile } from 'node:child_process'
import { writeFile, unlink } from 'node:fs/promises'
import { promisify } from 'node:util'
import type { TrafficPacket } from './traffic.js'

const execFileAsync = promisify(execFile)

/**
 * Writes packets as an Ethernet pcap at `path` (microsecond timestamps). The runtime's
 * writePcap only builds UDP datagrams; these are raw TCP/UDP/ICMP frames, so the file is made by
 * text2pcap (Debian package wireshark-common, installed with tshark: pass its path from
 * ensureFlowTools()).
 */
export async function writeTrafficPcap(path: string, packets: readonly TrafficPacket[], text2pcap = 'text2pcap'): Promise<void> {
  const dump = `${path}.hex`
  await writeFile(dump, hexDump(packets))
  try {
    await execFileAsync(text2pcap, ['-q', '-F', 'pcap', '-t', '%s.%f', dump, path], { env: { ...process.env, TZ: 'UTC' } })
  } finally {
    await unlink(dump).catch(() => undefined)
  }
}

/** text2pcap input: a timestamp line (seconds.microseconds) before each packet's offset-prefixed hex lines. */
function hexDump(packets: readonly TrafficPacket[]): string {
  const hex: string[] = []
  for (let i = 0; i < 256; i++) hex.push(i.toString(16).padStart(2, '0'))
  const lines: string[] = []
  for (const packet of packets) {
    const seconds = packet.timestampNs / 1_000_000_000n
    const micros = (packet.timestampNs % 1_000_000_000n) / 1000n
    lines.push(`${seconds}.${micros.toString().padStart(6, '0')}`)
    const frame = packet.frame
    for (let offset = 0; offset < frame.length; offset += 16) {
      let line = offset.toString(16).padStart(6, '0')
      const end = Math.min(offset + 16, frame.length)
      for (let i = offset; i < end; i++) line += ` ${hex[frame[i]!]}`
      lines.push(line)
    }
  }
  lines.push('')
  return lines.join('\n')
}
