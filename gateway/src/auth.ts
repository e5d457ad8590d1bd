// Who is asking: nobody in particular (off), the owner of a static bearer token, or the user a
// trusted reverse proxy names in its headers. Resolvers get the user in their context.
import { timingSafeEqual } from 'node:crypto'
import type { GatewayConfig } from './config.js'
import { QueryInputError } from './query/errors.js'

export interface User {
  readonly login: string
  readonly name?: string | undefined
  readonly email?: string | undefined
}

export const ANONYMOUS: User = { login: 'anonymous' }

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Reads a header from a Fetch Headers or a Node header record. */
export type HeaderReader = (name: string) => string | null | undefined

/** The user of a request, or an UNAUTHENTICATED error saying what is missing. */
export const authenticate = (auth: GatewayConfig['auth'], header: HeaderReader): User => {
  switch (auth.mode) {
    case 'off':
      return ANONYMOUS
    case 'tokens': {
      const value = header('authorization') ?? ''
      const match = /^Bearer\s+(\S+)$/i.exec(value.trim())
      if (!match) throw new QueryInputError('authentication required: send Authorization: Bearer <token>', 'UNAUTHENTICATED', { http: { status: 401 } })
      const entry = auth.tokens.find((t) => sameText(t.token, match[1]!))
      if (!entry) throw new QueryInputError('the bearer token is not one of gateway.auth.tokens', 'UNAUTHENTICATED', { http: { status: 401 } })
      return { login: entry.user, name: entry.name, email: entry.email }
    }
    case 'proxy': {
      const login = header(auth.userHeader.toLowerCase())
      if (!login) {
        throw new QueryInputError(`authentication required: the ${auth.userHeader} header from the reverse proxy is missing`, 'UNAUTHENTICATED', {
          http: { status: 401 },
        })
      }
      return { login, name: header(auth.nameHeader.toLowerCase()) ?? undefined, email: header(auth.emailHeader.toLowerCase()) ?? undefined }
    }
  }
}
