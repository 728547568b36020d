#!/usr/bin/env bash
# VideoTemp-o3 GRPO on several nodes through a Ray cluster.
#
# The project (and its venv) must be installed at the same path on every node; data and model paths
# must be readable from every node (shared file system).
#
#   on the head node:    ROLE=head   NNODES=2 bash examples/run_videotemp_o3_grpo_multinode.sh [overrides ...]
#   on each other node:  ROLE=worker HEAD_ADDR=<head ip> bash examples/run_videotemp_o3_grpo_multinode.sh
#
# The head starts Ray (`ray start --head`), waits until NNODES nodes with N_GPUS GPUs each have joined,
# then starts training with trainer.nnodes=NNODES: by default it runs the driver on the head
# (RAY_ADDRESS=auto), with SUBMIT=1 it submits the same command with `ray job submit`.
# Workers join with `ray start --address HEAD_ADDR:RAY_PORT --block`.
#
# Environment:
#   ROLE             head | worker                                   (required)
#   HEAD_ADDR        head node address (workers)                     (required for workers)
#   RAY_PORT         Ray GCS port                                    (6379)
#   DASHBOARD_PORT   Ray dashboard / job server port                 (8265)
#   NNODES           nodes in the cluster, head included             (2)
#   N_GPUS           GPUs per node                                   (8)
#   WAIT_TIMEOUT     seconds the head waits for the workers          (600)
#   SUBMIT=1         use `ray job submit` instead of a driver on the head
#   DRY_RUN=1        print the commands and exit
#   everything examples/run_videotemp_o3_grpo.sh reads (MODEL, TRAIN_FILES, VAL_FILES, ...)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROLE="${ROLE:?set ROLE=head or ROLE=worker}"
RAY_PORT="${RAY_PORT:-6379}"
DASHBOARD_PORT="${DASHBOARD_PORT:-8265}"
NNODES="${NNODES:-2}"
N_GPUS="${N_GPUS:-8}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-600}"
PYTHON="${PYTHON:-python3}"
export FORCE_QWENVL_VIDEO_READER="${FORCE_QWENVL_VIDEO_READER:-decord}"

run() {  # print a command, then run it unless DRY_RUN=1
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [[ "${DRY_RUN:-0}" != "1" ]]; then "$@"; fi
}

case "$ROLE" in
  worker)
    HEAD_ADDR="${HEAD_ADDR:?set HEAD_ADDR to the head node address}"
    run ray start --address="$HEAD_ADDR:$RAY_PORT" --num-gpus="$N_GPUS" --block
    ;;
  head)
    run ray start --head --port="$RAY_PORT" --dashboard-host=0.0.0.0 --dashboard-port="$DASHBOARD_PORT" \
      --num-gpus="$N_GPUS"
    want=$((NNODES * N_GPUS))
    echo "waiting for $NNODES nodes / $want GPUs (timeout ${WAIT_TIMEOUT}s)"
    if [[ "${DRY_RUN:-0}" != "1" ]]; then
      deadline=$((SECONDS + WAIT_TIMEOUT))
      until have=$("$PYTHON" -c "import ray; ray.init(address='auto', logging_level='ERROR'); print(int(ray.cluster_resources().get('GPU', 0)))" 2>/dev/null) \
            && [[ "$have" -ge "$want" ]]; do
        if (( SECONDS > deadline )); then
          echo "error: only ${have:-0} of $want GPUs joined within ${WAIT_TIMEOUT}s" >&2
          exit 1
        fi
        sleep 10
      done
    fi
    TRAIN=(env NNODES="$NNODES" N_GPUS="$N_GPUS" bash "$REPO_DIR/examples/run_videotemp_o3_grpo.sh" "$@")
    if [[ "${SUBMIT:-0}" == "1" ]]; then
      # env_vars of the job reach the driver and every Ray worker of the job
      RUNTIME_ENV="{\"env_vars\": {\"FORCE_QWENVL_VIDEO_READER\": \"$FORCE_QWENVL_VIDEO_READER\", \"PYTHONPATH\": \"$REPO_DIR\"}}"
      run ray job submit --address="http://127.0.0.1:$DASHBOARD_PORT" --runtime-env-json="$RUNTIME_ENV" -- "${TRAIN[@]}"
    else
      # the driver runs here and connects to the running cluster
      run env RAY_ADDRESS=auto "${TRAIN[@]}"
    fi
    ;;
  *)
    echo "error: ROLE must be head or worker, got '$ROLE'" >&2
    exit 2
    ;;
esac
