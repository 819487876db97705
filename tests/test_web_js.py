"""Run the web extension's node tests (tests/js/web_*.test.mjs) with ``node --test``.

The JavaScript logic lives in plain ES modules under web/ (no bundler); these
tests import them directly under Node with a tiny fake DOM (tests/js/web_fake_dom.mjs).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")
FILES = sorted((ROOT / "tests" / "js").glob("web_*.test.mjs"))


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_web_js(path: Path) -> None:
    result = subprocess.run([NODE, "--test", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
