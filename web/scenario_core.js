// Scenario ControlNet for ComfyUI: the frontend logic that does not need ComfyUI.
//
// This module has no imports on purpose: web/scenario.js wires it to ComfyUI's
// `app` and `api`, and the test suite imports it under Node with fake nodes,
// so every rule here (which nodes we touch, what the quote request holds, how
// the modality list is narrowed, how the status widget stays out of saved
// workflows) is checked without a browser. ComfyUI loads every .js file of
// the pack's web folder as a module; this one only exports, so loading it
// twice or on its own has no effect.

/** The only node types this extension ever touches (never other packs' nodes). */
export const NODE_TYPES = Object.freeze([
  'ScenarioControlNetGenerate',
  'ScenarioImg2ImgControlNet'
])

export const IMG2IMG_TYPE = 'ScenarioImg2ImgControlNet'
/** Fetch Asset shows only its final state (asset ids, copy, link): no quote. */
export const FETCH_TYPE = 'ScenarioFetchAsset'

/** Name of the status widget; it is not a node input and is never saved. */
export const STATUS_WIDGET = 'scenario_quote'

export const SETTING_QUOTE = 'Scenario.Quote.Enabled'
export const SETTING_MODEL_AWARE = 'Scenario.ModelAware.Enabled'

export const DEBOUNCE_MS = 800
/** Pixel height of one text line of the status widget (it shows one to MAX_LINES). */
export const LINE_HEIGHT = 16
export const MODEL_CACHE_MS = 5 * 60 * 1000
export const MAX_LINES = 4
export const STATUS_MARGIN = 4 // around the status box, inside its widget height
export const STATUS_PADDING = 12 // the box's own padding and a button row's extra height

/** Widget values sent to POST /scenario/quote (the generate node's own names). */
export const QUOTE_FIELDS = Object.freeze([
  'prompt',
  'model_id',
  'modality',
  'modality_strength',
  'modalities',
  'num_samples',
  'guidance',
  'num_inference_steps',
  'width',
  'height',
  'seed',
  'scheduler',
  'control_start',
  'control_end',
  'strength',
  'loras',
  'extra_inputs'
])

/**
 * Widgets whose change makes the shown quote stale. The prompt and the seed
 * are left out: the price does not depend on them, and a multiline prompt
 * reports every keystroke.
 */
export const TRIGGER_FIELDS = Object.freeze(
  QUOTE_FIELDS.filter((name) => name !== 'prompt' && name !== 'seed')
)

/**
 * Inputs the price depends on. When one of them is linked to another node,
 * its widget value is not what will run, so no number is shown.
 */
export const PRICE_FIELDS = Object.freeze([
  'model_id',
  'num_samples',
  'num_inference_steps',
  'width',
  'height'
])

/** Text inputs that, when linked, are sent empty (the server then ignores them). */
const TEXT_FIELDS_EMPTY_WHEN_LINKED = ['prompt', 'modalities', 'loras', 'extra_inputs']

export function isScenarioNode(node) {
  const type = node?.comfyClass ?? node?.constructor?.comfyClass ?? node?.type
  return NODE_TYPES.includes(type)
}

export function nodeType(node) {
  return node?.comfyClass ?? node?.constructor?.comfyClass ?? node?.type
}

export function findWidget(node, name) {
  return (node?.widgets ?? []).find((w) => w && w.name === name)
}

/** True when the input backing widget `name` is connected to another node. */
export function isLinked(node, name) {
  const input = (node?.inputs ?? []).find(
    (i) => i && (i.widget?.name === name || i.name === name)
  )
  return input != null && input.link != null
}

/**
 * Call `extra` after `obj[prop]` (if any), keeping the original's return
 * value. Errors in `extra` are reported, never thrown into ComfyUI's code.
 */
export function chainCallback(obj, prop, extra) {
  const original = obj[prop]
  obj[prop] = function (...args) {
    const result = typeof original === 'function' ? original.apply(this, args) : undefined
    try {
      extra.apply(this, args)
    } catch (err) {
      console.warn('[Scenario] hook failed:', err)
    }
    return result
  }
}

/**
 * The body of POST /scenario/quote for `node`.
 * Returns {payload, linkedPriceFields}: when linkedPriceFields is not empty
 * the price cannot be known from the widgets.
 */
export function buildQuotePayload(node) {
  const payload = {}
  for (const name of QUOTE_FIELDS) {
    const w = findWidget(node, name)
    if (!w) continue
    payload[name] =
      TEXT_FIELDS_EMPTY_WHEN_LINKED.includes(name) && isLinked(node, name) ? '' : w.value
  }
  payload.img2img = nodeType(node) === IMG2IMG_TYPE
  payload.batch = 1
  const linkedPriceFields = PRICE_FIELDS.filter((name) => isLinked(node, name))
  return { payload, linkedPriceFields }
}

/** A stable key of a payload, to skip asking again for the same values. */
export function payloadKey(payload) {
  return JSON.stringify(Object.keys(payload).sort().map((k) => [k, payload[k]]))
}

export function formatUnits(value) {
  const n = Number(value)
  if (!Number.isFinite(n)) return '?'
  if (Number.isInteger(n)) return String(n)
  return String(Math.round(n * 100) / 100)
}

