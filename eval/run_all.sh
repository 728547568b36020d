#!/usr/bin/env bash
# Run (and score) every benchmark, or a chosen subset, through the VideoTemp-o3 agent loop, on one engine start.
#
#   MODEL=Kwai-Keye/VideoTemp-o3 DATA_ROOT=data OUT_DIR=runs/eval bash eval/run_all.sh [benchmark ...] [-- run.py options]
#
# Environment (defaults in brackets):
#   MODEL        model directory, hub id (e.g. Kwai-Keye/VideoTemp-o3) or verl checkpoint (required)
#   MODEL_MIRROR a local mirror of hub models (<org>/<name> or a hub-cache layout) [VIDEOTEMP_MODEL_MIRROR]
#   DATA_ROOT    root holding each benchmark's directory, as data_prep/download.py writes it [data]
#   OUT_DIR      where <benchmark>.jsonl, its settings file and <benchmark>.metrics.json go [runs/eval]
#   ENGINE       verl | transformers | scripted [verl]
#   PYTHON       interpreter [.venv/bin/python if present, else python]
# Benchmarks: every module of eval/tasks/ (python -m eval.tasks --list; default: all). Everything after "--"
# goes to eval/run.py (e.g. --limit 10, --shard 0/2). Defaults are the reference's eval settings.
# A benchmark whose data is missing is reported and skipped while the others run; the last line names the
# benchmarks that failed and the exit status is then 3. Re-running resumes: finished samples are skipped.
# With --shard i/n each shard is scored on its own; once all n shards are complete they are merged into
# <benchmark>.jsonl (settings checked equal) and the merge is scored.
set -uo pipefail
cd "$(dirname "$0")/.."

: "${MODEL:?set MODEL to a model directory, hub id or checkpoint}"
DATA_ROOT=${DATA_ROOT:-data}
OUT_DIR=${OUT_DIR:-runs/eval}
ENGINE=${ENGINE:-verl}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
export FORCE_QWENVL_VIDEO_READER=${FORCE_QWENVL_VIDEO_READER:-decord}
[[ -n "${MODEL_MIRROR:-}" ]] && export VIDEOTEMP_MODEL_MIRROR=$MODEL_MIRROR

benchmarks=()
while [[ $# -gt 0 && "$1" != "--" ]]; do benchmarks+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
if [[ ${#benchmarks[@]} -eq 0 ]]; then
  mapfile -t benchmarks < <("$PYTHON" -m eval.tasks --list) || exit 2
fi
shard=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --shard) shard=${args[$((i + 1))]:-} ;;
    --shard=*) shard=${args[$i]#--shard=} ;;
  esac
done

"$PYTHON" eval/run.py "${benchmarks[@]}" --data-root "$DATA_ROOT" --model "$MODEL" --engine "$ENGINE" --output-dir "$OUT_DIR" "$@"
run_status=$?
[[ $run_status -ne 0 && $run_status -ne 3 ]] && exit "$run_status"

failed=()
for bench in "${benchmarks[@]}"; do
  name=$(PYTHONPATH=. "$PYTHON" -c "import sys; from eval.tasks import get_task; print(get_task(sys.argv[1]).name)" "$bench") || { failed+=("$bench"); continue; }
  if [[ -n "$shard" && "${shard#*/}" != "1" ]]; then
    part="$OUT_DIR/${name}.shard-${shard%/*}-of-${shard#*/}"
    if [[ ! -f "$part.jsonl" ]]; then failed+=("$name"); continue; fi
    echo "=== ${name} (shard ${shard}) ==="
    "$PYTHON" eval/score.py "$name" --input-file "$part.jsonl" --output-json "$part.metrics.json" || failed+=("$name")
    if "$PYTHON" eval/merge.py "$name" --output-dir "$OUT_DIR"; then
      echo "=== ${name} (all shards merged) ==="
      "$PYTHON" eval/score.py "$name" --input-file "$OUT_DIR/${name}.jsonl" --output-json "$OUT_DIR/${name}.metrics.json" || failed+=("$name")
    fi
    continue
  fi
  if [[ ! -f "$OUT_DIR/${name}.jsonl" ]]; then failed+=("$name"); continue; fi
  echo "=== ${name} ==="
  "$PYTHON" eval/score.py "$name" --input-file "$OUT_DIR/${name}.jsonl" --output-json "$OUT_DIR/${name}.metrics.json" || failed+=("$name")
done
if [[ ${#failed[@]} -gt 0 || $run_status -ne 0 ]]; then
  echo "run_all: failed: ${failed[*]:-see run.py above}" >&2
  exit 3
fi
