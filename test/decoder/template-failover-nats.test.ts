// Template state failover between two decoder processes on NATS JetStream (templates in NATS KV).
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { describe, it } from 'vitest'
import { ensureNatsServer, startNats, type NatsServer } from '../src/harness/nats.js'
import { serviceOrSkip, skipReason } from '../src/harness/process.js'
import { templateFailover } from './failover.js'

const skip = await skipReason('nats-server', ensureNatsServer)

describe.skipIf(skip !== undefined)('decoder template failover on NATS', () => {
  const nats = serviceOrSkip<NatsServer>('nats-server', () => startNats())

  it('a new decoder process decodes data with the templates a killed one stored', { timeout: 120_000 }, async () => {
    const url = nats.get().url
    await templateFailover({
      busYaml: `bus:\n  transport: nats\n  partitions: 2\n  nats:\n    servers: [${url}]`,
      busEnv: { FLOWBUS_BUS__TRANSPORT: 'nats', FLOWBUS_BUS__PARTITIONS: '2', FLOWBUS_BUS__NATS__SERVERS: `[${url}]` },
      // The decoders' durable consumer has its ack floor past the message and nothing pending.
      rawAcknowledged: async () => {
        const nc = await connect({ servers: url })
        try {
          const jsm = await jetstreamManager(nc)
          for await (const info of jsm.consumers.list('FLOWBUS_FLOWS_RAW_V1')) {
            if (info.name.startsWith('decoder') && info.ack_floor.stream_seq >= 1 && info.num_ack_pending === 0) return true
          }
          return false
        } finally {
          await nc.close()
        }
      },
    })
  })
})
