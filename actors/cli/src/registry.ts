// Every actor the `flowbus` command knows, in start order. Actors never import each other;
// only this list brings them together. Start order does not carry correctness: the writer waits
// for the orchestrator's schema and the bus holds what the receiver publishes before the decoder runs.
import { bmpRibActor } from '@flowbus/bmp-rib'
import { clickhouseWriter } from '@flowbus/clickhouse-writer'
import { decoderActor } from '@flowbus/decoder'
import { demoExporterActor } from '@flowbus/demo-exporter'
import { enricherActor } from '@flowbus/enricher'
import { gateway } from '@flowbus/gateway'
import { orchestrator } from '@flowbus/orchestrator'
import { receiverActor } from '@flowbus/receiver'
import type { ActorDefinition } from '@flowbus/runtime'
import { snmpPollerActor } from '@flowbus/snmp-poller'

export const knownActors: readonly ActorDefinition<any>[] = [receiverActor, orchestrator, decoderActor, enricherActor, snmpPollerActor, bmpRibActor, clickhouseWriter, gateway, demoExporterActor]
