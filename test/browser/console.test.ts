// The web console in headless Chromium against a real gateway (orchestrator, writer and gateway
// in this process on the embedded engine) holding a deterministic day of flows, with a live feed
// published on flows.live while pages are open: every page loads without console errors, charts
// and tables show what the data says, the URL round-trips the visualize state, the filter editor
// completes and reports positioned errors, live views move, and screenshots land in test-results/.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { openClickHouse } from '@flowbus/runtime'
import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Client, type Pipeline, T0, type TestFlow, generateFlows, ok, startPipeline, waitSchema, waitStored } from '../../gateway/test/harness.js'
import { removeDir, skipReason, tempDir } from '../src/harness/process.js'
import { type WatchedPage, buildConsole, ensureChromium, launchChromium, repositoryRoot, watchedPage } from './browser.js'

let chromiumPath = ''
const unavailable = await skipReason('chromium', async () => {
  chromiumPath = await ensureChromium()
})

const DB = 'console'
const screenshots = join(repositoryRoot, 'test-results', 'console')
// The data is placed relative to the time it is stored (the home page shows the last 5 minutes
// and 24 hours): a day of history, and recent flows from 3 minutes to 1 minute ago.
const retime = (flows: TestFlow[], from: number, hours: number, to: number) =>
  flows.map((f) => ({ ...f, time: from + Math.floor(((f.time - T0) / (hours * 3600)) * (to - from)) }))
let recent: TestFlow[] = []
let stored: TestFlow[] = []
/** Flows published live carry a port no stored flow has, so the page shows they are the live ones. */
const LIVE_PORT = 4242
const liveFlows = (n: number, seed: number) => generateFlows(n, 1, seed).map((f) => ({ ...f, time: Math.floor(Date.now() / 1000), srcPort: LIVE_PORT }))

