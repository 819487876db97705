// Advanced inputs read as advanced, without moving saved widget order (web/scenario_tidy.js).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ADVANCED_WIDGETS, labelFor, tidyWidgets } from '../../web/scenario_tidy.js'

const ORDER = ['prompt', 'model_id', 'modality', 'modality_strength', 'num_samples', 'guidance', 'num_inference_steps',
  'width', 'height', 'seed', 'control_after_generate', 'control_image_id', 'negative_prompt', 'scheduler', 'modalities',
  'control_start', 'control_end', 'max_creative_units', 'init_image_format']
const DEFAULTS = { width: 0, height: 0, negative_prompt: '', scheduler: 'default', modalities: '', control_start: -1,
  control_end: -1, max_creative_units: 0, seed: 1, prompt: 'x', init_image_format: 'png (lossless)' }

function node(advancedProp = false) {
  return {
    widgets: ORDER.map((name) => {
      const w = { name, value: DEFAULTS[name] ?? 1 }
      if (advancedProp) {
        let adv = false
        Object.defineProperty(w, 'advanced', { get: () => adv, set: (v) => { adv = v }, enumerable: true })
      }
      return w
    })
  }
}

test('sentinels read "not sent"; real values read as advanced only', () => {
  assert.equal(labelFor('control_start', -1), 'advanced: control start (not sent)')
  assert.equal(labelFor('control_start', 0.2), 'advanced: control start')
  assert.equal(labelFor('scheduler', 'default'), 'advanced: scheduler (not sent)')
  assert.equal(labelFor('scheduler', 'DDIMScheduler'), 'advanced: scheduler')
  assert.equal(labelFor('negative_prompt', '  '), 'advanced: negative prompt (not sent)')
  assert.equal(labelFor('max_creative_units', 0), 'advanced: budget (CU) (0 = no budget)')
  assert.equal(labelFor('width', 0), 'width (0 = from the map)')
  assert.equal(labelFor('width', 768), null)
  assert.equal(labelFor('prompt', 'x'), null)
})

test('labels change, values and order never do', () => {
  const n = node()
  const before = n.widgets.map((w) => [w.name, w.value])
  const changed = tidyWidgets(n)
  assert.deepEqual(n.widgets.map((w) => [w.name, w.value]), before)
  assert.deepEqual(changed.sort(), [...ADVANCED_WIDGETS, 'width', 'height'].sort())
  assert.equal(n.widgets.find((w) => w.name === 'control_end').label, 'advanced: control end (not sent)')
  assert.equal(tidyWidgets(n).length, 0, 'idempotent')
  const width = n.widgets.find((w) => w.name === 'width')
  width.value = 1024
  assert.deepEqual(tidyWidgets(n), ['width'])
  assert.equal(width.label, undefined, 'our label removed, ComfyUI shows the name again')
  assert.ok(!('advanced' in width), 'no property invented on frontends without it')
})

test('frontends with advanced widgets (1.58) get them marked', () => {
  const n = node(true)
  tidyWidgets(n)
  for (const w of n.widgets) assert.equal(w.advanced, ADVANCED_WIDGETS.includes(w.name), w.name)
})

test('the img2img init image format reads as advanced, with no "not sent" value', () => {
  assert.ok(ADVANCED_WIDGETS.includes('init_image_format'))
  assert.equal(ADVANCED_WIDGETS.at(-1), 'init_image_format', 'last, as in the node')
  assert.equal(labelFor('init_image_format', 'png (lossless)'), 'advanced: init image format')
  assert.equal(labelFor('init_image_format', 'webp q90'), 'advanced: init image format')
  const n = node(true)
  tidyWidgets(n)
  const w = n.widgets.find((x) => x.name === 'init_image_format')
  assert.equal(w.label, 'advanced: init image format')
  assert.equal(w.advanced, true)
  assert.equal(w.value, 'png (lossless)', 'the value is never touched')
})
