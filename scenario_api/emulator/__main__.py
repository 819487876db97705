"""``python -m scenario_api.emulator``: serve until Ctrl-C or SIGTERM.

The first stdout line is the base URL (ending in ``/v1``), flushed at once so
a parent process can read it; the second says which credentials it accepts
without ever printing a secret taken from the environment.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .options import Timing
from .server import Emulator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scenario_api.emulator", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0 = any free port)")
    d = Timing()
    p.add_argument("--queued", type=float, default=d.queued, help="seconds a job stays queued")
    p.add_argument("--warming-up", type=float, default=d.warming_up, help="seconds in warming-up")
    p.add_argument("--running", type=float, default=d.running, help="seconds in-progress (progress 0->1)")
    p.add_argument("--finalizing", type=float, default=d.finalizing, help="seconds finalizing (0 = skipped)")
    p.add_argument("--credits", type=float, default=None, help="creative-unit balance (default 1e9)")
    p.add_argument("--url-ttl", type=float, default=None, help="lifetime of signed file URLs in seconds")
    p.add_argument("--mixed-sizes", action="store_true", help="render samples after the first at another size")
    p.add_argument("--no-demo-assets", action="store_true", help="do not create asset_demo_* maps")
    p.add_argument("--parallel-inferences", type=int, default=None, help="parallel jobs before a submit gets 429")
    p.add_argument("--progress-profile", default=None, help="linear (default), jumpy or stalled-then-fast")
    p.add_argument("--clock-scale", type=float, default=None, help="run jobs this many times faster than timed")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        timing = Timing(args.queued, args.warming_up, args.running, args.finalizing)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config: dict[str, Any] = {"mixed_sizes": args.mixed_sizes}
    if args.credits is not None:
        config["credits"] = args.credits
    if args.url_ttl is not None:
        config["url_ttl"] = args.url_ttl
    for key in ("parallel_inferences", "progress_profile", "clock_scale"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    try:
        emu = Emulator(args.host, args.port, timing=timing, seed_demo_assets=not args.no_demo_assets, **config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        url = emu.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(url, flush=True)
    print(emu.server_credentials.describe(), flush=True)

    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
