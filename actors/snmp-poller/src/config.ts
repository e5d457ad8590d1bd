// The snmp-poller's configuration section: how to reach each exporter's agent (by subnet, v2c
// communities or a v3 user), timeouts, the cache's refresh and expiry, concurrency and the breaker.
import { parseIP } from '@flowbus/bus-schemas'
import { Duration, ParsedText, parsePrefix } from '@flowbus/runtime'
import { Schema } from 'effect'

const positiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())

const Subnet = ParsedText(parsePrefix).annotations({ description: 'an IP prefix such as 192.0.2.0/24, 2001:db8::/32 or ::/0 (every exporter)' })

const Address = ParsedText(parseIP)

const V3User = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1)).annotations({ description: 'USM user name' }),
  authProtocol: Schema.optionalWith(Schema.Literal('none', 'md5', 'sha', 'sha224', 'sha256', 'sha384', 'sha512'), {
    default: () => 'sha' as const,
  }).annotations({ description: 'authentication: none, md5, sha (SHA-1), or SHA-2 sha224/sha256/sha384/sha512' }),
  authPassword: Schema.optionalWith(Schema.String, { default: () => '' }).annotations({
    description: 'authentication passphrase (8 characters at least when authProtocol is not none)',
  }),
  privProtocol: Schema.optionalWith(Schema.Literal('none', 'des', 'aes', 'aes256b', 'aes256r'), { default: () => 'aes' as const }).annotations({
    description: 'privacy: none, des, aes (AES-128), aes256b or aes256r (the Blumenthal and Reeder AES-256 key extensions)',
  }),
  privPassword: Schema.optionalWith(Schema.String, { default: () => '' }).annotations({
    description: 'privacy passphrase (8 characters at least when privProtocol is not none)',
  }),
}).pipe(
  Schema.filter((user) => {
    if (user.authProtocol !== 'none' && user.authPassword.length < 8) return `user ${user.name}: authPassword needs 8 characters at least`
    if (user.privProtocol !== 'none' && user.authProtocol === 'none') return `user ${user.name}: privacy needs authentication (set authProtocol)`
    if (user.privProtocol !== 'none' && user.privPassword.length < 8) return `user ${user.name}: privPassword needs 8 characters at least`
    return true
  }),
)

export const AgentConfig = Schema.Struct({
  subnet: Subnet,
  version: Schema.optionalWith(Schema.Literal('2c', '3'), { default: () => '2c' as const }).annotations({
    description: 'SNMP version used for exporters in this subnet',
  }),
  communities: Schema.optionalWith(Schema.Array(Schema.String.pipe(Schema.minLength(1))).pipe(Schema.minItems(1)), {
    default: () => ['public'],
  }).annotations({
    description: 'v2c communities tried in order until one answers; the one that answered is tried first next time',
  }),
  user: Schema.optional(V3User).annotations({ description: 'v3 user (required with version 3)' }),
  port: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 65535)), { default: () => 161 }).annotations({
    description: 'agent UDP port',
  }),
  agentAddress: Schema.optional(Address).annotations({
    description: 'poll this address instead of the exporter address (use a /32 or /128 subnet for one exporter)',
  }),
}).pipe(Schema.filter((agent) => (agent.version === '3' && agent.user === undefined ? `subnet ${agent.subnet}: version 3 needs a user` : true)))

export type AgentConfig = Schema.Schema.Type<typeof AgentConfig>

export const BreakerConfig = Schema.Struct({
  failures: Schema.optionalWith(positiveInt, { default: () => 3 }).annotations({
    description: 'consecutive failed polls of an exporter that open its breaker (no more polls until openFor has passed)',
  }),
  openFor: Schema.optionalWith(Duration, { default: () => 30_000 }).annotations({
    description: 'how long an open breaker stays open before one probe poll (half-open); doubled after each failed probe',
  }),
  maxOpenFor: Schema.optionalWith(Duration, { default: () => 600_000 }).annotations({
    description: 'upper bound of the doubled open time',
  }),
})

export const SnmpPollerConfig = Schema.Struct({
  agents: Schema.optionalWith(Schema.Array(AgentConfig), { default: () => [{ subnet: '::/0', version: '2c' as const, communities: ['public'], port: 161 }] }).annotations({
    description: 'how to reach the agent of an exporter: the entry with the longest subnet containing the exporter address wins; exporters matching none are not polled',
  }),
  timeout: Schema.optionalWith(Duration.pipe(Schema.filter((ms) => ms > 0 || 'timeout must be longer than 0')), { default: () => 1_000 }).annotations({
    description: 'time to wait for an answer to one SNMP request before retrying it',
  }),
  retries: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(0, 10)), { default: () => 1 }).annotations({
    description: 'times a request is sent again after a timeout (per community)',
  }),
  maxOidsPerRequest: Schema.optionalWith(positiveInt.pipe(Schema.lessThanOrEqualTo(500)), { default: () => 40 }).annotations({
    description: 'OIDs in one GET at most (sysName and 4 per interface); more are split over several GETs, and a GET the agent finds too big is halved',
  }),
  maxInterfacesPerPoll: Schema.optionalWith(positiveInt, { default: () => 200 }).annotations({
    description: 'ifIndexes asked in one poll of an exporter at most; more wait for its next turn in the queue, so one large exporter cannot hold a worker for long',
  }),
  concurrency: Schema.optionalWith(positiveInt, { default: () => 8 }).annotations({
    description: 'exporters polled at the same time at most (one poll per exporter at a time)',
  }),
  coalesceDelay: Schema.optionalWith(Duration, { default: () => 100 }).annotations({
    description: 'after a first request for an exporter, wait this long for other enricher shards\' requests so they share one poll',
  }),
  refreshAfter: Schema.optionalWith(Duration, { default: () => 1_800_000 }).annotations({
    description: 'a cached exporter or interface this old is polled again in the background (requests for it meanwhile are answered from the cache)',
  }),
  expireAfter: Schema.optionalWith(Duration, { default: () => 7_200_000 }).annotations({
    description:
      'a cached entry not refreshed for this long (its exporter kept failing) leaves the cache and is no longer refreshed; the bus keeps the last value, with its age',
  }),
  breaker: Schema.optionalWith(BreakerConfig, {
    default: () => ({ failures: 3, openFor: 30_000, maxOpenFor: 600_000 }),
  }).annotations({ description: 'per-exporter circuit breaker: an exporter that keeps failing is left alone for a while' }),
})

export type SnmpPollerConfig = Schema.Schema.Type<typeof SnmpPollerConfig>

/** What the schema cannot say field by field; the actor refuses to start with this message. */
export const configProblem = (c: SnmpPollerConfig): string | undefined =>
  c.refreshAfter >= c.expireAfter
    ? `snmp-poller: refreshAfter (${c.refreshAfter} ms) must be shorter than expireAfter (${c.expireAfter} ms)`
    : c.breaker.openFor > c.breaker.maxOpenFor
      ? `snmp-poller: breaker.openFor must not exceed breaker.maxOpenFor`
      : undefined
