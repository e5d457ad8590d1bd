// Errors a client causes or meets, as GraphQL errors with a stable `extensions.code`: the message
// names the argument and what to do; anything else is masked by the server and logged.
import { GraphQLError } from 'graphql'

export type GatewayErrorCode =
  | 'BAD_FILTER'
  | 'UNKNOWN_DIMENSION'
  | 'BAD_ARGUMENT'
  | 'RANGE_TOO_LONG'
  | 'TOO_MANY_POINTS'
  | 'LIMIT_TOO_HIGH'
  | 'QUERY_TOO_DEEP'
  | 'QUERY_TOO_COSTLY'
  | 'TOO_MANY_CONCURRENT_QUERIES'
  | 'QUERY_TIMEOUT'
  | 'QUERY_CANCELLED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'STORAGE_UNAVAILABLE'
  | 'NOT_FOUND'

/** A request the gateway refuses or could not answer, with a code clients can branch on. */
export class QueryInputError extends GraphQLError {
  constructor(message: string, code: GatewayErrorCode, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extensions } })
    this.name = 'QueryInputError'
  }
}
