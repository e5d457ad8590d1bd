// Test helper: the link-layer frames of a classic pcap file (what the sampled-frame fixtures are),
// and a one-frame-per-datagram Ethernet/IPv4/UDP pcap writer for feeding tshark.
import { readFileSync } from 'node:fs'

/** Every frame of a classic (libpcap) capture, as views into the file bytes. */
export function readPcapFrames(path: string): { linkType: number; frames: Uint8Array[] } {
  const bytes = new Uint8Array(readFileSync(path))
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = view.getUint32(0, true)
  let little: boolean
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false
  else throw new Error(`${path}: not a classic pcap file`)
  const linkType = view.getUint32(20, little) & 0xffff
  const frames: Uint8Array[] = []
  for (let o = 24; o + 16 <= bytes.length; ) {
    const captured = view.getUint32(o + 8, little)
    o += 16
    if (o + captured > bytes.length) break
    frames.push(bytes.subarray(o, o + captured))
    o += captured
  }
  return { linkType, frames }
}

/** A classic pcap file of the given frames (link type 1 Ethernet, 228 raw IPv4, 229 raw IPv6…). */
export function writeFramePcap(frames: readonly Uint8Array[], linkType: number): Uint8Array {
  const size = 24 + frames.reduce((n, f) => n + 16 + f.length, 0)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  view.setUint32(0, 0xa1b2c3d4, true)
  view.setUint16(4, 2, true)
  view.setUint16(6, 4, true)
  view.setUint32(16, 65535, true)
  view.setUint32(20, linkType, true)
  let o = 24
  frames.forEach((frame, i) => {
    view.setUint32(o, 1_700_000_000 + i, true)
    view.setUint32(o + 8, frame.length, true)
    view.setUint32(o + 12, frame.length, true)
    out.set(frame, o + 16)
    o += 16 + frame.length
  })
  return out
}
