// The searchable model picker for model_id (web/scenario_picker.js).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { filterModels, loadModels, mergeModels, modelsPath, normalizeModels, openPicker } from '../../web/scenario_picker.js'
import { makeDocument, makeFetch, settle } from './web_fake_dom.mjs'

const PRIVATE = [
  { id: 'model_myflux-lora', name: 'My house style', type: 'flux.1-lora', custom: false, capabilities: ['txt2img', 'controlnet'], privacy: 'private' }
]
const PUBLIC_1 = [
  { id: 'flux.1-dev', name: 'Flux.1 dev', type: 'flux.1', custom: false, capabilities: ['controlnet'], privacy: 'public' },
  { id: 'stable-diffusion-xl-base-1.0', name: 'SDXL', type: 'sd-xl', custom: false, capabilities: ['controlnet'], privacy: 'public' }
]
const PUBLIC_2 = [
  { id: 'model_bfl-flux-1-dev', name: 'Flux.1 dev (custom)', type: 'custom', custom: true, capabilities: ['controlnet'], privacy: 'public' },
  { id: 'flux.1-dev', name: 'dup', type: 'flux.1' },
  { name: 'no id' }
]

function routes() {
  return makeFetch({
    'GET /scenario/models': ({ path }) => {
      const q = new URL(path, 'http://x').searchParams
      if (q.get('scope') === 'mine') return { models: PRIVATE, next_cursor: null }
      assert.equal(q.get('scope'), 'public')
      if (!q.get('cursor')) return { models: PUBLIC_1, next_cursor: '50' }
      return { models: PUBLIC_2, next_cursor: null }
    }
  })
}

test('the route\'s query and answer shape', () => {
  assert.equal(modelsPath(), '/scenario/models?scope=mine')
  assert.equal(modelsPath({ publicModels: true, page: '50' }), '/scenario/models?scope=public&cursor=50')
  // the route's own rows: model_id, and LoRAs (not for model_id) left out
  const own = normalizeModels({ models: [
    { model_id: 'flux.1-dev', name: 'Flux', type: 'flux.1', kind: 'base', path: 'legacy', use: ['model_id'] },
    { model_id: 'model_lora', name: 'A LoRA', type: 'flux.1-lora', kind: 'lora', path: 'lora_input', use: ['loras'] },
    { model_id: 'model_bfl-flux-1-dev', name: 'Flux custom', type: 'custom', path: 'custom', use: ['model_id'] }
  ], next_cursor: '100' })
  assert.deepEqual(own.models.map((m) => [m.id, m.custom]), [['flux.1-dev', false], ['model_bfl-flux-1-dev', true]])
  assert.equal(own.next, '100')
  const { models, next } = normalizeModels({ models: PUBLIC_2, nextPaginationToken: 'x' })
  assert.deepEqual(models.map((m) => m.id), ['model_bfl-flux-1-dev', 'flux.1-dev'])
  assert.equal(models[0].custom, true)
  assert.equal(next, 'x')
  assert.deepEqual(normalizeModels(null), { models: [], next: null })
})

test('loads private then public models, every page, without duplicates', async () => {
  const fetchJson = routes()
  const { models, error } = await loadModels(fetchJson)
  assert.equal(error, null)
  assert.deepEqual(models.map((m) => m.id), ['model_myflux-lora', 'flux.1-dev', 'stable-diffusion-xl-base-1.0', 'model_bfl-flux-1-dev'])
  assert.equal(fetchJson.calls.length, 3)
})

test('a failing route is reported, not thrown', async () => {
  const fetchJson = makeFetch({ 'GET /scenario/models': () => ({ ok: false, body: { error: 'Scenario: no key' } }) })
  const { models, error } = await loadModels(fetchJson)
  assert.deepEqual(models, [])
  assert.equal(error, 'Scenario: no key')
})

test('search matches every word in id, name or type, best first', () => {
  const models = mergeModels(normalizeModels({ models: [...PRIVATE, ...PUBLIC_1, ...PUBLIC_2] }).models)
  assert.deepEqual(filterModels(models, 'flux').map((m) => m.id), ['flux.1-dev', 'model_bfl-flux-1-dev', 'model_myflux-lora'])
  assert.deepEqual(filterModels(models, 'FLUX.1-DEV').map((m) => m.id)[0], 'flux.1-dev')
  assert.deepEqual(filterModels(models, 'house style').map((m) => m.id), ['model_myflux-lora'])
  assert.deepEqual(filterModels(models, 'sd-xl').map((m) => m.id), ['stable-diffusion-xl-base-1.0'])
  assert.deepEqual(filterModels(models, 'nothing like this'), [])
  assert.equal(filterModels(models, '').length, models.length)
})

test('the popup lists, filters and picks a model; Enter keeps free text', async () => {
  const doc = makeDocument()
  const picked = []
  const fetchJson = routes()
  const picker = openPicker({ document: doc, initial: 'flux.1-dev', loadModels: () => loadModels(fetchJson), onPick: (id) => picked.push(id) })
  await picker.loaded
  const root = picker.element
  assert.equal(root.parentNode, doc.body)
  assert.equal(root.byClass('scenario-model-row').length, 4)
  picker.setQuery('sdxl')
  const rows = root.byClass('scenario-model-row')
  assert.deepEqual(rows.map((r) => r.dataset.id), ['stable-diffusion-xl-base-1.0'])
  rows[0].click()
  assert.deepEqual(picked, ['stable-diffusion-xl-base-1.0'])
  assert.equal(picker.closed, true)
  assert.equal(root.parentNode, null, 'removed from the page')

  const second = openPicker({ document: doc, loadModels: () => loadModels(fetchJson), onPick: (id) => picked.push(id) })
  await second.loaded
  const search = second.element.oneByClass('scenario-model-search')
  search.value = 'model_not-in-the-list'
  search.dispatch('input')
  assert.match(second.element.oneByClass('scenario-model-info').textContent, /Enter uses 'model_not-in-the-list'/)
  search.dispatch('keydown', { key: 'Enter' })
  assert.deepEqual(picked.at(-1), 'model_not-in-the-list', 'free text still works')

  const third = openPicker({ document: doc, loadModels: () => loadModels(fetchJson), onPick: (id) => picked.push(id) })
  await third.loaded
  third.element.oneByClass('scenario-model-search').dispatch('keydown', { key: 'Enter' })
  assert.equal(third.closed, true)
  assert.equal(picked.length, 2, 'Enter with nothing typed keeps the current value')
  await settle()
})
