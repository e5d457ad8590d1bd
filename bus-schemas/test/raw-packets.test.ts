// flows.raw messages: hand-written codec against protobufjs, sniffing, malformed input.

import { describe, expect, it } from 'vitest'
import { FlowProtocol } from '../src/generated/flowbus.js'
import { parseIP } from '../src/ip.js'
import { decodeRawPacketBatch, encodeRawPacketBatch, sniffProtocol, type RawPacketBatch } from '../src/raw-packets.js'
import { WireFormatError } from '../src/wire.js'
import { loadReferenceRoot } from './fixtures/reference.js'
import { prng, randomBytes } from './fixtures/sample-flows.js'

const root = loadReferenceRoot()
const type = root.lookupType('flowbus.v1.RawPacketBatch')

function sampleBatch(): RawPacketBatch {
  const rand = prng(7)
  return {
    receiver: 'receiver-1 (worker 2)',
    packets: [
      { exporterAddress: parseIP('192.0.2.1'), exporterPort: 2055, receivedNs: 1_760_000_000_123_456_789n, protocol: FlowProtocol.IPFIX, payload: randomBytes(rand, 1400) },
      { exporterAddress: parseIP('2001:db8::7'), exporterPort: 65535, receivedNs: 18446744073709551615n, protocol: FlowProtocol.SFLOW_V5, payload: randomBytes(rand, 3) },
      { exporterAddress: parseIP('10.0.0.1'), exporterPort: 0, receivedNs: 0n, protocol: FlowProtocol.UNKNOWN, payload: new Uint8Array(0) },
    ],
  }
}

/** protobufjs's view of a batch, with bytes and 64-bit values normalised for comparison. */
function referenceView(bytes: Uint8Array): unknown {
  const o = type.toObject(type.decode(bytes), { longs: String, enums: Number, defaults: true, arrays: true }) as {
    receiver: string
    packets: Record<string, unknown>[]
  }
  return {
    receiver: o.receiver,
    packets: o.packets.map((p) => ({
      exporter_address: Array.from(p['exporter_address'] as Uint8Array),
      exporter_port: p['exporter_port'],
      received_ns: BigInt(p['received_ns'] as string),
      protocol: p['protocol'],
      payload: Array.from(p['payload'] as Uint8Array),
    })),
  }
}

const ourView = (b: RawPacketBatch): unknown => ({
  receiver: b.receiver,
  packets: b.packets.map((p) => ({
    exporter_address: Array.from(p.exporterAddress),
    exporter_port: p.exporterPort,
    received_ns: p.receivedNs,
    protocol: p.protocol,
    payload: Array.from(p.payload),
  })),
})

describe('RawPacketBatch codec', () => {
  it('protobufjs decodes what we encode', () => {
    const batch = sampleBatch()
    expect(referenceView(encodeRawPacketBatch(batch))).toEqual(ourView(batch))
  })

  it('we decode what protobufjs encodes', () => {
    const batch = sampleBatch()
    const encoded = type
      .encode(
        type.fromObject({
          receiver: batch.receiver,
          packets: batch.packets.map((p) => ({
            exporter_address: p.exporterAddress,
            exporter_port: p.exporterPort,
            received_ns: p.receivedNs.toString(),
            protocol: p.protocol,
            payload: p.payload,
          })),
        }),
      )
      .finish()
    expect(ourView(decodeRawPacketBatch(encoded))).toEqual(ourView(batch))
  })

  it('decoded payloads are views of the message (no copy)', () => {
    const bytes = encodeRawPacketBatch(sampleBatch())
    const decoded = decodeRawPacketBatch(bytes)
    expect(decoded.packets[0]!.payload.buffer).toBe(bytes.buffer)
    expect(decodeRawPacketBatch(new Uint8Array(0))).toEqual({ receiver: '', packets: [] })
    // An all-default packet (every field omitted on the wire) still has a 16-byte address.
    const sparse = decodeRawPacketBatch(type.encode(type.fromObject({ packets: [{}] })).finish())
    expect(sparse.packets[0]).toEqual({ exporterAddress: new Uint8Array(16), exporterPort: 0, receivedNs: 0n, protocol: 0, payload: new Uint8Array(0) })
  })

  it('refuses to encode a bad address or port, naming the packet', () => {
    const batch = sampleBatch()
    batch.packets[1]!.exporterAddress = new Uint8Array(4)
    expect(() => encodeRawPacketBatch(batch)).toThrow(/packet 1 exporter address has 4 bytes, expected 16/)
    batch.packets[1]!.exporterAddress = new Uint8Array(16)
    batch.packets[1]!.exporterPort = 70000
    expect(() => encodeRawPacketBatch(batch)).toThrow(/packet 1 has port 70000, protocol 4 or time/)
  })

  it('throws WireFormatError on malformed input and survives mutation fuzzing', () => {
    const good = encodeRawPacketBatch(sampleBatch())
    expect(() => decodeRawPacketBatch(good.subarray(0, 100))).toThrow(WireFormatError)
    expect(() => decodeRawPacketBatch(good.subarray(0, 100))).toThrow(/field packets\[0\]/)
    const rand = prng(3)
    for (let i = 0; i < 2000; i++) {
      const bytes = good.slice()
      for (let m = 0; m < 3; m++) bytes[Math.floor(rand() * 40)] = Math.floor(rand() * 256)
      try {
        decodeRawPacketBatch(bytes)
      } catch (e) {
        expect(e).toBeInstanceOf(Error)
      }
    }
  })
})

describe('sniffProtocol', () => {
  it('recognises the version fields', () => {
    expect(sniffProtocol(Uint8Array.of(0, 5, 0, 1))).toBe(FlowProtocol.NETFLOW_V5)
    expect(sniffProtocol(Uint8Array.of(0, 9, 0, 1))).toBe(FlowProtocol.NETFLOW_V9)
    expect(sniffProtocol(Uint8Array.of(0, 10, 0, 100))).toBe(FlowProtocol.IPFIX)
    expect(sniffProtocol(Uint8Array.of(0, 0, 0, 5, 0, 0, 0, 1))).toBe(FlowProtocol.SFLOW_V5)
    expect(sniffProtocol(Uint8Array.of(0, 0, 0, 4))).toBe(FlowProtocol.UNKNOWN)
    expect(sniffProtocol(Uint8Array.of(0, 9))).toBe(FlowProtocol.UNKNOWN)
  })
})
