// The bmp-rib Prometheus metrics, read from the collector's tally and the RIB when scraped:
// sessions, peers, routes per peer and family, messages by type, errors by reason, lookups.
import { formatIP } from '@flowbus/bus-schemas'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { BmpCollector } from './bmp/collector.js'
import type { LookupAnswerer } from './lookup.js'

const peerTypes = ['global', 'rd-instance', 'local-instance', 'loc-rib']

/** Registers the metrics, read from this collector when scraped. */
export function registerBmpMetrics(registry: Registry, collector: BmpCollector, answerer: LookupAnswerer, refused: () => number): void {
  // A restarted actor in the same process registers again: its predecessor's metrics go.
  for (const name of [
    'flowbus_bmp_sessions',
    'flowbus_bmp_sessions_total',
    'flowbus_bmp_peers',
    'flowbus_bmp_routes',
    'flowbus_bmp_prefixes',
    'flowbus_bmp_attribute_sets',
    'flowbus_bmp_messages_total',
    'flowbus_bmp_errors_total',
    'flowbus_bmp_skipped_families_total',
    'flowbus_bmp_end_of_rib_total',
    'flowbus_bmp_updates_total',
    'flowbus_bmp_lookups_total',
  ]) {
    if (registry.getSingleMetric(name)) registry.removeSingleMetric(name)
  }
  const tally = collector.tally
  const rib = collector.rib
  const registers = [registry]
  const fromMap = (metric: Counter<string>, label: string, map: Map<string, number>): void => {
    metric.reset()
    for (const [key, n] of map) metric.inc({ [label]: key }, n)
  }
  new Gauge({
    name: 'flowbus_bmp_sessions',
    help: 'BMP sessions (router connections) open',
    registers,
    collect() {
      this.set(collector.sessions.size)
    },
  })
  new Counter({
    name: 'flowbus_bmp_sessions_total',
    help: 'BMP sessions by event: opened, closed, refused (over maxSessions)',
    labelNames: ['event'],
    registers,
    collect() {
      this.reset()
      this.inc({ event: 'opened' }, tally.sessionsOpened)
      this.inc({ event: 'closed' }, tally.sessionsClosed)
      this.inc({ event: 'refused' }, refused())
    },
  })
  new Gauge({
    name: 'flowbus_bmp_peers',
    help: 'Peers in the RIB by state (up, or down and kept for the grace time)',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset()
      let up = 0
      let down = 0
      for (const id of rib.peerIds()) {
        if (rib.peer(id)!.up) up++
        else down++
      }
      this.set({ state: 'up' }, up)
      this.set({ state: 'down' }, down)
    },
  })
  new Gauge({
    name: 'flowbus_bmp_routes',
    help: 'Routes held per peer (router, peer address, peer type, policy) and family',
    labelNames: ['router', 'peer', 'type', 'family'],
    registers,
    collect() {
      this.reset()
      for (const id of rib.peerIds()) {
        const p = rib.peer(id)!
        const labels = {
          router: formatIP(p.routerAddress),
          peer: formatIP(p.address),
          type: `${peerTypes[p.peerType] ?? p.peerType}${p.peerType === 3 ? '' : p.postPolicy ? '/post-policy' : '/pre-policy'}`,
        }
        this.inc({ ...labels, family: 'ipv4' }, p.routes.ipv4)
        this.inc({ ...labels, family: 'ipv6' }, p.routes.ipv6)
      }
    },
  })
  new Gauge({
    name: 'flowbus_bmp_prefixes',
    help: 'Distinct prefixes in the RIB by family',
    labelNames: ['family'],
    registers,
    collect() {
      const { ipv4, ipv6 } = rib.prefixCount
      this.set({ family: 'ipv4' }, ipv4)
      this.set({ family: 'ipv6' }, ipv6)
    },
  })
  new Gauge({
    name: 'flowbus_bmp_attribute_sets',
    help: 'Distinct interned values: attribute sets, AS paths, community lists, large-community lists, next hops',
    labelNames: ['kind'],
    registers,
    collect() {
      const a = rib.attributes
      this.set({ kind: 'sets' }, a.sets.size)
      this.set({ kind: 'as-paths' }, a.paths.size)
      this.set({ kind: 'communities' }, a.communities.size)
      this.set({ kind: 'large-communities' }, a.largeCommunities.size)
      this.set({ kind: 'next-hops' }, a.nextHops.size)
    },
  })
  new Counter({
    name: 'flowbus_bmp_messages_total',
    help: 'BMP messages received by type',
    labelNames: ['type'],
    registers,
    collect() {
      fromMap(this, 'type', tally.messages)
    },
  })
  new Counter({
    name: 'flowbus_bmp_errors_total',
    help: 'BMP sessions closed, by reason (malformed input, termination by the router)',
    labelNames: ['reason'],
    registers,
    collect() {
      fromMap(this, 'reason', tally.errors)
    },
  })
  new Counter({
    name: 'flowbus_bmp_skipped_families_total',
    help: 'MP_REACH/MP_UNREACH attributes of address families the RIB does not keep, by AFI/SAFI',
    labelNames: ['family'],
    registers,
    collect() {
      fromMap(this, 'family', tally.skippedFamilies)
    },
  })
  new Counter({
    name: 'flowbus_bmp_end_of_rib_total',
    help: 'End-of-RIB markers received by family',
    labelNames: ['family'],
    registers,
    collect() {
      fromMap(this, 'family', tally.endOfRib)
    },
  })
  new Counter({
    name: 'flowbus_bmp_updates_total',
    help: 'BGP UPDATE contents applied: updates, prefixes announced, withdrawn, and routes flushed (peer removal, stale after reconnection)',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset()
      this.inc({ kind: 'updates' }, tally.updates)
      this.inc({ kind: 'announced' }, tally.announced)
      this.inc({ kind: 'withdrawn' }, tally.withdrawn)
      this.inc({ kind: 'flushed' }, tally.flushed)
    },
  })
  new Counter({
    name: 'flowbus_bmp_lookups_total',
    help: 'Addresses looked up through routing.lookup, by outcome',
    labelNames: ['outcome'],
    registers,
    collect() {
      this.reset()
      this.inc({ outcome: 'found' }, answerer.found)
      this.inc({ outcome: 'missing' }, answerer.missing)
    },
  })
}
