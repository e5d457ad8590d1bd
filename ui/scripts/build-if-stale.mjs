#!/usr/bin/env node
// Builds the console (vite build → ui/build) when the build is missing or older than its sources;
// `npm start` and `npm test` run this, so `npm install && npm start` serves a current console.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ui = join(dirname(fileURLToPath(import.meta.url)), '..')
const output = join(ui, 'build', 'index.html')

const newest = (path) => {
  if (!existsSync(path)) return 0
  const info = statSync(path)
  if (!info.isDirectory()) return info.mtimeMs
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))))
}

const sources = Math.max(...['src', 'static', 'svelte.config.js', 'vite.config.ts', 'package.json'].map((p) => newest(join(ui, p))))
const built = existsSync(output) ? statSync(output).mtimeMs : 0
if (built >= sources && process.argv[2] !== '--force') {
  console.log('console: ui/build is current')
  process.exit(0)
}

const require_ = (name) => existsSync(join(ui, 'node_modules', name)) || existsSync(join(ui, '..', 'node_modules', name))
if (!require_('@sveltejs/kit') || !require_('vite')) {
  // Production installs without devDependencies: the gateway then says how to build on `/`.
  console.warn('console: not built (its build tools are not installed: run `npm install` with dev dependencies, then `npm run build -w @flowbus/ui`)')
  process.exit(0)
}
console.log(built ? 'console: sources changed, rebuilding ui/build…' : 'console: building ui/build (once, about a minute)…')
const started = new Date()
const result = spawnSync(process.execPath, [join(ui, '..', 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], { cwd: ui, stdio: 'inherit' })
if (result.status !== 0) {
  console.error('console: the build failed (see above); run `npm run build -w @flowbus/ui` to retry')
  process.exit(result.status ?? 1)
}
// The build is as new as the sources it read: a file edited while it ran makes the next run rebuild.
utimesSync(output, started, started)
console.log('console: built')
