// The final state shown on a generate node (web/scenario_results.js).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  APP_URL,
  assetUrl,
  copyText,
  createResultStore,
  idsInText,
  jobUrl,
  lastRunSize,
  resultFromExecutionError,
  resultFromInterrupt,
  resultFromPayload,
  resultLink,
  resultText,
  resultTitle,
  shortReason
} from '../../web/scenario_results.js'

const done = {
  state: 'done',
  cost: 2.8125,
  job_ids: ['job_abc123'],
  asset_ids: ['asset_1', 'asset_2'],
  sizes: [[768, 768], [768, 768]],
  node: 4,
  prompt_id: 'p1'
}

test('links open the job and the asset in Scenario\'s web app, only for well-formed ids', () => {
  assert.equal(jobUrl('job_abc123'), `${APP_URL}/create?restartGeneration=job_abc123`)
  assert.equal(assetUrl('asset_1'), `${APP_URL}/assets?openAssetId=asset_1`)
  for (const bad of ['', 'job/../x', 'javascript:alert(1)', 'a b', null, 'x'.repeat(200)]) {
    assert.equal(jobUrl(bad), '')
    assert.equal(assetUrl(bad), '')
  }
})

test('a done payload (ui list or event object) gives cost, ids and sizes', () => {
  for (const payload of [done, [done], [{ state: 'done' }, done]]) {
    const r = resultFromPayload(payload)
    assert.equal(r.state, 'done')
    assert.equal(r.cost, 2.8125)
    assert.deepEqual(r.jobIds, ['job_abc123'])
    assert.deepEqual(r.assetIds, ['asset_1', 'asset_2'])
    assert.equal(r.node, '4')
    assert.equal(resultText(r), 'done · 2.81 CU · job_abc123')
    assert.deepEqual(lastRunSize(r), [768, 768])
    assert.equal(copyText(r), 'job_abc123\nasset_1\nasset_2')
    assert.equal(resultLink(r), jobUrl('job_abc123'))
    assert.match(resultTitle(r), /billed: 2.81 CU/)
    assert.match(resultTitle(r), /asset ids: asset_1, asset_2/)
  }
})

test('not a final state: null', () => {
  for (const bad of [null, undefined, [], {}, { state: 'running' }, 'done', [{ state: 'weird' }]]) {
    assert.equal(resultFromPayload(bad), null)
  }
})

test('a failed job\'s line quotes Scenario\'s own words, the tooltip keeps the whole text', () => {
  const whole = 'Scenario: job job_NWzUkTQsLFe962hAdNgHdg failed. Scenario says: Content rejected by the safety filter. Hint: Try another prompt.'
  const failed = resultFromPayload({ state: 'failed', reason: whole, job_ids: ['job_NWzUkTQsLFe962hAdNgHdg'] })
  assert.equal(resultText(failed), 'failed · Content rejected by the safety filter · job_NWzUkTQs…gHdg')
  assert.match(resultTitle(failed), /reason: job job_NWzUkTQsLFe962hAdNgHdg failed\. Scenario says: Content rejected/)
  assert.equal(shortReason('Scenario: control_image: must be a PNG.'), 'control_image: must be a PNG')
  assert.equal(shortReason('boom'), 'boom')
})

test('failed shows Scenario\'s reason, canceled says the cancel was sent, reused says nothing was billed', () => {
  const failed = resultFromPayload({ state: 'failed', reason: 'Scenario: NSFW content detected', hint: 'Change the prompt', job_ids: ['job_x'] })
  assert.equal(resultText(failed), 'failed · NSFW content detected · job_x')
  assert.match(resultTitle(failed), /hint: Change the prompt/)
  const canceled = resultFromPayload({ state: 'canceled', job_ids: ['job_y'] })
  assert.equal(resultText(canceled), 'canceled · job_y · cancel sent')
  const reused = resultFromPayload({ state: 'reused', cost: 0, job_ids: ['job_z'], asset_ids: ['asset_z'] })
  assert.match(resultText(reused), /^reused \(no new job, nothing billed\)/)
  const many = resultFromPayload({ state: 'done', cost: 3, job_ids: ['job_a', 'job_b', 'job_c'] })
  assert.equal(resultText(many), 'done · 3 CU · 3 jobs')
  assert.equal(lastRunSize(resultFromPayload({ state: 'done', sizes: [[512, 512], [768, 512]] })), null)
})

test('ComfyUI\'s own error and interrupt events become failed and canceled', () => {
  const err = resultFromExecutionError({
    node_id: '7',
    prompt_id: 'p',
    exception_type: 'ScenarioError',
    exception_message: 'Scenario: job job_fail1 failed: Generation failed'
  })
  assert.equal(err.state, 'failed')
  assert.deepEqual(err.jobIds, ['job_fail1'])
  assert.equal(err.reason, 'job job_fail1 failed: Generation failed')
  const stop = resultFromInterrupt({ node_id: '7' }, 'generating 20% | queued 0.1 s | job_run1')
  assert.equal(stop.state, 'canceled')
  assert.deepEqual(stop.jobIds, ['job_run1'])
  assert.deepEqual(idsInText('a job_1, asset_2 and job_1 again'), ['job_1', 'asset_2'])
})

test('the store keeps a final state across the end of a run; the pack\'s state beats ComfyUI\'s', () => {
  const store = createResultStore()
  store.set(4, resultFromPayload({ state: 'canceled', job_ids: ['job_y'] }))
  store.set('4', resultFromInterrupt({ node_id: '4' }, ''))
  assert.deepEqual(store.get(4).jobIds, ['job_y'], 'the generic interrupt does not erase the pack\'s ids')
  store.running(4)
  assert.equal(store.get(4).stale, true)
  store.set(4, resultFromExecutionError({ node_id: '4', exception_message: 'boom' }))
  assert.equal(store.get(4).state, 'failed')
  assert.equal(store.get(4).stale, false)
  assert.equal(store.get(5), null)
})

test('a node served from ComfyUI\'s cache reads reused, nothing billed; Fetch Asset reads free with its assets', async () => {
  const { asCached } = await import('../../web/scenario_results.js')
  const cached = asCached(resultFromPayload(done))
  assert.equal(cached.state, 'reused')
  assert.equal(cached.cost, 0)
  assert.deepEqual(cached.jobIds, ['job_abc123'], 'the ids stay: they are the run that is reused')
  assert.match(resultText(cached), /^reused \(no new job, nothing billed\) · job_abc123$/)
  const failed = resultFromPayload({ state: 'failed', reason: 'x' })
  assert.equal(asCached(failed), failed)
  const fetched = resultFromPayload({ state: 'done', cost: 0, job_ids: [], asset_ids: ['asset_demo_pose', 'asset_demo_canny'] })
  assert.equal(resultText(fetched), 'done · free · 2 assets')
  assert.equal(resultLink(fetched), assetUrl('asset_demo_pose'))
})
