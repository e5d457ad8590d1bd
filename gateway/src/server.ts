// The GraphQL endpoint: graphql-yoga on its own HTTP listener at /graphql (queries, GraphiQL,
// subscriptions over SSE) plus graphql-ws on the same path for WebSocket clients, with the
// user authenticated per request and the depth and cost limits as validation rules.
import { type IncomingMessage, type Server, createServer } from 'node:http'
import { type ExecutionArgs, GraphQLError, type ValidationRule } from 'graphql'
import { useServer } from 'graphql-ws/use/ws'
import { type Plugin, createSchema, createYoga } from 'graphql-yoga'
import { WebSocketServer } from 'ws'
import { type User, authenticate } from './auth.js'
import type { GatewayConfig } from './config.js'
import { withConsole } from './console.js'
import { limitsRule, noIntrospectionRule } from './schema/limits.js'
import { type GatewayContext, type ResolverDependencies, makeResolvers } from './schema/resolvers.js'
import { typeDefs } from './schema/type-defs.js'

export const GRAPHQL_PATH = '/graphql'

/** Unsent bytes on a WebSocket above which live events stop being sent (and start being dropped). */
const CONGESTED_BYTES = 1024 * 1024

export interface GatewayServerOptions {
  readonly config: GatewayConfig
  readonly dependencies: ResolverDependencies
  /** Errors the server masked (not a client's fault), for logs and counters. */
  readonly onInternalError?: (error: unknown) => void
}

export interface GatewayServer {
  /** Handles one HTTP request (mounted on a listener by listen, or by a test). */
  readonly server: Server
  readonly listen: (host: string, port: number) => Promise<{ host: string; port: number }>
  readonly close: () => Promise<void>
}

export const buildSchema = (dependencies: ResolverDependencies) =>
  createSchema<GatewayContext>({ typeDefs, resolvers: makeResolvers(dependencies) as never })

const headerReader = (request: IncomingMessage) => (name: string) => {
  const value = request.headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}

export const createGatewayServer = (options: GatewayServerOptions): GatewayServer => {
  const { config } = options
  const schema = buildSchema(options.dependencies)
  const rules: ValidationRule[] = [limitsRule(config.limits, () => undefined)]
  if (!config.introspection) rules.push(noIntrospectionRule)
  const validation: Plugin = {
    onValidate: ({ addValidationRule }) => {
      for (const rule of rules) addValidationRule(rule)
    },
  }
  const yoga = createYoga<{ req?: IncomingMessage }, GatewayContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: config.graphiql ? { subscriptionsProtocol: 'WS', title: 'flowbus GraphQL' } : false,
    landingPage: false,
    // Client mistakes are answered, not logged; internal errors are logged by onInternalError.
    logging: false,
    plugins: [validation],
    // Client mistakes are GraphQLErrors and pass; anything else is logged and masked.
    maskedErrors: {
      maskError: (error, message) => {
        const original = (error as GraphQLError).originalError ?? error
        if (original instanceof GraphQLError) return original
        // A client that went away mid-request (navigation, a cancelled fetch) surfaces as Node's
        // "aborted" error: not the server's fault, so answered as a cancellation and not logged.
        if ((original as Error)?.message === 'aborted') {
          return new GraphQLError('cancelled: the client went away', { extensions: { code: 'QUERY_CANCELLED' } })
        }
        options.onInternalError?.(original)
        return new GraphQLError(`${message}: ${(original as Error)?.message ?? String(original)}`, { extensions: { code: 'INTERNAL' } })
      },
    },
    context: ({ request }) => {
      const user = authenticate(config.auth, (name) => request.headers.get(name))
      return { user, signal: request.signal }
    },
  })

  // Everything outside /graphql is the web console's static build (console.ts).
  const server = createServer(withConsole(yoga, GRAPHQL_PATH))
  const sockets = new WebSocketServer({ server, path: GRAPHQL_PATH })
  const disposable = useServer(
    {
      onConnect: (ctx) => {
        // The upgrade request's headers (a proxy's, or a browser's cookies-free Authorization) or connection params.
        const params = (ctx.connectionParams ?? {}) as Record<string, unknown>
        const read = headerReader(ctx.extra.request)
        try {
          const user = authenticate(config.auth, (name) => (name === 'authorization' && typeof params.authorization === 'string' ? params.authorization : read(name)))
          // Queries of this connection are cancelled when it closes.
          Object.assign(ctx.extra, { user, closed: new AbortController() })
          return true
        } catch {
          return false
        }
      },
      onClose: (ctx) => {
        ;(ctx.extra as unknown as { closed?: AbortController }).closed?.abort()
      },
      onSubscribe: async (ctx, _id, payload) => {
        const { schema: enveloped, execute, subscribe, parse, validate } = yoga.getEnveloped({ req: ctx.extra.request, params: payload })
        const document = parse(payload.query)
        const errors = validate(enveloped, document)
        if (errors.length > 0) return errors
        const { user, closed } = ctx.extra as unknown as { user: User; closed: AbortController }
        const socket = ctx.extra.socket
        const contextValue: GatewayContext = { user, signal: closed.signal, congested: () => socket.bufferedAmount > CONGESTED_BYTES }
        const args: ExecutionArgs = {
          schema: enveloped,
          document,
          operationName: payload.operationName ?? null,
          variableValues: payload.variables ?? null,
          contextValue,
          rootValue: { execute, subscribe },
        }
        return args
      },
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
    },
    sockets,
  )

  return {
    server,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          const address = server.address()
          resolve({ host, port: typeof address === 'object' && address ? address.port : port })
        })
      }),
    close: async () => {
      await disposable.dispose()
      sockets.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
