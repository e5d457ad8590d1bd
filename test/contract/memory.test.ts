// The transport contract run against the in-process memory bus: every client is a thin handle on
// one shared bus, the way several actors share it inside one `flowbus start` process.
import { createMemoryBus } from '../../actors/runtime/src/bus/memory.js'
import { defineTransportContract } from './suite.js'

const bus = createMemoryBus()

defineTransportContract('memory', {
  create: async () => bus.connect(),
  // No spawnConsumer: another OS process cannot reach an in-process bus.
})
