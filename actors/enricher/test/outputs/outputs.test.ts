// The enricher's outputs: the live sample (one flow in N across batches) and JSON lines packed
// under the bus limit (test/enricher/json-export-nats.test.ts reads the export from plain NATS).
import { flowBatchToRows } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { jsonLines, jsonMessages } from '../../src/outputs/json-export.js'
import { LiveSampler } from '../../src/outputs/live.js'
import { decodedBatch } from '../flows.js'

describe('live sample', () => {
  it('takes one flow in N across batches of any size, and nothing when off', () => {
    const sampler = new LiveSampler(7)
    const picked: number[] = []
    let first = 0
    for (const size of [3, 10, 1, 20, 6]) {
      const sample = sampler.sample(decodedBatch('192.0.2.1', first, size))
      if (sample) picked.push(...flowBatchToRows(sample).map((r) => r.Bytes as number))
      first += size
    }
    expect(picked).toEqual([6, 13, 20, 27, 34])
    expect(new LiveSampler(0).sample(decodedBatch('192.0.2.1', 0, 100))).toBeUndefined()
    expect(flowBatchToRows(new LiveSampler(1).sample(decodedBatch('192.0.2.1', 0, 3))!).map((r) => r.Bytes)).toEqual([0, 1, 2])
  })
})

describe('JSON export messages', () => {
  it('packs whole lines under the byte limit, a longer line alone', () => {
    const lines = jsonLines(decodedBatch('192.0.2.1', 0, 50))
    const size = Buffer.byteLength(lines[0]!)
    const messages = jsonMessages(lines, size * 10 + 5)
    expect(messages.length).toBeGreaterThan(3)
    const text = messages.map((m) => new TextDecoder().decode(m))
    expect(text.join('')).toBe(lines.join(''))
    for (const t of text) expect(t.endsWith('\n')).toBe(true)
    for (const m of messages) expect(m.length).toBeLessThanOrEqual(size * 10 + 5)
    expect(jsonMessages(['x'.repeat(100)], 10).length).toBe(1)
  })
})
