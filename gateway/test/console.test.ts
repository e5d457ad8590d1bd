// The console's static serving (console.ts) on a real HTTP listener over a temporary build
// directory: files with their types and caching, the SPA fallback, missing assets, paths that try
// to leave the build, methods, and the page naming the build command when there is no build.
import { mkdir, rm, writeFile } from 'node:fs/promises'
import * as http from 'node:http'
import { type Server, createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONSOLE_BUILD_COMMAND, withConsole } from '../src/console.js'

let dir: string
let server: Server
let base: string
const INDEX = '<!doctype html><title>console</title>'

beforeAll(async () => {
  dir = join(tmpdir(), `flowbus-console-${process.pid}`)
  await mkdir(join(dir, '_app', 'immutable', 'entry'), { recursive: true })
  await writeFile(join(dir, '_app', 'immutable', 'entry', 'app.Ab12.js'), 'export {}\n')
  await writeFile(join(dir, '_app', 'version.json'), '{"version":"console"}')
  await writeFile(join(dir, 'robots.txt'), 'User-agent: *\n')
  const graphql = (_request: unknown, response: import('node:http').ServerResponse) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{}}')
  server = createServer(withConsole(graphql, '/graphql', dir))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await rm(dir, { recursive: true, force: true })
})

describe('console serving', () => {
  it('says how to build the console while there is no build, and still routes /graphql', async () => {
    const response = await fetch(`${base}/`)
    expect(response.status).toBe(503)
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(await response.text()).toContain(CONSOLE_BUILD_COMMAND)
    expect(await (await fetch(`${base}/graphql?query={__typename}`)).text()).toBe('{"data":{}}')
  })

  it('serves files with their content type and caching, and index.html for client routes', async () => {
    await writeFile(join(dir, 'index.html'), INDEX)
    const index = await fetch(`${base}/`)
    expect([index.status, index.headers.get('content-type'), index.headers.get('cache-control'), await index.text()]).toEqual([200, 'text/html; charset=utf-8', 'no-cache', INDEX])
    const asset = await fetch(`${base}/_app/immutable/entry/app.Ab12.js`)
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    const version = await fetch(`${base}/_app/version.json`)
    expect([version.headers.get('content-type'), version.headers.get('cache-control')]).toEqual(['application/json; charset=utf-8', 'no-cache'])
    expect((await fetch(`${base}/robots.txt`)).headers.get('content-type')).toBe('text/plain; charset=utf-8')
    for (const route of ['/visualize?v=1&dims=SrcAS', '/live', '/exporters/', '/no/such/page']) {
      const response = await fetch(base + route)
      expect([route, response.status, await response.text()]).toEqual([route, 200, INDEX])
    }
  })

  it('answers 404 for a missing asset, keeps paths inside the build, and only answers GET and HEAD', async () => {
    expect((await fetch(`${base}/_app/immutable/entry/gone.js`)).status).toBe(404)
    expect((await fetch(`${base}/favicon.png`)).status).toBe(404)
    // fetch would normalise ../ away: a raw path goes through a plain request.
    const raw = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port: Number(new URL(base).port), path: '/%2e%2e/%2e%2e/%2e%2e/etc/passwd' }, (response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => (body += chunk))
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
      })
      request.on('error', reject)
      request.end()
    })
    // The URL parser resolves the dots inside the build: a client route, so the app.
    expect(raw.body).not.toContain('root:')
    expect([raw.status, raw.body]).toEqual([200, INDEX])
    const head = await fetch(`${base}/`, { method: 'HEAD' })
    expect([head.status, head.headers.get('content-length'), await head.text()]).toEqual([200, String(INDEX.length), ''])
    expect((await fetch(`${base}/`, { method: 'POST', body: 'x' })).status).toBe(405)
  })
})

