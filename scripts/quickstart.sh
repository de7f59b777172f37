#!/usr/bin/env bash
# Set up .venv, turn folders of photos into records, train a colourizer; the trainer scores it on the test photos.
# Usage: scripts/quickstart.sh [PHOTO_FOLDER ...]   (default: ../shared/data/flowers ../shared/data/extra_plants)
# Environment: MINUTES (training wall-clock budget, default 15), RUNS (output folder, default runs).
# Writes $RUNS/records and $RUNS/train (tensorboard --logdir $RUNS/train; the test report in $RUNS/train/evaluation).
set -euo pipefail
here="$PWD"
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then set -- "$PWD/../shared/data/flowers" "$PWD/../shared/data/extra_plants"; fi
runs="${RUNS:-runs}"
inputs=()
for folder in "$@"; do  # checked here, named as given: the Beam job would name its own --input flag instead
  case "$folder" in /*|gs://*) path="$folder" ;; *) path="$here/$folder" ;; esac
  if [[ "$path" != gs://* && ! -d "$path" ]]; then
    echo "error: $folder: no such folder of photos (scripts/quickstart.sh [PHOTO_FOLDER ...])" >&2
    exit 2
  fi
  inputs+=("--input=$path")
done
bash scripts/setup.sh
.venv/bin/python -m beam_jobs.preprocess "${inputs[@]}" --output="$runs/records" --overwrite
.venv/bin/python -m trainer.task --data_dir="$runs/records" --model_dir="$runs/train" --overwrite \
    --epochs=100 --train_crop=128 --time_budget_minutes="${MINUTES:-15}"
echo "Test photos, model beside gray baseline: $runs/train/evaluation/metrics.md and contact_sheet.png"
