// Serves the web console's static build (ui/build, a SvelteKit single-page app) on the gateway's
// listener next to /graphql: same origin, so the console needs no CORS and inherits the gateway's auth.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where `npm run build -w @flowbus/ui` writes the console (this file is gateway/src or gateway/dist). */
export const consoleDirectory = fileURLToPath(new URL('../../ui/build/', import.meta.url))

export const CONSOLE_BUILD_COMMAND = 'npm run build -w @flowbus/ui'

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
}

// SvelteKit puts content-hashed files under _app/immutable: their name changes with their content.
const IMMUTABLE = '/_app/immutable/'

const isFile = async (path: string) => (await stat(path).catch(() => undefined))?.isFile() ?? false

const send = (request: IncomingMessage, response: ServerResponse, path: string, size: number, cache: string) => {
  response.writeHead(200, {
    'content-type': contentTypes[extname(path)] ?? 'application/octet-stream',
    'content-length': size,
    'cache-control': cache,
    'x-content-type-options': 'nosniff',
  })
  if (request.method === 'HEAD') return void response.end()
  createReadStream(path)
    .on('error', () => response.destroy())
    .pipe(response)
}

const notBuilt = (directory: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flowbus: console not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The flowbus console is not built</h1>
<p>The gateway serves the console from <code>${directory}</code>, which holds no <code>index.html</code>.
Build it with:</p>
<pre style="padding: 1rem; background: #eee">${CONSOLE_BUILD_COMMAND}</pre>
<p>(<code>npm start</code> builds it when it is missing or stale.) The GraphQL API works meanwhile at
<a href="/graphql">/graphql</a>.</p>
</body></html>
`

/**
 * Answers GET/HEAD for a console path: a file of the build, or index.html for client-side routes
 * (SPA fallback), or a page saying how to build the console when the build is missing. Checked
 * per request, so a build made while the gateway runs is served without a restart.
 */
export const serveConsole = (directory = consoleDirectory) => {
  const root = normalize(directory.endsWith(sep) ? directory : directory + sep)
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('the console only answers GET and HEAD\n')
      return
    }
    let pathname: string
    try {
      pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://console').pathname)
    } catch {
      response.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad URL path\n')
      return
    }
    const index = join(root, 'index.html')
    const file = normalize(join(root, pathname))
    // A path that escapes the build (../) or names a directory is a client route: the SPA decides.
    if (file.startsWith(root) && (await isFile(file))) {
      const { size } = await stat(file)
      return send(request, response, file, size, pathname.startsWith(IMMUTABLE) ? 'public, max-age=31536000, immutable' : 'no-cache')
    }
    // A missing asset is a 404 (an old page asking for a file of a previous build), not the app.
    if (pathname.startsWith('/_app/') || (extname(pathname) !== '' && extname(pathname) !== '.html')) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' }).end(`${pathname}: no such file in the console build\n`)
      return
    }
    if (await isFile(index)) {
      const { size } = await stat(index)
      return send(request, response, index, size, 'no-cache')
    }
    const body = notBuilt(root)
    response.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache' })
    response.end(request.method === 'HEAD' ? undefined : body)
  }
}

/** Puts the console in front of a GraphQL listener: `graphqlPath` and below go to `graphql`, the rest to the console. */
export const withConsole = (graphql: RequestListener, graphqlPath: string, directory = consoleDirectory): RequestListener => {
  const console_ = serveConsole(directory)
  return (request, response) => {
    const path = (request.url ?? '/').split('?')[0]!
    if (path === graphqlPath || path.startsWith(`${graphqlPath}/`)) return graphql(request, response)
    console_(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500).end()
      else response.destroy()
    })
  }
}
