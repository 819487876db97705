// The frontend rules of web/scenario_core.js, one by one (it has no imports,
// so it loads under Node as it is).

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { core } from './support/comfyui.mjs'
import { makeNode, serializeValues, widget } from './support/litegraph.mjs'

test('only the two generate node types are ours, however the type is exposed', () => {
  assert.deepEqual([...core.NODE_TYPES], ['ScenarioControlNetGenerate', 'ScenarioImg2ImgControlNet'])
  assert.ok(Object.isFrozen(core.NODE_TYPES))
  assert.ok(core.isScenarioNode({ comfyClass: 'ScenarioImg2ImgControlNet' }))
  assert.ok(core.isScenarioNode({ constructor: { comfyClass: 'ScenarioControlNetGenerate' } }))
  assert.ok(core.isScenarioNode({ type: 'ScenarioControlNetGenerate' }))
  assert.ok(!core.isScenarioNode({ comfyClass: 'KSampler', type: 'ScenarioControlNetGenerate' }))
  assert.ok(!core.isScenarioNode(null))
})

test('the prompt and the seed do not refresh the quote; price fields are a subset of the sent fields', () => {
  assert.ok(!core.TRIGGER_FIELDS.includes('prompt') && !core.TRIGGER_FIELDS.includes('seed'))
  assert.deepEqual(
    core.TRIGGER_FIELDS,
    core.QUOTE_FIELDS.filter((f) => f !== 'prompt' && f !== 'seed')
  )
  for (const f of core.PRICE_FIELDS) assert.ok(core.QUOTE_FIELDS.includes(f), f)
})

test('quote texts', () => {
  assert.equal(core.formatQuote({ per_job: 2.5 }), '≈ 2.5 CU per job')
  assert.equal(
    core.formatQuote({ per_job: 1.25, priced_size: [512, 512] }),
    '≈ 1.25 CU per job at 512×512 (default size, not the map\'s)'
  )
  assert.equal(
    core.formatQuote({ per_job: 2.81, priced_size: [768, 768], size_basis: 'map' }),
    '≈ 2.81 CU per job at 768×768 (map size)'
  )
  assert.equal(core.formatQuote({}), '≈ ? CU per job')
  assert.equal(core.formatUnits(3), '3')
  assert.equal(core.formatUnits(1.23456), '1.23')
  assert.equal(core.formatUnits('x'), '?')
})

test('error labels are short and name the field once', () => {
  assert.equal(core.shortText('Scenario: boom'), 'boom')
  assert.equal(core.shortText('x'.repeat(100), 10), 'x'.repeat(9) + '…')
  assert.equal(core.errorLabel({ error: 'bad', field: 'width' }), 'width: bad')
  assert.equal(core.errorLabel({ error: 'width must be ...', field: 'width' }), 'width must be ...')
  assert.match(core.errorLabel({ code: 'configuration', error: 'no key' }), /not configured/)
  assert.equal(core.errorLabel(null), 'quote unavailable')
  assert.equal(core.modelErrorLabel('m1', { code: 'not_found' }), "model_id: 'm1' not found on Scenario")
  assert.equal(core.modelErrorLabel('m1', { error: 'Scenario: down' }), 'model_id: down')
})

test('the quote body holds the widget values, img2img and one job', () => {
  const { payload, linkedPriceFields } = core.buildQuotePayload(makeNode('ScenarioImg2ImgControlNet'))
  assert.deepEqual(linkedPriceFields, [])
  assert.equal(payload.img2img, true)
  assert.equal(payload.batch, 1)
  assert.equal(payload.strength, 0.75)
  assert.equal(payload.model_id, 'flux.1-dev')
  assert.ok(!('control_after_generate' in payload))
  for (const key of Object.keys(payload)) assert.ok([...core.QUOTE_FIELDS, 'img2img', 'batch'].includes(key), key)
})

test('linked inputs: text inputs go empty, price inputs are reported', () => {
  const node = makeNode('ScenarioControlNetGenerate')
  node.inputs.push({ name: 'prompt', widget: { name: 'prompt' }, link: 3 })
  node.inputs.push({ name: 'num_samples', link: 4 })
  node.inputs.push({ name: 'height', widget: { name: 'height' }, link: null })
  const { payload, linkedPriceFields } = core.buildQuotePayload(node)
  assert.equal(payload.prompt, '')
  assert.equal(payload.img2img, false)
  assert.deepEqual(linkedPriceFields, ['num_samples'])
  assert.ok(core.isLinked(node, 'num_samples') && !core.isLinked(node, 'height'))
})

