#!/usr/bin/env bash
# VideoTemp-o3 SFT cold start on verl's SFT trainer (Qwen2.5-VL-7B, frozen ViT, last-two-rounds loss mask).
#
# Reference hyper-parameters for one node of 8 GPUs: 3 epochs, lr 1e-5, effective batch 256.
# Input: parquet from data_prep/prepare_sft.py, e.g.
#   python data_prep/download.py videotemp_o3 --root data
#   python data_prep/prepare_sft.py data/videotemp_o3/sft/*.jsonl data/videotemp_o3/sft_tool_call/*.jsonl \
#       --video-root data/videotemp_o3 --output-dir data/sft --val-fraction 0.01
#
# Environment (all optional):
#   TRAIN_FILES   train parquet                       (default data/sft/train.parquet)
#   VAL_FILES     val parquet, or "null"              (default data/sft/val.parquet if it exists, else null)
#   MODEL_PATH    HF model id or local directory      (default Qwen/Qwen2.5-VL-7B-Instruct)
#   NNODES, NPROC_PER_NODE, NODE_RANK, MASTER_ADDR, MASTER_PORT   torchrun topology (default 1 node x 8 GPUs)
#   EXPERIMENT    trainer.experiment_name             (default sft_qwen2_5_vl_7b)
#   PLATFORM=cpu  run on the CPU: the recipe's CPU platform for verl (recipe/videotemp_o3/cpu_platform.py) and the
#                 overlay recipe/videotemp_o3/config/platform/cpu_sft.yaml (+platform=cpu_sft), one process
#   DRY_RUN=1     print the command and the composed config (hydra --cfg job), train nothing
# Extra arguments are passed to the trainer as hydra overrides, e.g. trainer.total_epochs=1.
# Without a val parquet, validation is off (trainer.test_freq=-1).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"

TRAIN_FILES="${TRAIN_FILES:-data/sft/train.parquet}"
if [[ -z "${VAL_FILES:-}" ]]; then
  if [[ -f data/sft/val.parquet ]]; then VAL_FILES=data/sft/val.parquet; else VAL_FILES=null; fi
fi
MODEL_PATH="${MODEL_PATH:-Qwen/Qwen2.5-VL-7B-Instruct}"
NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
PLATFORM="${PLATFORM:-gpu}"
case "${PLATFORM}" in
  gpu) ;;
  cpu) NPROC_PER_NODE="${NPROC_PER_NODE:-1}"; EXPERIMENT="${EXPERIMENT:-sft_cpu}" ;;
  *) echo "[run_sft] error: PLATFORM must be gpu or cpu, got '${PLATFORM}'" >&2; exit 2 ;;
esac
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="${MASTER_PORT:-29500}"
EXPERIMENT="${EXPERIMENT:-sft_qwen2_5_vl_7b}"

# qwen-vl-utils / transformers must not try torchvision's removed reader; decode with decord.
export FORCE_QWENVL_VIDEO_READER="${FORCE_QWENVL_VIDEO_READER:-decord}"
# hide verl's "<optional engine> is not available" import warnings here and in every worker it starts
export PYTHONWARNINGS="$("${PYTHON:-python3}" -m tools.cli pythonwarnings 2>/dev/null || echo "${PYTHONWARNINGS:-}")"
export PYTHONPATH="${REPO_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
PLATFORM_OVERRIDES=()
if [[ "${PLATFORM}" == cpu ]]; then
  # verl's platform hooks (VERL_USE_EXTERNAL_MODULES, VERL_PLATFORM, VERL_ENGINE_DEVICE) select the CPU platform
  eval "$("${PYTHON:-python}" -m recipe.videotemp_o3.cpu_platform)"
  export TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
  PLATFORM_OVERRIDES=("+platform=cpu_sft")
fi

OVERRIDES=(
  "${PLATFORM_OVERRIDES[@]}"
  "data.train_files=${TRAIN_FILES}"
  "data.val_files=${VAL_FILES}"
  "model.path=${MODEL_PATH}"
  "trainer.nnodes=${NNODES}"
  "trainer.n_gpus_per_node=${NPROC_PER_NODE}"
  "trainer.experiment_name=${EXPERIMENT}"
)
# verl 0.9.1 iterates the (missing) val loader at test_freq steps when there is no val set
if [[ "${VAL_FILES}" == null ]]; then OVERRIDES+=("trainer.test_freq=-1"); fi
OVERRIDES+=("$@")
CONFIG_ARGS=(
  -m verl.trainer.sft_trainer
  "--config-path=${REPO_ROOT}/recipe/videotemp_o3/config"
  --config-name=videotemp_o3_sft
)
CMD=(
  torchrun "--nnodes=${NNODES}" "--nproc_per_node=${NPROC_PER_NODE}" "--node_rank=${NODE_RANK}"
  "--master_addr=${MASTER_ADDR}" "--master_port=${MASTER_PORT}"
  "${CONFIG_ARGS[@]}" "${OVERRIDES[@]}"
)

echo "[run_sft] ${CMD[*]}"
if [[ "${DRY_RUN:-0}" == "1" ]]; then
  PYTHON="${PYTHON:-python}"
  exec "${PYTHON}" "${CONFIG_ARGS[@]}" "${OVERRIDES[@]}" --cfg job
fi
for f in ${TRAIN_FILES//,/ }; do
  [[ -f "${f}" ]] || { echo "[run_sft] error: train parquet not found: ${f} (run data_prep/prepare_sft.py first)" >&2; exit 2; }
done
exec "${CMD[@]}"
