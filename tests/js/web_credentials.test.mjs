// The API key dialog behind Settings > Scenario (web/scenario_credentials.js).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { describeStatus, fileWarning, openCredentialsDialog, saveBody, settingRenderer } from '../../web/scenario_credentials.js'
import { makeDocument, makeFetch, settle } from './web_fake_dom.mjs'

const SECRET = 'browser-secret-XYZ-987654'
const fileStatus = { configured: true, source: 'file', key_last4: '0042', env_wins: false, file: { present: true, configured: true, owner_only: true }, emulator: false }
const envStatus = { configured: true, source: 'env', env_key: 'SCENARIO_SDK_API_KEY', key_last4: '-key', env_wins: true, file: { present: true, configured: true, owner_only: false }, emulator: true }
const noneStatus = { configured: false, source: null, key_last4: '', env_wins: false, file: { present: false } }

test('the status sentence names the source and only the last 4 characters', () => {
  assert.equal(describeStatus(fileStatus), 'Key (…0042) saved in ComfyUI\'s user folder')
  assert.equal(describeStatus(envStatus), 'Key (…-key) from the environment (SCENARIO_SDK_API_KEY); a saved key exists but the environment variables win · local emulator')
  assert.match(describeStatus(noneStatus), /No Scenario API key yet/)
  assert.match(fileWarning(envStatus), /other users/)
  assert.equal(fileWarning(fileStatus), '')
  assert.deepEqual(JSON.parse(saveBody({ api_key: ' api_k ', api_secret: ' s ', project_id: '' })), { api_key: 'api_k', api_secret: ' s ', project_id: '' })
})

test('save posts JSON straight to the route, empties the secret field and keeps nothing', async () => {
  const doc = makeDocument()
  let stored = null
  const fetchJson = makeFetch({
    'GET /scenario/credentials': () => (stored ? fileStatus : noneStatus),
    'POST /scenario/credentials': (opts) => {
      stored = JSON.parse(opts.body)
      return { ...fileStatus, saved: true }
    },
    'POST /scenario/credentials/test': () => ({ ok: true, source: 'file', key_last4: '0042', emulator: true }),
    'POST /scenario/credentials/clear': () => ({ ...noneStatus, removed: true })
  })
  const dialog = openCredentialsDialog({ document: doc, fetchJson })
  await dialog.ready
  assert.match(dialog.element.oneByClass('scenario-credentials-status').textContent, /No Scenario API key yet/)
  assert.equal(dialog.inputs.secret.type, 'password')
  assert.equal(dialog.inputs.secret.autocomplete, 'new-password')
  dialog.inputs.key.value = 'api_browserkey0042'
  dialog.inputs.secret.value = SECRET
  dialog.element.oneByClass('scenario-credentials-save').click()
  await settle()
  assert.deepEqual(stored, { api_key: 'api_browserkey0042', api_secret: SECRET, project_id: '' })
  const post = fetchJson.calls.find((c) => c.method === 'POST')
  assert.equal(post.headers['Content-Type'], 'application/json')
  assert.equal(dialog.inputs.secret.value, '', 'the secret field is emptied at once')
  assert.equal(dialog.inputs.key.value, '')
  assert.equal(dialog.message(), 'Saved.')
  assert.match(dialog.element.oneByClass('scenario-credentials-status').textContent, /…0042/)
  assert.ok(!dialog.element.textContent.includes(SECRET))

  await dialog.test()
  assert.equal(dialog.message(), 'Connection OK: key (…0042) accepted by the local emulator.')
  await dialog.clear()
  assert.equal(dialog.message(), 'Saved key removed.')
  dialog.close()
  assert.equal(dialog.element.parentNode, null)
})

test('opened from inside a modal (ComfyUI\'s Settings), the dialog goes inside it', async () => {
  const doc = makeDocument()
  const modal = doc.createElement('div')
  modal.setAttribute('role', 'dialog')
  const button = doc.createElement('button')
  modal.append(button)
  doc.body.append(modal)
  const dialog = openCredentialsDialog({ document: doc, fetchJson: makeFetch({ 'GET /scenario/credentials': () => fileStatus }), anchor: button })
  await dialog.ready
  assert.equal(dialog.element.parentNode, modal)
  assert.equal(dialog.element.style.pointerEvents, 'auto')
  dialog.close()
})

test('errors name the field; the environment winning is said', async () => {
  const doc = makeDocument()
  const fetchJson = makeFetch({
    'GET /scenario/credentials': () => envStatus,
    'POST /scenario/credentials': () => ({ ok: false, status: 400, body: { error: 'Scenario: Invalid apiKey (api_key): got \'<hidden>\'; allowed: letters', code: 'validation', field: 'api_key' } }),
    'POST /scenario/credentials/test': () => ({ ok: false, status: 400, body: { error: 'Scenario: the API key was refused (401)', code: 'auth' } })
  })
  const dialog = openCredentialsDialog({ document: doc, fetchJson })
  await dialog.ready
  assert.match(dialog.element.oneByClass('scenario-credentials-env').textContent, /Environment variables are set/)
  dialog.inputs.key.value = 'api key'
  dialog.inputs.secret.value = SECRET
  await dialog.save()
  assert.match(dialog.message(), /api_key/)
  assert.equal(dialog.inputs.secret.value, '')
  await dialog.test()
  assert.equal(dialog.message(), 'the API key was refused (401)')
})

test('the Settings entry renders a status and a button; it never calls the setter', async () => {
  const doc = makeDocument()
  let opened = 0
  const render = settingRenderer({ document: doc, fetchJson: makeFetch({ 'GET /scenario/credentials': () => fileStatus }), openDialog: (a) => { opened += 1; lastAnchor = a } })
  let lastAnchor = null
  let setterCalls = 0
  const el = render('Scenario API key', () => { setterCalls += 1 }, '', {})
  await settle()
  assert.equal(el.oneByClass('scenario-credentials-line').textContent, 'Key (…0042) saved in ComfyUI\'s user folder')
  el.oneByClass('scenario-credentials-open').click()
  assert.equal(opened, 1)
  assert.equal(lastAnchor, el.oneByClass('scenario-credentials-open'), 'the button is passed as the anchor')
  assert.equal(setterCalls, 0)
})
