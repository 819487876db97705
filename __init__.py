"""Scenario ControlNet nodes for ComfyUI (entry point read by ComfyUI's loader).

ComfyUI imports this folder as a package under a path-derived name, so only
relative imports are used (ComfyUI has its own top-level ``nodes`` module).
Credentials come from the environment or the user-directory file, never from
widgets; see README.md.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
