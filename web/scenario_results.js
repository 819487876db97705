// Scenario ControlNet for ComfyUI: what a finished run shows on the node (no ComfyUI imports).
//
// A run ends in one of four states, and the node must say which, in both
// renderers and on every frontend version (1.58 clears the progress text when
// a run ends, 1.27 keeps a stale "generating 20%" after Stop):
//
//   done      cost and job id(s) of the jobs that ran
//   reused    the job ledger served an earlier result (nothing billed)
//   canceled  Stop, with the job id(s) Scenario was asked to cancel
//   failed    Scenario's reason (and hint), or the node's own error text
//
// Sources, most precise first: the pack's `scenario.result` websocket event
// and the `scenario` entry of the `executed` message's ui payload (both
// carry the same object, see resultFromPayload), then ComfyUI's own
// `execution_error` / `execution_interrupted` events for that node.

/** Scenario's web app (links open there; the API key never goes into them). */
export const APP_URL = 'https://app.scenario.com'

/** The pack's websocket event with the final state of one node run. */
export const RESULT_EVENT = 'scenario.result'
/** The key of the final state in a node's `executed` ui payload. */
export const UI_KEY = 'scenario'

export const STATES = Object.freeze(['done', 'reused', 'canceled', 'failed'])

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/

/** A link that opens a job in Scenario's web app (its generation page). */
export function jobUrl(jobId) {
  const id = String(jobId ?? '')
  if (!ID_RE.test(id)) return ''
  return `${APP_URL}/create?restartGeneration=${encodeURIComponent(id)}`
}

/** A link that opens an asset in Scenario's web app (its asset viewer). */
export function assetUrl(assetId) {
  const id = String(assetId ?? '')
  if (!ID_RE.test(id)) return ''
  return `${APP_URL}/assets?openAssetId=${encodeURIComponent(id)}`
}

function ids(list) {
  if (!Array.isArray(list)) return []
  return list.map((x) => String(x ?? '').trim()).filter((x) => ID_RE.test(x))
}

function number(value) {
  const n = Number(value)
  return value === null || value === undefined || value === '' || !Number.isFinite(n) ? null : n
}

function unwrap(payload) {
  // The ui payload holds lists (ComfyUI concatenates them over list items).
  if (Array.isArray(payload)) return payload.length ? payload[payload.length - 1] : null
  return payload && typeof payload === 'object' ? payload : null
}

/**
 * Normalise the pack's final-state object (event detail or ui entry):
 * {state, cost?, job_ids?, asset_ids?, reason?, hint?, sizes?, node?, prompt_id?}.
 * Returns null when it is not one.
 */
export function resultFromPayload(payload) {
  const p = unwrap(payload)
  if (!p || !STATES.includes(p.state)) return null
  const sizes = Array.isArray(p.sizes)
    ? p.sizes.filter((s) => Array.isArray(s) && s.length === 2 && s.every((v) => Number.isInteger(v) && v > 0))
    : []
  return {
    state: p.state,
    cost: number(p.cost),
    jobIds: ids(p.job_ids),
    assetIds: ids(p.asset_ids),
    reason: typeof p.reason === 'string' ? p.reason.replace(/^Scenario:\s*/, '').trim() : '',
    hint: typeof p.hint === 'string' ? p.hint.trim() : '',
    sizes,
    node: p.node == null ? null : String(p.node),
    promptId: p.prompt_id == null ? null : String(p.prompt_id),
    source: 'pack'
  }
}

/**
 * A result ComfyUI re-sent from its cache (`execution_cached`): the same
 * images and ids, but no new job ran and nothing new was billed.
 */
export function asCached(result) {
  if (!result || result.state === 'failed' || result.state === 'canceled') return result
  return { ...result, state: 'reused', cost: 0, cached: true }
}

/** The node's ids named in a free text (job_... and asset_...), in order, without duplicates. */
export function idsInText(text) {
  const found = String(text ?? '').match(/\b(?:job|asset)_[A-Za-z0-9_-]+/g) ?? []
  return [...new Set(found)]
}

/** A failed state from ComfyUI's `execution_error` detail (the node's exception text). */
export function resultFromExecutionError(detail) {
  const message = String(detail?.exception_message ?? '').trim()
  const found = idsInText(message)
  return {
    state: 'failed',
    cost: null,
    jobIds: found.filter((x) => x.startsWith('job_')),
    assetIds: [],
    reason: message.replace(/^Scenario:\s*/, '') || String(detail?.exception_type ?? 'error'),
    hint: '',
    sizes: [],
    node: detail?.node_id == null ? null : String(detail.node_id),
    promptId: detail?.prompt_id == null ? null : String(detail.prompt_id),
    source: 'comfy'
  }
}

/** A canceled state from ComfyUI's `execution_interrupted` (job ids from the last status text, if any). */
export function resultFromInterrupt(detail, lastText = '') {
  return {
    state: 'canceled',
    cost: null,
    jobIds: idsInText(lastText).filter((x) => x.startsWith('job_')),
    assetIds: [],
    reason: '',
    hint: '',
    sizes: [],
    node: detail?.node_id == null ? null : String(detail.node_id),
    promptId: detail?.prompt_id == null ? null : String(detail.prompt_id),
    source: 'comfy'
  }
}

