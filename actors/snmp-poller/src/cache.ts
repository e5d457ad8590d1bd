// What the poller knows and owes per exporter: cached sysName and interfaces with their age,
// ifIndexes waiting for a poll, the breaker, and the community that answered. Pure state with an
// injected clock; the actor decides when to poll from what it says.
import {
  type ExporterInfo,
  InterfaceBoundary,
  type InterfaceInfo,
  exporterStateKey,
  formatIP,
  interfaceStateKey,
} from '@flowbus/bus-schemas'
import type { AgentSettings, AgentTable } from './agents.js'
import { type BreakerOptions, type BreakerState, CircuitBreaker } from './breaker.js'
import type { PollPlan, PollResult } from './poll.js'

export interface CacheOptions {
  /** Age (ms) at which an entry is polled again in the background. */
  readonly refreshAfter: number
  /** Age (ms) at which an entry that could not be refreshed leaves the cache. */
  readonly expireAfter: number
  /** ifIndexes asked in one poll at most; the rest wait for the exporter's next turn. */
  readonly maxInterfacesPerPoll: number
  readonly breaker: BreakerOptions
}

interface CachedInterface {
  /** undefined: the agent said it has no such interface (remembered for refreshAfter, not published). */
  readonly info: InterfaceInfo | undefined
  readonly updatedMs: number
}

class ExporterEntry {
  readonly interfaces = new Map<number, CachedInterface>()
  /** ifIndexes to ask for at the next poll (requested, or due for refresh). */
  readonly pending = new Set<number>()
  /** When the exporter last had nothing pending; demands older than expireAfter are given up. */
  pendingSince = 0
  sysName: string | undefined = undefined
  /** 0: never polled nor loaded. */
  systemUpdatedMs = 0
  /** The exporter name is asked for even without interfaces (request with no ifIndexes). */
  systemWanted = false
  queued = false
  polling = false
  preferredCommunity = 0
  readonly breaker: CircuitBreaker

  constructor(
    readonly key: string,
    readonly address: Uint8Array,
    readonly agent: AgentSettings,
    breaker: BreakerOptions,
  ) {
    this.breaker = new CircuitBreaker(breaker)
  }

  get hasWork(): boolean {
    return this.pending.size > 0 || this.systemWanted
  }
}

export interface DemandResult {
  /** The exporter must be queued for a poll (it was not queued, polling or held by its breaker). */
  readonly schedule: boolean
  /** Exporter key, undefined when no configured agent covers the exporter. */
  readonly key: string | undefined
  /** ifIndexes answered from the cache (fresh, or known not to exist). */
  readonly cached: number
  /** ifIndexes added to the exporter's next poll. */
  readonly wanted: number
}

/** What a finished poll changes on the bus, and what comes next for the exporter. */
export interface Completion {
  readonly exporter: ExporterInfo | undefined
  readonly put: readonly InterfaceInfo[]
  /** Interfaces the agent no longer has (keys to delete from metadata.interfaces). */
  readonly removed: readonly string[]
  /** This failure opened the breaker. */
  readonly opened: boolean
  readonly breaker: BreakerState
}

export interface CacheStats {
  readonly exporters: number
  readonly interfaces: number
  /** Update time of the oldest cached exporter or interface (ms since the epoch), 0 when empty. */
  readonly oldestExporterMs: number
  readonly oldestInterfaceMs: number
}

/** The ExporterInfo the poller publishes: the name is the sysName, classification is the enricher's. */
export const exporterInfo = (address: Uint8Array, sysName: string, updatedUnixMs: number): ExporterInfo => ({
  address,
  name: sysName,
  group: '',
  role: '',
  site: '',
  region: '',
  tenant: '',
  sysName,
  updatedUnixMs,
})

export class MetadataCache {
  private readonly exporters = new Map<string, ExporterEntry>()

  constructor(
    private readonly agents: AgentTable,
    private readonly options: CacheOptions,
    private readonly now: () => number = Date.now,
  ) {}

  private entryFor(address: Uint8Array): ExporterEntry | undefined {
    const key = exporterStateKey(address)
    let entry = this.exporters.get(key)
    if (entry) return entry
    const agent = this.agents.resolve(address)
    if (!agent) return undefined
    entry = new ExporterEntry(key, address.slice(), agent, this.options.breaker)
    this.exporters.set(key, entry)
    return entry
  }

