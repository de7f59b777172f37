#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the project with its exact pins.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test
# Re-running is cheap: nothing is reinstalled unless setup.py or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || { echo "error: $python not found; set PYTHON to a Python 3.11 interpreter" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-${extras:-base}"
want="$(cat setup.py constraints.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -c constraints.txt -e ".${extras:+[$extras]}"
  echo "$want" > "$stamp"
fi
