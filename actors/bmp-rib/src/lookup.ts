// Answers routing.lookup requests from the RIB: one route per address, columnar in, one RouteInfo
// per address out, attribute lists shared with the RIB's interned copies.
import type { RouteInfo, RoutingLookupRequest, RoutingLookupResponse } from '@flowbus/bus-schemas'
import type { Rib } from './rib/rib.js'

const NOT_FOUND: RouteInfo = Object.freeze({
  found: false,
  asn: 0,
  asPath: [],
  communities: [],
  largeCommunities: [],
  prefixLength: 0,
  nextHop: new Uint8Array(0),
}) as RouteInfo

const EMPTY = new Uint8Array(0)
const ZERO_ADDRESS = new Uint8Array(16)

/** Reused between requests: lookups run one at a time on the event loop. */
export class LookupAnswerer {
  private slots = new Int32Array(1024)
  private lengths = new Uint8Array(1024)
  found = 0
  missing = 0

  constructor(private readonly rib: Rib) {}

  answer(request: RoutingLookupRequest): RoutingLookupResponse {
    const count = Math.floor(request.addresses.length / 16)
    if (this.slots.length < count) {
      this.slots = new Int32Array(count)
      this.lengths = new Uint8Array(count)
    }
    const exporter = request.exporterAddress.length === 16 ? request.exporterAddress : ZERO_ADDRESS
    const nextHops = request.nextHops.length >= 16 * count && count > 0 ? request.nextHops : undefined
    this.rib.lookup(exporter, request.addresses, count, nextHops, this.slots, this.lengths)
    const routes = new Array<RouteInfo>(count)
    for (let i = 0; i < count; i++) {
      const slot = this.slots[i]!
      if (slot < 0) {
        routes[i] = NOT_FOUND
        this.missing++
        continue
      }
      this.found++
      const { attributes } = this.rib.route(slot, this.lengths[i]!)
      routes[i] = {
        found: true,
        asn: attributes.originAS,
        asPath: attributes.asPath as number[],
        communities: attributes.communities as number[],
        largeCommunities: attributes.largeCommunities as number[],
        prefixLength: this.lengths[i]!,
        nextHop: attributes.nextHop ?? EMPTY,
      }
    }
    return { routes }
  }
}
