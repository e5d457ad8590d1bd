// `flowbus actor enricher` with a classification rule that does not compile refuses to start:
// exit code 2 and a message naming the config key, the rule, its column and the source line.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, startProcess, tempDir } from '../src/harness/process.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
// The compiled flowbus command, as deployed (`npm test` builds first).
const flowbus = join(root, 'actors/cli/bin/flowbus.js')

describe('enricher with a classification rule of bad syntax', () => {
  let dir: string
  beforeAll(async () => {
    dir = await tempDir('enricher-bad-rules')
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('exits 2 before touching the bus, pointing at the rule and the column', { timeout: 120_000 }, async () => {
    const file = join(dir, 'flowbus.yaml')
    writeFileSync(
      file,
      [
        'bus:',
        '  transport: nats',
        '  nats:',
        '    servers: [nats://127.0.0.1:1]',
        'enricher:',
        '  classification:',
        '    interfaceRules:',
        `      - 'Interface.Description matches "^Transit: (\\S+)" -> provider = $1, boundary = external'`,
        `      - 'Interface.Speed >> 3 -> reject'`,
        '',
      ].join('\n'),
    )
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWBUS_'))) as Record<string, string>
    const child = startProcess({
      name: 'enricher with bad rules',
      command: process.execPath,
      args: [flowbus, 'actor', 'enricher', '--config', file],
      cwd: root,
      env,
    })
    const code = await child.exited
    const output = child.output()
    expect(code, output).toBe(2)
    expect(output).toContain('enricher.classification.interfaceRules.1')
    expect(output).toMatch(/interface rule 1 \("Interface\.Speed >> 3 -> reject"\), column 18/)
    // Where in the file: the line of the rule list.
    expect(output).toContain(`${file}:7]`)
  })
})