  private fresh(updatedMs: number, now: number): boolean {
    return now - updatedMs < this.options.refreshAfter
  }

  /** An enricher saw these ifIndexes of this exporter without (fresh) metadata. */
  demand(address: Uint8Array, ifIndexes: readonly number[]): DemandResult {
    const entry = this.entryFor(address)
    if (!entry) return { schedule: false, key: undefined, cached: 0, wanted: 0 }
    const now = this.now()
    let cached = 0
    let wanted = 0
    for (const ifIndex of ifIndexes) {
      const known = entry.interfaces.get(ifIndex)
      if (known && this.fresh(known.updatedMs, now)) cached++
      else if (!entry.pending.has(ifIndex)) {
        if (!entry.hasWork) entry.pendingSince = now
        entry.pending.add(ifIndex)
        wanted++
      }
    }
    if (entry.systemUpdatedMs === 0 || !this.fresh(entry.systemUpdatedMs, now)) {
      if (!entry.hasWork) entry.pendingSince = now
      entry.systemWanted = true
    }
    return { schedule: this.queueIfReady(entry, now), key: entry.key, cached, wanted }
  }

  private queueIfReady(entry: ExporterEntry, now: number): boolean {
    if (entry.queued || entry.polling || !entry.hasWork || !entry.breaker.allows(now)) return false
    entry.queued = true
    return true
  }

  /** Starts the poll of a queued exporter: what to ask, or undefined when there is nothing to do now. */
  take(key: string): (PollPlan & { readonly exporter: string }) | undefined {
    const entry = this.exporters.get(key)
    if (!entry) return undefined
    entry.queued = false
    if (entry.polling || !entry.hasWork || !entry.breaker.allows(this.now())) return undefined
    entry.polling = true
    // An exporter with many interfaces wanted takes several turns, so it cannot hold a worker for long.
    const ifIndexes = [...entry.pending].sort((a, b) => a - b).slice(0, this.options.maxInterfacesPerPoll)
    for (const ifIndex of ifIndexes) entry.pending.delete(ifIndex)
    entry.systemWanted = false
    return { exporter: formatIP(entry.address), agent: entry.agent, ifIndexes, preferredCommunity: entry.preferredCommunity }
  }

  /**
   * Records a poll's result and says what to publish. The exporter stays busy until `release`,
   * so a newer poll cannot publish before this one did (older values would win).
   */
  complete(key: string, plan: PollPlan, result: PollResult): Completion {
    const entry = this.exporters.get(key)
    if (!entry) return { exporter: undefined, put: [], removed: [], opened: false, breaker: 'closed' }
    const now = this.now()
    if (!result.ok) {
      for (const ifIndex of plan.ifIndexes) entry.pending.add(ifIndex)
      entry.systemWanted = true
      const opened = entry.breaker.failure(now)
      return {
        exporter: undefined,
        put: [],
        removed: [],
        opened,
        breaker: entry.breaker.state(now),
      }
    }
    entry.breaker.success()
    entry.preferredCommunity = result.community
    entry.sysName = result.sysName
    entry.systemUpdatedMs = now
    const put: InterfaceInfo[] = []
    const removed: string[] = []
    for (const [ifIndex, polled] of result.interfaces) {
      const before = entry.interfaces.get(ifIndex)
      if (polled === undefined) {
        if (before?.info) removed.push(interfaceStateKey(entry.address, ifIndex))
        entry.interfaces.set(ifIndex, { info: undefined, updatedMs: now })
        continue
      }
      const info: InterfaceInfo = {
        exporterAddress: entry.address,
        ifIndex,
        name: polled.ifName !== '' ? polled.ifName : polled.ifDescr,
        description: polled.ifAlias !== '' ? polled.ifAlias : polled.ifDescr,
        speed: polled.ifHighSpeed,
        provider: '',
        connectivity: '',
        boundary: InterfaceBoundary.UNDEFINED,
        updatedUnixMs: now,
      }
      entry.interfaces.set(ifIndex, { info, updatedMs: now })
      put.push(info)
    }
    if (!entry.hasWork) entry.pendingSince = 0
    return {
      exporter: exporterInfo(entry.address, result.sysName, now),
      put,
      removed,
      opened: false,
      breaker: 'closed',
    }
  }

