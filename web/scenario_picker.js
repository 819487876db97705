// Scenario ControlNet for ComfyUI: a searchable model picker for `model_id`.
//
// The `model_id` widget stays a plain STRING widget (free text still works,
// saved workflows keep plain strings). The picker is a small popup that
// lists the ControlNet-capable models the key can use, from the pack's route
//
//   GET /scenario/models?scope=mine|public&cursor=<next_cursor>
//   -> {"models": [{"model_id", "name", "type", "kind", "privacy", "path", "use": ["model_id", "loras"]}],
//       "next_cursor": "<cursor>" | null}
//
// (rows with an "id" and a "nextPaginationToken" are read too). Only rows
// that go in `model_id` are offered (LoRAs go in the node's LoRA input).
//
// and writes the chosen id into the widget. The logic (filtering, ranking,
// paging) is plain functions; the DOM part takes `document` and a fetch
// function as arguments so tests drive it without a browser.

export const MODELS_ROUTE = '/scenario/models'
export const MAX_SHOWN = 200

/** The query string of the models route. */
export function modelsPath({ publicModels = false, page = '' } = {}) {
  const q = new URLSearchParams({ scope: publicModels ? 'public' : 'mine' })
  if (page) q.set('cursor', page)
  return `${MODELS_ROUTE}?${q.toString()}`
}

/** Normalise one page of the models route; drops malformed rows. */
export function normalizeModels(body) {
  const rows = Array.isArray(body?.models) ? body.models : []
  const models = []
  for (const row of rows) {
    const raw = row?.id ?? row?.model_id
    const id = typeof raw === 'string' ? raw.trim() : ''
    if (!id) continue
    if (Array.isArray(row.use) && !row.use.includes('model_id')) continue // a LoRA: not a model_id
    models.push({
      id,
      name: typeof row.name === 'string' && row.name.trim() ? row.name.trim() : id,
      type: typeof row.type === 'string' ? row.type : '',
      custom: row.custom === true || row.path === 'custom',
      capabilities: Array.isArray(row.capabilities) ? row.capabilities.map(String) : [],
      privacy: typeof row.privacy === 'string' ? row.privacy : ''
    })
  }
  const token = body?.next_cursor ?? body?.nextPaginationToken
  const next = token != null && String(token) ? String(token) : null
  return { models, next }
}

/** Merge pages, keeping the first row of each id. */
export function mergeModels(...lists) {
  const seen = new Map()
  for (const list of lists) for (const m of list ?? []) if (!seen.has(m.id)) seen.set(m.id, m)
  return [...seen.values()]
}

/**
 * The models matching `query` (every word must appear in the id, name or
 * type; case-insensitive), best first: exact id, id prefix, name prefix,
 * then the rest in list order.
 */
export function filterModels(models, query, limit = MAX_SHOWN) {
  const words = String(query ?? '').toLowerCase().split(/\s+/).filter(Boolean)
  const scored = []
  models.forEach((m, index) => {
    const id = m.id.toLowerCase()
    const name = m.name.toLowerCase()
    const hay = `${id} ${name} ${m.type.toLowerCase()}`
    if (!words.every((w) => hay.includes(w))) return
    const q = words.join(' ')
    let score = 3
    if (q && id === q) score = 0
    else if (q && id.startsWith(q)) score = 1
    else if (q && name.startsWith(q)) score = 2
    scored.push({ m, score, index })
  })
  scored.sort((a, b) => a.score - b.score || a.index - b.index)
  return scored.slice(0, limit).map((s) => s.m)
}

/** One row's secondary text: type, custom path, privacy. */
export function modelDetail(m) {
  const bits = []
  if (m.type) bits.push(m.type)
  if (m.custom) bits.push('custom path')
  if (m.privacy) bits.push(m.privacy)
  return bits.join(' · ')
}

/**
 * Load every page of the route (bounded), private then public models.
 * `fetchJson(path)` returns {ok, body}.
 */
export async function loadModels(fetchJson, { maxPages = 10 } = {}) {
  const lists = []
  let error = null
  for (const publicModels of [false, true]) {
    let page = ''
    for (let i = 0; i < maxPages; i++) {
      const { ok, body } = await fetchJson(modelsPath({ publicModels, page }))
      if (!ok) {
        error = body?.error || 'the model list is unavailable'
        break
      }
      const { models, next } = normalizeModels(body)
      lists.push(models)
      if (!next || next === page) break
      page = next
    }
  }
  const models = mergeModels(...lists)
  return { models, error: models.length ? null : error }
}

/**
 * Open the picker popup near `anchor` (an element) for `widget`.
 * `options`: {document, loadModels: () => Promise<{models, error}>, onPick(id)}.
 * Returns {element, close, setQuery, pick} (the last two for tests).
 */
