// Truthful quotes: which size is priced, and the billed cost next to the quote (web/scenario_core.js).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  findMapSource,
  formatQuote,
  knownImageSize,
  parseImageValue,
  quoteWithBilled,
  viewPath
} from '../../web/scenario_core.js'

test('the quote line says which size it priced', () => {
  assert.equal(formatQuote({ per_job: 2.5 }), '≈ 2.5 CU per job')
  assert.equal(formatQuote({ per_job: 2.81, priced_size: [768, 768], size_basis: 'map' }), '≈ 2.81 CU per job at 768×768 (map size)')
  assert.equal(
    formatQuote({ per_job: 2.81, priced_size: [768, 768], size_basis: 'last_run' }),
    '≈ 2.81 CU per job at 768×768 (last run\'s size)'
  )
  const plain = '≈ 1.25 CU per job at 512×512 (default size, not the map\'s)'
  assert.equal(formatQuote({ per_job: 1.25, priced_size: [512, 512], size_basis: 'default' }), plain)
  assert.equal(formatQuote({ per_job: 1.25, priced_size: [512, 512] }), plain, 'an older server: said plainly')
})

test('the billed cost of the last run goes next to the quote', () => {
  assert.equal(quoteWithBilled('≈ 1 CU per job', 2.8125), '≈ 1 CU per job · billed 2.81 CU')
  assert.equal(quoteWithBilled('≈ 1 CU per job', null), '≈ 1 CU per job')
  assert.equal(quoteWithBilled('', 3), 'billed 3 CU')
})

test('LoadImage widget values map to ComfyUI\'s /view query', () => {
  assert.deepEqual(parseImageValue('example.png'), { filename: 'example.png', subfolder: '', type: 'input' })
  assert.deepEqual(parseImageValue('maps/house.png [output]'), { filename: 'house.png', subfolder: 'maps', type: 'output' })
  assert.equal(parseImageValue(''), null)
  assert.equal(parseImageValue(null), null)
  assert.equal(viewPath(parseImageValue('a b/c&d.png')), '/view?filename=c%26d.png&type=input&subfolder=a+b')
})

function graphOf(nodes, links) {
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const linkMap = new Map(links.map((l) => [l.id, l]))
  const graph = { getNodeById: (id) => byId.get(id) ?? null, links: linkMap }
  for (const n of nodes) n.graph = graph
  return graph
}

test('the map\'s source is found through Canny and Reroute, not through a resizing node', () => {
  const load = { id: 1, type: 'LoadImage', inputs: [], widgets: [{ name: 'image', value: 'example.png' }], imgs: [{ naturalWidth: 768, naturalHeight: 512 }] }
  const canny = { id: 2, type: 'Canny', inputs: [{ name: 'image', link: 10 }] }
  const gen = { id: 3, comfyClass: 'ScenarioControlNetGenerate', inputs: [{ name: 'control_image', link: 11 }] }
  graphOf([load, canny, gen], [
    { id: 10, origin_id: 1, target_id: 2 },
    { id: 11, origin_id: 2, target_id: 3 }
  ])
  assert.equal(findMapSource(gen), load)
  assert.deepEqual(knownImageSize(load), [768, 512])
  // a preview that still shows another file does not count
  load.imgs[0].src = '/api/view?filename=example.png&type=input&subfolder='
  assert.equal(knownImageSize(load, { filename: 'house.png' }), null)
  assert.deepEqual(knownImageSize(load, { filename: 'example.png' }), [768, 512])

  const scale = { id: 5, type: 'ImageScale', inputs: [{ name: 'image', link: 20 }] }
  const gen2 = { id: 6, comfyClass: 'ScenarioControlNetGenerate', inputs: [{ name: 'control_image', link: 21 }] }
  graphOf([load, scale, gen2], [
    { id: 20, origin_id: 1, target_id: 5 },
    { id: 21, origin_id: 5, target_id: 6 }
  ])
  assert.equal(findMapSource(gen2), null, 'a resize changes the size: unknown')
  const unlinked = { id: 7, inputs: [{ name: 'control_image', link: null }] }
  graphOf([unlinked], [])
  assert.equal(findMapSource(unlinked), null)
  assert.equal(knownImageSize({ imgs: [] }), null)
})

test('links stored as a plain object (older LiteGraph) work too', () => {
  const load = { id: 1, type: 'LoadImage', inputs: [] }
  const gen = { id: 2, inputs: [{ name: 'control_image', link: 5 }] }
  const graph = { getNodeById: (id) => ({ 1: load, 2: gen })[id], links: { 5: { id: 5, origin_id: 1 } } }
  assert.equal(findMapSource(gen, graph), load)
})
