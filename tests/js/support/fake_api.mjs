// Stand-in for ComfyUI's scripts/api.js: api.fetchApi answers the pack's three
// routes (nodes/routes.py) with canned bodies and records every call.

export const flux = {
  model_id: 'flux.1-dev',
  family: 'flux',
  family_label: 'Flux',
  modalities: ['canny', 'tile', 'depth', 'blur', 'pose', 'gray', 'low-quality', 'sketch']
}

export const sdxl = {
  model_id: 'stable-diffusion-xl-base-1.0',
  family: 'sd-xl',
  family_label: 'SDXL',
  modalities: ['canny', 'pose', 'depth', 'seg', 'illusion', 'scribble', 'character', 'landscape']
}

const custom = {
  model_id: 'model_custom',
  family: 'custom',
  modalities: [],
  controlnet: false,
  note: 'custom models do not run on the ControlNet endpoints'
}

export const QUOTE = { creative_units: 1.34, per_job: 1.34, jobs: 1 }

function reply(status, body) {
  return { ok: status < 300, status, json: async () => body }
}

export const api = {
  calls: [],
  failNextQuote: null,

  async fetchApi(path, opts = {}) {
    this.calls.push({ path, opts })
    if (path === '/scenario/models/flux.1-dev') return reply(200, flux)
    if (path === '/scenario/models/stable-diffusion-xl-base-1.0') return reply(200, sdxl)
    if (path === '/scenario/models/model_custom') return reply(200, custom)
    if (path.startsWith('/scenario/models/')) return reply(404, { error: 'not found', code: 'not_found' })
    if (path === '/scenario/quote') {
      const failure = this.failNextQuote
      this.failNextQuote = null
      return failure ? reply(400, failure) : reply(200, QUOTE)
    }
    if (path === '/scenario/status') {
      return reply(200, { configured: true, base_url: 'http://127.0.0.1:1/v1', emulator: true })
    }
    return reply(404, { error: 'no route' })
  },

  quotes() {
    return this.calls.filter((c) => c.path === '/scenario/quote')
  },

  modelLookups() {
    return this.calls.filter((c) => c.path.startsWith('/scenario/models/'))
  }
}

export function resetApi() {
  api.calls.length = 0
  api.failNextQuote = null
}
