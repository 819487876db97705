// A very small DOM for the web extension's node tests: elements with children,
// attributes, styles, dataset, events (bubbling to ancestors) and class look-ups.
// Enough for web/scenario_*.js, which only build and update plain elements.

class FakeElement {
  constructor(tag, doc) {
    this.tagName = tag.toUpperCase()
    this.ownerDocument = doc
    this.children = []
    this.parentNode = null
    this.style = {}
    this.dataset = {}
    this.attributes = {}
    this.listeners = {}
    this.className = ''
    this.value = ''
    this._text = ''
  }

  get textContent() {
    return this._text + this.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join('')
  }

  set textContent(text) {
    for (const c of this.children) if (typeof c !== 'string') c.parentNode = null
    this.children = []
    this._text = String(text)
  }

  append(...nodes) {
    for (const n of nodes) {
      if (typeof n !== 'string') {
        n.parentNode?.removeChild(n)
        n.parentNode = this
      }
      this.children.push(n)
    }
  }

  replaceChildren(...nodes) {
    this.textContent = ''
    this.append(...nodes)
  }

  removeChild(node) {
    this.children = this.children.filter((c) => c !== node)
    node.parentNode = null
  }

  remove() {
    this.parentNode?.removeChild(this)
  }

  contains(node) {
    for (let n = node; n; n = n.parentNode) if (n === this) return true
    return false
  }

  /** Only the selector form the extension uses: [name="value"]. */
  closest(selector) {
    const m = selector.match(/^\[([\w-]+)="([^"]*)"\]$/)
    if (!m) throw new Error(`unsupported selector ${selector}`)
    for (let n = this; n && n.getAttribute; n = n.parentNode) if (n.getAttribute(m[1]) === m[2]) return n
    return null
  }

  setAttribute(name, value) {
    this.attributes[name] = String(value)
  }

  getAttribute(name) {
    return this.attributes[name] ?? null
  }

  addEventListener(type, fn) {
    ;(this.listeners[type] ??= []).push(fn)
  }

  removeEventListener(type, fn) {
    this.listeners[type] = (this.listeners[type] ?? []).filter((f) => f !== fn)
  }

  dispatch(type, props = {}) {
    const event = { type, target: this, stopPropagation() { this.stopped = true }, preventDefault() {}, ...props }
    for (let n = this; n && !event.stopped; n = n.parentNode) {
      for (const fn of n.listeners?.[type] ?? []) fn(event)
    }
    return event
  }

  click() {
    return this.dispatch('click')
  }

  focus() {}
  select() {}

  getBoundingClientRect() {
    return { left: 10, top: 10, right: 110, bottom: 30, width: 100, height: 20 }
  }

  /** Every descendant element, depth first. */
  *all() {
    for (const c of this.children) {
      if (typeof c === 'string') continue
      yield c
      yield* c.all()
    }
  }

  byClass(name) {
    return [...this.all()].filter((e) => e.className.split(/\s+/).includes(name))
  }

  oneByClass(name) {
    const found = this.byClass(name)
    if (found.length !== 1) throw new Error(`expected one .${name}, found ${found.length}`)
    return found[0]
  }

  byText(text) {
    return [...this.all()].filter((e) => e.textContent === text)
  }
}

export function makeDocument() {
  const doc = {
    listeners: {},
    createElement(tag) {
      return new FakeElement(tag, doc)
    },
    addEventListener(type, fn) {
      ;(this.listeners[type] ??= []).push(fn)
    },
    removeEventListener(type, fn) {
      this.listeners[type] = (this.listeners[type] ?? []).filter((f) => f !== fn)
    }
  }
  doc.body = new FakeElement('body', doc)
  return doc
}

/** A fetchJson(path, opts) double that answers from `routes` ({'METHOD path': (opts) => ({ok, body})}) and records calls. */
export function makeFetch(routes) {
  const calls = []
  async function fetchJson(path, opts = {}) {
    const method = opts.method ?? 'GET'
    calls.push({ method, path, body: opts.body, headers: opts.headers })
    const key = `${method} ${path.split('?')[0]}`
    const handler = routes[key]
    if (!handler) return { ok: false, status: 404, body: { error: `no route ${key}` } }
    const answer = await handler({ ...opts, path })
    return { ok: answer.ok ?? true, status: answer.status ?? 200, body: answer.body ?? answer }
  }
  fetchJson.calls = calls
  return fetchJson
}

export async function settle(rounds = 10) {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}
