#!/usr/bin/env node
// `npm test`: builds every package, type-checks tests and benchmarks, runs the whole vitest suite (arguments
// are passed through, e.g. `npm test -- test/contract`), then prints one closing line
// "N passed, N failed, N skipped" that CI reads. The exit code is vitest's.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = (name) => join(root, 'node_modules', '.bin', name)
const results = join(root, '.cache', 'test-results.json')
mkdirSync(dirname(results), { recursive: true })
rmSync(results, { force: true })

// Build the packages, then type-check tests and benchmarks (vitest runs them unchecked).
const build = spawnSync(bin('tsc'), ['-b'], { cwd: root, stdio: 'inherit' })
const check = build.status === 0 ? spawnSync(bin('tsc'), ['-p', 'tsconfig.tests.json'], { cwd: root, stdio: 'inherit' }) : build
if (check.status !== 0) {
  console.log('0 passed, 1 failed, 0 skipped')
  console.error('npm test: the TypeScript build or type check failed (see above); no test was run')
  process.exit(1)
}

// The web console's static build (ui/build), which the gateway serves and the browser tests load;
// a no-op when it is current.
const consoleBuild = spawnSync(process.execPath, [join(root, 'ui', 'scripts', 'build-if-stale.mjs')], { cwd: root, stdio: 'inherit' })
if (consoleBuild.status !== 0) {
  console.log('0 passed, 1 failed, 0 skipped')
  console.error('npm test: the console build failed (see above); no test was run')
  process.exit(1)
}

const vitest = spawnSync(
  bin('vitest'),
  ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
)

if (!existsSync(results)) {
  console.log('0 passed, 1 failed, 0 skipped')
  console.error('npm test: vitest stopped before writing its results')
  process.exit(vitest.status || 1)
}
const report = JSON.parse(readFileSync(results, 'utf8'))
// A test file that failed to load counts as a failure even though it ran no test.
const brokenFiles = report.testResults.filter((file) => file.status === 'failed' && file.assertionResults.length === 0).length
const failed = report.numFailedTests + brokenFiles
const skipped = report.numPendingTests + report.numTodoTests
console.log(`${report.numPassedTests} passed, ${failed} failed, ${skipped} skipped`)
process.exit(vitest.status ?? 1)
