"""Import figure: what loading the pack costs ComfyUI once torch, numpy, Pillow and aiohttp are loaded.

Each run is a fresh child process (``bench.importprobe``): a second import in
one process would find the pack's stdlib imports cached. The baseline beside
it is the pack's one third-party dependency ComfyUI does not load, httpx,
timed in the same processes. Bytecode is cached (in a temp folder) as in any
installed pack; a first, unmeasured child compiles it.
"""

from __future__ import annotations

from .common import Options, Row, Section, fmt_ms, median, run_child


def run(opts: Options) -> Section:
    section = Section("imports")
    runs = 1 if opts.quick else opts.runs
    if not opts.quick:
        run_child("importprobe", bytecode=True)  # compiles and caches the bytecode, as an installed pack has it
    out = [run_child("importprobe", bytecode=True) for _ in range(runs)]
    pack = median([o["pack"] for o in out])
    httpx_s = median([o["httpx"] for o in out])
    encodes = max(o["encodes"] for o in out)
    section.rows.append(
        Row(
            "imports",
            "Pack import with torch, numpy, Pillow, aiohttp loaded (own modules; httpx apart)",
            f"{fmt_ms(pack)}; {encodes} image(s) encoded at import",
            f"httpx import {fmt_ms(httpx_s)}",
            "<= 30 ms, nothing encoded",
            pack <= 0.030 and encodes == 0,
        )
    )
    return section
