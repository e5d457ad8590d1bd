// Bounded fuzzing of every flow decoder in `npm test`: mutated real datagrams never make a decoder
// throw, every datagram that must fail is counted as an error, and only known reasons are reported.
// scripts/fuzz-long.sh runs the same with FUZZ_PACKETS=1000000 per protocol.

import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { FUZZ_PROTOCOLS, type FuzzResult, TESTDATA, fuzzProtocol, loadCorpus } from './fuzz.js'

const packets = Number(process.env.FUZZ_PACKETS ?? 20_000)
const seed = Number(process.env.FUZZ_SEED ?? 0x5eed)
const haveTestdata = existsSync(TESTDATA)
if (!haveTestdata && process.env.CI === 'true') throw new Error(`captures missing under ${TESTDATA} (CI=true: they are required)`)

const summary = (r: FuzzResult): string => {
  const list = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ')
  return `fuzz ${r.protocol}: ${r.packets} mutated packets in ${r.seconds.toFixed(1)} s (${Math.round(r.packets / r.seconds)} packets/s); ${r.flows} flows; mutations: ${list(r.byKind)}; decoder errors: ${list(r.errors)}; loop errors: ${list(r.loopErrors)}`
}

describe.skipIf(!haveTestdata)('decoders under mutated datagrams', () => {
  const corpus = haveTestdata ? loadCorpus() : undefined

  it.each(FUZZ_PROTOCOLS)(
    '%s: no exception, every bad datagram counted',
    (protocol) => {
      const result = fuzzProtocol(protocol, corpus![protocol], packets, seed)
      console.info(summary(result))
      expect(result.exceptions, 'exceptions escaped the decoder').toEqual([])
      expect(result.silent, 'datagrams that must fail were decoded without an error').toEqual([])
      expect(result.defects).toEqual([])
      // Every mutated datagram went through the loop, which counted it (its packet metric).
      expect(result.loopPackets).toBeGreaterThanOrEqual(packets)
      const total = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0)
      expect(total(result.errors)).toBeGreaterThan(0)
      expect(total(result.loopErrors)).toBeGreaterThan(0)
      // The same datagrams went through the decoder alone and through the loop: the loop's
      // metrics must see at least the decoder's own errors on the datagrams whose version the
      // mutation kept (it adds bad-version for the others).
      expect(total(result.loopErrors)).toBeGreaterThanOrEqual(total(result.errors) * 0.9)
      // Mutations reach past the header: some still decode to flows.
      expect(result.flows).toBeGreaterThan(0)
      if (protocol === 'netflow-v9' || protocol === 'ipfix') {
        expect(result.errors['template-limit'] ?? 0, 'template bombs must hit the per-domain template limit').toBeGreaterThan(0)
        expect(result.errors['bad-template'] ?? 0).toBeGreaterThan(0)
      }
    },
    // ~3k packets/s for the template protocols on this machine, under load: leave room for the long run.
    Math.max(120_000, packets * 2),
  )
})
