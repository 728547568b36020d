#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv.
#   bash examples/setup_env.sh          CPU machine: torch 2.14.1 + verl[verl-core] + test tools
#   bash examples/setup_env.sh --gpu    GPU node: verl[vllm,fsdp] (torch 2.11, vLLM, flash-attn)
# Also installs FFmpeg (Debian/Ubuntu, when run as root and it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=cpu
[[ "${1:-}" == "--gpu" ]] && MODE=gpu
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

if ! command -v ffmpeg >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing ffmpeg (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
  else
    echo "[setup] warning: ffmpeg not found; install it (e.g. apt-get install ffmpeg) for torchcodec and the benchmarks" >&2
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/pip"
STAMP="$VENV/.videotemp-setup-$MODE"
WANT=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && "${FORCE_SETUP:-0}" != 1 ]]; then
  echo "[setup] $VENV is up to date ($MODE)"; exit 0
fi
if [[ "$MODE" == gpu ]]; then
  echo "[setup] installing the GPU stack: verl[vllm,fsdp]==0.9.1"
  "$PIP" install -q -e ".[gpu,test]"
else
  # torch 2.14.1 + torchvision 0.29.1 run on CPU and have a working video path (see README, Troubleshooting).
  "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null || {
    echo "[setup] installing torch 2.14.1 + torchvision 0.29.1"
    "$PIP" install -q torch==2.14.1 torchvision==0.29.1
  }
  echo "[setup] installing the project (verl[verl-core]==0.9.1, decord, test tools)"
  "$PIP" install -q -e ".[test]"
fi
echo "$WANT" > "$STAMP"
echo "[setup] done: $VENV"
