// The ClickHouse connection: the embedded chDB engine (one data path per process), a server that
// refuses connections named in the error, and awaitSchema waiting for the flows table.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Effect, Fiber, Schema } from 'effect'
import { freePort } from '../../../test/src/harness/process.js'
import { afterAll, describe, expect, it } from 'vitest'
import {
  ClickHouseSection,
  awaitSchema,
  clickHouseError,
  flowsTable,
  missingFlowColumns,
  openClickHouse,
  renderCreateTable,
  renderCreateView,
  tableDefinitions,
  viewDefinitions,
} from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'flowbus-storage-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const section = (value: unknown) => Schema.decodeUnknownSync(ClickHouseSection)(value)


describe('embedded ClickHouse', () => {
  const config = section({ path: join(dir, 'engine'), database: 'conn_test' })

  it('runs queries and refuses a second data path in the same process, naming both', async () => {
    const client = await openClickHouse(config)
    const again = await openClickHouse(config)
    try {
      const rows = await (await client.query({ query: 'SELECT 1 + 1 AS two', format: 'JSONEachRow' })).json<{ two: number }>()
      expect(rows).toEqual([{ two: 2 }])
      await expect(openClickHouse({ ...config, path: join(dir, 'other') })).rejects.toThrow(
        new RegExp(`clickhouse.path ${join(dir, 'other')} cannot be opened: .* on ${join(dir, 'engine')}`),
      )
    } finally {
      await again.close()
      await client.close()
    }
  })

  it('awaitSchema waits until the flows table has every configured column and its views exist', async () => {
    const client = await openClickHouse(config)
    try {
      expect((await missingFlowColumns(client, config)).length).toBeGreaterThan(10)
      const waiting = Effect.runFork(awaitSchema(client, config, { interval: '50 millis' }))
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(waiting.unsafePoll()).toBeNull()
      await client.command({ query: 'CREATE DATABASE IF NOT EXISTS conn_test' })
      await client.command({ query: renderCreateTable(config, flowsTable(config)) })
      // The table alone is not enough: rows inserted before the views exist would miss the aggregates.
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(waiting.unsafePoll()).toBeNull()
      for (const table of tableDefinitions(config)) await client.command({ query: renderCreateTable(config, table) })
      for (const view of viewDefinitions(config)) await client.command({ query: renderCreateView(config, view) })
      await Effect.runPromise(Fiber.join(waiting))
      expect(await missingFlowColumns(client, config)).toEqual([])
      // A configuration with more columns is not satisfied by that table.
      expect(await missingFlowColumns(client, section({ ...config, columns: { enable: ['mpls'] } }))).toEqual(['MPLSLabels'])
    } finally {
      await client.close()
    }
  })
})

describe('ClickHouse server mode', () => {
  it('reports a refused connection with the URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}`
    const config = section({ mode: 'server', url, requestTimeout: '5s' })
    const client = await openClickHouse(config)
    try {
      const error = await client.query({ query: 'SELECT 1' }).then(
        () => undefined,
        (cause: unknown) => clickHouseError(config, 'querying', cause),
      )
      expect(error?.message).toMatch(new RegExp(`^querying on ClickHouse server ${url}: connection refused \\(is the server running and clickhouse.url right\\?\\)`))
    } finally {
      await client.close()
    }
  })

  it('refuses a URL that is not HTTP and half a client certificate', async () => {
    await expect(openClickHouse(section({ mode: 'server', url: 'tcp://x:9000' }))).rejects.toThrow('must be http:// or https://')
    await expect(openClickHouse(section({ mode: 'server', url: 'https://x:8443', tls: { cert: '/nope.pem' } }))).rejects.toThrow(
      'clickhouse.tls.cert and clickhouse.tls.key go together',
    )
    await expect(openClickHouse(section({ mode: 'server', url: 'https://x:8443', tls: { ca: join(dir, 'missing.pem') } }))).rejects.toThrow(
      `clickhouse.tls.ca ${join(dir, 'missing.pem')}`,
    )
  })
})
