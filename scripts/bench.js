#!/usr/bin/env node
// `npm run bench -- <suite> [<suite>…]`: runs every benchmark file named `bench/<suite>.ts`
// or `bench/<suite>.<case>.ts` in any workspace, one process each. Benchmarks print lines
// "bench <suite>.<case> <value> <unit>". Without a suite name, lists the suites.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const skip = new Set(['node_modules', 'dist', '.git', '.cache', '.turbo', 'data'])

const findBenchFiles = (dir, out = []) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (skip.has(entry.name)) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) findBenchFiles(path, out)
    else if (entry.name.endsWith('.ts') && dirname(path).endsWith('/bench')) out.push(path)
  }
  return out
}

const files = findBenchFiles(root)
const suiteOf = (file) => file.split('/').pop().split('.')[0]
const suites = [...new Set(files.map(suiteOf))].sort()
const wanted = process.argv.slice(2)
if (wanted.length === 0) {
  console.log(`usage: npm run bench -- <suite>…\nsuites: ${suites.join(', ') || '(none)'}`)
  process.exit(0)
}
let failures = 0
for (const suite of wanted) {
  const mine = files.filter((file) => suiteOf(file) === suite)
  if (mine.length === 0) {
    console.error(`bench: no benchmark suite "${suite}"; suites: ${suites.join(', ')}`)
    failures++
    continue
  }
  for (const file of mine) {
    console.error(`# ${relative(root, file)}`)
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=source', file], { cwd: root, stdio: 'inherit' })
    if (run.status !== 0) failures++
  }
}
process.exit(failures > 0 ? 1 : 0)
