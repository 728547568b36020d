#!/usr/bin/env bash
# Run (and score) every benchmark, or a chosen subset, through the VideoTemp-o3 agent loop.
#
#   MODEL=Qwen/Qwen2.5-VL-7B-Instruct DATA_ROOT=data OUT_DIR=runs/eval bash eval/run_all.sh [benchmark ...] [-- run.py options]
#
# Environment (defaults in brackets):
#   MODEL        model directory or hub id (required)
#   DATA_ROOT    root holding each benchmark's directory, as data_prep/download.py writes it [data]
#   OUT_DIR      where <benchmark>.jsonl, its settings file and <benchmark>.metrics.json go [runs/eval]
#   ENGINE       verl | transformers | scripted [verl]
#   PYTHON       interpreter [.venv/bin/python if present, else python]
# Benchmarks: videotemp videotemp_g videomme mlvu videommmu lvbench charades_sta activitynet_mr nextgqa rextime
# (default: all). Everything after "--" goes to eval/run.py (e.g. --limit 10 --max_frames 64).
# Re-running resumes: finished samples are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(videotemp videotemp_g videomme mlvu videommmu lvbench charades_sta activitynet_mr nextgqa rextime)
: "${MODEL:?set MODEL to a model directory or hub id}"
DATA_ROOT=${DATA_ROOT:-data}
OUT_DIR=${OUT_DIR:-runs/eval}
ENGINE=${ENGINE:-verl}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
export FORCE_QWENVL_VIDEO_READER=${FORCE_QWENVL_VIDEO_READER:-decord}

benchmarks=()
while [[ $# -gt 0 && "$1" != "--" ]]; do benchmarks+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
[[ ${#benchmarks[@]} -eq 0 ]] && benchmarks=("${ALL[@]}")

for bench in "${benchmarks[@]}"; do
  echo "=== ${bench} ==="
  "$PYTHON" eval/run.py "$bench" --data_root "$DATA_ROOT" --model "$MODEL" --engine "$ENGINE" --output_dir "$OUT_DIR" "$@"
  "$PYTHON" eval/score.py "$bench" --input_file "$OUT_DIR/${bench}.jsonl" --output_json "$OUT_DIR/${bench}.metrics.json"
done