  /**
   * The poll is over (its results published): returns true when the exporter must be queued again
   * right away (requests arrived meanwhile, more ifIndexes wait, or a failure left the breaker closed).
   */
  release(key: string): boolean {
    const entry = this.exporters.get(key)
    if (!entry) return false
    entry.polling = false
    return this.queueIfReady(entry, this.now())
  }

  /** Forgets what could not be published, so the next request polls it again. */
  invalidate(key: string, ifIndexes: readonly number[], system: boolean): void {
    const entry = this.exporters.get(key)
    if (!entry) return
    for (const ifIndex of ifIndexes) entry.interfaces.delete(ifIndex)
    if (system) entry.systemUpdatedMs = 0
  }

  /**
   * Housekeeping, run periodically: expires entries that could not be refreshed, queues refreshes
   * of entries due for one and exporters whose breaker turned half-open. Returns keys to poll.
   */
  due(): string[] {
    const now = this.now()
    const { refreshAfter, expireAfter } = this.options
    const ready: string[] = []
    for (const [key, entry] of this.exporters) {
      if (entry.polling || entry.queued) continue
      for (const [ifIndex, cached] of entry.interfaces) {
        const age = now - cached.updatedMs
        if (cached.info === undefined ? age >= refreshAfter : age >= expireAfter) {
          entry.interfaces.delete(ifIndex)
          entry.pending.delete(ifIndex)
        } else if (cached.info !== undefined && age >= refreshAfter && !entry.pending.has(ifIndex)) {
          if (!entry.hasWork) entry.pendingSince = now
          entry.pending.add(ifIndex)
        }
      }
      const systemAge = now - entry.systemUpdatedMs
      if (entry.systemUpdatedMs > 0 && systemAge >= refreshAfter && systemAge < expireAfter && !entry.systemWanted) {
        if (!entry.hasWork) entry.pendingSince = now
        entry.systemWanted = true
      }
      // Demands an unreachable exporter could not serve for expireAfter are given up: it stops
      // being probed until an enricher asks again.
      if (entry.hasWork && entry.pendingSince > 0 && now - entry.pendingSince >= expireAfter && !entry.breaker.allows(now)) {
        entry.pending.clear()
        entry.systemWanted = false
      }
      if (!entry.hasWork && entry.interfaces.size === 0 && (entry.systemUpdatedMs === 0 || systemAge >= expireAfter)) {
        this.exporters.delete(key)
        continue
      }
      if (this.queueIfReady(entry, now)) ready.push(key)
    }
    return ready
  }

  /** Takes an exporter from the bus state (restart): true when kept (known agent, not expired). */
  loadExporter(info: ExporterInfo): boolean {
    const updated = Number(info.updatedUnixMs)
    if (this.now() - updated >= this.options.expireAfter) return false
    const entry = this.entryFor(info.address)
    if (!entry || entry.systemUpdatedMs >= updated) return false
    entry.sysName = info.sysName
    entry.systemUpdatedMs = updated
    return true
  }

  /** Takes an interface from the bus state (restart): true when kept (known agent, not expired). */
  loadInterface(info: InterfaceInfo): boolean {
    const updated = Number(info.updatedUnixMs)
    if (this.now() - updated >= this.options.expireAfter) return false
    const entry = this.entryFor(info.exporterAddress)
    if (!entry) return false
    const known = entry.interfaces.get(info.ifIndex)
    if (known && known.updatedMs >= updated) return false
    entry.interfaces.set(info.ifIndex, { info, updatedMs: updated })
    return true
  }

  /** Breaker state of every exporter known, by exporter address text. */
  breakers(): Map<string, BreakerState> {
    const now = this.now()
    return new Map([...this.exporters.values()].map((e) => [formatIP(e.address), e.breaker.state(now)]))
  }

  stats(): CacheStats {
    let interfaces = 0
    let exporters = 0
    let oldestExporterMs = 0
    let oldestInterfaceMs = 0
    for (const entry of this.exporters.values()) {
      if (entry.systemUpdatedMs > 0) {
        exporters++
        if (oldestExporterMs === 0 || entry.systemUpdatedMs < oldestExporterMs) oldestExporterMs = entry.systemUpdatedMs
      }
      for (const cached of entry.interfaces.values()) {
        if (cached.info === undefined) continue
        interfaces++
        if (oldestInterfaceMs === 0 || cached.updatedMs < oldestInterfaceMs) oldestInterfaceMs = cached.updatedMs
      }
    }
    return { exporters, interfaces, oldestExporterMs, oldestInterfaceMs }
  }
}
