// Auth and limits: bearer tokens and proxy headers (over HTTP and WebSocket), saved filters per
// user, and each limit's GraphQL error (depth, cost, points, range, limit, introspection,
// concurrent queries, ClickHouse timeout, cancellation when the client goes away).
import { join } from 'node:path'
import { openClickHouse } from '@flowbus/runtime'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, tempDir } from '../../test/src/harness/process.js'
import { makeQueryRunner } from '../src/query/runner.js'
import { type Client, type Pipeline, graphql, startPipeline } from './harness.js'

let dir: string
beforeAll(async () => {
  dir = await tempDir('gateway-limits')
})
afterAll(async () => {
  if (dir) await removeDir(dir)
})

const alice = 'alice-token-0123456789'
const bob = 'bob-token-0123456789ab'
const range = { start: '2026-10-01T00:00:00Z', end: '2026-10-02T00:00:00Z' }

const base = (gateway: Record<string, unknown>) => ({
  http: { listen: '127.0.0.1:0' },
  log: { level: 'warning' },
  bus: { transport: 'memory' },
  clickhouse: { path: join(dir, 'db'), database: 'limits' },
  gateway: { listen: '127.0.0.1:0', ...gateway },
})

describe('bearer tokens and limits', () => {
  let pipeline: Pipeline
  const as = (token: string) => ({ authorization: `Bearer ${token}` })
  beforeAll(async () => {
    pipeline = await startPipeline(
      base({
        introspection: false,
        auth: { mode: 'tokens', tokens: [{ token: alice, user: 'alice', name: 'Alice', email: 'alice@example.net' }, { token: bob, user: 'bob' }] },
        limits: { maxDepth: 3, maxCost: 100, maxPoints: 500, maxRange: '7d', maxLimit: 50 },
      }),
    )
  })
  afterAll(async () => {
    await pipeline?.stop()
  })

  it('refuses requests without a valid token', async () => {
    const missing = await fetch(pipeline.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ me { login } }' }) })
    expect(missing.status).toBe(401)
    const body = (await missing.json()) as { errors: { message: string; extensions: { code: string } }[] }
    expect(body.errors[0]!.extensions.code).toBe('UNAUTHENTICATED')
    expect(body.errors[0]!.message).toContain('Authorization: Bearer')
    const wrong = await graphql(pipeline.url, '{ me { login } }', {}, as('not-a-token-at-all-000'))
    expect(wrong.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
  })

  it('gives resolvers the token owner', async () => {
    const result = await graphql(pipeline.url, '{ me { login name email } }', {}, as(alice))
    expect(result.data).toEqual({ me: { login: 'alice', name: 'Alice', email: 'alice@example.net' } })
  })

  it('authenticates WebSocket clients by their connection parameters', async () => {
    const connect = (authorization?: string) =>
      createClient({ url: pipeline.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: authorization ? { authorization } : {} })
    const good = connect(`Bearer ${bob}`)
    const answer = await good.iterate<{ me: { login: string } }>({ query: '{ me { login } }' }).next()
    expect((answer.value as { data: { me: { login: string } } }).data.me.login).toBe('bob')
    await good.dispose()
    const bad = connect()
    await expect(bad.iterate({ query: '{ me { login } }' }).next()).rejects.toBeDefined()
    await bad.dispose()
  })

  it('keeps saved filters per user and shares the shared ones', async () => {
    const save = (token: string, description: string, shared: boolean) =>
      graphql<{ saveFilter: { id: string } }>(
        pipeline.url,
        `mutation ($d: String!, $s: Boolean) { saveFilter(description: $d, filter: "DstPort = 443", shared: $s) { id owner } }`,
        { d: description, s: shared },
        as(token),
      )
    const mine = (await save(alice, 'alice private', false)).data!.saveFilter.id
    await save(alice, 'alice shared', true)
    await save(bob, 'bob private', false)
    const list = async (token: string) =>
      ((await graphql<{ savedFilters: { description: string; owner: string }[] }>(pipeline.url, '{ savedFilters { description owner } }', {}, as(token))).data!
        .savedFilters.map((s) => s.description))
    expect((await list(alice)).sort()).toEqual(['alice private', 'alice shared'])
    expect((await list(bob)).sort()).toEqual(['alice shared', 'bob private'])
    // Bob cannot delete Alice's filter; Alice can.
    expect((await graphql(pipeline.url, 'mutation ($id: ID!) { deleteFilter(id: $id) }', { id: mine }, as(bob))).data).toEqual({ deleteFilter: false })
    expect((await graphql(pipeline.url, 'mutation ($id: ID!) { deleteFilter(id: $id) }', { id: mine }, as(alice))).data).toEqual({ deleteFilter: true })
    expect(await list(alice)).toEqual(['alice shared'])
    const invalid = await graphql(pipeline.url, `mutation { saveFilter(description: "x", filter: "DstPort = ") { id } }`, {}, as(alice))
    expect(invalid.errors?.[0]?.extensions?.code).toBe('BAD_FILTER')
  })

  const refused = async (query: string, code: string, contains: string) => {
    const result = await graphql(pipeline.url, query, { range }, as(alice))
    expect(result.errors?.[0]?.extensions?.code, JSON.stringify(result.errors)).toBe(code)
    expect(result.errors?.[0]?.message).toContain(contains)
  }

  it('refuses each limit with its own error', async () => {
    await refused('query ($range: TimeRange!) { timeseries(range: $range, points: 501) { step } }', 'TOO_MANY_POINTS', 'maxPoints')
    await refused(
      `query { timeseries(range: { start: "2026-09-01T00:00:00Z", end: "2026-10-01T00:00:00Z" }) { step } }`,
      'RANGE_TOO_LONG',
      'maxRange',
    )
    await refused('query ($range: TimeRange!) { topN(range: $range, dimensions: ["SrcAS"], limit: 51) { all { total } } }', 'LIMIT_TOO_HIGH', 'maxLimit')
    await refused('query ($range: TimeRange!) { timeseries(range: $range) { series { stats { min } } table { name } } }', 'QUERY_TOO_DEEP', 'maxDepth')
    await refused(
      'query ($range: TimeRange!) { a: topN(range: $range, dimensions: ["SrcAS"], limit: 40) { dimensions } b: topN(range: $range, dimensions: ["DstAS"], limit: 40) { dimensions } }',
      'QUERY_TOO_COSTLY',
      'maxCost',
    )
    await refused('query ($range: TimeRange!) { timeseries(range: $range, ipv4PrefixLength: 33) { step } }', 'BAD_ARGUMENT', 'ipv4PrefixLength')
    const introspection = await graphql(pipeline.url, '{ __schema { types { name } } }', {}, as(alice))
    expect(introspection.errors?.[0]?.message).toContain('introspection')
  })
})

describe('trusted proxy headers', () => {
  let pipeline: Pipeline
  beforeAll(async () => {
    pipeline = await startPipeline(base({ auth: { mode: 'proxy', userHeader: 'X-Remote-User', nameHeader: 'X-Remote-Name' } }))
  })
  afterAll(async () => {
    await pipeline?.stop()
  })

  it('takes the user from the headers and refuses requests without them', async () => {
    const result = await graphql(pipeline.url, '{ me { login name email } }', {}, { 'x-remote-user': 'carol', 'x-remote-name': 'Carol' })
    expect(result.data).toEqual({ me: { login: 'carol', name: 'Carol', email: null } })
    const missing = await graphql(pipeline.url, '{ me { login } }')
    expect(missing.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    expect(missing.errors?.[0]?.message).toContain('X-Remote-User')
  })
})

describe('ClickHouse time limit, cancellation and concurrent queries', () => {
  let client: Client
  beforeAll(async () => {
    client = await openClickHouse({ ...(await import('./harness.js')).resolveConfig(base({})).clickhouse })
  })
  afterAll(async () => {
    await client?.close()
  })
  // Far more rows than the engine reads in a second on any machine.
  const endless = 'SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0'

  it('stops a query over the time limit with QUERY_TIMEOUT', async () => {
    const runner = makeQueryRunner(client, { database: 'limits', timeoutMs: 1000, maxConcurrentPerUser: 2, server: false })
    await expect(runner.rows(endless, {}, { user: 'dave', purpose: 'test' })).rejects.toMatchObject({ extensions: { code: 'QUERY_TIMEOUT' } })
    expect(runner.running('dave')).toBe(0)
  })

  it('answers at once when the client goes away, and refuses a user over the concurrent limit', async () => {
    const outcomes: string[] = []
    // The embedded engine runs one query at a time and does not stop on cancellation: the time
    // limit (3 s here) ends the abandoned query, after which the next one runs.
    const runner = makeQueryRunner(client, { database: 'limits', timeoutMs: 3000, maxConcurrentPerUser: 1, server: false }, { finished: (_, outcome) => outcomes.push(outcome) })
    const controller = new AbortController()
    const running = runner.rows(endless, {}, { user: 'erin', purpose: 'test', signal: controller.signal })
    expect(runner.running('erin')).toBe(1)
    await expect(runner.rows('SELECT 1', {}, { user: 'erin', purpose: 'test' })).rejects.toMatchObject({ extensions: { code: 'TOO_MANY_CONCURRENT_QUERIES' } })
    controller.abort()
    await expect(running).rejects.toMatchObject({ extensions: { code: 'QUERY_CANCELLED' } })
    expect(runner.running('erin')).toBe(0)
    expect(await runner.rows('SELECT 1 AS one', {}, { user: 'erin', purpose: 'test' })).toEqual([{ one: 1 }])
    expect(outcomes).toEqual(['refused', 'cancelled', 'ok'])
  })
})
