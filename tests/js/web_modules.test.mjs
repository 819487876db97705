// Every file of web/ is a valid ES module: ComfyUI loads each .js file of the
// pack's web folder with <script type="module">, so one syntax error would
// stop the whole extension.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

// Not from ./support/comfyui.mjs: that one imports the modules this test checks.
const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url))

const files = readdirSync(WEB_DIR).filter((name) => name.endsWith('.js')).sort()

// tests/test_routes.py checks that both scenario.js and scenario_core.js are there.
for (const name of files) {
  test(`web/${name} parses as an ES module`, () => {
    const result = spawnSync(process.execPath, ['--input-type=module', '--check'], {
      input: readFileSync(join(WEB_DIR, name), 'utf8'),
      encoding: 'utf8',
      timeout: 30_000
    })
    assert.equal(result.status, 0, result.stderr)
  })
}
