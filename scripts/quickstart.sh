#!/usr/bin/env bash
# Set up .venv and turn folders of photos into training records.
# Usage: scripts/quickstart.sh [PHOTO_FOLDER ...]    (default: ../shared/data/flowers ../shared/data/extra_plants)
# Writes runs/records/ (TFRecords + manifest.json). Re-running replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then set -- ../shared/data/flowers ../shared/data/extra_plants; fi
bash scripts/setup.sh
inputs=()
for folder in "$@"; do inputs+=("--input=$folder"); done
.venv/bin/python -m beam_jobs.preprocess "${inputs[@]}" --output=runs/records --overwrite
