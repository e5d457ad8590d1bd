// Routing lookups of one batch, pure: the distinct addresses of each exporter's rows packed for
// routing.lookup (16 bytes each), and the answers written back per row (AS path, communities,
// next hop; AS numbers and prefix lengths handed to the AS stage through RoutingColumns).
import type { FlowBatch, RouteInfo, RoutingLookupRequest } from '@flowbus/bus-schemas'
import type { RoutingColumns } from '../stages.js'

/** One request's worth: the rows of one exporter and where each row's addresses sit in `addresses`. */
export interface RoutingPlan {
  readonly request: RoutingLookupRequest
  /** Addresses in the request. */
  readonly count: number
  /** Per row: index of the destination (source) address in the request, -1 when the row is another exporter's. */
  readonly dstIndex: Int32Array
  readonly srcIndex: Int32Array
}

const sameAddress = (column: Uint8Array, offset: number, address: Uint8Array, at: number): boolean => {
  for (let i = 15; i >= 0; i--) if (column[offset + i] !== address[at + i]) return false
  return true
}

/** Little-endian 32-bit word of `bytes` at `o` (any alignment). */
const word = (bytes: Uint8Array, o: number): number => bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)

/**
 * Slot of a 16-byte address in a table of 2^(32 - shift) slots: the high bits of a multiplicative
 * hash (its low bits would follow the first octet of an IPv4 address alone).
 */
const slotOf = (bytes: Uint8Array, o: number, shift: number): number =>
  Math.imul(word(bytes, o) ^ Math.imul(word(bytes, o + 4), 0x85ebca6b) ^ Math.imul(word(bytes, o + 8), 0xc2b2ae35) ^ word(bytes, o + 12), 0x9e3779b1) >>> shift

/**
 * Distinct addresses, packed 16 bytes each, found again through an open-addressing table of
 * their indexes: no key object per address (a Map keyed by text cost ~1.6 µs an IPv6 address,
 * the largest share of the enricher's routing time in an embedded profile).
 */
class AddressPack {
  bytes = new Uint8Array(16 * 64)
  count = 0
  /** Index + 1 of the address in each slot, 0 when free; at most half full. */
  #table = new Int32Array(128)
  #shift = 32 - 7

  add(column: Uint8Array, offset: number): number {
    const table = this.#table
    const mask = table.length - 1
    for (let s = slotOf(column, offset, this.#shift); ; s = (s + 1) & mask) {
      const held = table[s]!
      if (held === 0) break
      if (sameAddress(column, offset, this.bytes, (held - 1) * 16)) return held - 1
    }
    if ((this.count + 1) * 16 > this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2)
      grown.set(this.bytes)
      this.bytes = grown
    }
    const bytes = this.bytes
    for (let i = 0, at = this.count * 16; i < 16; i++) bytes[at + i] = column[offset + i]!
    this.#place(this.count)
    if (++this.count * 2 > table.length) this.#grow()
    return this.count - 1
  }

  #place(index: number): void {
    const table = this.#table
    const mask = table.length - 1
    let s = slotOf(this.bytes, index * 16, this.#shift)
    while (table[s] !== 0) s = (s + 1) & mask
    table[s] = index + 1
  }

  #grow(): void {
    this.#table = new Int32Array(this.#table.length * 2)
    this.#shift--
    for (let i = 0; i < this.count; i++) this.#place(i)
  }
}

/**
 * The lookups a batch needs: one plan per exporter in it (a decoded message holds one exporter,
 * so usually one), destination addresses and, with `sources`, source addresses too.
 */
