// `flowbus replay`: sends the UDP payloads of pcap/pcapng captures, in file order, to a collector;
// for load tests and demos. Optional packets/s cap and repetition, progress on a terminal.
import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import { formatPcapSkips, newPcapReadStats, readPcapUdp } from '@flowbus/runtime'
import { type Command, UsageError } from '../command.js'

const help = `Reads every UDP datagram of the captures (pcap or pcapng; Ethernet, Linux cooked, loopback/null
and raw IP link types; IPv4 and IPv6) and sends its payload, in file order, to HOST:PORT from one
local socket. The original source address is not kept: the collector sees this machine as the
exporter. Every file is read before the first datagram is sent.

Options:
  --pcap FILE       capture to replay; repeat for several files, sent in the order given
  --to HOST:PORT    collector address: 127.0.0.1:2055, [::1]:2055 or a host name
  --rate PPS        at most this many datagrams per second (default 0: as fast as the local
                    socket takes them, which can overrun a collector's receive buffer)
  --loop N          send the whole sequence N times (default 1)
  -h, --help        show this help

Capture timestamps are not followed: --rate gives an even pace, which is what a load test needs.
A progress bar is drawn on stderr when the output is a terminal; the summary line (datagrams,
bytes, seconds, rate) is printed at the end. Exit code 0 once everything was sent, 1 when a file
could not be read or the collector address could not be resolved, 2 for a usage error.`

/** Sends in flight at once: enough to keep the kernel busy without queueing the whole capture in libuv. */
const WINDOW = 64

interface Target {
  readonly host: string
  readonly port: number
  readonly type: 'udp4' | 'udp6'
}

export function parseTarget(text: string): Target {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  if (!match) throw new UsageError(`--to must be HOST:PORT (IPv6 in brackets, e.g. [::1]:2055), got "${text}"`)
  const port = Number(match[3])
  if (port < 1 || port > 65535) throw new UsageError(`--to port must be 1-65535, got ${port}`)
  const host = (match[1] ?? match[2])!
  return { host, port, type: match[1] !== undefined ? 'udp6' : 'udp4' }
}

const numberFlag = (value: string | true | undefined, name: string, fallback: number, integerMin: number): number => {
  if (value === undefined) return fallback
  const n = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN
  if (!Number.isFinite(n) || n < integerMin || (name === 'loop' && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${name === 'loop' ? 'a whole number ≥ 1' : 'a number ≥ 0'}, got "${String(value)}"`)
  }
  return n
}

const formatBytes = (n: number): string =>
  n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`

export const replayCommand: Command = {
  summary: 'send the UDP payloads of pcap/pcapng captures to a collector',
  usage: 'flowbus replay --pcap FILE [--pcap FILE2 …] --to HOST:PORT [--rate PPS] [--loop N]',
  help,
  valuedFlags: ['pcap', 'to', 'rate', 'loop'],
  run: async (args, context) => {
    const files = args.values.get('pcap') ?? []
    if (files.length === 0) throw new UsageError('replay needs at least one --pcap FILE')
    const to = args.flags.get('to')
    if (typeof to !== 'string') throw new UsageError('replay needs --to HOST:PORT')
    const target = parseTarget(to)
    const rate = numberFlag(args.flags.get('rate'), 'rate', 0, 0)
    const loops = numberFlag(args.flags.get('loop'), 'loop', 1, 1)

    const payloads: Uint8Array[] = []
    for (const file of files) {
      let bytes: Uint8Array
      try {
        bytes = readFileSync(file)
      } catch (error) {
        context.stderr(`flowbus replay: ${file}: ${error instanceof Error ? error.message : String(error)}\n`)
        return 1
      }
      const stats = newPcapReadStats()
      try {
        for (const record of readPcapUdp(bytes, file, stats)) payloads.push(record.payload)
      } catch (error) {
        context.stderr(`flowbus replay: ${error instanceof Error ? error.message : String(error)}\n`)
        return 1
      }
      const skipped = formatPcapSkips(stats)
      context.stderr(`${file}: ${stats.udp} UDP datagrams of ${stats.frames} frames${skipped ? ` (skipped: ${skipped})` : ''}\n`)
    }

    const total = payloads.length * loops
    const socket = dgram.createSocket(target.type)
    let sent = 0
    let bytes = 0
    let failure: Error | undefined
    const started = performance.now()
    let lastDrawn = 0
    const progress = (final: boolean): void => {
      if (!context.isTTY) return
      const now = performance.now()
      if (!final && now - lastDrawn < 100) return
      lastDrawn = now
      const width = 30
      const done = total === 0 ? 1 : sent / total
      const seconds = (now - started) / 1000
      const pps = seconds > 0 ? Math.round(sent / seconds) : 0
      const bar = '#'.repeat(Math.round(done * width)).padEnd(width, '.')
      context.stderr(`\r[${bar}] ${(done * 100).toFixed(0).padStart(3)}% ${sent}/${total} datagrams ${formatBytes(bytes)} ${pps}/s${final ? '\n' : ''}`)
    }

    try {
      let inFlight = 0
      let wake: (() => void) | undefined
      const settled = (error: Error | null): void => {
        inFlight--
        if (error && !failure) failure = error
        wake?.()
      }
      const room = async (): Promise<void> => {
        while (inFlight >= WINDOW) await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
      }
      for (let loop = 0; loop < loops && !failure; loop++) {
        for (const payload of payloads) {
          if (failure) break
          if (rate > 0) {
            // Even pacing: datagram n leaves no earlier than n/rate seconds after the start.
            const due = started + (sent / rate) * 1000
            const wait = due - performance.now()
            if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, wait))
          }
          await room()
          inFlight++
          socket.send(payload, target.port, target.host, settled)
          sent++
          bytes += payload.length
          progress(false)
        }
      }
      while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve))
    } finally {
      socket.close()
    }
    if (failure) {
      progress(true)
      context.stderr(`flowbus replay: sending to ${to} failed after ${sent} datagrams: ${failure.message}\n`)
      return 1
    }
    progress(true)
    const seconds = (performance.now() - started) / 1000
    const pps = seconds > 0 ? Math.round(sent / seconds) : sent
    context.stdout(`sent ${sent} datagrams (${bytes} bytes) to ${to} in ${seconds.toFixed(3)} s: ${pps} datagrams/s\n`)
    return 0
  },
}
