// The per-process HTTP endpoint: Prometheus /metrics, liveness /healthz and readiness
// /readyz (ready once every actor has started and until shutdown begins), plus actors' routes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { Context, Effect, Layer, Option, type Scope } from 'effect'
import type { HttpConfig } from './config/sections.js'
import { Metrics } from './metrics.js'

export interface HealthService {
  /** Marks a component (e.g. an actor) ready or not; /readyz is 200 only when all are ready. */
  readonly setReady: (component: string, ready: boolean, detail?: string) => void
  readonly status: () => { ready: boolean; components: Record<string, { ready: boolean; detail?: string }> }
}

export class Health extends Context.Tag('flowbus/Health')<Health, HealthService>() {}

export const makeHealth = (): HealthService => {
  const components = new Map<string, { ready: boolean; detail?: string }>()
  return {
    setReady: (component, ready, detail) => {
      components.set(component, detail === undefined ? { ready } : { ready, detail })
    },
    status: () => ({
      ready: components.size > 0 && [...components.values()].every((c) => c.ready),
      components: Object.fromEntries(components),
    }),
  }
}

export const HealthLive = Layer.sync(Health, makeHealth)

/** Splits "host:port" (IPv6 as "[::1]:8080"); throws a message naming the value. */
export const parseListen = (listen: string): { host: string; port: number } => {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen)
  const port = Number(match?.[3])
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`http.listen "${listen}" is not host:port (e.g. "127.0.0.1:8080" or "[::1]:8080")`)
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port }
}

/** Answers one request; a rejection becomes a 500 naming the error. */
export type HttpRouteHandler = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>

export interface HttpEndpoint {
  /** The bound address, useful when the configured port was 0. */
  readonly address: { host: string; port: number } | undefined
  /**
   * Serves every path under `prefix` (e.g. "/api/v0/clickhouse/") with the handler until the
   * scope closes. Fails when another route or a built-in path already owns the prefix.
   */
  readonly route: (prefix: string, handler: HttpRouteHandler) => Effect.Effect<void, Error, Scope.Scope>
}

const builtinPaths = ['/metrics', '/healthz', '/readyz']

/** Routes by path prefix, longest first; kept apart from the server so a disabled endpoint still accepts them. */
const makeRoutes = () => {
  const routes = new Map<string, HttpRouteHandler>()
  const route = (prefix: string, handler: HttpRouteHandler): Effect.Effect<void, Error, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        if (!prefix.startsWith('/')) return Effect.fail(new Error(`HTTP route "${prefix}" must start with /`))
        const clash = [...routes.keys(), ...builtinPaths].find((p) => p.startsWith(prefix) || prefix.startsWith(p))
        if (clash !== undefined) return Effect.fail(new Error(`HTTP route ${prefix} overlaps ${clash}, already served`))
        routes.set(prefix, handler)
        return Effect.void
      }),
      () => Effect.sync(() => routes.delete(prefix)),
    )
  const find = (path: string): HttpRouteHandler | undefined => {
    let best: string | undefined
    for (const prefix of routes.keys()) if (path.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix
    return best === undefined ? undefined : routes.get(best)
  }
  return { route, find, prefixes: () => [...routes.keys()] }
}

/**
 * Serves `prefix` on the process's HTTP endpoint for the enclosing scope. An actor calls this
 * from its start; without an HTTP endpoint in the process (tests building actors alone) it
 * logs that the route is not served and succeeds.
 */
export const serveHttpRoute = (prefix: string, handler: HttpRouteHandler): Effect.Effect<void, Error, Scope.Scope> =>
  Effect.flatMap(Effect.serviceOption(HttpServer), (server) =>
    Option.isSome(server)
      ? server.value.route(prefix, handler)
      : Effect.logWarning(`no HTTP endpoint in this process: ${prefix} is not served`),
  )

export class HttpServer extends Context.Tag('flowbus/HttpServer')<HttpServer, HttpEndpoint>() {}

/** Serves /metrics, /healthz, /readyz and the routes actors register while the layer is alive. */
export const HttpServerLive = (config: HttpConfig): Layer.Layer<HttpServer, Error, Metrics | Health> =>
  Layer.scoped(
    HttpServer,
    Effect.gen(function* () {
      const routes = makeRoutes()
      if (config.listen === '') return { address: undefined, route: routes.route }
      const { host, port } = yield* Effect.try({ try: () => parseListen(config.listen), catch: (e) => e as Error })
      const metrics = yield* Metrics
      const health = yield* Health
      const server: Server = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0]
        if (path === '/metrics') {
          metrics.registry.metrics().then(
            (text) => {
              res.writeHead(200, { 'content-type': metrics.registry.contentType })
              res.end(text)
            },
            (error: Error) => {
              res.writeHead(500, { 'content-type': 'text/plain' })
              res.end(error.message)
            },
          )
        } else if (path === '/healthz') {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ status: 'ok' }))
        } else if (path === '/readyz') {
          const status = health.status()
          res.writeHead(status.ready ? 200 : 503, { 'content-type': 'application/json' })
          res.end(JSON.stringify(status))
        } else {
          const handler = routes.find(path ?? '/')
          if (handler === undefined) {
            res.writeHead(404, { 'content-type': 'text/plain' })
            res.end(`not found: try ${[...builtinPaths, ...routes.prefixes()].join(', ')}\n`)
            return
          }
          Promise.resolve()
            .then(() => handler(req, res))
            .catch((error: unknown) => {
              if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' })
              res.end(`${path}: ${error instanceof Error ? error.message : String(error)}\n`)
            })
        }
      })
      const address = yield* Effect.acquireRelease(
        Effect.async<{ host: string; port: number }, Error>((resume) => {
          server.once('error', (error) => resume(Effect.fail(new Error(`cannot listen on http.listen ${config.listen}: ${error.message}`))))
          server.listen(port, host, () => {
            const bound = server.address()
            resume(Effect.succeed({ host, port: typeof bound === 'object' && bound ? bound.port : port }))
          })
        }),
        () =>
          Effect.async<void>((resume) => {
            server.closeAllConnections()
            server.close(() => resume(Effect.void))
          }),
      )
      yield* Effect.logInfo(`metrics and health on http://${host.includes(':') ? `[${host}]` : host}:${address.port}`)
      return { address, route: routes.route }
    }),
  )
