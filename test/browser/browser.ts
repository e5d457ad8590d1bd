// Headless Chromium for the console tests, driven by playwright-core with Debian's `chromium`
// (installed on demand like the other real peers); pages record console errors as they load.
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, type ConsoleMessage, type Page, chromium } from 'playwright-core'
import { ensureExecutable } from '../src/harness/process.js'

/** The flags the probe uses: no GPU, no network chatter of its own, no first-run UI. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Debian's chromium (/usr/bin/chromium), installed when missing. */
export const ensureChromium = () => ensureExecutable('chromium', 'chromium')

export const launchChromium = async (executablePath: string): Promise<Browser> => chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true, timeout: 60_000 })

export const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Builds ui/build when it is missing or older than ui/src (a no-op when current). */
export function buildConsole(): void {
  const result = spawnSync(process.execPath, [join(repositoryRoot, 'ui', 'scripts', 'build-if-stale.mjs')], { encoding: 'utf8', cwd: repositoryRoot })
  if (result.status !== 0) throw new Error(`the console build failed:\n${result.stdout}\n${result.stderr}`)
}

/** A page whose console errors and uncaught exceptions are collected, to assert there are none. */
export interface WatchedPage {
  readonly page: Page
  readonly errors: string[]
}

export async function watchedPage(browser: Browser, colorScheme: 'light' | 'dark' = 'light'): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, colorScheme })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error') errors.push(`console.error: ${message.text()} (${message.location().url})`)
  })
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`))
  return { page, errors }
}
