"""Child process of the imports section: the pack's import cost once ComfyUI's own libraries are loaded.

Prints one JSON line: seconds to import httpx (the pack's one extra dependency), seconds to load the pack
the way ComfyUI loads a custom node folder, and how many images were encoded or saved while it loaded.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import numpy  # noqa: F401  - ComfyUI has these loaded before it imports any custom node
import PIL.Image
import PIL.PngImagePlugin  # noqa: F401
import torch  # noqa: F401

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]

try:  # ComfyUI's server
    import aiohttp  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def main() -> int:
    saves = []
    original = PIL.Image.Image.save

    def counting_save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        saves.append(args[1] if len(args) > 1 else kwargs.get("format"))
        return original(self, *args, **kwargs)

    PIL.Image.Image.save = counting_save  # type: ignore[method-assign]
    t0 = time.perf_counter()
    import httpx  # noqa: F401

    t1 = time.perf_counter()
    name = "scenario_pack_import_probe"
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    t2 = time.perf_counter()
    assert module.NODE_CLASS_MAPPINGS
    print(json.dumps({"httpx": t1 - t0, "pack": t2 - t1, "encodes": len(saves)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
