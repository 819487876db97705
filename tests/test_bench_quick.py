"""The bench suite's quick smoke mode runs and prints its table (no timing is asserted: speed lives in bench/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(900)
def test_bench_quick_mode_prints_every_figure():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_")}
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "| Figure | Pack | Baseline (same run) | Target | Met |" in text
    for figure in (
        "Decode a",
        "Encode a binary edge map",
        "Encode a natural",
        "Fetch Asset",
        "Pack import",
        "Added latency after success",
        "Batch of 8 maps in one node",
        "emulator parallel limit 3",
        "8 generate nodes in one prompt",
        "Requests per job",
    ):
        assert figure in text, f"missing figure {figure!r}"
    assert "Machine: cpu:" in text
    assert (
        not (ROOT / "bench" / "RESULTS.md").exists() or "quick smoke" not in (ROOT / "bench" / "RESULTS.md").read_text()
    )
