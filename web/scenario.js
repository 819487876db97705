// Scenario ControlNet for ComfyUI: settings, price quote, model picker, final state, jobs panel.
//
// On the two generate nodes only, a small status box (a DOM widget, so it
// works in the classic canvas and in the Vue "Nodes 2.0" renderer) shows
//   1. a free dry-run price from Scenario, refreshed shortly after a relevant
//      widget changes, priced at the control map's real size when the
//      frontend can tell it (linked LoadImage, else the last run), and the
//      cost the last run billed;
//   2. notices (a modality narrowed to what the model's family accepts);
//   3. the final state of the last run (done with cost and job id, reused,
//      canceled, failed with Scenario's reason), with "copy ids" and a link
//      to the job in Scenario's web app. It survives the end of a run.
// The `model_id` widget gets a searchable picker (it stays a plain string),
// advanced widgets read as advanced, Settings > Scenario holds the API key
// dialog and a "Scenario" sidebar tab lists recent jobs.
// The status widget is never saved in workflows nor sent with prompts (see
// scenario_core.js: addStatusWidget). Every hook is wrapped so a failure here
// can never break ComfyUI or other packs.
//
// Server side: nodes/routes.py. The API key and secret never come back to
// the browser (only the key's last 4 characters).

import { app } from '../../scripts/app.js'
import { api } from '../../scripts/api.js'
import {
  DEBOUNCE_MS,
  FETCH_TYPE,
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
  findMapSource,
  findWidget,
  formatQuote,
  isLinked,
  isScenarioNode,
  knownImageSize,
  modelErrorLabel,
  nodeType,
  parseImageValue,
  quoteWithBilled,
  restrictModalities,
  shortText,
  viewPath
} from './scenario_core.js'
import {
  RESULT_EVENT,
  UI_KEY,
  asCached,
  copyText,
  createResultStore,
  lastRunSize,
  resultFromExecutionError,
  resultFromInterrupt,
  resultFromPayload,
  resultLink,
  resultText,
  resultTitle,
  stateColor
} from './scenario_results.js'
import { loadModels, openPicker } from './scenario_picker.js'
import { TAB_ID, renderJobsPanel } from './scenario_jobs.js'
import { SETTING_CREDENTIALS, openCredentialsDialog, settingRenderer } from './scenario_credentials.js'
import { ADVANCED_WIDGETS, tidyWidgets } from './scenario_tidy.js'

const QUOTE_HELP =
  'Free dry-run price from Scenario for one job (one control image), in creative units. ' +
  'A batch of N control images runs N jobs. With width/height 0 the size follows the control map: ' +
  'the map\'s size is priced when it comes straight from a LoadImage, else the last run\'s size, ' +
  'else a default size (the line says which).'

/** Per-node state, kept off the node object so nothing of it can be saved. */
const states = new WeakMap()
/** Nodes to refresh when a setting changes. */
const tracked = new Set()
const modelCache = createPromiseCache()
const modelListCache = createPromiseCache()
const mapSizeCache = createPromiseCache(10 * 60 * 1000)
const results = createResultStore()
/** Nodes ComfyUI served from its cache in the running prompt (their results are reused). */
const cachedNodes = new Set()
/** Our nodes that started in the running prompt (for a Stop without a pack event). */
const startedNodes = new Set()
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

async function fetchJson(path, opts) {
  const response = await api.fetchApi(path, opts)
  return { ok: response.ok, status: response.status, body: await readJson(response) }
}

async function copyToClipboard(text) {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    try {
      const area = document.createElement('textarea')
      area.value = text
      document.body.append(area)
      area.select()
      const ok = document.execCommand('copy')
      area.remove()
      return ok
    } catch {
      return false
    }
  }
}

function openUrl(url) {
  if (url) window.open(url, '_blank', 'noopener,noreferrer')
}

function openCredentials(anchor) {
  return openCredentialsDialog({ document, fetchJson, anchor })
}

