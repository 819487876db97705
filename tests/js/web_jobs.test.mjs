// The Scenario Jobs sidebar tab (web/scenario_jobs.js).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { addFetchNode, cancelPath, fetchNodeValue, jobsPath, normalizeJobs, renderJobsPanel, rowSummary } from '../../web/scenario_jobs.js'
import { jobUrl } from '../../web/scenario_results.js'
import { makeDocument, makeFetch, settle } from './web_fake_dom.mjs'

const JOBS = {
  jobs: [
    { job_id: 'job_run', state: 'in-progress', status: 'in-progress', created_at: '2026-12-01T09:00:00.000Z', cost: null, model_id: 'flux.1-dev', prompt: 'a house', asset_ids: [], thumbnails: [] },
    {
      job_id: 'job_done', state: 'succeeded', status: 'success', created_at: '2026-12-01T08:59:00.000Z', cost: 2.8125,
      model_id: 'flux.1-dev', prompt: 'a cottage', asset_ids: ['asset_a', 'asset_b'],
      thumbnails: [{ asset_id: 'asset_a', url: '/scenario/assets/asset_a/thumbnail' }], cancelable: false
    },
    { job_id: 'job_bad', state: 'failed', status: 'failure', error: 'NSFW content detected', asset_ids: [] },
    { state: 'broken row without id' }
  ]
}

function fakeLiteGraph() {
  const created = []
  return {
    created,
    createNode(type) {
      const node = { type, pos: [0, 0], widgets: [{ name: 'asset_ids', value: '', callback: null }] }
      created.push(node)
      return node
    }
  }
}

test('rows: state, cost, ids; cancel only for running jobs', () => {
  const rows = normalizeJobs(JOBS)
  assert.deepEqual(rows.map((r) => [r.jobId, r.cancelable]), [['job_run', true], ['job_done', false], ['job_bad', false]])
  assert.equal(rowSummary(rows[1]), 'succeeded · 2.81 CU · flux.1-dev · 2 images')
  assert.equal(fetchNodeValue(rows[1]), 'asset_a,asset_b')
  assert.equal(jobsPath(20), '/scenario/jobs?limit=20')
  assert.equal(cancelPath('job_run'), '/scenario/jobs/job_run/cancel')
  assert.deepEqual(normalizeJobs({}), [])
})

test('a failed or canceled job\'s cost does not read as billed', () => {
  const [failed, canceled] = normalizeJobs({
    jobs: [
      { job_id: 'job_f', state: 'failed', cost: 1.875 },
      { job_id: 'job_c', state: 'canceled', cost: 1.875 }
    ]
  })
  assert.equal(rowSummary(failed), 'failed · 1.88 CU charged at submit, normally refunded')
  assert.equal(rowSummary(canceled), 'canceled · 1.88 CU charged at submit')
})

test('add a Fetch Asset node already filled with the job\'s assets', () => {
  const LiteGraph = fakeLiteGraph()
  const added = []
  const app = { graph: { add: (n) => added.push(n) }, canvas: { ds: { offset: [0, 0], scale: 1 }, canvas: { clientWidth: 800, clientHeight: 600 } } }
  const node = addFetchNode(normalizeJobs(JOBS)[1], { LiteGraph, app })
  assert.equal(node.type, 'ScenarioFetchAsset')
  assert.equal(node.widgets[0].value, 'asset_a,asset_b')
  assert.deepEqual(added, [node])
  assert.equal(addFetchNode(normalizeJobs(JOBS)[1], { LiteGraph: { createNode: () => null }, app }), null)
})

test('the panel lists jobs with links and thumbnails, and its actions call the routes', async () => {
  const doc = makeDocument()
  let canceled = 0
  const fetchJson = makeFetch({
    'GET /scenario/jobs': () => JOBS,
    'POST /scenario/jobs/job_run/cancel': () => {
      canceled += 1
      return { job_id: 'job_run', status: 'in-progress', cancel_sent: true }
    }
  })
  const copied = []
  const LiteGraph = fakeLiteGraph()
  const app = { graph: { add() {} }, canvas: {} }
  let credentials = 0
  const intervals = []
  const container = doc.createElement('div')
  const panel = renderJobsPanel(container, {
    document: doc,
    fetchJson,
    apiURL: (p) => `/api${p}`,
    copy: (t) => copied.push(t),
    open() {},
    LiteGraph,
    app,
    openCredentials: () => { credentials += 1 },
    setInterval: (fn, ms) => { intervals.push(ms); return 1 },
    clearInterval: () => intervals.push('cleared')
  })
  await panel.ready
  const rows = container.byClass('scenario-jobs-row')
  assert.deepEqual(rows.map((r) => r.dataset.jobId), ['job_run', 'job_done', 'job_bad'])
  const link = [...rows[1].all()].find((e) => e.tagName === 'A')
  assert.equal(link.href, jobUrl('job_done'))
  assert.equal(link.rel, 'noopener noreferrer')
  const img = [...rows[1].all()].find((e) => e.tagName === 'IMG')
  assert.equal(img.src, '/api/scenario/assets/asset_a/thumbnail')
  assert.match(rows[2].textContent, /reason: NSFW content detected/)
  assert.match(container.oneByClass('scenario-jobs-status').textContent, /3 jobs/)

  rows[1].byText('Copy ids')[0].click()
  assert.deepEqual(copied, ['job_done\nasset_a\nasset_b'])
  rows[1].byText('Fetch Asset node')[0].click()
  assert.equal(LiteGraph.created.length, 1)
  assert.equal(LiteGraph.created[0].widgets[0].value, 'asset_a,asset_b')
  assert.equal(rows[0].byText('Fetch Asset node').length, 0, 'no assets yet: no Fetch node')
  assert.equal(rows[1].byText('Cancel').length, 0, 'a finished job cannot be canceled')
  rows[0].byText('Cancel')[0].click()
  await settle()
  assert.equal(canceled, 1)
  const cancelCall = fetchJson.calls.find((c) => c.method === 'POST')
  assert.equal(cancelCall.headers['Content-Type'], 'application/json')
  container.byText('API key…')[0].click()
  assert.equal(credentials, 1)
  panel.destroy()
  assert.deepEqual(intervals, [5000, 'cleared'])
})

test('an unavailable ledger is said, not thrown', async () => {
  const doc = makeDocument()
  const container = doc.createElement('div')
  const panel = renderJobsPanel(container, {
    document: doc,
    fetchJson: makeFetch({ 'GET /scenario/jobs': () => ({ ok: false, body: { error: 'Scenario: the job ledger is unavailable' } }) }),
    setInterval: () => 1,
    clearInterval() {}
  })
  await panel.ready
  assert.equal(container.oneByClass('scenario-jobs-status').textContent, 'the job ledger is unavailable')
  panel.destroy()
})