export const planLookups = (batch: FlowBatch, rows: number, fallbackExporter: Uint8Array, sources: boolean): RoutingPlan[] => {
  const exporters = batch.view('ExporterAddress')
  const dst = batch.view('DstAddr')
  const src = batch.view('SrcAddr')
  if (dst === undefined && (!sources || src === undefined)) return []
  const plans: { exporter: Uint8Array; pack: AddressPack; dstIndex: Int32Array; srcIndex: Int32Array }[] = []
  let current: (typeof plans)[number] | undefined
  for (let r = 0; r < rows; r++) {
    if (current === undefined || (exporters !== undefined && !sameAddress(exporters, r * 16, current.exporter, 0))) {
      const address = exporters !== undefined ? exporters.subarray(r * 16, r * 16 + 16) : fallbackExporter
      current = plans.find((p) => sameAddress(address, 0, p.exporter, 0))
      if (!current) {
        current = { exporter: address.slice(), pack: new AddressPack(), dstIndex: new Int32Array(rows).fill(-1), srcIndex: new Int32Array(rows).fill(-1) }
        plans.push(current)
      }
    }
    if (dst !== undefined) current.dstIndex[r] = current.pack.add(dst, r * 16)
    if (sources && src !== undefined) current.srcIndex[r] = current.pack.add(src, r * 16)
  }
  return plans.map((p) => ({
    request: { exporterAddress: p.exporter, addresses: p.pack.bytes.slice(0, p.pack.count * 16), nextHops: new Uint8Array(0), sharedRoutes: true },
    count: p.pack.count,
    dstIndex: p.dstIndex,
    srcIndex: p.srcIndex,
  }))
}

/** Scratch RoutingColumns for the AS stage, grown to the largest batch and zeroed per batch. */
export class RoutingScratch implements RoutingColumns {
  srcAS = new Uint32Array(0)
  dstAS = new Uint32Array(0)
  srcNetMask = new Uint8Array(0)
  dstNetMask = new Uint8Array(0)

  reset(rows: number): this {
    if (this.srcAS.length < rows) {
      const n = Math.max(rows, this.srcAS.length * 2, 64)
      this.srcAS = new Uint32Array(n)
      this.dstAS = new Uint32Array(n)
      this.srcNetMask = new Uint8Array(n)
      this.dstNetMask = new Uint8Array(n)
    } else {
      this.srcAS.fill(0, 0, rows)
      this.dstAS.fill(0, 0, rows)
      this.srcNetMask.fill(0, 0, rows)
      this.dstNetMask.fill(0, 0, rows)
    }
    return this
  }
}

export interface RoutesApplied {
  /** Row addresses a route covered / none did. */
  found: number
  notFound: number
}

/**
 * Writes each row's destination route (DstASPath, DstCommunities, DstLargeCommunities and, with
 * setNextHop, NextHop) and fills `columns` with both sides' origin AS and prefix length. List
 * columns the decoder already filled (sFlow extended gateway data) are the flow's own and kept.
 */
export const applyRoutes = (
  batch: FlowBatch,
  rows: number,
  answers: readonly { plan: RoutingPlan; routes: readonly RouteInfo[] }[],
  columns: RoutingColumns,
  setNextHop: boolean,
): RoutesApplied => {
  const result: RoutesApplied = { found: 0, notFound: 0 }
  const writeLists = !batch.has('DstASPath') && !batch.has('DstCommunities') && !batch.has('DstLargeCommunities')
  // Allocated on the first route with a next hop: batches without one keep their columns as they were.
  let nextHops: Uint8Array | undefined
  const note = (route: RouteInfo | undefined): RouteInfo | undefined => {
    if (route?.found) result.found++
    else result.notFound++
    return route?.found ? route : undefined
  }
  for (let r = 0; r < rows; r++) {
    for (const { plan, routes } of answers) {
      if (plan.srcIndex[r]! >= 0) {
        const route = note(routes[plan.srcIndex[r]!])
        if (route) {
          columns.srcAS[r] = route.asn
          columns.srcNetMask[r] = route.prefixLength
        }
      }
      if (plan.dstIndex[r]! < 0) continue
      const route = note(routes[plan.dstIndex[r]!])
      if (!route) continue
      columns.dstAS[r] = route.asn
      columns.dstNetMask[r] = route.prefixLength
      if (writeLists) {
        if (route.asPath.length > 0) batch.setList('DstASPath', r, route.asPath)
        if (route.communities.length > 0) batch.setList('DstCommunities', r, route.communities)
        if (route.largeCommunities.length > 0 && route.largeCommunities.length % 3 === 0) batch.setList('DstLargeCommunities', r, route.largeCommunities)
      }
      if (setNextHop && route.nextHop.length === 16) {
        nextHops ??= batch.ip('NextHop')
        nextHops.set(route.nextHop, r * 16)
      }
    }
  }
  return result
}
