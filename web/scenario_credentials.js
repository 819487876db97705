// Scenario ControlNet for ComfyUI: the API key dialog behind Settings > Scenario.
//
// The key pair never becomes a ComfyUI setting value (settings are saved in
// ComfyUI's user settings JSON), never goes into localStorage and never into
// a workflow. The Settings entry is a custom renderer that only shows the
// status and a button; the button opens this dialog, whose fields are posted
// straight to the pack's route and then emptied:
//
//   GET  /scenario/credentials        -> status (source, key's last 4, env_wins…)
//   POST /scenario/credentials        {api_key, api_secret, project_id} -> status
//   POST /scenario/credentials/test   {} -> {ok, source, key_last4, base_url, emulator}
//   POST /scenario/credentials/clear  {} -> status
//
// The DOM code takes `document` and a fetch function as arguments so tests
// drive it without a browser.

export const CREDENTIALS_ROUTE = '/scenario/credentials'
/** The Settings entry: its value is never set (the dialog holds nothing). */
export const SETTING_CREDENTIALS = 'Scenario.Credentials.Dialog'
export const KEYS_PAGE = 'https://app.scenario.com/settings/api'

/** One sentence saying where the key in use comes from; never key material beyond the last 4. */
export function describeStatus(s) {
  if (!s || typeof s !== 'object') return 'Scenario key status unavailable'
  const tail = s.key_last4 ? ` (…${s.key_last4})` : ''
  const where = s.emulator ? ' · local emulator' : ''
  if (s.source === 'env') {
    const name = s.env_key || 'SCENARIO_API_KEY'
    const file = s.file?.configured ? '; a saved key exists but the environment variables win' : ''
    return `Key${tail} from the environment (${name})${file}${where}`
  }
  if (s.source === 'file') return `Key${tail} saved in ComfyUI's user folder${where}`
  return 'No Scenario API key yet: enter your key and secret below' + where
}

/** A warning about the saved file (wrong permissions, unreadable), or ''. */
export function fileWarning(s) {
  if (s?.file?.error) return String(s.file.error).replace(/^Scenario:\s*/, '')
  if (s?.file?.present && s.file.owner_only === false) {
    return 'The saved credentials file can be read by other users: save the key again to make it owner-only'
  }
  return ''
}

/** The JSON body of a save; empty fields keep the saved values (the server decides). */
export function saveBody(fields) {
  const body = {
    api_key: String(fields.api_key ?? '').trim(),
    api_secret: String(fields.api_secret ?? ''),
    project_id: String(fields.project_id ?? '').trim()
  }
  return JSON.stringify(body)
}

function errorText(body, fallback) {
  const text = String(body?.error ?? fallback).replace(/^Scenario:\s*/, '')
  return body?.field && !text.includes(body.field) ? `${body.field}: ${text}` : text
}

const JSON_POST = { method: 'POST', headers: { 'Content-Type': 'application/json' } }

/**
 * The Settings custom renderer: a status line and a "Set API key…" button.
 * Signature of ComfyUI's custom setting types: (name, setter, value, attrs) -> HTMLElement.
 * The setter is never called, so nothing is written to ComfyUI's settings.
 */
export function settingRenderer(env) {
  return () => {
    const doc = env.document
    const box = doc.createElement('div')
    box.className = 'scenario-credentials-setting'
    Object.assign(box.style, { display: 'flex', gap: '8px', alignItems: 'center', flexWrap: 'wrap' })
    const line = doc.createElement('span')
    line.className = 'scenario-credentials-line'
    line.textContent = 'checking…'
    const open = doc.createElement('button')
    open.type = 'button'
    open.className = 'scenario-credentials-open'
    open.textContent = 'Set API key…'
    open.addEventListener('click', () => env.openDialog(open))
    box.append(line, open)
    Promise.resolve()
      .then(() => env.fetchJson(CREDENTIALS_ROUTE))
      .then(({ ok, body }) => {
        line.textContent = ok ? describeStatus(body) : errorText(body, 'status unavailable')
      })
      .catch(() => {
        line.textContent = 'status unavailable'
      })
    return box
  }
}

