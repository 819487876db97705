// Scenario ControlNet for ComfyUI: settings, price quote and model-aware modality choices.
//
// On the two generate nodes only, a small status line (a DOM widget, so it
// works in the classic canvas and in the Vue "Nodes 2.0" renderer) shows a
// free dry-run price from Scenario, refreshed shortly after a relevant widget
// changes, and the `modality` list is narrowed to what the model's family
// accepts. The status widget is never saved in workflows nor sent with
// prompts (see scenario_core.js: addStatusWidget). Every hook is wrapped so a
// failure here can never break ComfyUI or other packs.
//
// Server side: nodes/routes.py (GET /scenario/models/{id}, POST /scenario/quote,
// GET /scenario/status). Credentials never reach the browser.

import { app } from '../../scripts/app.js'
import { api } from '../../scripts/api.js'
import {
  DEBOUNCE_MS,
  SETTING_MODEL_AWARE,
  SETTING_QUOTE,
  TRIGGER_FIELDS,
  addStatusWidget,
  buildQuotePayload,
  chainCallback,
  compactWidgetsValues,
  createPromiseCache,
  createScheduler,
  errorLabel,
  findWidget,
  formatQuote,
  isLinked,
  isScenarioNode,
  modelErrorLabel,
  restrictModalities,
  shortText
} from './scenario_core.js'

const QUOTE_HELP =
  'Free dry-run price from Scenario for one job (one control image), in creative units. ' +
  'A batch of N control images runs N jobs. Width/height 0 are priced at 512×512; ' +
  'the real size follows the control image.'

/** Per-node state, kept off the node object so nothing of it can be saved. */
const states = new WeakMap()
/** Nodes to refresh when a setting changes. */
const tracked = new Set()
const modelCache = createPromiseCache()
let serverStatus = null

function setting(id, fallback) {
  try {
    const store = app.extensionManager?.setting
    const value = store?.get ? store.get(id) : app.ui?.settings?.getSettingValue?.(id)
    return value === undefined || value === null ? fallback : value
  } catch {
    return fallback
  }
}

function refreshAll() {
  for (const node of tracked) {
    try {
      states.get(node)?.scheduler.schedule()
    } catch (err) {
      console.warn('[Scenario] refresh scheduling failed:', err)
    }
  }
}

async function readJson(response) {
  try {
    return await response.json()
  } catch {
    return { error: `HTTP ${response.status}` }
  }
}

async function fetchModelInfo(modelId) {
  return modelCache.get(modelId, async () => {
    const response = await api.fetchApi(`/scenario/models/${encodeURIComponent(modelId)}`)
    const body = await readJson(response)
    if (!response.ok) {
      const err = new Error(body?.error || `HTTP ${response.status}`)
      err.answer = body
      throw err
    }
    return body
  })
}

async function fetchQuote(payload) {
  const response = await api.fetchApi('/scenario/quote', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(payload)
  })
  return { ok: response.ok, body: await readJson(response) }
}

