// Scenario ControlNet for ComfyUI: the "Scenario Jobs" sidebar tab.
//
// Lists the recent jobs of the pack's job ledger with their state, cost and
// thumbnails, from the pack's routes:
//
//   GET  /scenario/jobs?limit=N
//     -> {"jobs": [{"job_id", "state", "status", "created_at", "cost",
//                   "model_id", "prompt", "asset_ids": [...],
//                   "thumbnails": [{"asset_id", "url"}], "error", "cancelable"}]}
//   POST /scenario/jobs/{job_id}/cancel  -> {"job_id", "status", "cancel_sent"}
//   GET  /scenario/assets/{asset_id}/thumbnail  -> a small JPEG (the thumbnails' url)
//
// Actions per job: add a Scenario Fetch Asset node already filled with the
// job's asset ids, cancel a running job, copy the ids, open it in Scenario's
// web app. The DOM code takes `document`, the API and the graph helpers as
// arguments, so tests run it without a browser.

import { assetUrl, formatCost, jobUrl } from './scenario_results.js'

export const TAB_ID = 'scenario-jobs'
export const JOBS_ROUTE = '/scenario/jobs'
export const FETCH_NODE_TYPE = 'ScenarioFetchAsset'
export const REFRESH_MS = 5000

/** Ledger states that are still running on Scenario (cancel makes sense). */
export const RUNNING = Object.freeze(['submitting', 'accepted', 'submitted', 'pending', 'queued', 'warming-up', 'in-progress', 'finalizing', 'running', 'remote', 'uncertain'])

export function jobsPath(limit = 50) {
  return `${JOBS_ROUTE}?limit=${encodeURIComponent(String(limit))}`
}

export function cancelPath(jobId) {
  return `${JOBS_ROUTE}/${encodeURIComponent(jobId)}/cancel`
}

/** Normalise the route's answer into rows the panel shows. */
export function normalizeJobs(body) {
  const rows = Array.isArray(body?.jobs) ? body.jobs : []
  return rows
    .filter((j) => typeof j?.job_id === 'string' && j.job_id)
    .map((j) => {
      const state = String(j.state ?? j.status ?? 'unknown')
      const assetIds = Array.isArray(j.asset_ids) ? j.asset_ids.filter((a) => typeof a === 'string' && a) : []
      return {
        jobId: j.job_id,
        state,
        status: String(j.status ?? ''),
        createdAt: typeof j.created_at === 'string' ? j.created_at : '',
        cost: j.cost == null || !Number.isFinite(Number(j.cost)) ? null : Number(j.cost),
        modelId: typeof j.model_id === 'string' ? j.model_id : '',
        prompt: typeof j.prompt === 'string' ? j.prompt : '',
        assetIds,
        thumbnails: Array.isArray(j.thumbnails)
          ? j.thumbnails.filter((t) => t && typeof t.url === 'string' && t.url).slice(0, 4)
          : [],
        error: typeof j.error === 'string' ? j.error : '',
        cancelable: j.cancelable === true || (j.cancelable == null && RUNNING.includes(state))
      }
    })
}

const COST_NOTE = Object.freeze({
  failed: ' charged at submit, normally refunded',
  canceled: ' charged at submit'
})

/** The `asset_ids` value of a Fetch Asset node for a job (comma-separated, the node's own format). */
export function fetchNodeValue(row) {
  return row.assetIds.join(',')
}

/**
 * One line of a row: state, cost, model. The cost is what Scenario charged at
 * submit; a failed job is normally refunded, and whether a canceled one is
 * depends on how far it ran, so those say so instead of reading as billed.
 */
export function rowSummary(row) {
  const bits = [row.state]
  if (row.cost !== null) bits.push(`${formatCost(row.cost)} CU${COST_NOTE[row.state] ?? ''}`)
  if (row.modelId) bits.push(row.modelId)
  if (row.assetIds.length) bits.push(`${row.assetIds.length} image${row.assetIds.length === 1 ? '' : 's'}`)
  return bits.join(' · ')
}

/** When a job ran, short and local ("12:04:31" today, else the date). */
export function shortTime(iso, now = new Date()) {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const sameDay = d.toDateString() === now.toDateString()
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString()
}

/**
 * Add a Scenario Fetch Asset node filled with `row`'s asset ids to the graph.
 * `env`: {LiteGraph, app}. Returns the node, or null when it could not be made.
 */
export function addFetchNode(row, env) {
  const { LiteGraph, app } = env
  const node = LiteGraph?.createNode?.(FETCH_NODE_TYPE)
  if (!node) return null
  const widget = (node.widgets ?? []).find((w) => w.name === 'asset_ids')
  if (widget) {
    widget.value = fetchNodeValue(row)
    widget.callback?.(widget.value)
  }
  const canvas = app?.canvas
  const offset = canvas?.ds?.offset
  const scale = canvas?.ds?.scale || 1
  const el = canvas?.canvas
  if (Array.isArray(offset) || (offset && offset.length === 2)) {
    const w = el?.clientWidth ?? 800
    const h = el?.clientHeight ?? 600
    node.pos = [Math.round(w / 2 / scale - offset[0] - 160), Math.round(h / 3 / scale - offset[1])]
  }
  app?.graph?.add?.(node)
  canvas?.selectNode?.(node)
  app?.graph?.setDirtyCanvas?.(true, true)
  return node
}

function button(doc, text, title, onClick) {
  const b = doc.createElement('button')
  b.type = 'button'
  b.textContent = text
  b.title = title
  b.className = 'scenario-jobs-action'
  Object.assign(b.style, { fontSize: '11px', padding: '1px 6px', cursor: 'pointer' })
  b.addEventListener('click', (event) => {
    event.stopPropagation?.()
    onClick()
  })
  return b
}