/** Why the quote priced the size it did, as the server says (`size_basis`). */
const SIZE_BASIS_TEXT = {
  map: 'map size',
  last_run: 'last run\'s size',
  default: 'default size, not the map\'s'
}

/**
 * The one-line text of a quote answer. When width/height are 0 the size
 * follows the control map: the server prices the map's size when the
 * frontend could tell it (`size_basis: 'map'`), else the last run's size,
 * else a default size, and the line says which.
 */
export function formatQuote(answer) {
  const text = `≈ ${formatUnits(answer?.per_job)} CU per job`
  const size = answer?.priced_size
  if (!Array.isArray(size)) return text
  const basis = SIZE_BASIS_TEXT[answer?.size_basis] ?? SIZE_BASIS_TEXT.default
  return `${text} at ${size[0]}×${size[1]} (${basis})`
}

/** The quote line with the cost actually billed by the last run next to it. */
export function quoteWithBilled(quoteText, billed) {
  if (billed == null || !Number.isFinite(Number(billed))) return quoteText
  const last = `billed ${formatUnits(billed)} CU`
  return quoteText ? `${quoteText} · ${last}` : last
}

/** Node types whose output image keeps the size of their input (followed to find the map's source). */
export const PASS_THROUGH_TYPES = Object.freeze(['Reroute', 'Canny'])
export const LOAD_IMAGE_TYPE = 'LoadImage'

/**
 * Parse a LoadImage `image` widget value ("sub/dir/name.png [input]") into
 * the query of ComfyUI's /view route, or null.
 */
export function parseImageValue(value) {
  let text = String(value ?? '').trim()
  if (!text) return null
  let type = 'input'
  const m = text.match(/^(.*?)\s*\[(input|output|temp)\]$/)
  if (m) {
    text = m[1]
    type = m[2]
  }
  const cut = text.lastIndexOf('/')
  const filename = cut >= 0 ? text.slice(cut + 1) : text
  const subfolder = cut >= 0 ? text.slice(0, cut) : ''
  if (!filename) return null
  return { filename, subfolder, type }
}

/** ComfyUI's /view path for a parsed image value. */
export function viewPath(image) {
  const q = new URLSearchParams({ filename: image.filename, type: image.type, subfolder: image.subfolder })
  return `/view?${q.toString()}`
}

function linkById(graph, id) {
  if (id == null || !graph) return null
  if (typeof graph.getLink === 'function') {
    const hit = graph.getLink(id)
    if (hit) return hit
  }
  const links = graph.links ?? graph._links
  if (!links) return null
  if (typeof links.get === 'function') return links.get(id) ?? links.get(Number(id)) ?? null
  return links[id] ?? null
}

function nodeById(graph, id) {
  if (id == null || !graph) return null
  return graph.getNodeById?.(id) ?? (graph._nodes_by_id ? graph._nodes_by_id[id] : null) ?? null
}

/** The node feeding input `name` of `node` (null when not linked). */
export function upstreamNode(node, name, graph = node?.graph) {
  const input = (node?.inputs ?? []).find((i) => i && i.name === name)
  if (!input || input.link == null) return null
  const link = linkById(graph, input.link)
  const originId = link?.origin_id ?? (Array.isArray(link) ? link[1] : undefined)
  return nodeById(graph, originId)
}

/**
 * The LoadImage node whose picture reaches `control_image` of `node` with
 * its size unchanged (directly, or through Reroute / Canny), or null.
 */
export function findMapSource(node, graph = node?.graph) {
  let current = upstreamNode(node, 'control_image', graph)
  for (let hops = 0; current && hops < 8; hops++) {
    const type = nodeType(current)
    if (type === LOAD_IMAGE_TYPE) return current
    if (!PASS_THROUGH_TYPES.includes(type)) return null
    const first = (current.inputs ?? []).find((i) => i && i.link != null)
    current = first ? upstreamNode(current, first.name, graph) : null
  }
  return null
}

/**
 * The pixel size of a loaded LoadImage preview ([w, h]) when the frontend
 * already has it, else null. The preview counts only when it shows the file
 * the `image` widget names now (a preview can lag behind a changed value).
 */
export function knownImageSize(loadNode, image = null) {
  const img = Array.isArray(loadNode?.imgs) ? loadNode.imgs[0] : null
  const w = img?.naturalWidth
  const h = img?.naturalHeight
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) return null
  if (image) {
    const src = String(img.src ?? '')
    const name = new URLSearchParams(src.includes('?') ? src.slice(src.indexOf('?') + 1) : '').get('filename')
    if (name !== image.filename) return null
  }
  return [w, h]
}

/** Shorten a server message for the node; the full text goes in the tooltip. */
export function shortText(text, max = 90) {
  const t = String(text ?? '').replace(/^Scenario:\s*/, '').trim()
  return t.length > max ? t.slice(0, max - 1) + '…' : t
}