const bps = (f: TestFlow) => f.bytes * f.samplingRate * 8
const topBy = (flows: TestFlow[], key: (f: TestFlow) => string) => {
  const sums = new Map<string, number>()
  for (const f of flows) sums.set(key(f), (sums.get(key(f)) ?? 0) + bps(f))
  return [...sums.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
}

let dir = ''
let pipeline: Pipeline
let client: Client
let browser: Browser
let base = ''
const pages: WatchedPage[] = []

describe.skipIf(unavailable !== undefined)('web console in Chromium', () => {
  beforeAll(async () => {
    buildConsole()
    mkdirSync(screenshots, { recursive: true })
    dir = await tempDir('console-browser')
    pipeline = await startPipeline({
      http: { listen: '127.0.0.1:0' },
      log: { level: 'warning' },
      bus: { transport: 'memory' },
      clickhouse: { path: join(dir, 'db'), database: DB },
      // The default limits, concurrency included: the console must live within them.
      gateway: { listen: '127.0.0.1:0' },
    })
    base = pipeline.url.replace(/\/graphql$/, '')
    client = await openClickHouse(pipeline.clickhouse)
    await waitSchema(client, pipeline.clickhouse)
    const now = Math.floor(Date.now() / 1000)
    recent = retime(generateFlows(400, 1, 22), now - 180, 1, now - 60)
    stored = [...retime(generateFlows(6000, 24, 21), now - 86_400, 24, now - 600), ...recent]
    await pipeline.store(stored)
    await waitStored(client, DB, stored.length)
    browser = await launchChromium(chromiumPath)
  })

  afterAll(async () => {
    await browser?.close()
    await client?.close()
    await pipeline?.stop()
    if (dir) await removeDir(dir)
  })

  // Each test's pages close after it, ending their subscriptions on the gateway.
  afterEach(async () => {
    for (const { page } of pages.splice(0)) await page.context().close()
  })

  const open = async (path: string, colorScheme: 'light' | 'dark' = 'light') => {
    const watched = await watchedPage(browser, colorScheme)
    pages.push(watched)
    await watched.page.goto(base + path)
    return watched
  }
  const noErrors = (watched: WatchedPage) => expect(watched.errors, watched.errors.join('\n')).toEqual([])
  const shoot = (page: Page, name: string) => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true })

  /** Publishes live flows every 300 ms until the returned function is called (and stores them too when asked, as the pipeline does). */
  const feed = (store = false) => {
    let seed = 100
    const timer = setInterval(() => {
      const flows = liveFlows(20, seed++)
      void pipeline.live(flows)
      if (store) {
        stored.push(...flows)
        void pipeline.store(flows)
      }
    }, 300)
    return () => clearInterval(timer)
  }

  it('serves the build at / with SPA fallback, immutable assets and content types', async () => {
    const index = await fetch(`${base}/`)
    expect(index.status).toBe(200)
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(index.headers.get('cache-control')).toBe('no-cache')
    const html = await index.text()
    const asset = /\/_app\/immutable\/[^"]+\.js/.exec(html)?.[0]
    expect(asset).toBeDefined()
    const script = await fetch(base + asset)
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(script.headers.get('cache-control')).toContain('immutable')
    const route = await fetch(`${base}/visualize?v=1&dims=SrcAS`)
    expect(await route.text()).toBe(html)
    expect((await fetch(`${base}/_app/immutable/missing.js`)).status).toBe(404)
    expect((await fetch(`${base}/../../etc/passwd`)).status).not.toBe(500)
    expect((await fetch(`${base}/graphql?query=%7B__typename%7D`)).headers.get('content-type')).toContain('json')
  })

  it('home: widgets from the stored flows, then live flows/s and the last flow while flows are published', async () => {
    const watched = await open('/')
    const { page } = watched
    const widget = page.getByTestId('widget-top-SrcAS')
    const expectedTop = topBy(recent, (f) => String(f.srcAS)).slice(0, 5).map(([name]) => name)
    await expect.poll(() => widget.locator('li .label').allTextContents(), { timeout: 30_000 }).toEqual(expectedTop)
    const exporters = page.getByTestId('widget-exporters').locator('.big')
    await expect.poll(() => exporters.textContent(), { timeout: 20_000 }).toBe('2')
    // The 24-hour graph: one series (no dimensions), drawn as one area.
    await expect.poll(() => page.getByTestId('widget-traffic-24h').locator('path.lc-area-path').count(), { timeout: 30_000 }).toBe(1)
    await expect.poll(() => page.getByTestId('home-empty').count(), { timeout: 20_000 }).toBe(0)
    expect(Number(await page.getByTestId('widget-flow-rate').locator('.big').getAttribute('data-value'))).toBe(0)
    const stop = feed(true)
    try {
      // The live sample moves at once; the stored rate once the page refreshes (live flows trigger it).
      await expect.poll(async () => Number(await page.getByTestId('live-sample').getAttribute('data-value')), { timeout: 30_000 }).toBeGreaterThan(0)
      await expect
        .poll(async () => Number(await page.getByTestId('widget-flow-rate').locator('.big').getAttribute('data-value')), { timeout: 40_000 })
        .toBeGreaterThan(0)
      await expect.poll(() => page.getByTestId('widget-last-flow').locator('[data-field="SrcPort"]').textContent(), { timeout: 30_000 }).toBe(String(LIVE_PORT))
    } finally {
      stop()
    }
    // The flows stored meanwhile are part of the data the next tests compare with.
    await new Promise((resolve) => setTimeout(resolve, 500))
    await waitStored(client, DB, stored.length)
    await shoot(page, 'home-light')
    noErrors(watched)
  })

  it('visualize: series and table from the URL, controls write the URL, a reload restores the view', async () => {
    const watched = await open(`/visualize?v=1&dims=SrcAS&limit=5&top=AVG&range=24h&unit=BPS_L3&graph=STACKED`)
    const { page } = watched
    const chart = page.getByTestId('time-chart')
    // 5 top ASes + Other, one area each, and one table row each.
    await expect.poll(() => chart.locator('path.lc-area-path').count(), { timeout: 30_000 }).toBe(6)
    const rows = page.getByTestId('series-table').locator('tbody tr')
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(6)
    const data = await ok<{ timeseries: { series: { name: string; stats: { total: number } }[] } }>(
      pipeline.url,
      `query ($r: TimeRange!) { timeseries(range: $r, points: 200, dimensions: ["SrcAS"], limit: 5) { series { name stats { total } } } }`,
      { r: await page.evaluate(() => ({ start: new Date(Math.floor(Date.now() / 60_000) * 60_000 + 60_000 - 86_400_000).toISOString(), end: new Date(Math.floor(Date.now() / 60_000) * 60_000 + 60_000).toISOString() })) },
    )
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-series')))).toEqual(data.timeseries.series.map((s) => s.name))
    expect(Number(await rows.first().locator('[data-total]').getAttribute('data-total'))).toBeCloseTo(data.timeseries.series[0]!.stats.total, -3)
    // The top AS over the stored day is the one the JS sums say.
    expect(data.timeseries.series[0]!.name).toBe(topBy(stored, (f) => String(f.srcAS))[0]![0])
    // Hovering a row highlights its series: the others fade.
    await rows.nth(1).hover()
    await expect
      .poll(() => chart.locator('path.lc-area-path').evaluateAll((ps) => ps.map((p) => Number(getComputedStyle(p).opacity))), { timeout: 10_000 })
      .toSatisfy((opacities: number[]) => opacities[1] === 1 && opacities.filter((o) => o < 0.5).length === 5)

    // Add a dimension, reorder, lower the limit, switch to lines: each lands in the URL.
    await page.getByTestId('add-dimension').selectOption('Proto')
    await expect.poll(() => new URL(page.url()).searchParams.get('dims'), { timeout: 20_000 }).toBe('SrcAS,Proto')
    await page.getByRole('button', { name: 'Move Proto up' }).click()
    await expect.poll(() => new URL(page.url()).searchParams.get('dims'), { timeout: 20_000 }).toBe('Proto,SrcAS')
    await page.getByTestId('limit').fill('3')
    await page.getByTestId('limit').press('Enter')
    await expect.poll(() => new URL(page.url()).searchParams.get('limit'), { timeout: 20_000 }).toBe('3')
    await page.getByTestId('graph-LINES').click()
    await expect.poll(() => new URL(page.url()).searchParams.get('graph'), { timeout: 20_000 }).toBe('LINES')
    await expect.poll(() => chart.locator('path.series-mark').count(), { timeout: 30_000 }).toBe(4)
    await page.getByTestId('range-preset').selectOption('7d')
    await expect.poll(() => new URL(page.url()).searchParams.get('range'), { timeout: 20_000 }).toBe('7d')
    const url = page.url()
    await page.reload()
    await expect
      .poll(() => page.getByTestId('dimensions').locator('li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-dimension'))), { timeout: 20_000 })
      .toEqual(['Proto', 'SrcAS'])
    await expect.poll(() => chart.locator('path.series-mark').count(), { timeout: 30_000 }).toBe(4)
    expect(page.url()).toBe(url)
    expect(await page.getByTestId('limit').inputValue()).toBe('3')
    expect(await page.getByTestId('range-preset').inputValue()).toBe('7d')

    // Brushing the graph zooms: the URL gets an absolute start and end inside the old range.
    await page.getByTestId('graph-STACKED').click()
    const box = (await chart.boundingBox())!
    // The stored day is the last seventh of the week shown: select most of it.
    await page.mouse.move(box.x + box.width * 0.87, box.y + box.height / 2)
    await page.mouse.down()
    await page.mouse.move(box.x + box.width * 0.97, box.y + box.height / 2, { steps: 5 })
    await page.mouse.up()
    await expect.poll(() => new URL(page.url()).searchParams.get('start'), { timeout: 20_000 }).not.toBeNull()
    const params = new URL(page.url()).searchParams
    const span = Date.parse(params.get('end')!) - Date.parse(params.get('start')!)
    expect(span).toBeGreaterThan(0)
    expect(span).toBeLessThan(86_400_000)
    await expect.poll(() => page.getByText('loading…').count(), { timeout: 30_000 }).toBe(0)
    await expect.poll(() => chart.locator('path.series-mark').count(), { timeout: 30_000 }).toBe(4)
    await shoot(page, 'visualize-light')
    noErrors(watched)
  })

  it('visualize: sankey and grid draw one mark per node or series', async () => {
    const watched = await open(`/visualize?v=1&dims=ExporterName,Proto&limit=5&range=24h&graph=SANKEY`)
    const { page } = watched
    // Nodes: edge1, edge2 and the two protocols (6, 17).
    await expect.poll(() => page.locator('rect.sankey-node').count(), { timeout: 30_000 }).toBe(4)
    expect(await page.locator('path.sankey-link').count()).toBe(4)
    await shoot(page, 'visualize-sankey-light')
    await page.goto(`${base}/visualize?v=1&dims=ExporterName&limit=5&range=24h&graph=GRID`)
    await expect.poll(() => page.getByTestId('grid-cell').count(), { timeout: 30_000 }).toBe(2)
    noErrors(watched)
  })

  it('filter editor: completion from the gateway, positioned errors, Ctrl-Enter applies', async () => {
    const watched = await open(`/visualize?v=1&dims=SrcAS&limit=5&range=24h`)
    const { page } = watched
    const input = page.getByTestId('filter-input')
    await input.click()
    await input.pressSequentially('ExporterName = ')
    const suggestions = page.getByTestId('filter-suggestions')
    await expect.poll(() => suggestions.locator('.label').allTextContents(), { timeout: 20_000 }).toEqual(expect.arrayContaining(['edge1', 'edge2']))
    // Keyboard: pick the second suggestion.
    const labels = await suggestions.locator('.label').allTextContents()
    await shoot(page, 'filter-completion-light')
    await input.press('ArrowDown')
    await input.press('Enter')
    expect(await input.inputValue()).toBe(`ExporterName = "${labels[1]}"`)
    await input.press('Control+Enter')
    await expect.poll(() => new URL(page.url()).searchParams.get('filter'), { timeout: 20_000 }).toBe(`ExporterName = "${labels[1]}"`)
    // Only that exporter's traffic: the table has that many AS series (its top 5 + Other at most).
    await expect.poll(() => page.getByTestId('series-table').locator('tbody tr').count(), { timeout: 30_000 }).toBeGreaterThan(0)
    // Saved in the gateway under a description, listed by the editor.
    await page.getByRole('button', { name: 'Save filter…' }).click()
    await page.getByLabel('Description of the saved filter').fill('one exporter')
    await page.getByLabel('Description of the saved filter').press('Enter')
    const saved = page.getByLabel('Saved filters')
    await expect.poll(() => saved.locator('option').allTextContents(), { timeout: 20_000 }).toContain('one exporter')

    // An invalid filter: the gateway's problem, at its position, and nothing applied.
    const bad = 'SrcAS = AS65000 AND DstPort >'
    await input.fill(bad)
    const problem = await ok<{ filterValidate: { problems: { offset: number; column: number }[] } }>(pipeline.url, `query ($f: String!) { filterValidate(filter: $f) { problems { offset column } } }`, { f: bad })
    const error = page.getByTestId('filter-error')
    await expect.poll(() => error.getAttribute('data-offset'), { timeout: 20_000 }).toBe(String(problem.filterValidate.problems[0]!.offset))
    expect(await error.textContent()).toContain(`column ${problem.filterValidate.problems[0]!.column}`)
    // The marker sits after the text before the offset: to the right of the editor's left edge.
    const marker = (await page.getByTestId('filter-error-marker').boundingBox())!
    const editor = (await input.boundingBox())!
    expect(marker.x - editor.x).toBeGreaterThan(bad.length * 0.5 * 5)
    await input.press('Control+Enter')
    await page.waitForTimeout(300)
    expect(new URL(page.url()).searchParams.get('filter')).toBe(`ExporterName = "${labels[1]}"`)
    await shoot(page, 'filter-error-light')
    // Another filter, then the saved one again from the list.
    await input.fill('Proto = tcp')
    await input.press('Control+Enter')
    await expect.poll(() => new URL(page.url()).searchParams.get('filter'), { timeout: 20_000 }).toBe('Proto = tcp')
    await saved.selectOption({ label: 'one exporter' })
    await expect.poll(() => new URL(page.url()).searchParams.get('filter'), { timeout: 20_000 }).toBe(`ExporterName = "${labels[1]}"`)
    expect(await input.inputValue()).toBe(`ExporterName = "${labels[1]}"`)
    noErrors(watched)
  })

  it('live flows: rows stream in, pause holds them, the rate indicator moves, columns are chosen', async () => {
    const watched = await open(`/live`)
    const { page } = watched
    const rows = page.getByTestId('live-table').locator('tbody tr')
    const stop = feed()
    try {
      await expect.poll(() => rows.count(), { timeout: 30_000 }).toBeGreaterThan(20)
      await expect.poll(async () => Number(await page.getByTestId('live-rate').getAttribute('data-value')), { timeout: 10_000 }).toBeGreaterThan(0)
      const port = await page.getByTestId('live-table').locator('thead th').allTextContents()
      expect(port).toContain('SrcPort')
      const srcPortColumn = port.indexOf('SrcPort')
      expect(await rows.first().locator('td').nth(srcPortColumn).textContent()).toBe(String(LIVE_PORT))
      await page.getByTestId('pause').click()
      const held = await rows.first().textContent()
      const received = Number(await page.getByTestId('live-received').getAttribute('data-value'))
      await expect.poll(async () => Number(await page.getByTestId('live-received').getAttribute('data-value')), { timeout: 10_000 }).toBeGreaterThan(received)
      expect(await rows.first().textContent()).toBe(held)
      await page.getByTestId('pause').click()
      await expect.poll(() => rows.first().textContent(), { timeout: 10_000 }).not.toBe(held)
      await page.getByRole('button', { name: 'Columns…' }).click()
      await page.getByTestId('column-chooser').getByLabel('TCPFlags').check()
      await expect.poll(() => new URL(page.url()).searchParams.get('cols'), { timeout: 20_000 }).toContain('TCPFlags')
      await expect.poll(() => page.getByTestId('live-table').locator('thead th').allTextContents(), { timeout: 20_000 }).toContain('TCPFlags')
      // A filter goes to the gateway: only exporter edge2's flows remain.
      const input = page.getByTestId('filter-input')
      await input.fill('ExporterName = "edge2"')
      await input.press('Control+Enter')
      await expect.poll(() => new URL(page.url()).searchParams.get('filter'), { timeout: 20_000 }).toBe('ExporterName = "edge2"')
      const exporterColumn = (await page.getByTestId('live-table').locator('thead th').allTextContents()).indexOf('ExporterName')
      await expect.poll(() => rows.count(), { timeout: 20_000 }).toBeGreaterThan(3)
      expect(new Set(await rows.evaluateAll((trs, k) => trs.map((tr) => tr.children[k]!.textContent), exporterColumn))).toEqual(new Set(['edge2']))
      await shoot(page, 'live-light')
    } finally {
      stop()
    }
    noErrors(watched)
  })

  it('exporters: interfaces with traffic and the pipeline health', async () => {
    const watched = await open('/exporters')
    const { page } = watched
    const exporters = page.getByTestId('exporter')
    await expect.poll(() => exporters.evaluateAll((es) => es.map((e) => e.getAttribute('data-address'))), { timeout: 30_000 }).toEqual(['192.0.2.1', '192.0.2.2'])
    // edge1 has input interfaces Gi0/1-3 and output Te0/10-11 in the generated flows.
    const interfaces = exporters.first().getByTestId('interfaces').locator('tbody tr')
    expect(new Set(await interfaces.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-interface'))))).toEqual(new Set(['Gi0/1', 'Gi0/2', 'Gi0/3', 'Te0/10', 'Te0/11']))
    expect(await page.getByTestId('rows-stored').textContent()).toBe(String(Number((stored.length / 1000).toPrecision(3))) + ' k')
    await shoot(page, 'exporters-light')
    noErrors(watched)
  })

  it('dark theme: every page renders dark without errors (screenshots), the switch persists', async () => {
    const stop = feed()
    try {
      for (const [name, path] of [
        ['home', '/'],
        ['visualize', '/visualize?v=1&dims=SrcAS,Proto&limit=5&range=24h&bidi=1&prev=1'],
        ['live', '/live'],
        ['exporters', '/exporters'],
      ] as const) {
        const watched = await open(path, 'dark')
        const { page } = watched
        expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark')
        expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(18, 21, 27)')
        if (name === 'live') await expect.poll(() => page.getByTestId('live-table').locator('tbody tr').count(), { timeout: 20_000 }).toBeGreaterThan(10)
        else await page.waitForLoadState('networkidle').catch(() => {})
        await page.waitForTimeout(500)
        await shoot(page, `${name}-dark`)
        noErrors(watched)
      }
    } finally {
      stop()
    }
    const watched = await open('/', 'dark')
    await watched.page.getByTestId('theme-toggle').click()
    await watched.page.reload()
    expect(await watched.page.evaluate(() => document.documentElement.dataset.theme)).toBe('light')
  })

  it('error states: the gateway unreachable, a query too large', async () => {
    const watched = await open(`/visualize?v=1&dims=SrcAS&start=2024-01-01T00:00:00Z&end=2026-01-01T00:00:00Z`)
    const { page } = watched
    await expect.poll(() => page.getByTestId('query-error').getAttribute('data-code'), { timeout: 20_000 }).toBe('RANGE_TOO_LONG')
    expect(await page.getByTestId('query-error').textContent()).toContain('too large')
    await shoot(page, 'error-too-large-light')
    // The network to /graphql fails as when the gateway is down.
    await page.route('**/graphql', (route) => route.abort('connectionrefused'))
    await page.getByTestId('graph-LINES').click()
    await expect.poll(() => page.getByTestId('gateway-down').count(), { timeout: 20_000 }).toBe(1)
    await shoot(page, 'error-gateway-down-light')
    // Back: the banner goes and the page queries again (a graph with lines).
    await page.unroute('**/graphql')
    await expect.poll(() => page.getByTestId('gateway-down').count(), { timeout: 20_000 }).toBe(0)
  })
})
