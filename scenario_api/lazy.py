"""Package names that load their defining module on first use (a package's module ``__getattr__``).

A package lists where each public name is defined (``{"Ledger": "core", "spec": ""}``: an empty module
means the name is a submodule of its own) and forwards its module ``__getattr__`` / ``__dir__`` here.
The value is kept in the package's namespace, so later lookups are plain attribute reads.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["export_names", "load_export"]


def load_export(package: str, where: Mapping[str, str], name: str) -> Any:
    """The value of ``package.name``, importing the module that defines it; AttributeError for an unknown name."""
    module = where.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    loaded = importlib.import_module(f"{package}.{module or name}")
    value = loaded if not module else getattr(loaded, name)
    vars(sys.modules[package])[name] = value
    return value


def export_names(package: str, where: Mapping[str, str]) -> list[str]:
    """What ``dir(package)`` lists: the names already loaded and the ones that load on first use."""
    return sorted(set(vars(sys.modules[package])) | set(where))
