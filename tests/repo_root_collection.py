"""pytest plugin (loaded with ``-p`` from pyproject): collect the repository folder as a plain directory.

The folder is a ComfyUI pack (it has an ``__init__.py`` with relative imports), and
its name is often not a valid module name (``scenario-controlnet``). pytest would
otherwise import that ``__init__.py`` as a top-level module and fail. Tests load the
pack the way ComfyUI does instead (``tests/pack_loader.py``). ComfyUI never imports
this file.
"""

from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if path == _ROOT:
        return pytest.Dir.from_parent(parent, path=path)
    return None
