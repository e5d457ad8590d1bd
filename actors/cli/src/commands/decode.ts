// `flowbus decode`: decodes the NetFlow/IPFIX/sFlow datagrams of pcap/pcapng captures with the
// decoder actor's own loop and prints the flows as JSON lines (Akvorado column names) or a table.
import { readFileSync } from 'node:fs'
import { type FlowRow, type RawPacket, flowBatchToRows, sniffProtocol } from '@flowbus/bus-schemas'
import { DecodeTally, createDecoder } from '@flowbus/decoder'
import { formatPcapSkips, newPcapReadStats, readPcapUdp } from '@flowbus/runtime'
import { type Command, UsageError } from '../command.js'


const help = `Reads every UDP datagram of the captures in file order (pcap or pcapng; Ethernet, Linux
cooked, loopback/null and raw IP link types; IPv4 and IPv6), takes the exporter address from
the datagram's source IP, decodes NetFlow v5/v9, IPFIX and sFlow v5 with the decoder actor's
code, and prints one flow per line. Templates carry over from packet to packet and from one
file to the next, so a template capture can be given before a data capture.

Options:
  --pcap FILE          capture to decode; repeat for several files, decoded in the order given
  --format jsonl       one JSON object per flow, keys are the flow column names (default)
  --format table       aligned columns for reading
  -h, --help           show this help

Errors (truncated datagrams, missing templates, …) are summed up on stderr with counts per
reason. Exit code 0 when every file was read, even with decoding errors; 1 when a file could
not be read (missing, not a capture).`

const formatTable = (rows: readonly FlowRow[]): string => {
  const columns: string[] = []
  const seen = new Set<string>()
  for (const row of rows) {
    for (const name of Object.keys(row)) {
      if (!seen.has(name)) {
        seen.add(name)
        columns.push(name)
      }
    }
  }
  const cell = (value: unknown): string =>
    value === undefined ? '' : Array.isArray(value) ? value.map((v) => (Array.isArray(v) ? v.join(':') : String(v))).join(' ') : String(value)
  const cells = rows.map((row) => columns.map((c) => cell(row[c as keyof FlowRow])))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)))
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return `${[line(columns), ...cells.map(line)].join('\n')}\n`
}

export const decodeCommand: Command = {
  summary: 'decode flows from pcap/pcapng captures and print them',
  usage: 'flowbus decode --pcap FILE [--pcap FILE2 …] [--format jsonl|table]',
  help,
  valuedFlags: ['pcap', 'format'],
  run: async (args, context) => {
    const files = args.values.get('pcap') ?? []
    if (files.length === 0) throw new UsageError('decode needs at least one --pcap FILE')
    const format = args.flags.get('format') ?? 'jsonl'
    if (format !== 'jsonl' && format !== 'table') throw new UsageError(`--format must be jsonl or table, got "${String(format)}"`)

    const tally = new DecodeTally()
    // One set of decoders for every file: templates learnt in one capture decode the next.
    // Held data waits for its template until the end of the input, whatever the capture times say.
    const { decoder, templates } = createDecoder({ observer: tally, maxFlowsPerBatch: 4096, holdMs: 1e15 })
    const tableRows: FlowRow[] = []
    let flows = 0
    const emit = (packets: RawPacket[]) => {
      const output = decoder.decode(packets)
      for (const { batch } of output.flows) {
        const rows = flowBatchToRows(batch)
        flows += rows.length
        if (format === 'table') tableRows.push(...rows)
        else context.stdout(rows.map((row) => `${JSON.stringify(row)}\n`).join(''))
      }
    }

    let unreadable = 0
    for (const file of files) {
      let bytes: Uint8Array
      try {
        bytes = readFileSync(file)
      } catch (error) {
        unreadable++
        context.stderr(`flowbus decode: ${file}: ${error instanceof Error ? error.message : String(error)}\n`)
        continue
      }
      const stats = newPcapReadStats()
      let datagrams = 0
      try {
        // One datagram per loop call: the loop groups its output by exporter, and a capture of
        // several exporters should print in file order.
        for (const record of readPcapUdp(bytes, file, stats)) {
          datagrams++
          emit([
            {
              exporterAddress: record.srcAddress,
              exporterPort: record.srcPort,
              receivedNs: record.timestampNs,
              protocol: sniffProtocol(record.payload),
              payload: record.payload,
            },
          ])
        }
      } catch (error) {
        // The reader throws only when the bytes are not a capture at all.
        unreadable++
        context.stderr(`flowbus decode: ${error instanceof Error ? error.message : String(error)}\n`)
        continue
      }
      const skipped = formatPcapSkips(stats)
      context.stderr(`${file}: ${datagrams} UDP datagrams of ${stats.frames} frames${skipped ? ` (skipped: ${skipped})` : ''}\n`)
    }
    // Data still waiting for a template at the end never will get one: count it.
    decoder.runOutside(0, () => templates.expireHeld(Number.MAX_SAFE_INTEGER))

    if (format === 'table' && tableRows.length > 0) context.stdout(formatTable(tableRows))
    const perProtocol = [...tally.flowCounts].map(([p, n]) => `${n} ${p}`).join(', ')
    context.stderr(`decoded ${flows} flows${perProtocol ? ` (${perProtocol})` : ''} from ${[...tally.packets.values()].reduce((a, b) => a + b, 0)} datagrams\n`)
    if (tally.samples > 0) context.stderr(`${tally.samples} interface counter samples (not printed)\n`)
    if (tally.lost > 0) context.stderr(`sequence numbers show ${tally.lost} export units lost before the capture\n`)
    if (tally.errors.size > 0) {
      context.stderr(`errors: ${[...tally.errors].map(([reason, n]) => `${reason} ${n}`).join(', ')}\n`)
      if (context.env.FLOWBUS_DEBUG) for (const detail of tally.errorDetails) context.stderr(`  ${detail}\n`)
    }
    return unreadable > 0 ? 1 : 0
  },
}
