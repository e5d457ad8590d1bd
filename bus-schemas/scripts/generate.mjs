#!/usr/bin/env node
// Regenerates bus-schemas' checked-in files: flow_batch.proto from the column list, and the
// protobuf descriptor + TypeScript message types. Run: node bus-schemas/scripts/generate.mjs
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { tsImport } from 'tsx/esm/api'

// The renderers are TypeScript (shared with the freshness test); tsx loads them without a build.
const { packageDir, renderGenerated } = await tsImport('./codegen.ts', import.meta.url)
for (const [path, text] of renderGenerated()) {
  const target = join(packageDir, path)
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, text)
  console.log(`wrote bus-schemas/${path}`)
}