export function openPicker(options) {
  const doc = options.document
  const root = doc.createElement('div')
  root.className = 'scenario-model-picker'
  Object.assign(root.style, {
    position: 'fixed',
    zIndex: '10000',
    width: '360px',
    maxHeight: '420px',
    display: 'flex',
    flexDirection: 'column',
    background: 'var(--comfy-menu-bg, #202020)',
    color: 'var(--input-text, #ddd)',
    border: '1px solid var(--border-color, #555)',
    borderRadius: '6px',
    boxShadow: '0 6px 24px rgba(0,0,0,0.5)',
    fontFamily: 'sans-serif',
    fontSize: '13px'
  })
  const search = doc.createElement('input')
  search.type = 'search'
  search.placeholder = 'Search your ControlNet models (id, name, type)…'
  search.setAttribute('aria-label', 'Search Scenario models')
  search.className = 'scenario-model-search'
  Object.assign(search.style, { margin: '8px', padding: '4px 6px', boxSizing: 'border-box' })
  const info = doc.createElement('div')
  info.className = 'scenario-model-info'
  Object.assign(info.style, { padding: '0 8px 4px', opacity: '0.8', fontSize: '12px' })
  info.textContent = 'Loading models…'
  const list = doc.createElement('div')
  list.className = 'scenario-model-list'
  list.setAttribute('role', 'listbox')
  Object.assign(list.style, { overflowY: 'auto', flex: '1 1 auto' })
  root.append(search, info, list)

  let models = []
  let closed = false
  const state = { query: '' }

  function render() {
    list.replaceChildren()
    const shown = filterModels(models, state.query)
    for (const m of shown) {
      const row = doc.createElement('div')
      row.className = 'scenario-model-row'
      row.setAttribute('role', 'option')
      row.dataset.id = m.id
      row.title = `${m.id}\n${m.capabilities.join(', ')}`
      Object.assign(row.style, { padding: '4px 10px', cursor: 'pointer' })
      const a = doc.createElement('div')
      a.textContent = m.name === m.id ? m.id : `${m.name} — ${m.id}`
      const b = doc.createElement('div')
      b.textContent = modelDetail(m)
      Object.assign(b.style, { opacity: '0.7', fontSize: '11px' })
      row.append(a, b)
      row.addEventListener('click', () => pick(m.id))
      list.append(row)
    }
    if (models.length) {
      const typed = state.query.trim()
      info.textContent = shown.length
        ? `${shown.length} of ${models.length} models` + (typed ? ' · Enter keeps what you typed' : '')
        : `no model matches; Enter uses '${typed}' as the model id`
    }
  }

  function pick(id) {
    if (closed) return
    const value = String(id ?? '').trim()
    if (value) options.onPick(value)
    close()
  }

  function close() {
    if (closed) return
    closed = true
    root.remove?.()
    doc.removeEventListener?.('mousedown', outside, true)
  }

  function outside(event) {
    if (!root.contains?.(event.target)) close()
  }

  search.addEventListener('input', () => {
    state.query = search.value
    render()
  })
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') close()
    if (event.key === 'Enter') {
      const typed = state.query.trim()
      if (!typed) return close() // nothing typed: keep the current value
      const exact = models.find((m) => m.id.toLowerCase() === typed.toLowerCase())
      // Free text still works: an id that is not in the list is kept as typed.
      pick(exact ? exact.id : typed)
    }
  })
  doc.addEventListener?.('mousedown', outside, true)

  const anchorRect = options.anchor?.getBoundingClientRect?.()
  if (anchorRect) {
    root.style.left = `${Math.max(8, Math.round(anchorRect.left))}px`
    root.style.top = `${Math.round(anchorRect.bottom + 4)}px`
  } else {
    root.style.left = '40%'
    root.style.top = '20%'
  }
  doc.body.append(root)
  if (options.initial) search.placeholder = `current: ${options.initial} · type to search or enter any id`
  search.focus?.()
  search.select?.()

  const loaded = Promise.resolve()
    .then(() => options.loadModels())
    .then((answer) => {
      if (closed) return
      models = answer?.models ?? []
      if (!models.length) info.textContent = answer?.error ? `models unavailable: ${answer.error}` : 'no ControlNet model found'
      render()
    })
    .catch((err) => {
      info.textContent = `models unavailable: ${err?.message ?? err}`
    })

  return {
    element: root,
    loaded,
    close,
    pick,
    setQuery(text) {
      search.value = text
      state.query = text
      render()
    },
    get closed() {
      return closed
    }
  }
}
