// The receiver's own Prometheus series, besides the actor counters every actor shares: datagrams,
// bytes and errors per exporter, kernel drops and granted buffer per socket, bus backlog.
import type { Registry } from 'prom-client'
import { Counter, Gauge } from 'prom-client'

export interface ReceiverMetrics {
  readonly packets: Counter<'listener' | 'exporter'>
  readonly bytes: Counter<'listener' | 'exporter'>
  readonly errors: Counter<'listener' | 'exporter' | 'reason'>
  readonly kernelDrops: Gauge<'listener' | 'port'>
  readonly receiveBuffer: Gauge<'listener' | 'address'>
  readonly queuedMessages: Gauge
}

/**
 * `readKernelDrops` is called at each scrape, so the gauge shows /proc's value of the moment; it is
 * a gauge because the kernel's count restarts with the socket.
 */
export function makeReceiverMetrics(
  registry: Registry,
  readKernelDrops: () => Promise<ReadonlyArray<{ listener: string; port: number; drops: number }>>,
  queued: () => number,
): ReceiverMetrics {
  const registers = [registry]
  return {
    packets: new Counter({
      name: 'flowbus_receiver_packets_total',
      help: 'UDP datagrams received, by listener and exporter',
      labelNames: ['listener', 'exporter'],
      registers,
    }),
    bytes: new Counter({
      name: 'flowbus_receiver_bytes_total',
      help: 'UDP payload bytes received, by listener and exporter',
      labelNames: ['listener', 'exporter'],
      registers,
    }),
    errors: new Counter({
      name: 'flowbus_receiver_errors_total',
      help: 'Datagrams not published, by listener, exporter and reason (unknown-protocol)',
      labelNames: ['listener', 'exporter', 'reason'],
      registers,
    }),
    kernelDrops: new Gauge({
      name: 'flowbus_receiver_kernel_drops',
      help: 'Datagrams the kernel dropped because a receive buffer was full (/proc/net/udp), since the sockets opened',
      labelNames: ['listener', 'port'],
      registers,
      async collect() {
        for (const { listener, port, drops } of await readKernelDrops()) this.set({ listener, port: String(port) }, drops)
      },
    }),
    receiveBuffer: new Gauge({
      name: 'flowbus_receiver_receive_buffer_bytes',
      help: 'SO_RCVBUF the kernel granted each socket',
      labelNames: ['listener', 'address'],
      registers,
    }),
    queuedMessages: new Gauge({
      name: 'flowbus_receiver_queued_messages',
      help: 'flows.raw messages waiting to be published',
      registers,
      collect() {
        this.set(queued())
      },
    }),
  }
}
