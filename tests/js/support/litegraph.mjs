// Just enough of a LiteGraph node for web/scenario.js, and the two ways the
// frontend reads widget values. The facts mirrored here are from
// ComfyUI_frontend 1.27.10 (src/lib/litegraph/src/LGraphNode.ts serialize and
// configure, src/utils/executionUtil.ts graphToPrompt).

/** The full modality list of the node definition (nodes/inputs.py), before narrowing. */
export const ALL_MODALITIES = Object.freeze([
  'canny', 'pose', 'depth', 'tile', 'blur', 'gray', 'low-quality', 'sketch', 'lines', 'seg',
  'scribble', 'lineart', 'normal-map', 'illusion', 'character', 'landscape', 'city', 'interior'
])

export function widget(name, value, extra = {}) {
  return { name, value, type: 'number', options: {}, callback: null, ...extra }
}

/** A node of `type` with the generate node's widgets (the img2img one adds `strength`). */
export function makeNode(type, values = {}) {
  const node = {
    comfyClass: type,
    type,
    size: [300, 400],
    inputs: [],
    widgets: [
      widget('prompt', 'a house', { type: 'customtext' }),
      widget('model_id', 'flux.1-dev', { type: 'text' }),
      widget('modality', 'seg', { type: 'combo', options: { values: ALL_MODALITIES.slice() } }),
      widget('modality_strength', 1.0),
      widget('num_samples', 1),
      widget('guidance', 3.5),
      widget('num_inference_steps', 30),
      widget('width', 0),
      widget('height', 0),
      widget('seed', 7),
      widget('control_after_generate', 'randomize', { type: 'combo' })
    ],
    addDOMWidget(name, kind, element, options) {
      const w = {
        name,
        type: kind,
        element,
        options,
        get value() {
          return options.getValue()
        }
      }
      this.widgets.push(w)
      return w
    },
    computeSize() {
      return [300, 450]
    },
    setSize(size) {
      this.size = size
    },
    setDirtyCanvas() {}
  }
  if (type === 'ScenarioImg2ImgControlNet') node.widgets.push(widget('strength', 0.75))
  for (const w of node.widgets) {
    w.inputWidget = true
    if (Object.hasOwn(values, w.name)) w.value = values[w.name]
  }
  return node
}

export function findWidget(node, name) {
  return node.widgets.find((w) => w.name === name)
}

/** LGraphNode.serialize: widgets_values[i] is the value at the widget's own index, skipping serialize === false. */
export function serializeValues(node) {
  const out = []
  for (const [i, w] of node.widgets.entries()) {
    if (w.serialize === false) continue
    out[i] = w.value
  }
  const data = { widgets_values: out }
  node.onSerialize?.(data)
  return JSON.parse(JSON.stringify(data.widgets_values))
}

/** graphToPrompt: every named widget unless options.serialize === false. */
export function promptInputs(node) {
  const out = {}
  for (const w of node.widgets) {
    if (!w.name || w.options?.serialize === false) continue
    out[w.name] = w.value
  }
  return out
}
