"""What every bench section shares: timing, memory probes, the emulator process, the table.

Nothing here knows a figure. Each section returns :class:`Row` objects, each
holding the pack's value and its baseline's value **from the same run**.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

DEMO_KEY, DEMO_SECRET = "demo-key", "demo-secret"


@dataclass
class Options:
    """Run-wide knobs: ``quick`` is the CI smoke mode (tiny sizes, one run, only checks the table prints)."""

    quick: bool = False
    runs: int = 5
    scale: float = 10.0  # job clock speed-up for the polling section
    fanout_scale: float = 2.0  # job clock speed-up for the fan-out sections (fixed costs stay real)
    sections: tuple[str, ...] = ()


@dataclass
class Row:
    """One figure: the pack beside its baseline, measured in the same run."""

    section: str
    figure: str
    pack: str
    baseline: str
    target: str
    met: bool | None  # None: informative, no target
    note: str = ""


@dataclass
class Section:
    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- timing


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); honest for small samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(runs: int, contenders: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """Run each contender ``runs`` times, interleaved so machine noise hits all alike.

    The order turns every round (A B C, B C A, C A B, ...): no contender always runs first, right after the
    previous round's garbage was freed.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # one warm-up each (imports, first-call caches)
        fn()
    names = list(contenders)
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            seconds, _ = timed(contenders[name])
            times[name].append(seconds)
    return times


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


# --------------------------------------------------------------------------- memory (Linux /proc)


def _status(field_name: str) -> int:
    text = Path("/proc/self/status").read_text()
    m = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else 0


def rss() -> int:
    return _status("VmRSS")


def peak_rss() -> int:
    return _status("VmHWM")


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def trim_heap() -> None:
    """Return freed heap to the OS (glibc); used by the *harness* between repetitions, for every contender alike."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        mem = f"{int(m.group(1)) / 2**20:.1f} GiB" if m else ""
    versions = {}
    for mod in ("numpy", "PIL", "torch", "httpx"):
        with contextlib.suppress(Exception):
            versions[mod] = __import__(mod).__version__
    load = ""
    with contextlib.suppress(OSError):
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "load average at start": load,
    }


# --------------------------------------------------------------------------- the emulator, in its own process


class EmulatorProcess:
    """``python -m scenario_api.emulator`` in a child process (its threads never share our GIL).

    Controlled over HTTP (``/_emulator/*``); ``stop()`` ends only this child.
    """

    def __init__(self, **config: Any) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_")}
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scenario_api.emulator",
                "--port",
                "0",
                "--queued",
                "0",
                "--warming-up",
                "0",
                "--running",
                "0",
            ],
            cwd=str(ROOT),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError("the emulator did not start")
        self.origin = self.url[: -len("/v1")]
        self.http = httpx.Client(base_url=self.origin, trust_env=False, timeout=30.0)
        if config:
            self.config(**config)

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        r = self.http.request(method, path, json=payload)
        r.raise_for_status()
        return r.json()

    def config(self, **cfg: Any) -> dict[str, Any]:
        return self._call("POST", "/_emulator/config", cfg)

    def reset(self) -> None:
        self._call("POST", "/_emulator/reset")

    def log(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_emulator/log")

    def clear_log(self) -> None:
        self._call("DELETE", "/_emulator/log")

    def env(self) -> dict[str, str]:
        return {"SCENARIO_API_URL": self.url, "SCENARIO_API_KEY": DEMO_KEY, "SCENARIO_API_SECRET": DEMO_SECRET}

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def settings_for(emu: EmulatorProcess) -> Any:
    from scenario_api.config import Credentials, Settings

    return Settings(base_url=emu.url, credentials=Credentials(DEMO_KEY, DEMO_SECRET))


def run_child(module: str, *args: str, timeout: float = 600.0, bytecode: bool = False) -> dict[str, Any]:
    """Run ``python -m bench.<module> args`` and parse the JSON it prints last.

    ``bytecode``: let the child read and write cached bytecode (in a temp
    folder, never in the repository), as an installed pack has it.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "scenario-bench-pycache")
    out = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.{module} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
