"""A local, Scenario-compatible HTTP API for tests and demos.

    from scenario_api.emulator import Emulator, Timing
    with Emulator(timing=Timing(0.05, 0.05, 0.2)) as emu:
        ...  # point Settings(base_url=emu.url, ...) at it

Real HTTP on loopback (stdlib ``http.server``), jobs that move through
Scenario's states on a clock, deterministic images shaped by the control map,
signed expiring file URLs, and a fault plan (429/5xx, dropped connections,
slow answers, failing or stuck jobs, expired or truncated downloads) driven
over ``/_emulator/*``. See the README section "The emulator".
"""

from __future__ import annotations

from .options import DEMO_KEY, DEMO_SECRET, EmulatorConfig, Timing
from .server import Emulator

__all__ = ["Emulator", "Timing", "EmulatorConfig", "DEMO_KEY", "DEMO_SECRET"]
