// Behaviour of web/scenario.js inside a fake ComfyUI: which nodes it touches,
// how the status widget stays out of saved workflows and prompts, the
// debounced price quote and the model-aware modality list.
//
// Each test loads a fresh copy of the extension (its own model cache) and
// drives time with node:test's mock timers, so the debounce is exercised
// without waiting.

import assert from 'node:assert/strict'
import { afterEach, beforeEach, mock, test } from 'node:test'

import { api, core, loadExtension, settings } from './support/comfyui.mjs'
import { flux, sdxl } from './support/fake_api.mjs'
import { ALL_MODALITIES, findWidget, makeNode, promptInputs, serializeValues, widget } from './support/litegraph.mjs'

const GENERATE = 'ScenarioControlNetGenerate'
const IMG2IMG = 'ScenarioImg2ImgControlNet'

let ext
let live = []

beforeEach(async () => {
  mock.timers.enable({ apis: ['setTimeout'] })
  ext = await loadExtension()
})

afterEach(() => {
  for (const node of live) node.onRemoved?.()
  live = []
  mock.timers.reset()
})

/** Run every due debounce timer and let the fake requests answer, a few rounds over. */
async function settle(rounds = 5) {
  for (let i = 0; i < rounds; i++) {
    mock.timers.tick(core.DEBOUNCE_MS)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** A Scenario node as ComfyUI creates it, set up by the extension and settled. */
async function created(type = GENERATE, values = {}) {
  const node = makeNode(type, values)
  ext.nodeCreated(node)
  live.push(node)
  await settle()
  return node
}

function statusOf(node) {
  const status = findWidget(node, core.STATUS_WIDGET)
  const [main, note] = status.element.children
  return { status, main, note }
}

function lastQuoteBody() {
  const quotes = api.quotes()
  return JSON.parse(quotes.at(-1).opts.body)
}

test('registers one extension with its settings under Scenario', () => {
  assert.equal(ext.name, 'Scenario.ControlNet')
  assert.deepEqual(
    ext.settings.slice(0, 2).map((s) => [s.id, s.type, s.defaultValue]),
    [
      [core.SETTING_QUOTE, 'boolean', true],
      [core.SETTING_MODEL_AWARE, 'boolean', true]
    ]
  )
  // The API key entry is a custom renderer (a button opening a dialog): its value is never set.
  assert.equal(ext.settings[2].id, 'Scenario.Credentials.Dialog')
  assert.equal(typeof ext.settings[2].type, 'function')
  assert.equal(ext.settings[2].defaultValue, '')
  assert.equal(ext.settings.length, 3)
  for (const s of ext.settings) assert.equal(s.category[0], 'Scenario')
})

test("other packs' nodes are never touched", async () => {
  const other = makeNode('KSampler')
  const before = other.widgets.map((w) => [w.name, w.callback])
  ext.nodeCreated(other)
  await settle()
  assert.deepEqual(
    other.widgets.map((w) => [w.name, w.callback]),
    before
  )
  assert.equal(other.onSerialize, undefined)
  assert.equal(other.onRemoved, undefined)
  assert.equal(api.calls.length, 0)
})

test('the status widget is last and stays out of saved workflows and prompts', () => {
  const node = makeNode(GENERATE)
  const savedBefore = serializeValues(node)
  const promptBefore = promptInputs(node)
  ext.nodeCreated(node)
  live.push(node)
  const status = findWidget(node, core.STATUS_WIDGET)
  assert.ok(status, 'status widget added')
  assert.equal(status.serialize, false)
  assert.equal(status.options.serialize, false)
  assert.equal(node.widgets.at(-1), status, 'status widget is last')
  assert.deepEqual(serializeValues(node), savedBefore)
  assert.deepEqual(promptInputs(node), promptBefore)
  assert.deepEqual(node.size, [300, 450], 'grown to its computed size')
})

test('a Flux model narrows the modality list and the quote follows', async () => {
  const fresh = makeNode(GENERATE)
  const savedBefore = serializeValues(fresh)
  const node = await created()
  assert.deepEqual(
    api.modelLookups().map((c) => c.path),
    ['/scenario/models/flux.1-dev']
  )
  const combo = findWidget(node, 'modality')
  assert.deepEqual(combo.options.values, flux.modalities)
  assert.equal(combo.value, 'canny', 'seg is not a Flux modality: the first allowed one is chosen')
  const { main, note } = statusOf(node)
  assert.match(note.textContent, /'seg' is not available for Flux models/)
  assert.equal(main.textContent, '≈ 1.34 CU per job')

  const quotes = api.quotes()
  assert.equal(quotes.length, 1)
  assert.equal(quotes[0].opts.method, 'POST')
  const sent = JSON.parse(quotes[0].opts.body)
  assert.equal(sent.modality, 'canny')
  assert.equal(sent.img2img, false)
  assert.equal(sent.batch, 1)
  assert.equal(sent.num_inference_steps, 30)
  assert.ok(!('scenario_quote' in sent) && !('control_after_generate' in sent))
  assert.deepEqual(serializeValues(node), [...savedBefore.slice(0, 2), 'canny', ...savedBefore.slice(3)])
})

test('quick changes are debounced into one quote with the last value', async () => {
  const node = await created()
  api.calls.length = 0
  const steps = findWidget(node, 'num_inference_steps')
  for (const v of [31, 32, 33, 34, 35]) {
    steps.value = v
    steps.callback(v)
  }
  mock.timers.tick(core.DEBOUNCE_MS - 1)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(api.quotes().length, 0, 'nothing is asked before the debounce delay')
  await settle()
  assert.equal(api.quotes().length, 1)
  assert.equal(lastQuoteBody().num_inference_steps, 35)
  assert.equal(api.modelLookups().length, 0, 'model info is cached')
})

test('a server error is shown short, with the full text as tooltip', async () => {
  const node = await created()
  api.failNextQuote = {
    error: 'Scenario: Invalid numSamples (num_samples): got 0; allowed: an integer from 1 to 128.',
    code: 'validation',
    field: 'num_samples'
  }
  findWidget(node, 'num_inference_steps').callback(30)
  await settle()
  const { status, main } = statusOf(node)
  assert.match(main.textContent, /num_samples/)
  assert.match(status.element.title, /from 1 to 128/)
})

test('a linked price input shows no number and asks for none', async () => {
  const node = await created()
  api.calls.length = 0
  node.inputs.push({ name: 'width', widget: { name: 'width' }, link: 12 })
  node.onConnectionsChange()
  await settle()
  assert.equal(api.quotes().length, 0)
  assert.match(statusOf(node).main.textContent, /linked: width/)
})

test('with both settings off: no request, no quote, the full modality list', async () => {
  const node = await created()
  settings[core.SETTING_QUOTE] = false
  settings[core.SETTING_MODEL_AWARE] = false
  ext.settings[0].onChange(false)
  api.calls.length = 0
  await settle()
  assert.equal(api.calls.length, 0)
  assert.equal(statusOf(node).main.textContent, '')
  assert.deepEqual(findWidget(node, 'modality').options.values, ALL_MODALITIES)
})

test('the img2img node sends img2img and strength; an SDXL model keeps a valid modality', async () => {
  const node = await created(IMG2IMG, { model_id: 'stable-diffusion-xl-base-1.0' })
  const combo = findWidget(node, 'modality')
  assert.equal(combo.value, 'seg', 'seg is an SDXL modality: kept')
  assert.deepEqual(combo.options.values, sdxl.modalities)
  assert.equal(statusOf(node).note.textContent, '')
  const sent = lastQuoteBody()
  assert.equal(sent.img2img, true)
  assert.equal(sent.strength, 0.75)
})

test('an unknown model: one short error, no quote request, the full modality list', async () => {
  const node = await created(GENERATE, { model_id: 'nope' })
  assert.equal(api.quotes().length, 0)
  const { main, note } = statusOf(node)
  assert.match(main.textContent, /'nope' not found/)
  assert.equal(note.textContent, '')
  assert.deepEqual(findWidget(node, 'modality').options.values, ALL_MODALITIES)
})

test('a custom model is explained once, with no quote request', async () => {
  const node = await created(GENERATE, { model_id: 'model_custom' })
  assert.equal(api.quotes().length, 0)
  const { main, note } = statusOf(node)
  assert.match(main.textContent, /custom models do not run/)
  assert.equal(note.textContent, '')
})

test('a widget added after ours leaves no hole in the saved values', async () => {
  const node = await created(IMG2IMG)
  node.widgets.push(widget('late_widget', 'x'))
  const values = serializeValues(node)
  assert.ok(
    values.every((v) => v !== null),
    'no null holes'
  )
  assert.equal(values.at(-1), 'x')
  assert.equal(values.length, node.widgets.length - 1)
})

test('removed nodes stop refreshing', async () => {
  const kept = await created(GENERATE)
  const removed = await created(IMG2IMG)
  assert.ok(kept !== removed)
  removed.onRemoved()
  api.calls.length = 0
  ext.settings[1].onChange(true)
  await settle()
  const quotes = api.quotes()
  assert.equal(quotes.length, 1, 'only the remaining node asks')
  assert.equal(JSON.parse(quotes[0].opts.body).img2img, false)
})
