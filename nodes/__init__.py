"""The ComfyUI adapter: node classes and their registration.

Only this package knows about ComfyUI; the protocol lives in ``scenario_api``.
The mapping keys are the node type ids stored in every saved workflow: they
must never change (locked by ``tests/node_contract.json``).
"""

from __future__ import annotations

from .fetch_node import ScenarioFetchAsset
from .generate_nodes import ScenarioControlNetGenerate, ScenarioImg2ImgControlNet
from .poll_node import ScenarioPollJob
from .upload_node import ScenarioUploadAsset

NODE_CLASS_MAPPINGS = {
    "ScenarioControlNetGenerate": ScenarioControlNetGenerate,
    "ScenarioImg2ImgControlNet": ScenarioImg2ImgControlNet,
    "ScenarioPollJob": ScenarioPollJob,
    "ScenarioFetchAsset": ScenarioFetchAsset,
    "ScenarioUploadAsset": ScenarioUploadAsset,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "ScenarioControlNetGenerate": "Scenario ControlNet Generate",
    "ScenarioImg2ImgControlNet": "Scenario Img2Img ControlNet",
    "ScenarioPollJob": "Scenario Poll Job",
    "ScenarioFetchAsset": "Scenario Fetch Asset",
    "ScenarioUploadAsset": "Scenario Upload Asset",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

# The web extension's helper routes (price quote, model info). Registered only on
# the server ComfyUI already started (never imports a "server" module itself);
# outside ComfyUI, or if they fail, the nodes still load.
_in_comfyui: bool = False
try:
    from .routes import try_register

    _in_comfyui = try_register()
except Exception:  # noqa: BLE001 - never block node registration
    import logging

    logging.getLogger(__name__).warning("Scenario: web routes unavailable; the nodes still work", exc_info=True)

# Unfinished paid jobs from earlier runs (a crash, a restart mid-wait): say how many and how to collect them.
# In ComfyUI this runs in a daemon thread that then loads what the nodes run (nodes/stack.py), so neither the
# import nor the first prompt's event loop pays for it.
try:
    from .stack import start_up

    start_up(background=_in_comfyui)
except Exception:  # noqa: BLE001 - never block node registration
    import logging

    logging.getLogger(__name__).warning("Scenario: the job ledger could not be checked at start-up", exc_info=True)
