#!/usr/bin/env bash
# VideoTemp-o3 quick start: the whole pipeline in one command.
#
#   bash examples/quickstart.sh            # CPU machine: offline demo in a few minutes (tiny model, synthetic data)
#   bash examples/quickstart.sh --gpu      # GPU node (also picked when nvidia-smi sees a GPU): short SFT + GRPO + eval
#   bash examples/quickstart.sh --cpu      # force the CPU demo on a GPU node
#
# Environment:
#   OUT         output directory                      (outputs/quickstart)
#   MODEL       GPU path: base model id or directory  (Qwen/Qwen2.5-VL-3B-Instruct)
#   N_GPUS      GPU path: GPUs to use                 (all that nvidia-smi lists)
#   SKIP_SETUP=1  use the existing .venv as it is
#
# CPU demo steps (all offline): build a tiny random-weight Qwen2.5-VL -> write a synthetic video dataset
# -> convert it (prepare_rl / prepare_sft) -> GRPO-style rollouts of prompt groups through
# VideoTempAgentLoop in verl's real agent-loop worker, scored by the reward -> evaluate synthetic
# benchmarks through eval/run_all.sh -> print the score tables -> write the HTML trajectory report.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

MODE=auto
for arg in "$@"; do
  case "$arg" in
    --gpu) MODE=gpu ;;
    --cpu) MODE=cpu ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [[ "$MODE" == auto ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then MODE=gpu; else MODE=cpu; fi
fi

OUT=${OUT:-outputs/quickstart}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY="$REPO/.venv/bin/python"
export PATH="$REPO/.venv/bin:$PATH"  # torchrun, ray and python of the project's environment
export FORCE_QWENVL_VIDEO_READER=decord TOKENIZERS_PARALLELISM=false
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [[ "${SKIP_SETUP:-0}" != 1 ]]; then
  step "environment (.venv, $MODE)"
  if [[ "$MODE" == gpu ]]; then bash examples/setup_env.sh --gpu; else bash examples/setup_env.sh; fi
fi

if [[ "$MODE" == cpu ]]; then
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  step "1/7 tiny offline Qwen2.5-VL model"
  "$PY" data_prep/make_tiny_model.py "$OUT/tiny_model"

  step "2/7 synthetic dataset (videos with known events, reference RL/SFT jsonl)"
  "$PY" data_prep/make_synthetic.py "$OUT/synthetic" --n-videos 4

  step "3/7 jsonl -> parquet (RL and SFT)"
  "$PY" data_prep/prepare_rl.py "$OUT/synthetic/rl/qa.jsonl" "$OUT/synthetic/rl/grounding.jsonl" \
    --video-root "$OUT/synthetic" --output-dir "$OUT/rl"
  "$PY" data_prep/prepare_sft.py "$OUT"/synthetic/sft/wo_tool_call/*.jsonl "$OUT"/synthetic/sft/wi_tool_call/*.jsonl \
    --video-root "$OUT/synthetic" --output-dir "$OUT/sft"

  step "4/7 GRPO rollouts through VideoTempAgentLoop (verl AgentLoopWorker, transformers model), rewards, advantages"
  "$PY" examples/cpu_demo_rollout.py --model "$OUT/tiny_model" --data "$OUT/rl/train.parquet" \
    --group-size 4 --prompts 2 --output "$OUT/rollouts.jsonl"

  step "5/7 synthetic benchmarks in the public layouts"
  "$PY" -m eval.tasks.fixtures "$OUT/bench"

  step "6/7 evaluation through the same agent loop (eval/run_all.sh, transformers engine) and scores"
  MODEL="$OUT/tiny_model" DATA_ROOT="$OUT/bench" OUT_DIR="$OUT/eval" ENGINE=transformers PYTHON="$PY" \
    bash eval/run_all.sh videotemp videotemp_g charades_sta -- \
    --max_frames 16 --max_pixels 12544 --min_pixels 3136 --max_new_tokens 48 \
    --prompt_length 4096 --response_length 4096 --max_model_len 8192

  step "7/7 HTML trajectory report"
  "$PY" eval/view.py "$OUT/eval/videotemp.jsonl" -o "$OUT/report.html"

  printf '\nDone. Outputs in %s:\n' "$OUT"
  printf '  rollouts.jsonl   scored GRPO rollouts   eval/*.jsonl  predictions + settings + metrics\n'
  printf '  report.html      trajectory report      rl/ sft/      parquet for training\n'
  printf 'The tiny model is random: the scores show the pipeline, not the method. See README "Full-scale run".\n'
  exit 0
fi

# ---------------------------------------------------------------- GPU node: short real run
MODEL=${MODEL:-Qwen/Qwen2.5-VL-3B-Instruct}
N_GPUS=${N_GPUS:-$(nvidia-smi -L | grep -c GPU)}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

step "1/6 synthetic dataset at a realistic size"
"$PY" data_prep/make_synthetic.py "$OUT/synthetic" --n-videos 64 --width 448 --height 252 --fps 8 --min-seconds 30 --max-seconds 120

step "2/6 jsonl -> parquet"
"$PY" data_prep/prepare_rl.py "$OUT/synthetic/rl/qa.jsonl" "$OUT/synthetic/rl/grounding.jsonl" \
  --video-root "$OUT/synthetic" --output-dir "$OUT/rl" --val-fraction 0.1
"$PY" data_prep/prepare_sft.py "$OUT"/synthetic/sft/wo_tool_call/*.jsonl "$OUT"/synthetic/sft/wi_tool_call/*.jsonl \
  --video-root "$OUT/synthetic" --output-dir "$OUT/sft"

step "3/6 SFT cold start (short)"
MODEL_PATH="$MODEL" TRAIN_FILES="$OUT/sft/train.parquet" VAL_FILES=null NPROC_PER_NODE="$N_GPUS" PYTHON="$PY" \
  EXPERIMENT=quickstart_sft bash examples/run_sft.sh \
  trainer.total_epochs=1 data.train_batch_size="$N_GPUS" trainer.default_local_dir="$OUT/ckpt/sft" \
  trainer.save_freq=after_each_epoch trainer.logger='[console]'
SFT_MODEL=$("$PY" -m eval.checkpoint "$OUT/ckpt/sft")

step "4/6 GRPO (a few steps)"
MODEL="$SFT_MODEL" TRAIN_FILES="$OUT/rl/train.parquet" VAL_FILES="$OUT/rl/val.parquet" N_GPUS="$N_GPUS" PYTHON="$PY" \
  EXPERIMENT=quickstart_grpo OUTPUT_DIR="$OUT/ckpt/grpo" bash examples/run_videotemp_o3_grpo.sh \
  data.train_batch_size=4 actor_rollout_ref.actor.ppo_mini_batch_size=4 actor_rollout_ref.rollout.n=4 \
  trainer.total_training_steps=4 trainer.save_freq=4 trainer.test_freq=4 trainer.logger='[console]' \
  actor_rollout_ref.rollout.tensor_model_parallel_size=1

step "5/6 synthetic benchmarks"
"$PY" -m eval.tasks.fixtures "$OUT/bench"

step "6/6 evaluation of the GRPO checkpoint (verl engine: vLLM replicas on Ray)"
MODEL="$OUT/ckpt/grpo" DATA_ROOT="$OUT/bench" OUT_DIR="$OUT/eval" ENGINE=verl PYTHON="$PY" \
  bash eval/run_all.sh videotemp videotemp_g charades_sta -- --n_gpus_per_node "$N_GPUS"
"$PY" eval/view.py "$OUT/eval/videotemp.jsonl" -o "$OUT/report.html"
printf '\nDone. Checkpoints in %s/ckpt, predictions and metrics in %s/eval, report %s/report.html\n' "$OUT" "$OUT" "$OUT"
