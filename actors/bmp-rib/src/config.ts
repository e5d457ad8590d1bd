// The bmp-rib configuration section: where the BMP listener binds, how long a peer's routes
// outlive its session, and bounds on what one router may send.
import { parseIP } from '@flowbus/bus-schemas'
import { Duration, ParsedText } from '@flowbus/runtime'
import { Schema } from 'effect'

const IPAddress = ParsedText(parseIP)

export const BmpRibConfig = Schema.Struct({
  listenAddress: Schema.optionalWith(IPAddress, { default: () => '0.0.0.0' }).annotations({
    description: 'address the BMP TCP listener binds ("::" accepts IPv6 and, on Linux, IPv4 too)',
  }),
  port: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(0, 65535)), { default: () => 10179 }).annotations({
    description: 'TCP port routers send BMP to (0: any free port)',
  }),
  peerGraceTime: Schema.optionalWith(Duration, { default: () => 60_000 }).annotations({
    description:
      'how long a peer\'s routes are kept after its peer down or the end of its BMP session (they answer lookups only when no live peer has the prefix); 0 removes them at once. A reconnected peer\'s End-of-RIB flushes the routes it did not announce again before that',
  }),
  maxSessions: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.positive()), { default: () => 256 }).annotations({
    description: 'BMP connections accepted at once; further routers are refused (and counted)',
  }),
})

export type BmpRibConfig = Schema.Schema.Type<typeof BmpRibConfig>
