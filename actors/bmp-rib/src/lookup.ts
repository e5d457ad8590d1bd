// Answers routing.lookup requests from the RIB: addresses columnar in; out, each distinct route
// once with an index per address (or, for requesters that predate it, one RouteInfo per address),
// attribute lists shared with the RIB's interned copies.
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
    // A route per distinct (attributes, prefix length): a batch's addresses fall in far fewer
    // routes than there are addresses, and each RouteInfo costs its encoding and decoding.
    const shared = request.sharedRoutes
    const routes: RouteInfo[] = []
    const routeIndex = shared ? new Array<number>(count) : []
    // Distinct routes by interned attribute set, then by prefix length (a set rarely has more than one).
    const known = shared ? new Map<object, number[]>() : undefined
    for (let i = 0; i < count; i++) {
      const slot = this.slots[i]!
      if (slot < 0) {
        if (shared) routeIndex[i] = 0
        else routes.push(NOT_FOUND)
        this.missing++
        continue
      }
      this.found++
      const length = this.lengths[i]!
      const { attributes } = this.rib.route(slot, length)
      if (known !== undefined) {
        let same = known.get(attributes)
        const at = same?.find((r) => routes[r]!.prefixLength === length)
        if (at !== undefined) {
          routeIndex[i] = at + 1
          continue
        }
        if (same === undefined) known.set(attributes, (same = []))
        same.push(routes.length)
      }
      const route: RouteInfo = {
        found: true,
        asn: attributes.originAS,
        asPath: attributes.asPath as number[],
        communities: attributes.communities as number[],
        largeCommunities: attributes.largeCommunities as number[],
        prefixLength: length,
        nextHop: attributes.nextHop ?? EMPTY,
      }
      if (shared) routeIndex[i] = routes.length + 1
      routes.push(route)
    }
    return shared ? { routes: [], distinctRoutes: routes, routeIndex } : { routes, distinctRoutes: [], routeIndex: [] }
  }
}
