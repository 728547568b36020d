#!/usr/bin/env bash
# VideoTemp-o3 GRPO on one node (8 GPUs): Qwen2.5-VL-7B-Instruct (or its SFT checkpoint), FSDP + vLLM.
#
#   MODEL=/ckpt/sft TRAIN_FILES=data/rl/train.parquet VAL_FILES=data/rl/val.parquet \
#       bash examples/run_videotemp_o3_grpo.sh [extra hydra overrides ...]
#
# Environment (all optional):
#   MODEL            model path or hub id                      (Qwen/Qwen2.5-VL-7B-Instruct)
#   TRAIN_FILES      training parquet                          (data/videotemp_rl/train.parquet)
#   VAL_FILES        validation parquet                        (data/videotemp_rl/val.parquet)
#   N_GPUS           GPUs on this node                         (8)
#   NNODES           nodes (the multi-node script sets it)     (1)
#   EXPERIMENT       trainer.experiment_name                   (qwen2_5_vl_7b_grpo)
#   OUTPUT_DIR       checkpoints (trainer.default_local_dir)   (outputs/$EXPERIMENT)
#   CHAT_TEMPLATE    jinja file passed as the chat template, or "none" for the model's own
#                    (recipe/videotemp_o3/config/qwen2_5_vl_chat_template.jinja)
#   PYTHON           interpreter                               (python3)
#   PLATFORM=cpu     run on a CPU machine (tiny models): verl's CPU platform (recipe/videotemp_o3/cpu_platform.py)
#                    and the CPU overlay of the config (config/platform/cpu_grpo.yaml); N_GPUS defaults to 1
#   DRY_RUN=1        print the command and exit
# Extra arguments are appended as hydra overrides (e.g. trainer.total_epochs=2).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG_DIR="$REPO_DIR/recipe/videotemp_o3/config"

MODEL="${MODEL:-Qwen/Qwen2.5-VL-7B-Instruct}"
TRAIN_FILES="${TRAIN_FILES:-data/videotemp_rl/train.parquet}"
VAL_FILES="${VAL_FILES:-data/videotemp_rl/val.parquet}"
PLATFORM="${PLATFORM:-gpu}"
if [[ "$PLATFORM" == cpu ]]; then N_GPUS="${N_GPUS:-1}"; else N_GPUS="${N_GPUS:-8}"; fi
NNODES="${NNODES:-1}"
EXPERIMENT="${EXPERIMENT:-qwen2_5_vl_7b_grpo}"
OUTPUT_DIR="${OUTPUT_DIR:-outputs/$EXPERIMENT}"
CHAT_TEMPLATE="${CHAT_TEMPLATE:-$CONFIG_DIR/qwen2_5_vl_chat_template.jinja}"
PYTHON="${PYTHON:-python3}"

export FORCE_QWENVL_VIDEO_READER="${FORCE_QWENVL_VIDEO_READER:-decord}"
# hide verl's "<optional engine> is not available" import warnings here and in every worker it starts
export PYTHONWARNINGS="$("${PYTHON:-python3}" -m tools.cli pythonwarnings 2>/dev/null || echo "${PYTHONWARNINGS:-}")"
export PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}"
PLATFORM_ARGS=()
case "$PLATFORM" in
  gpu) ;;
  cpu)
    # VERL_USE_EXTERNAL_MODULES / VERL_PLATFORM / VERL_ENGINE_DEVICE for this process and every Ray worker
    eval "$("$PYTHON" -m recipe.videotemp_o3.cpu_platform)"
    export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" TOKENIZERS_PARALLELISM=false
    PLATFORM_ARGS=(+platform=cpu_grpo) ;;
  *) echo "error: PLATFORM must be gpu or cpu, got '$PLATFORM'" >&2; exit 2 ;;
esac

CMD=(
  "$PYTHON" -m verl.trainer.main_ppo
  --config-path="$CONFIG_DIR"
  --config-name=videotemp_o3_grpo
  "${PLATFORM_ARGS[@]}"
  actor_rollout_ref.model.path="$MODEL"
  data.train_files="$TRAIN_FILES"
  data.val_files="$VAL_FILES"
  trainer.n_gpus_per_node="$N_GPUS"
  trainer.nnodes="$NNODES"
  trainer.experiment_name="$EXPERIMENT"
  trainer.default_local_dir="$OUTPUT_DIR"
  # absolute, so every Ray worker finds it whatever its working directory
  actor_rollout_ref.rollout.agent.agent_loop_config_path="$CONFIG_DIR/agent_loop.yaml"
  # Ray workers on every node import recipe/, reward_fns/, tools/ from this checkout
  +ray_kwargs.ray_init.runtime_env.env_vars.PYTHONPATH="$REPO_DIR"
)
SHOWN=("${CMD[@]}")

if [[ "$CHAT_TEMPLATE" != "none" ]]; then
  [[ -f "$CHAT_TEMPLATE" ]] || { echo "error: CHAT_TEMPLATE file not found: $CHAT_TEMPLATE" >&2; exit 2; }
  TEMPLATE_TEXT="$(cat "$CHAT_TEMPLATE")"
  # The template goes into a single-quoted hydra value: it must hold no single quote and no "${".
  if [[ "$TEMPLATE_TEXT" == *"'"* || "$TEMPLATE_TEXT" == *'${'* ]]; then
    echo "error: $CHAT_TEMPLATE contains a single quote or '\${', which a hydra quoted value cannot carry" >&2
    exit 2
  fi
  CMD+=("actor_rollout_ref.model.custom_chat_template='$TEMPLATE_TEXT'")
  SHOWN+=("actor_rollout_ref.model.custom_chat_template='<contents of $CHAT_TEMPLATE>'")
fi
CMD+=("$@")
SHOWN+=("$@")

echo "Running:"
printf '  %q \\\n' "${SHOWN[@]}" | sed '$ s/ \\$//'
if [[ "${DRY_RUN:-0}" == "1" ]]; then
  exit 0
fi
exec "${CMD[@]}"
