// Stand-in for ComfyUI's scripts/app.js: the extension registry and the
// settings store (app.extensionManager.setting.get), as in ComfyUI_frontend 1.27.

export const settings = {}

export const app = {
  extensions: [],
  registerExtension(ext) {
    this.extensions.push(ext)
  },
  extensionManager: { setting: { get: (id) => settings[id] } }
}

export function resetApp() {
  app.extensions.length = 0
  for (const key of Object.keys(settings)) delete settings[key]
}
