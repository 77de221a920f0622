#!/usr/bin/env bash
# One-time set-up (idempotent, fast when nothing changed): a virtual environment in .venv with
# PRISM and its test tools, torch pinned to the CPU build of this machine kind by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.prism-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing PRISM into .venv (first time: a few minutes)..." >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test,serve-test,align]" >&2
  echo "$want" > "$stamp"
fi
