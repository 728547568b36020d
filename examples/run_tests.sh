#!/usr/bin/env bash
# Run the test suite on CPU (no GPU, no access to the Hugging Face hub). Creates .venv first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash examples/setup_env.sh
export FORCE_QWENVL_VIDEO_READER=decord HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest tests -q "$@"