function field(doc, labelText, type, name, hint) {
  const wrap = doc.createElement('label')
  Object.assign(wrap.style, { display: 'flex', flexDirection: 'column', gap: '2px', marginBottom: '8px' })
  const label = doc.createElement('span')
  label.textContent = labelText
  const input = doc.createElement('input')
  input.type = type
  input.name = name
  input.className = `scenario-credentials-${name}`
  input.autocomplete = type === 'password' ? 'new-password' : 'off'
  input.spellcheck = false
  input.placeholder = hint
  Object.assign(input.style, { padding: '4px 6px' })
  wrap.append(label, input)
  return { wrap, input }
}

/**
 * Where the dialog goes: inside the modal that holds `anchor` (ComfyUI's
 * Settings dialog traps focus and pointer events inside itself), else the body.
 */
export function dialogContainer(doc, anchor) {
  return anchor?.closest?.('[role="dialog"]') ?? doc.body
}

/**
 * Open the dialog. `env`: {document, fetchJson(path, opts) -> {ok, body}, anchor?}.
 * Returns {element, save, test, clear, close, refresh, message()} (the functions for tests).
 */
export function openCredentialsDialog(env) {
  const doc = env.document
  const overlay = doc.createElement('div')
  overlay.className = 'scenario-credentials-overlay'
  Object.assign(overlay.style, {
    position: 'fixed',
    inset: '0',
    zIndex: '10001',
    background: 'rgba(0,0,0,0.45)',
    display: 'flex',
    alignItems: 'center',
    justifyContent: 'center',
    pointerEvents: 'auto'
  })
  const panel = doc.createElement('div')
  panel.className = 'scenario-credentials-dialog'
  panel.setAttribute('role', 'dialog')
  panel.setAttribute('aria-label', 'Scenario API key')
  Object.assign(panel.style, {
    width: '440px',
    maxWidth: '92vw',
    padding: '16px',
    borderRadius: '8px',
    background: 'var(--comfy-menu-bg, #202020)',
    color: 'var(--input-text, #ddd)',
    border: '1px solid var(--border-color, #555)',
    fontFamily: 'sans-serif',
    fontSize: '13px'
  })
  const heading = doc.createElement('h3')
  heading.textContent = 'Scenario API key'
  heading.style.margin = '0 0 8px'
  const statusLine = doc.createElement('div')
  statusLine.className = 'scenario-credentials-status'
  statusLine.style.marginBottom = '6px'
  const envNote = doc.createElement('div')
  envNote.className = 'scenario-credentials-env'
  Object.assign(envNote.style, { marginBottom: '6px', color: 'var(--warning-text, #e0b050)' })
  const help = doc.createElement('div')
  help.style.marginBottom = '10px'
  help.style.opacity = '0.8'
  help.append('Create a key in Scenario (')
  const keysLink = doc.createElement('a')
  keysLink.href = KEYS_PAGE
  keysLink.target = '_blank'
  keysLink.rel = 'noopener noreferrer'
  keysLink.textContent = 'Workspace settings > API'
  help.append(keysLink, '). It is stored on the ComfyUI server only (owner-only file), never in the browser or a workflow.')
  const key = field(doc, 'API key', 'text', 'api_key', 'api_… (empty keeps the saved key)')
  const secret = field(doc, 'API secret', 'password', 'api_secret', 'shown once when the key was created (empty keeps it)')
  const project = field(doc, 'Project id (optional)', 'text', 'project_id', 'proj_… or empty')
  const message = doc.createElement('div')
  message.className = 'scenario-credentials-message'
  Object.assign(message.style, { minHeight: '18px', margin: '6px 0' })
  const buttons = doc.createElement('div')
  Object.assign(buttons.style, { display: 'flex', gap: '6px', justifyContent: 'flex-end', flexWrap: 'wrap' })
  const mk = (text, cls, fn) => {
    const b = doc.createElement('button')
    b.type = 'button'
    b.textContent = text
    b.className = `scenario-credentials-${cls}`
    b.addEventListener('click', () => fn())
    return b
  }
  buttons.append(
    mk('Remove saved key', 'clear', () => clear()),
    mk('Test connection', 'test', () => test()),
    mk('Save', 'save', () => save()),
    mk('Close', 'close', () => close())
  )
  panel.append(heading, statusLine, envNote, help, key.wrap, secret.wrap, project.wrap, message, buttons)
  overlay.append(panel)
  overlay.addEventListener('mousedown', (event) => {
    if (event.target === overlay) close()
  })
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') close()
    event.stopPropagation?.() // keep ComfyUI's keyboard shortcuts out of the fields
  })
  dialogContainer(doc, env.anchor).append(overlay)
  key.input.focus?.()

  let closed = false
  let last = null

  function show(status) {
    last = status
    statusLine.textContent = describeStatus(status)
    const warn = fileWarning(status)
    envNote.textContent = status?.env_wins
      ? 'Environment variables are set for the ComfyUI process: they win over a key saved here.' + (warn ? ` ${warn}` : '')
      : warn
    envNote.style.display = envNote.textContent ? '' : 'none'
    if (status?.project_id && !project.input.value) project.input.placeholder = `${status.project_id} (empty keeps it)`
  }

  function say(text, kind = '') {
    message.textContent = text
    message.style.color =
      kind === 'error' ? 'var(--error-text, #ff6b6b)' : kind === 'ok' ? 'var(--success-text, #7fd48a)' : ''
  }

  async function refresh() {
    const { ok, body } = await env.fetchJson(CREDENTIALS_ROUTE)
    if (ok) show(body)
    else say(errorText(body, 'status unavailable'), 'error')
    return body
  }

  async function save() {
    const body = saveBody({ api_key: key.input.value, api_secret: secret.input.value, project_id: project.input.value })
    secret.input.value = '' // the secret leaves the page with this request and is not kept
    say('saving…')
    const { ok, body: answer } = await env.fetchJson(CREDENTIALS_ROUTE, { ...JSON_POST, body })
    if (!ok) {
      say(errorText(answer, 'could not save'), 'error')
      return answer
    }
    key.input.value = ''
    show(answer)
    say(answer.env_wins ? 'Saved. The environment variables still win while they are set.' : 'Saved.', 'ok')
    return answer
  }

  async function test() {
    say('testing…')
    const { ok, body } = await env.fetchJson(`${CREDENTIALS_ROUTE}/test`, { ...JSON_POST, body: '{}' })
    if (ok) {
      const tail = body.key_last4 ? ` (…${body.key_last4})` : ''
      say(`Connection OK: key${tail} accepted by ${body.emulator ? 'the local emulator' : 'Scenario'}.`, 'ok')
    } else {
      say(errorText(body, 'connection failed'), 'error')
    }
    return body
  }

  async function clear() {
    say('removing…')
    const { ok, body } = await env.fetchJson(`${CREDENTIALS_ROUTE}/clear`, { ...JSON_POST, body: '{}' })
    if (!ok) {
      say(errorText(body, 'could not remove'), 'error')
      return body
    }
    show(body)
    say(body.removed ? 'Saved key removed.' : 'There was no saved key.', 'ok')
    return body
  }

  function close() {
    if (closed) return
    closed = true
    secret.input.value = ''
    overlay.remove?.()
    env.onClose?.()
  }

  const ready = refresh().catch(() => say('status unavailable', 'error'))
  return {
    element: overlay,
    ready,
    inputs: { key: key.input, secret: secret.input, project: project.input },
    save,
    test,
    clear,
    close,
    refresh,
    message: () => message.textContent,
    status: () => last
  }
}