/**
 * Render the panel into `container` and keep it fresh while it is shown.
 * `env`: {document, fetchJson(path, opts) -> {ok, body}, apiURL(path), copy(text),
 * open(url), LiteGraph, app, openCredentials(), setInterval, clearInterval}.
 * Returns {refresh, destroy, rows()}.
 */
export function renderJobsPanel(container, env) {
  const doc = env.document
  const root = doc.createElement('div')
  root.className = 'scenario-jobs'
  Object.assign(root.style, { padding: '8px', fontFamily: 'sans-serif', fontSize: '12px', color: 'var(--fg-color, #ddd)' })
  const head = doc.createElement('div')
  Object.assign(head.style, { display: 'flex', gap: '6px', alignItems: 'center', marginBottom: '6px' })
  const title = doc.createElement('strong')
  title.textContent = 'Scenario jobs'
  const status = doc.createElement('span')
  status.className = 'scenario-jobs-status'
  Object.assign(status.style, { flex: '1 1 auto', opacity: '0.8' })
  head.append(
    title,
    status,
    button(doc, 'Refresh', 'Reload the job list', () => refresh()),
    button(doc, 'API key…', 'Set or test the Scenario API key (Settings > Scenario)', () => env.openCredentials?.())
  )
  const list = doc.createElement('div')
  list.className = 'scenario-jobs-list'
  root.append(head, list)
  container.replaceChildren?.()
  container.append(root)

  let rows = []
  let timer = null
  let destroyed = false

  function renderRows() {
    list.replaceChildren()
    if (!rows.length) {
      const empty = doc.createElement('div')
      empty.textContent = 'No Scenario job yet. Jobs appear here as soon as Scenario accepts them.'
      empty.style.opacity = '0.7'
      list.append(empty)
      return
    }
    for (const row of rows) {
      const item = doc.createElement('div')
      item.className = 'scenario-jobs-row'
      item.dataset.jobId = row.jobId
      item.dataset.state = row.state
      Object.assign(item.style, { borderTop: '1px solid var(--border-color, #444)', padding: '6px 0' })
      const top = doc.createElement('div')
      const link = doc.createElement('a')
      link.textContent = row.jobId
      link.href = jobUrl(row.jobId)
      link.target = '_blank'
      link.rel = 'noopener noreferrer'
      link.title = 'Open this job in Scenario\'s web app'
      const when = doc.createElement('span')
      when.textContent = row.createdAt ? `  ${shortTime(row.createdAt)}` : ''
      when.style.opacity = '0.7'
      top.append(link, when)
      const summary = doc.createElement('div')
      summary.className = 'scenario-jobs-summary'
      summary.textContent = rowSummary(row)
      const extra = doc.createElement('div')
      extra.style.opacity = '0.75'
      extra.textContent = row.error ? `reason: ${row.error}` : row.prompt.slice(0, 120)
      const thumbs = doc.createElement('div')
      Object.assign(thumbs.style, { display: 'flex', gap: '4px', margin: '4px 0' })
      for (const t of row.thumbnails) {
        const img = doc.createElement('img')
        img.src = env.apiURL ? env.apiURL(t.url) : t.url
        img.alt = t.asset_id ?? ''
        img.title = t.asset_id ?? ''
        Object.assign(img.style, { width: '56px', height: '56px', objectFit: 'cover', borderRadius: '3px', cursor: 'pointer' })
        if (t.asset_id) img.addEventListener('click', () => env.open?.(assetUrl(t.asset_id)))
        thumbs.append(img)
      }
      const actions = doc.createElement('div')
      Object.assign(actions.style, { display: 'flex', gap: '4px', flexWrap: 'wrap' })
      if (row.assetIds.length) {
        actions.append(
          button(doc, 'Fetch Asset node', 'Add a Scenario Fetch Asset node filled with this job\'s asset ids (free)', () => {
            const node = addFetchNode(row, env)
            status.textContent = node ? 'Fetch Asset node added' : 'could not add the node'
          })
        )
      }
      if (row.cancelable) {
        actions.append(button(doc, 'Cancel', 'Ask Scenario to cancel this job', () => cancel(row)))
      }
      actions.append(
        button(doc, 'Copy ids', 'Copy the job id and asset ids', () => {
          env.copy?.([row.jobId, ...row.assetIds].join('\n'))
          status.textContent = 'ids copied'
        })
      )
      item.append(top, summary, extra, thumbs, actions)
      list.append(item)
    }
  }

  async function refresh() {
    if (destroyed) return
    try {
      const { ok, body } = await env.fetchJson(jobsPath())
      if (destroyed) return
      if (!ok) {
        status.textContent = body?.error ? String(body.error).replace(/^Scenario:\s*/, '') : 'job list unavailable'
        return
      }
      rows = normalizeJobs(body)
      status.textContent = `${rows.length} job${rows.length === 1 ? '' : 's'}`
      renderRows()
    } catch (err) {
      status.textContent = `job list unavailable: ${err?.message ?? err}`
    }
  }

  async function cancel(row) {
    status.textContent = `canceling ${row.jobId}…`
    const { ok, body } = await env.fetchJson(cancelPath(row.jobId), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}'
    })
    status.textContent = ok ? `cancel sent for ${row.jobId}` : String(body?.error ?? 'cancel failed').replace(/^Scenario:\s*/, '')
    await refresh()
  }

  renderRows()
  const ready = refresh()
  const every = env.setInterval ?? globalThis.setInterval
  const stop = env.clearInterval ?? globalThis.clearInterval
  timer = every(() => refresh(), REFRESH_MS)
  return {
    ready,
    refresh,
    rows: () => rows,
    destroy() {
      destroyed = true
      if (timer != null) stop(timer)
      timer = null
    }
  }
}