function findNodeById(id) {
  try {
    return app.graph?.getNodeById?.(id) ?? null
  } catch {
    return null
  }
}

/** The pixel size of the control map when it comes straight from a LoadImage ([w, h]) or null. */
async function mapSize(node) {
  const source = findMapSource(node)
  if (!source) return null
  const image = parseImageValue(findWidget(source, 'image')?.value)
  if (!image) return null
  const known = knownImageSize(source, image)
  if (known) return known
  const url = api.apiURL(viewPath(image))
  try {
    return await mapSizeCache.get(url, () =>
      new Promise((resolve, reject) => {
        const img = new Image()
        img.onload = () => resolve([img.naturalWidth, img.naturalHeight])
        img.onerror = () => reject(new Error('image not found'))
        img.src = url
      })
    )
  } catch {
    return null
  }
}

/** A key that changes when the map's source (LoadImage file) changes. */
function mapKey(node) {
  const source = findMapSource(node)
  return source ? `${source.id}:${findWidget(source, 'image')?.value ?? ''}` : ''
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
  const row = (className) => {
    const r = document.createElement('div')
    r.className = className
    Object.assign(r.style, { display: 'flex', gap: '4px', alignItems: 'center', minWidth: '0' })
    return r
  }
  const small = (text, title, className) => {
    const b = document.createElement('button')
    b.type = 'button'
    b.textContent = text
    b.title = title
    b.className = className
    Object.assign(b.style, { fontSize: '11px', lineHeight: '14px', padding: '0 5px', cursor: 'pointer', flex: '0 0 auto' })
    return b
  }
  main.className = 'scenario-quote'
  note.className = 'scenario-note'
  // Line 3: the last run's final state with "copy ids" and a link, and the model picker button.
  const resultRow = row('scenario-result-row')
  const result = document.createElement('span')
  result.className = 'scenario-result'
  Object.assign(result.style, { flex: '1 1 auto', whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis' })
  const copyButton = small('copy ids', 'Copy the job id(s) and asset id(s)', 'scenario-copy-ids')
  const link = document.createElement('a')
  link.className = 'scenario-job-link'
  link.textContent = 'open ↗'
  link.target = '_blank'
  link.rel = 'noopener noreferrer'
  Object.assign(link.style, { fontSize: '11px', flex: '0 0 auto', color: 'var(--link-color, #8ab4f8)' })
  const pickButton = small('models…', 'Pick a Scenario model for model_id (searchable; any id can still be typed)', 'scenario-pick-model')
  const advancedButton = small('advanced', 'Show or hide the advanced inputs (negative prompt, scheduler, control window, budget)', 'scenario-toggle-advanced')
  resultRow.append(result, copyButton, link, pickButton, advancedButton)
  el.append(main, note, resultRow)
  return { el, main, note, result, resultRow, copyButton, link, pickButton, advancedButton }
}

function render(state) {
  if (state.kind === 'fetch') {
    renderResult(state, results.get(state.node.id))
    return
  }
  const { main, note, el } = state.view
  const final = results.get(state.node.id)
  const billed = final && !final.stale && final.state === 'done' ? final.cost : null
  main.textContent = state.quoteError ? state.quoteText || '' : quoteWithBilled(state.quoteText || '', billed)
  main.style.color = state.quoteError ? 'var(--error-text, #ff6b6b)' : ''
  const notes = [state.modalityNotice, state.modelError].filter(Boolean)
  note.textContent = notes.join(' · ')
  note.style.display = notes.length ? '' : 'none'
  renderResult(state, final)
  const lines = 2 + (notes.length ? 1 : 0) // quote, [notes], result + model picker
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

/**
 * 1.27's Nodes 2.0 renders no DOM widget (and no progress text): there, a
 * read-only text row mirrors the quote and the final state. Never saved, never
 * sent with a prompt; other frontends and the classic canvas do not get it.
 */
function addTextFallback(node) {
  try {
    if (supportsAdvanced(node) || !setting('Comfy.VueNodes.Enabled', false)) return null
    const w = node.addWidget('text', 'scenario_state', '', () => {}, { serialize: false })
    w.serialize = false
    if (w.options) w.options.serialize = false
    w.disabled = true
    return w
  } catch (err) {
    console.warn('[Scenario] no text fallback:', err)
    return null
  }
}

function mirrorText(state) {
  const w = state.textWidget
  if (!w) return
  const final = results.get(state.node.id)
  const parts = [] // the final state first: a narrow row cuts the end off
  if (final) parts.push(state.view.result.textContent)
  if (state.kind !== 'fetch' && state.view.main.textContent) parts.push(state.view.main.textContent)
  const text = parts.join(' | ')
  w.value = text
  showInVueRow(state.node, w, text)
}

/**
 * 1.27's Nodes 2.0 draws a copy of each widget's value taken when the node was
 * added, and ignores later programmatic changes. Its wrapped widget callback
 * updates that copy (seen on the next redraw); the row already on screen is
 * updated the way typing would, through its input event.
 */
function showInVueRow(node, widget, text) {
  try {
    widget.callback?.(text)
    const root = document.querySelector(`[data-node-id="${node.id}"]`)
    if (!root) return
    for (const row of root.querySelectorAll('.lg-widget-container')) {
      if (!row.textContent.includes(widget.name)) continue
      const input = row.querySelector('input, textarea')
      if (input && input.value !== text) {
        input.value = text
        input.title = text
        input.dispatchEvent(new Event('input', { bubbles: true }))
      }
      return
    }
  } catch (err) {
    console.warn('[Scenario] text row not updated:', err)
  }
}

function renderResult(state, final) {
  try {
    renderResultLine(state, final)
  } finally {
    mirrorText(state)
  }
}

function renderResultLine(state, final) {
  const { result, copyButton, link } = state.view
  if (!final) {
    result.textContent = ''
    result.title = ''
    copyButton.style.display = 'none'
    link.style.display = 'none'
    return
  }
  result.textContent = (final.stale ? 'running… (last: ' : '') + resultText(final) + (final.stale ? ')' : '')
  result.style.color = final.stale ? '' : stateColor(final.state)
  result.title = resultTitle(final)
  result.dataset.state = final.stale ? 'running' : final.state
  const ids = copyText(final)
  copyButton.style.display = ids ? '' : 'none'
  const href = resultLink(final)
  link.style.display = href ? '' : 'none'
  if (href) {
    link.href = href
    link.title = serverStatus?.emulator
      ? 'Opens Scenario\'s web app. This job ran on the local emulator, so Scenario does not know it.'
      : 'Open this job in Scenario\'s web app'
  }
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
  if (Number(payload.width) === 0 || Number(payload.height) === 0) {
    // The size follows the control map: tell the server what the frontend knows of it.
    const size = await mapSize(node)
    if (!state.scheduler.isCurrent(seq)) return
    if (size) payload.map_size = size
    else {
      const last = lastRunSize(results.get(node.id))
      if (last) payload.run_size = last
    }
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
    if (!needed || !(node.size?.length >= 2)) return
    node.setSize?.([Math.max(node.size[0], needed[0]), Math.max(node.size[1], needed[1])])
  } catch (err) {
    console.warn('[Scenario] could not resize the node:', err)
  }
}

/** Whether this frontend knows advanced widgets at all (1.58 does, 1.27 does not). */
function supportsAdvanced(node) {
  return typeof node?.hasAdvancedWidgets === 'function'
}

/**
 * Whether marked advanced widgets fold away without a trace. 1.58's Nodes 2.0
 * folds them behind "show advanced inputs"; 1.58's classic canvas stops
 * drawing them but keeps their rows in the layout, an empty gap in the
 * middle of the node, so there (as on 1.27) the "advanced:" labels alone say it.
 */
function foldsAdvanced(node) {
  return supportsAdvanced(node) && Boolean(setting('Comfy.VueNodes.Enabled', false))
}

function tidy(node) {
  try {
    if (tidyWidgets(node, { markAdvanced: foldsAdvanced(node) }).length) node.setDirtyCanvas?.(true, true)
    const view = states.get(node)?.view
    if (view) renderAdvancedButton(node, view)
  } catch (err) {
    console.warn('[Scenario] could not label the widgets:', err)
  }
}

function renderAdvancedButton(node, view) {
  const marked = (node.widgets ?? []).some((w) => w?.advanced === true)
  view.advancedButton.style.display = marked ? '' : 'none'
  view.advancedButton.textContent = node.showAdvanced ? 'advanced ▾' : 'advanced ▸'
}

/** Fit the node's height to its content (hidden advanced widgets leave no gap). */
function fitHeight(node) {
  try {
    const needed = node.computeSize?.()
    if (!needed || !(node.size?.length >= 2)) return
    node.setSize?.([node.size[0], needed[1]])
    node.setDirtyCanvas?.(true, true)
  } catch (err) {
    console.warn('[Scenario] could not resize the node:', err)
  }
}

/** Set a widget's value as a user edit would (callbacks, canvas, Nodes 2.0). */
function setWidgetValue(node, widget, value) {
  widget.value = value
  try {
    widget.callback?.(value, app.canvas, node)
  } catch (err) {
    console.warn('[Scenario] widget callback failed:', err)
  }
  node.onWidgetChanged?.(widget.name, value, undefined, widget)
  node.setDirtyCanvas?.(true, true)
  app.graph?.setDirtyCanvas?.(true, true)
}

/** Record a final state for node `id` and show it on that node, if it is one of ours. */
function showResult(id, result) {
  if (id == null || !result) return
  results.set(id, result)
  const node = findNodeById(id)
  const state = node ? states.get(node) : null
  if (!state) return
  startedNodes.delete(String(id))
  render(state)
  // re-price at the real size
  if (state.scheduler && result.state === 'done' && lastRunSize(result)) state.scheduler.schedule()
}

function onExecuting(id) {
  if (id == null) return
  const node = findNodeById(id)
  const state = node ? states.get(node) : null
  if (!state) return
  startedNodes.add(String(id))
  results.running(id)
  render(state)
}

function listen() {
  api.addEventListener(RESULT_EVENT, (event) => {
    try {
      const result = resultFromPayload(event.detail)
      if (result) showResult(result.node, result)
    } catch (err) {
      console.warn('[Scenario] result event failed:', err)
    }
  })
  api.addEventListener('executing', (event) => {
    try {
      const d = event.detail
      onExecuting(d && typeof d === 'object' ? d.node ?? d.display_node : d)
    } catch (err) {
      console.warn('[Scenario] executing event failed:', err)
    }
  })
  api.addEventListener('execution_start', () => {
    cachedNodes.clear()
  })
  api.addEventListener('execution_cached', (event) => {
    try {
      for (const id of event.detail?.nodes ?? []) cachedNodes.add(String(id))
    } catch (err) {
      console.warn('[Scenario] cached event failed:', err)
    }
  })
  api.addEventListener('executed', (event) => {
    try {
      const d = event.detail
      const id = d?.display_node ?? d?.node
      let result = resultFromPayload(d?.output?.[UI_KEY])
      // ComfyUI re-sends a cached node's last ui: that run did not happen again, nothing was billed.
      if (result && cachedNodes.has(String(id))) result = asCached(result)
      if (result) showResult(id, result)
    } catch (err) {
      console.warn('[Scenario] executed event failed:', err)
    }
  })
  api.addEventListener('execution_error', (event) => {
    try {
      const d = event.detail
      const node = findNodeById(d?.node_id)
      if (node && states.has(node)) showResult(d.node_id, resultFromExecutionError(d))
    } catch (err) {
      console.warn('[Scenario] error event failed:', err)
    }
  })
  api.addEventListener('execution_interrupted', (event) => {
    try {
      // Every node of ours that started in this prompt and has not reported ends canceled.
      for (const id of [...startedNodes]) {
        const node = findNodeById(id)
        const state = node ? states.get(node) : null
        const current = results.get(id)
        if (current && !current.stale) continue
        showResult(id, resultFromInterrupt({ ...event.detail, node_id: id }, state?.lastProgressText ?? ''))
      }
      startedNodes.clear()
    } catch (err) {
      console.warn('[Scenario] interrupt event failed:', err)
    }
  })
  api.addEventListener('progress_text', (event) => {
    try {
      const d = event.detail
      const node = findNodeById(d?.nodeId ?? d?.node_id ?? d?.node)
      const state = node ? states.get(node) : null
      if (state && typeof d?.text === 'string') state.lastProgressText = d.text
    } catch {
      // progress text is informative only
    }
  })
}

/** Re-price when a linked LoadImage's picture changes (its widget is not ours to hook). */
function watchMaps() {
  setInterval(() => {
    for (const node of tracked) {
      try {
        const state = states.get(node)
        if (!state) continue
        const key = mapKey(node)
        if (key !== state.mapKey) {
          state.mapKey = key
          state.scheduler.schedule()
        }
      } catch {
        // a node being removed
      }
    }
  }, 2000)
}

function registerJobsTab() {
  const manager = app.extensionManager
  if (typeof manager?.registerSidebarTab !== 'function') return false
  let handle = null
  manager.registerSidebarTab({
    id: TAB_ID,
    icon: 'pi pi-images',
    title: 'Scenario',
    tooltip: 'Scenario Jobs',
    label: 'Scenario',
    type: 'custom',
    render(container) {
      handle?.destroy()
      handle = renderJobsPanel(container, {
        document,
        fetchJson,
        apiURL: (path) => api.apiURL(path),
        copy: copyToClipboard,
        open: openUrl,
        LiteGraph: globalThis.LiteGraph,
        app,
        openCredentials
      })
    },
    destroy() {
      handle?.destroy()
      handle = null
    }
  })
  return true
}

/** Fetch Asset: only the result line (asset ids, copy, link); no quote, no picker. */
function setupFetchNode(node) {
  const view = makeElement()
  for (const el of [view.main, view.note, view.pickButton, view.advancedButton]) el.style.display = 'none'
  const widget = addStatusWidget(node, view.el, () => 1)
  const textWidget = addTextFallback(node)
  const state = { kind: 'fetch', node, view, widget, textWidget, lines: 1, scheduler: null }
  states.set(node, state)
  growToFit(node)
  view.copyButton.addEventListener('click', async (event) => {
    event.stopPropagation()
    const text = copyText(results.get(node.id))
    if (text) view.copyButton.textContent = (await copyToClipboard(text)) ? 'copied' : 'copy failed'
    setTimeout(() => {
      view.copyButton.textContent = 'copy ids'
    }, 1500)
  })
  chainCallback(node, 'onExecuted', (output) => {
    const result = resultFromPayload(output?.[UI_KEY])
    if (result) showResult(node.id, result)
  })
  chainCallback(node, 'onSerialize', (data) => {
    compactWidgetsValues(node, data)
  })
  chainCallback(node, 'onRemoved', () => startedNodes.delete(String(node.id)))
  renderResult(state, null)
}

function setupNode(node) {
  const view = makeElement()
  const widget = addStatusWidget(node, view.el, () => states.get(node)?.lines ?? 1)
  const textWidget = addTextFallback(node)
  const combo = findWidget(node, 'modality')
  const state = {
    node,
    lines: 1,
    view,
    widget,
    textWidget,
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
  state.mapKey = mapKey(node)
  states.set(node, state)
  tracked.add(node)
  growToFit(node)
  tidy(node)
  fitHeight(node)

  view.pickButton.addEventListener('click', (event) => {
    event.stopPropagation()
    const modelWidget = findWidget(node, 'model_id')
    if (!modelWidget) return
    openPicker({
      document,
      anchor: view.pickButton,
      initial: String(modelWidget.value ?? ''),
      loadModels: () => modelListCache.get('controlnet', () => loadModels((path) => fetchJson(path))),
      onPick: (id) => setWidgetValue(node, modelWidget, id)
    })
  })
  view.advancedButton.addEventListener('click', (event) => {
    event.stopPropagation()
    try {
      if (typeof node.toggleAdvanced === 'function') node.toggleAdvanced()
      else node.showAdvanced = !node.showAdvanced
      fitHeight(node)
      renderAdvancedButton(node, view)
    } catch (err) {
      console.warn('[Scenario] could not toggle the advanced inputs:', err)
    }
  })
  view.copyButton.addEventListener('click', async (event) => {
    event.stopPropagation()
    const text = copyText(results.get(node.id))
    if (text) view.copyButton.textContent = (await copyToClipboard(text)) ? 'copied' : 'copy failed'
    setTimeout(() => {
      view.copyButton.textContent = 'copy ids'
    }, 1500)
  })

  for (const name of TRIGGER_FIELDS) {
    const w = findWidget(node, name)
    if (!w) continue
    chainCallback(w, 'callback', () => {
      if (state.internalChange) return
      if (name === 'modality' || name === 'model_id') state.modalityNotice = ''
      state.scheduler.schedule()
    })
  }
  for (const name of [...ADVANCED_WIDGETS, 'width', 'height']) {
    const w = findWidget(node, name)
    if (w) chainCallback(w, 'callback', () => tidy(node))
  }
  // Loading a workflow sets widget values without calling their callbacks.
  chainCallback(node, 'onConfigure', () => {
    tidy(node)
    state.scheduler.schedule()
  })
  chainCallback(node, 'onExecuted', (output) => {
    const result = resultFromPayload(output?.[UI_KEY])
    if (result) showResult(node.id, result)
  })
  chainCallback(node, 'onConnectionsChange', () => state.scheduler.schedule())
  chainCallback(node, 'onSerialize', (data) => {
    compactWidgetsValues(node, data)
  })
  chainCallback(node, 'onRemoved', () => {
    state.scheduler.cancel()
    tracked.delete(node)
    startedNodes.delete(String(node.id))
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
    },
    {
      id: SETTING_CREDENTIALS,
      category: ['Scenario', 'API key', 'Credentials'],
      name: 'Scenario API key',
      tooltip:
        'Opens a dialog that sends the key and secret straight to the ComfyUI server (an owner-only file in ' +
        'ComfyUI\'s user folder). Nothing is stored in the browser, in ComfyUI\'s settings or in workflows.',
      type: settingRenderer({
        document,
        fetchJson: (path, opts) => fetchJson(path, opts),
        openDialog: (anchor) => openCredentials(anchor)
      }),
      defaultValue: ''
    }
  ],
  commands: [
    {
      id: 'Scenario.SetApiKey',
      label: 'Scenario: set API key',
      icon: 'pi pi-key',
      function: () => openCredentials()
    }
  ],
  async setup() {
    try {
      listen()
      watchMaps()
      registerJobsTab()
    } catch (err) {
      console.warn('[Scenario] could not set up the panel and events:', err)
    }
    try {
      const response = await api.fetchApi('/scenario/status')
      if (response.ok) serverStatus = await response.json()
    } catch (err) {
      console.warn('[Scenario] status unavailable:', err)
    }
  },
  nodeCreated(node) {
    try {
      if (nodeType(node) === FETCH_TYPE) return setupFetchNode(node)
      if (!isScenarioNode(node)) return
      setupNode(node)
    } catch (err) {
      console.warn('[Scenario] could not set up the node:', err)
    }
  }
})
