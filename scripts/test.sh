#!/usr/bin/env bash
# Set up .venv (with the test extras) and .venv-dataflow (the Beam job's Cloud Storage tests run it there),
# then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/setup.sh dataflow
exec .venv/bin/python -m pytest "$@"
