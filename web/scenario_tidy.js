// Scenario ControlNet for ComfyUI: advanced inputs read as advanced (no ComfyUI imports).
//
// The generate nodes' optional tail (negative prompt, scheduler, modalities,
// control window, budget; img2img's init image format) is already last in
// widget order, and that order is a contract with every saved workflow:
// nothing here moves a widget. Instead:
//
// * each advanced widget gets a label starting with "advanced:" and, when it
//   holds its "not sent" value (control_start -1, scheduler "default",
//   budget 0, empty text), the label says "(not sent)";
// * width/height 0 read "(from the map)";
// * on frontends that know advanced widgets (1.58: `widget.advanced`, shown
//   behind the node's "show advanced" toggle in Nodes 2.0) they are marked so.
//
// Labels are display only: LiteGraph saves `widgets_values` by position and
// API prompts by widget *name*, never by label.

/** Advanced widgets of the generate nodes, in their (saved) order. */
export const ADVANCED_WIDGETS = Object.freeze([
  'negative_prompt',
  'scheduler',
  'modalities',
  'control_start',
  'control_end',
  'max_creative_units',
  'init_image_format'
])

/**
 * The value that means "not sent to Scenario" for each advanced widget
 * (init_image_format has none: it only says how the init pixels are encoded).
 */
export const NOT_SENT = Object.freeze({
  negative_prompt: '',
  scheduler: 'default',
  modalities: '',
  control_start: -1,
  control_end: -1,
  max_creative_units: 0
})

/** Widgets where 0 means "derived from the control map". */
export const FROM_MAP = Object.freeze(['width', 'height'])

const NICE = {
  negative_prompt: 'negative prompt',
  scheduler: 'scheduler',
  modalities: 'modalities (override)',
  control_start: 'control start',
  control_end: 'control end',
  max_creative_units: 'budget (CU)',
  init_image_format: 'init image format'
}

function isNotSent(name, value) {
  if (!(name in NOT_SENT)) return false
  const sentinel = NOT_SENT[name]
  if (typeof sentinel === 'number') return Number(value) === sentinel
  return String(value ?? '').trim() === sentinel
}

/** The label of widget `name` holding `value`, or null to keep ComfyUI's own. */
export function labelFor(name, value) {
  if (ADVANCED_WIDGETS.includes(name)) {
    const base = `advanced: ${NICE[name] ?? name}`
    if (!isNotSent(name, value)) return base
    return name === 'max_creative_units' ? `${base} (0 = no budget)` : `${base} (not sent)`
  }
  if (FROM_MAP.includes(name)) return Number(value) === 0 ? `${name} (0 = from the map)` : null
  return null
}

/**
 * Apply labels (and the `advanced` mark where the frontend supports it) to
 * `node`'s widgets. Returns the names whose label changed. Never reorders
 * `node.widgets` and never touches a widget's value.
 */
export function tidyWidgets(node, { markAdvanced = true } = {}) {
  const changed = []
  for (const w of node?.widgets ?? []) {
    if (!w || typeof w.name !== 'string') continue
    const label = labelFor(w.name, w.value)
    if (label === null) {
      if (w.scenarioLabel && w.label === w.scenarioLabel) {
        delete w.label
        delete w.scenarioLabel
        changed.push(w.name)
      }
      continue
    }
    if (w.label !== label) {
      w.label = label
      w.scenarioLabel = label
      changed.push(w.name)
    }
    if (markAdvanced && ADVANCED_WIDGETS.includes(w.name) && 'advanced' in w && w.advanced !== true) {
      try {
        w.advanced = true
      } catch {
        // an older widget class with a read-only property: the label says it
      }
    }
  }
  return changed
}