test('the modality list is narrowed, and restored from the full list', () => {
  const node = makeNode('ScenarioControlNetGenerate')
  const full = node.widgets[2].options.values.slice()
  assert.deepEqual(core.restrictModalities(node, ['canny', 'depth'], full), { changed: true, from: 'seg', to: 'canny' })
  assert.deepEqual(node.widgets[2].options.values, ['canny', 'depth'])
  assert.deepEqual(core.restrictModalities(node, ['depth', 'canny'], full), { changed: false })
  assert.equal(node.widgets[2].value, 'canny')
  assert.deepEqual(core.restrictModalities(node, null, full), { changed: false })
  assert.deepEqual(node.widgets[2].options.values, full)
  assert.deepEqual(core.restrictModalities(node, [], full), { changed: false }, 'an empty list means "no narrowing"')
  assert.deepEqual(core.restrictModalities({ widgets: [] }, ['canny'], full), { changed: false })
})

test('the status widget is added last and marked unsaved twice', () => {
  const node = makeNode('ScenarioControlNetGenerate')
  const before = serializeValues(node)
  const el = {}
  const w = core.addStatusWidget(node, el, () => 5)
  assert.equal(node.widgets.at(-1), w)
  assert.equal(w.element, el)
  assert.equal(w.serialize, false)
  assert.equal(w.options.serialize, false)
  assert.equal(w.options.getMinHeight(), 2 * core.STATUS_MARGIN + core.STATUS_PADDING + core.MAX_LINES * core.LINE_HEIGHT,
    'at most MAX_LINES lines high')
  // what the frontend gives the element (the height less both margins) holds the lines and their padding
  assert.ok(w.options.getMinHeight() - 2 * w.options.margin >= core.MAX_LINES * core.LINE_HEIGHT + 8)
  assert.equal(w.options.hideInPanel, true, 'kept out of the right-side panel')
  assert.deepEqual(serializeValues(node), before)
})

test('moveWidgetLast and compactWidgetsValues keep saved values aligned', () => {
  const a = widget('a', 1)
  const b = widget('b', 2, { serialize: false })
  const c = widget('c', 3)
  const node = { widgets: [a, b, c] }
  core.moveWidgetLast(node, b)
  assert.deepEqual(
    node.widgets.map((w) => w.name),
    ['a', 'c', 'b']
  )
  const holed = { widgets_values: [1, , 3] } // a hole, as a widget with serialize === false in the middle leaves
  assert.equal(core.compactWidgetsValues(node, holed), true)
  assert.deepEqual(holed.widgets_values, [1, 3])
  const dense = { widgets_values: [1, 3] }
  assert.equal(core.compactWidgetsValues(node, dense), false)
  assert.equal(core.compactWidgetsValues(node, {}), false)
})

test('chainCallback keeps the original result and never throws the extra hook', () => {
  const obj = { f: (x) => x * 2 }
  const seen = []
  core.chainCallback(obj, 'f', (x) => seen.push(x))
  assert.equal(obj.f(21), 42)
  core.chainCallback(obj, 'f', () => {
    throw new Error('hook bug')
  })
  const warn = console.warn
  console.warn = () => {}
  try {
    assert.equal(obj.f(1), 2)
  } finally {
    console.warn = warn
  }
  assert.deepEqual(seen, [21, 1])
  const empty = {}
  core.chainCallback(empty, 'onRemoved', () => seen.push('removed'))
  assert.equal(empty.onRemoved(), undefined)
  assert.equal(seen.at(-1), 'removed')
})

test('the scheduler debounces, numbers its runs and can be cancelled', async () => {
  const pending = new Map()
  let nextId = 0
  const timers = {
    setTimeout(fn, ms) {
      assert.equal(ms, 50)
      pending.set(++nextId, fn)
      return nextId
    },
    clearTimeout(id) {
      pending.delete(id)
    }
  }
  const runs = []
  const scheduler = core.createScheduler((seq) => runs.push(seq), 50, timers)
  scheduler.schedule()
  scheduler.schedule()
  scheduler.schedule()
  assert.equal(pending.size, 1, 'each schedule() restarts the one timer')
  for (const fn of pending.values()) fn()
  pending.clear()
  await Promise.resolve()
  await Promise.resolve()
  assert.deepEqual(runs, [1])
  assert.ok(scheduler.isCurrent(1))
  scheduler.schedule()
  scheduler.cancel()
  assert.equal(pending.size, 0)
  assert.ok(!scheduler.isCurrent(1), 'a cancelled scheduler drops late answers')
})

test('the promise cache shares lookups, expires them and forgets failures', async () => {
  let clock = 0
  const cache = core.createPromiseCache(1000, () => clock)
  let loads = 0
  const load = async () => ++loads
  assert.equal(await cache.get('m', load), 1)
  assert.equal(await cache.get('m', load), 1)
  clock = 999
  assert.equal(await cache.get('m', load), 1)
  clock = 1000
  assert.equal(await cache.get('m', load), 2, 'expired after ttl')
  await assert.rejects(
    cache.get('bad', async () => {
      throw new Error('404')
    }),
    /404/
  )
  assert.equal(await cache.get('bad', load), 3, 'a failed lookup is not kept')
  cache.clear()
  assert.equal(await cache.get('m', load), 4)
})