function makeElement() {
  const el = document.createElement('div')
  el.className = 'scenario-status'
  Object.assign(el.style, {
    display: 'flex',
    flexDirection: 'column',
    justifyContent: 'center',
    gap: '1px',
    padding: '2px 6px',
    fontSize: '12px',
    lineHeight: '16px',
    fontFamily: 'sans-serif',
    color: 'var(--input-text, #ddd)',
    background: 'var(--comfy-input-bg, #222)',
    borderRadius: '4px',
    overflow: 'hidden',
    boxSizing: 'border-box'
  })
  const main = document.createElement('div')
  const note = document.createElement('div')
  for (const line of [main, note]) {
    Object.assign(line.style, { whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis' })
  }
  note.style.color = 'var(--warning-text, #e0b050)'
  el.append(main, note)
  return { el, main, note }
}

function render(state) {
  const { main, note, el } = state.view
  main.textContent = state.quoteText || ''
  main.style.color = state.quoteError ? 'var(--error-text, #ff6b6b)' : ''
  const notes = [state.modalityNotice, state.modelError].filter(Boolean)
  note.textContent = notes.join(' · ')
  note.style.display = notes.length ? '' : 'none'
  const lines = notes.length ? 2 : 1
  if (lines !== state.lines) {
    state.lines = lines
    growToFit(state.node)
    state.node.setDirtyCanvas?.(true, true)
  }
  const base = serverStatus?.base_url
    ? `\nScenario API: ${serverStatus.base_url}${serverStatus.emulator ? ' (local emulator)' : ''}`
    : ''
  el.title = [state.quoteTitle || QUOTE_HELP, ...notes].join('\n') + base
}

async function refreshModel(node, state, seq) {
  const modelWidget = findWidget(node, 'model_id')
  const modelId = String(modelWidget?.value ?? '').trim()
  state.modelError = ''
  state.modelFailure = null
  if (!setting(SETTING_MODEL_AWARE, true) || !modelWidget || !modelId || isLinked(node, 'model_id')) {
    restrictModalities(node, null, state.fullModalities)
    state.modalityNotice = ''
    return
  }
  let info
  try {
    info = await fetchModelInfo(modelId)
  } catch (err) {
    if (!state.scheduler.isCurrent(seq)) return
    restrictModalities(node, null, state.fullModalities)
    state.modelFailure = {
      label: modelErrorLabel(modelId, err?.answer),
      title: String(err?.answer?.error || err?.message || '')
    }
    return
  }
  if (!state.scheduler.isCurrent(seq)) return
  if (info?.controlnet === false) {
    // A custom model: no modality fits and the quote would fail the same way.
    restrictModalities(node, null, state.fullModalities)
    state.modelFailure = { label: `model_id: ${shortText(info.note, 80)}`, title: String(info.note || '') }
    return
  }
  const allowed = Array.isArray(info?.modalities) ? info.modalities : null
  const result = restrictModalities(node, allowed, state.fullModalities)
  if (result.changed) {
    const family = info?.family_label || info?.family || 'this'
    state.modalityNotice = `modality '${result.from}' is not available for ${family} models: set to '${result.to}'`
    const combo = findWidget(node, 'modality')
    state.internalChange = true
    try {
      combo?.callback?.(combo.value)
    } finally {
      state.internalChange = false
    }
  }
  node.setDirtyCanvas?.(true, true)
}

async function refreshQuote(node, state, seq) {
  if (!setting(SETTING_QUOTE, true)) {
    state.quoteText = ''
    state.quoteError = false
    state.quoteTitle = ''
    return
  }
  const { payload, linkedPriceFields } = buildQuotePayload(node)
  if (linkedPriceFields.length) {
    state.quoteText = `≈ ? CU (linked: ${linkedPriceFields.join(', ')})`
    state.quoteError = false
    state.quoteTitle = 'The price depends on linked inputs; it is known only when the node runs.'
    return
  }
  state.quoteText = state.quoteText || '≈ … CU'
  render(state)
  const { ok, body } = await fetchQuote(payload)
  if (!state.scheduler.isCurrent(seq)) return
  if (ok) {
    state.quoteText = formatQuote(body)
    state.quoteError = false
    state.quoteTitle = ''
  } else {
    state.quoteText = errorLabel(body)
    state.quoteError = true
    state.quoteTitle = String(body?.error || '')
  }
}

async function refresh(node, seq) {
  const state = states.get(node)
  if (!state) return
  try {
    await refreshModel(node, state, seq)
    if (!state.scheduler.isCurrent(seq)) return
    if (state.modelFailure) {
      // The quote would fail for the same reason: say it once.
      state.quoteText = state.modelFailure.label
      state.quoteError = true
      state.quoteTitle = state.modelFailure.title
    } else {
      await refreshQuote(node, state, seq)
    }
  } catch (err) {
    if (!state.scheduler.isCurrent(seq)) return
    state.quoteText = `quote unavailable: ${shortText(err?.message, 60)}`
    state.quoteError = true
  }
  if (state.scheduler.isCurrent(seq)) render(state)
}

/** Make room for the status line on nodes created at their computed size. */
function growToFit(node) {
  try {
    const needed = node.computeSize?.()
    if (!needed || !Array.isArray(node.size)) return
    node.setSize?.([Math.max(node.size[0], needed[0]), Math.max(node.size[1], needed[1])])
  } catch (err) {
    console.warn('[Scenario] could not resize the node:', err)
  }
}

function setupNode(node) {
  const view = makeElement()
  const widget = addStatusWidget(node, view.el, () => states.get(node)?.lines ?? 1)
  const combo = findWidget(node, 'modality')
  const state = {
    node,
    lines: 1,
    view,
    widget,
    fullModalities: Array.isArray(combo?.options?.values) ? combo.options.values.slice() : [],
    quoteText: '',
    quoteError: false,
    quoteTitle: '',
    modalityNotice: '',
    modelError: '',
    modelFailure: null,
    internalChange: false,
    scheduler: null
  }
  state.scheduler = createScheduler((seq) => refresh(node, seq), DEBOUNCE_MS)
  states.set(node, state)
  tracked.add(node)
  growToFit(node)

  for (const name of TRIGGER_FIELDS) {
    const w = findWidget(node, name)
    if (!w) continue
    chainCallback(w, 'callback', () => {
      if (state.internalChange) return
      if (name === 'modality' || name === 'model_id') state.modalityNotice = ''
      state.scheduler.schedule()
    })
  }
  // Loading a workflow sets widget values without calling their callbacks.
  chainCallback(node, 'onConfigure', () => state.scheduler.schedule())
  chainCallback(node, 'onConnectionsChange', () => state.scheduler.schedule())
  chainCallback(node, 'onSerialize', (data) => {
    compactWidgetsValues(node, data)
  })
  chainCallback(node, 'onRemoved', () => {
    state.scheduler.cancel()
    tracked.delete(node)
  })
  render(state)
  state.scheduler.schedule()
}

app.registerExtension({
  name: 'Scenario.ControlNet',
  settings: [
    {
      id: SETTING_QUOTE,
      category: ['Scenario', 'Price quote', 'Enabled'],
      name: 'Show a price quote on Scenario generate nodes',
      tooltip:
        'Asks Scenario for a free dry-run price (creative units per job) when the node\'s settings change. ' +
        'Nothing is generated or billed.',
      type: 'boolean',
      defaultValue: true,
      onChange: () => {
        try {
          refreshAll()
        } catch (err) {
          console.warn('[Scenario] setting change failed:', err)
        }
      }
    },
    {
      id: SETTING_MODEL_AWARE,
      category: ['Scenario', 'Model-aware choices', 'Enabled'],
      name: 'Limit the modality list to what the model supports',
      tooltip:
        'Looks up the model id and offers only the modalities of its family (Flux, SDXL or SD 1.5). ' +
        'Turn off to always see every modality.',
      type: 'boolean',
      defaultValue: true,
      onChange: () => {
        try {
          modelCache.clear()
          refreshAll()
        } catch (err) {
          console.warn('[Scenario] setting change failed:', err)
        }
      }
    }
  ],
  async setup() {
    try {
      const response = await api.fetchApi('/scenario/status')
      if (response.ok) serverStatus = await response.json()
    } catch (err) {
      console.warn('[Scenario] status unavailable:', err)
    }
  },
  nodeCreated(node) {
    try {
      if (!isScenarioNode(node)) return
      setupNode(node)
    } catch (err) {
      console.warn('[Scenario] could not set up the node:', err)
    }
  }
})
