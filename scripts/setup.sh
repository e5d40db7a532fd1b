#!/usr/bin/env bash
# Idempotent set-up: creates .venv and installs the project with its test extras.
# CPU path: constraints-cpu.txt pins torch==2.13.0 so pip does not pull a CUDA build.
# Set WM_TORCH_CONSTRAINTS="" to let pip choose torch freely (e.g. a CUDA machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${WM_VENV:-.venv}
CONSTRAINTS=${WM_TORCH_CONSTRAINTS-constraints-cpu.txt}
stamp="$VENV/.setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh ${CONSTRAINTS:+"$CONSTRAINTS"} | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] creating $VENV and installing the project (first run only) ..." >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >&2
"$VENV/bin/python" -m pip install -q ${CONSTRAINTS:+-c "$CONSTRAINTS"} -e ".[dev,plot,ray,tensorboard,benchmarks]" >&2
echo "$want" > "$stamp"
echo "[setup] done" >&2
