#!/usr/bin/env bash
# Create a virtual environment with Python 3.11 and install the project with its exact pins.
#   scripts/setup.sh            .venv: Beam job (local) + trainer           (constraints.txt)
#   scripts/setup.sh test       .venv: the same + test tools                (constraints.txt)
#   scripts/setup.sh dataflow   .venv-dataflow: Beam job for Dataflow, no TensorFlow (constraints-dataflow.txt)
# Re-running is cheap: nothing is reinstalled unless setup.py or the lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") venv=.venv; lock=constraints.txt; extras=trainer ;;
  test) venv=.venv; lock=constraints.txt; extras=trainer,test ;;
  dataflow) venv=.venv-dataflow; lock=constraints-dataflow.txt; extras=gcp ;;
  *) echo "usage: scripts/setup.sh [test|dataflow]" >&2; exit 2 ;;
esac
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || { echo "error: $python not found; set PYTHON to a Python 3.11 interpreter" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
stamp="$venv/.installed-$extras"
want="$(cat setup.py "$lock" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install --quiet --upgrade pip
  # setuptools warns, in ten lines, that folders named like the package may take precedence over it when
  # imported from the checkout: here those folders are the package itself, so there is nothing to heed.
  PYTHONWARNINGS="ignore:Editable installation" "$venv/bin/pip" install --quiet -c "$lock" -e ".[$extras]"
  echo "$want" > "$stamp"
fi