export function formatCost(value) {
  const n = Number(value)
  if (!Number.isFinite(n)) return '?'
  return String(Math.round(n * 100) / 100)
}

function shortId(id) {
  return id.length > 18 ? id.slice(0, 12) + '…' + id.slice(-4) : id
}

const LABELS = {
  done: 'done',
  reused: 'reused (no new job, nothing billed)',
  canceled: 'canceled',
  failed: 'failed'
}

/**
 * The part of a node's error text worth a place on the line: Scenario's own
 * words when the text quotes them ("... Scenario says: X. Hint: ..."), else
 * the text without its "Scenario: " prefix. The job id is on the line already;
 * the whole text stays in the tooltip.
 */
export function shortReason(reason) {
  const text = String(reason ?? '')
  const quoted = text.indexOf('Scenario says: ')
  let core = quoted >= 0 ? text.slice(quoted + 'Scenario says: '.length) : text.replace(/^Scenario: /, '')
  core = core.replace(/\s*(Hint|Job id): .*$/s, '').trim()
  return core.endsWith('.') && !core.endsWith('..') ? core.slice(0, -1) : core || text
}

/** The one-line text of a final state; the full ids and reason go in resultTitle. */
export function resultText(result) {
  if (!result) return ''
  const parts = [LABELS[result.state] ?? result.state]
  if (result.state === 'done' && result.cost !== null && (result.cost > 0 || !result.jobIds.length)) {
    parts.push(result.jobIds.length ? `${formatCost(result.cost)} CU` : 'free')
  }
  if (result.state === 'failed' && result.reason) {
    const reason = shortReason(result.reason)
    parts.push(reason.length > 80 ? reason.slice(0, 79) + '…' : reason)
  }
  if (result.jobIds.length === 1) parts.push(shortId(result.jobIds[0]))
  else if (result.jobIds.length > 1) parts.push(`${result.jobIds.length} jobs`)
  else if (result.assetIds.length) parts.push(result.assetIds.length === 1 ? shortId(result.assetIds[0]) : `${result.assetIds.length} assets`)
  if (result.state === 'canceled' && result.jobIds.length) parts.push('cancel sent')
  return parts.join(' · ')
}

/** The tooltip of a final state: every id, the whole reason and the hint. */
export function resultTitle(result) {
  if (!result) return ''
  const lines = [`Scenario: ${LABELS[result.state] ?? result.state}`]
  if (result.cost !== null) lines.push(`billed: ${formatCost(result.cost)} CU`)
  if (result.reason) lines.push(`reason: ${result.reason}`)
  if (result.hint) lines.push(`hint: ${result.hint}`)
  if (result.jobIds.length) lines.push(`job ids: ${result.jobIds.join(', ')}`)
  if (result.assetIds.length) lines.push(`asset ids: ${result.assetIds.join(', ')}`)
  if (result.sizes.length) lines.push(`sizes: ${result.sizes.map(([w, h]) => `${w}×${h}`).join(', ')}`)
  return lines.join('\n')
}

/** What the copy button puts on the clipboard: job ids, then asset ids, one per line. */
export function copyText(result) {
  if (!result) return ''
  return [...result.jobIds, ...result.assetIds].join('\n')
}

/** The link of a final state: the job (one job), else the first asset, else ''. */
export function resultLink(result) {
  if (!result) return ''
  if (result.jobIds.length) return jobUrl(result.jobIds[0])
  if (result.assetIds.length) return assetUrl(result.assetIds[0])
  return ''
}

/** The size the last run produced, when all its jobs agree ([w, h] or null). */
export function lastRunSize(result) {
  if (!result || !result.sizes.length) return null
  const [w, h] = result.sizes[0]
  return result.sizes.every(([a, b]) => a === w && b === h) ? [w, h] : null
}

/** The colour token of a state (CSS variables of ComfyUI's themes, with fallbacks). */
export function stateColor(state) {
  if (state === 'failed') return 'var(--error-text, #ff6b6b)'
  if (state === 'canceled') return 'var(--warning-text, #e0b050)'
  return 'var(--success-text, #7fd48a)'
}

/**
 * Keep the final state of each node across the end of a run. ComfyUI's
 * `execution_start` of a new prompt clears nothing here; a node's state is
 * replaced when that node reports again, and `running(node)` marks it stale.
 */
export function createResultStore() {
  const byNode = new Map()
  return {
    set(nodeId, result) {
      if (nodeId == null || !result) return
      const key = String(nodeId)
      const previous = byNode.get(key)
      // A pack result beats ComfyUI's generic one for the same run.
      if (previous && previous.source === 'pack' && result.source === 'comfy' && !previous.stale) return
      byNode.set(key, { ...result, stale: false })
    },
    get(nodeId) {
      return byNode.get(String(nodeId)) ?? null
    },
    running(nodeId) {
      const hit = byNode.get(String(nodeId))
      if (hit) hit.stale = true
    },
    clear() {
      byNode.clear()
    }
  }
}