/** A short label for an error answer of our routes ({error, code, field}). */
export function errorLabel(answer) {
  if (answer?.code === 'configuration') return 'Scenario key not configured (hover for help)'
  const field = answer?.field ? `${answer.field}: ` : ''
  const text = shortText(answer?.error || 'quote unavailable')
  return field && !text.includes(answer.field) ? field + text : text
}

/** A short label for a failed model lookup. */
export function modelErrorLabel(modelId, answer) {
  if (answer?.code === 'not_found') return `model_id: '${shortText(modelId, 40)}' not found on Scenario`
  if (answer?.code === 'configuration') return errorLabel(answer)
  return `model_id: ${shortText(answer?.error || 'lookup failed', 70)}`
}

/**
 * Narrow the `modality` combo of `node` to `allowed` (names valid for the
 * model's family), or restore `fullList` when `allowed` is null.
 * Keeps the current value when allowed; otherwise selects the first allowed
 * name. Returns {changed, from, to} so the caller can tell the user.
 */
export function restrictModalities(node, allowed, fullList) {
  const combo = findWidget(node, 'modality')
  if (!combo || !combo.options) return { changed: false }
  const list = Array.isArray(allowed) && allowed.length ? allowed.slice() : fullList.slice()
  combo.options.values = list
  const current = combo.value
  if (list.includes(current)) return { changed: false }
  const next = list[0]
  combo.value = next
  return { changed: true, from: current, to: next }
}

/**
 * Keep `widget` the last of `node.widgets`. LGraphNode.serialize writes
 * widgets_values[i] at each widget's own index and skips widgets with
 * `serialize === false`; a skipped widget in the middle would leave a hole
 * (null in JSON) and shift every later value on load. At the end it leaves
 * nothing.
 */
export function moveWidgetLast(node, widget) {
  const list = node?.widgets
  if (!Array.isArray(list)) return
  const i = list.indexOf(widget)
  if (i >= 0 && i !== list.length - 1) {
    list.splice(i, 1)
    list.push(widget)
  }
}

/**
 * Repair a serialised node if a widget added after ours left a hole in
 * widgets_values: rebuild the list from the saved widgets in order, which is
 * exactly what LGraphNode.configure reads back.
 */
export function compactWidgetsValues(node, data) {
  const values = data?.widgets_values
  if (!Array.isArray(values)) return false
  let sparse = false
  for (let i = 0; i < values.length; i++) {
    if (!(i in values)) {
      sparse = true
      break
    }
  }
  if (!sparse) return false
  data.widgets_values = (node.widgets ?? [])
    .filter((w) => w && w.serialize !== false)
    .map((w) => w.value)
  return true
}

/**
 * Add the status DOM widget to `node`, excluded from both saved workflows
 * (`widget.serialize = false`: not in widgets_values) and queued prompts
 * (`options.serialize = false`: not sent as an input). `lineCount()` says how
 * many text lines it shows (1 or 2), for its height. Returns the widget.
 */
export function addStatusWidget(node, element, lineCount = () => 1) {
  // The frontend draws the element its widget height minus the margin above and below (1.27 and 1.58 alike):
  // the lines, the box's padding and a button row's border must fit inside what is left.
  const height = () => 2 * STATUS_MARGIN + STATUS_PADDING + LINE_HEIGHT * Math.max(1, Math.min(MAX_LINES, lineCount()))
  const options = {
    serialize: false,
    hideOnZoom: false,
    getValue: () => '',
    setValue: () => {},
    getMinHeight: height,
    getMaxHeight: height,
    hideInPanel: true,
    margin: STATUS_MARGIN
  }
  const widget = node.addDOMWidget(STATUS_WIDGET, 'scenario-status', element, options)
  widget.serialize = false
  if (widget.options) widget.options.serialize = false
  moveWidgetLast(node, widget)
  return widget
}

/**
 * A per-node debounced runner: `schedule()` restarts the timer; `run` is
 * awaited with a sequence number, and `isCurrent(seq)` tells a finished
 * request whether a newer one has started since (its answer is then dropped).
 */
export function createScheduler(run, delay = DEBOUNCE_MS, timers = globalThis) {
  let timer = null
  let seq = 0
  return {
    schedule() {
      if (timer != null) timers.clearTimeout(timer)
      timer = timers.setTimeout(() => {
        timer = null
        seq += 1
        Promise.resolve()
          .then(() => run(seq))
          .catch((err) => console.warn('[Scenario] refresh failed:', err))
      }, delay)
    },
    isCurrent(n) {
      return n === seq
    },
    cancel() {
      if (timer != null) timers.clearTimeout(timer)
      timer = null
      seq += 1
    }
  }
}

/**
 * A small time-limited cache of promises (model lookups), so many nodes with
 * the same model id share one request. Failed lookups are not kept.
 */
export function createPromiseCache(ttlMs = MODEL_CACHE_MS, now = () => Date.now()) {
  const entries = new Map()
  return {
    get(key, load) {
      const hit = entries.get(key)
      if (hit && now() - hit.at < ttlMs) return hit.promise
      const promise = Promise.resolve()
        .then(load)
        .catch((err) => {
          entries.delete(key)
          throw err
        })
      entries.set(key, { at: now(), promise })
      return promise
    },
    clear() {
      entries.clear()
    }
  }
}
