"""``python -m bench``: every figure of issue 9 beside its baseline, measured in the same run.

    .venv/bin/python -m bench            # the full suite (a few minutes), writes bench/RESULTS.md
    .venv/bin/python -m bench --quick    # smoke mode for CI: tiny sizes, one run, prints the table only
    .venv/bin/python -m bench --only codecs,memory

Figures are medians of ``--runs`` runs (default 5); contenders run
interleaved so machine noise hits them alike. Job-clock figures use the
emulator's ``clock_scale`` so 5-60 s jobs take a fraction of that; the output
says by how much, and latencies are reported in job seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import common
from .common import Options, Row, Section

SECTIONS = ("codecs", "memory", "imports", "polling", "fanout")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _run_section(name: str, opts: Options) -> Section:
    if name == "codecs":
        from . import codecs

        return codecs.run(opts)
    if name == "memory":
        from . import memory

        return memory.run(opts)
    if name == "imports":
        from . import imports

        return imports.run(opts)
    if name == "polling":
        from . import polling

        return polling.run(opts)
    if name == "fanout":
        from . import fanout

        return fanout.run(opts)
    raise ValueError(name)


def table(rows: list[Row]) -> str:
    head = "| Figure | Pack | Baseline (same run) | Target | Met |"
    lines = [head, "|---|---|---|---|---|"]
    for r in rows:
        met = "n/a" if r.met is None else ("yes" if r.met else "**no**")
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.figure} | {r.pack}{note} | {r.baseline} | {r.target} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke mode: tiny sizes, one run, no RESULTS.md")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median; default 5)")
    ap.add_argument("--scale", type=float, default=10.0, help="job clock speed-up for the polling figures")
    ap.add_argument("--fanout-scale", type=float, default=2.0, help="job clock speed-up for the fan-out figures")
    ap.add_argument("--only", default="", help=f"comma list of sections: {', '.join(SECTIONS)}")
    ap.add_argument("--write", action="store_true", help="write bench/RESULTS.md even with --quick or --only")
    args = ap.parse_args(argv)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip()) or SECTIONS
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    opts = Options(
        quick=args.quick,
        runs=max(1, args.runs),
        scale=args.scale if not args.quick else max(args.scale, 50.0),
        fanout_scale=args.fanout_scale if not args.quick else max(args.fanout_scale, 10.0),
        sections=only,
    )
    machine = common.machine()
    started = time.monotonic()
    sections: list[Section] = []
    for name in only:
        t0 = time.monotonic()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        sections.append(_run_section(name, opts))
        print(f"[bench] {name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    rows = [r for s in sections for r in s.rows]
    notes = [n for s in sections for n in s.notes]
    mode = (
        "quick smoke run (tiny sizes, 1 run; figures not meaningful)" if opts.quick else f"median of {opts.runs} runs"
    )
    out = [
        f"Scenario pack bench - {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} - {mode}, "
        f"{time.monotonic() - started:.0f} s",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()),
        "",
        table(rows),
    ]
    if notes:
        out += ["", *[f"- {n}" for n in notes]]
    text = "\n".join(out)
    print(text)
    if (not opts.quick and set(only) == set(SECTIONS)) or args.write:
        RESULTS.write_text(
            "# Bench results\n\nWritten by `python -m bench` (see README, *Benchmarks*). Every baseline is measured "
            "in the same run as the figure beside it.\n\n" + text + "\n"
        )
        print(f"\n(written to {RESULTS.relative_to(RESULTS.parents[1])})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
