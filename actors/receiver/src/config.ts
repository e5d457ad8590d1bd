// The receiver's configuration section: UDP listeners (name, addresses, sockets per address), the
// kernel receive buffer, how datagrams are batched for flows.raw and how far publishing may lag.
import { parseIP } from '@flowbus/bus-schemas'
import { ByteSize, Duration } from '@flowbus/runtime'
import { Schema } from 'effect'

/** A listen address split into host and port; the host is an IP literal, IPv6 in brackets. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
  readonly family: 4 | 6
}

/** Parses `0.0.0.0:2055`, `[::]:2055` or `[2001:db8::1]:6343`; returns a reason when it cannot. */
export function parseListenAddress(text: string): ListenAddress | string {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  if (!match) return `"${text}" is not host:port (IPv6 hosts in brackets, e.g. [::]:2055)`
  const host = (match[1] ?? match[2])!
  const port = Number(match[3])
  if (port > 65535) return `"${text}": port ${port} is out of range 0-65535`
  try {
    parseIP(host)
  } catch {
    return `"${text}": "${host}" is not an IP address`
  }
  if (match[2] !== undefined && host.includes(':')) return `"${text}": an IPv6 host is written in brackets`
  return { host, port, family: host.includes(':') ? 6 : 4 }
}

const ListenString = Schema.String.pipe(
  Schema.filter((text) => {
    const parsed = parseListenAddress(text)
    return typeof parsed === 'string' ? parsed : true
  }),
)

const positiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())

export const ListenerConfig = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_-]*$/)).annotations({
    description: 'label of the listener in metrics and logs (lowercase letters, digits, - and _)',
  }),
  listen: Schema.Array(ListenString).pipe(Schema.minItems(1)).annotations({
    description:
      'UDP addresses as host:port ([::]:2055 for IPv6). Each is its own socket; an IPv6 socket is IPv6-only, so list 0.0.0.0 and [::] for both',
  }),
  workers: Schema.optionalWith(positiveInt.pipe(Schema.lessThanOrEqualTo(64)), { default: () => 1 }).annotations({
    description:
      'sockets per address sharing the port with SO_REUSEPORT (Node.js 22.12+; one socket on older Node.js), each with its own kernel queue',
  }),
})
export type ListenerConfig = Schema.Schema.Type<typeof ListenerConfig>

const defaultListeners = (): ListenerConfig[] => [
  { name: 'netflow', listen: ['0.0.0.0:2055', '[::]:2055'], workers: 1 },
  { name: 'ipfix', listen: ['0.0.0.0:4739', '[::]:4739'], workers: 1 },
  { name: 'sflow', listen: ['0.0.0.0:6343', '[::]:6343'], workers: 1 },
]

export const ReceiverConfig = Schema.Struct({
  listeners: Schema.optionalWith(
    Schema.Array(ListenerConfig).pipe(
      Schema.filter((listeners) => {
        const names = listeners.map((l) => l.name)
        const twice = names.find((n, i) => names.indexOf(n) !== i)
        return twice === undefined ? true : `listener name "${twice}" is used twice`
      }),
    ),
    { default: defaultListeners },
  ).annotations({
    description:
      'UDP listeners; every protocol is accepted on every listener. An IPv6 address that the host cannot bind (no IPv6) is skipped with a warning',
  }),
  receiveBuffer: Schema.optionalWith(ByteSize, { default: () => 32 * 1024 * 1024 }).annotations({
    description: 'SO_RCVBUF of each socket; Linux caps it at net.core.rmem_max (a warning says so)',
  }),
  batchMaxPackets: Schema.optionalWith(positiveInt, { default: () => 1024 }).annotations({
    description: 'a flows.raw message is sent once it holds this many datagrams of one exporter',
  }),
  batchMaxBytes: Schema.optionalWith(ByteSize, { default: () => 256 * 1024 }).annotations({
    description: 'a flows.raw message is sent once its datagrams reach this size (keep below bus.maxMessageBytes)',
  }),
  flushInterval: Schema.optionalWith(Duration, { default: () => 50 }).annotations({
    description: 'a partial flows.raw message waits at most this long (longer: fewer, larger messages, cheaper per flow in every later stage)',
  }),
  publishers: Schema.optionalWith(positiveInt.pipe(Schema.lessThanOrEqualTo(64)), { default: () => 4 }).annotations({
    description: 'messages published at once; one exporter always goes through the same publisher, in order',
  }),
  maxQueuedMessages: Schema.optionalWith(positiveInt, { default: () => 4096 }).annotations({
    description: 'messages waiting for the bus, all publishers together; beyond, new messages are dropped and counted',
  }),
  maxQueuedBytes: Schema.optionalWith(ByteSize, { default: () => 256 * 1024 * 1024 }).annotations({
    description:
      'memory held by messages waiting for the bus (each pins its batch buffer, at least 64 KiB); beyond, new messages are dropped and counted',
  }),
})
export type ReceiverConfig = Schema.Schema.Type<typeof ReceiverConfig>
