#!/usr/bin/env bash
# VideoTemp-o3 quick start: the whole pipeline in one command, on verl's real trainer and vLLM.
#
#   bash examples/quickstart.sh            # CPU machine: tiny model, synthetic data, ~10-15 min after install
#   bash examples/quickstart.sh --gpu      # GPU node (also picked when nvidia-smi sees a GPU): short SFT + GRPO + eval
#   bash examples/quickstart.sh --cpu      # force the CPU path on a GPU node
#
# Environment:
#   OUT         output directory                      (outputs/quickstart)
#   MODEL       GPU path: base model id or directory  (Qwen/Qwen2.5-VL-3B-Instruct)
#   N_GPUS      GPU path: GPUs to use                 (all that nvidia-smi lists)
#   SKIP_SETUP=1  use the existing .venv as it is
#   STEER=0     CPU path: let the tiny model sample GRPO turns freely (default 1: vLLM structured outputs keep
#               them in the protocol's shapes, because a few minutes of SFT on a CPU do not teach the format)
#
# CPU path (offline; verl's CPU platform, recipe/videotemp_o3/cpu_platform.py): a tiny random-weight
# Qwen2.5-VL -> a synthetic video dataset -> prepare_sft / prepare_rl -> SFT with verl's sft_trainer (teaches
# the tiny model the protocol's format) -> 2 GRPO steps with verl's main_ppo (vLLM rollout running
# VideoTempAgentLoop, FSDP2 actor and ref, the recipe reward) -> the GRPO checkpoint evaluated through vLLM
# (eval/run_all.sh, verl engine) -> score tables -> HTML report -> PNG of the per-step reward components.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

MODE=auto
for arg in "$@"; do
  case "$arg" in
    --gpu) MODE=gpu ;;
    --cpu) MODE=cpu ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
T_START=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m  (%ds)\n' "$*" "$(( $(date +%s) - T_START ))"; }

if [[ "${SKIP_SETUP:-0}" != 1 ]]; then
  step "environment (.venv, $MODE)"
  if [[ "$MODE" == gpu ]]; then bash examples/setup_env.sh --gpu; else bash examples/setup_env.sh; fi
  T_START=$(date +%s)
fi

if [[ "$MODE" == cpu ]]; then
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  # system memory in use, sampled every second: the peak is printed at the end (the machine has 24 GiB)
  MEM_LOG="$OUT/.memory_used_bytes"
  ( while :; do awk '/MemTotal/{t=$2} /MemAvailable/{a=$2} END{printf "%.0f\n", (t-a)*1024}' /proc/meminfo; sleep 1; done ) >"$MEM_LOG" &
  MEM_PID=$!
  trap 'kill $MEM_PID 2>/dev/null || true; rm -f /dev/shm/verl_weights_* 2>/dev/null || true' EXIT
  BUDGET=(--max-frames 16 --min-pixels 3136 --max-pixels 3136)   # 16 frames at 56x56: 32 video tokens per prompt

  step "1/8 tiny offline Qwen2.5-VL model (random weights, head_dim 64 for vLLM's CPU attention)"
  "$PY" data_prep/make_tiny_model.py "$OUT/tiny_model"

  step "2/8 synthetic dataset (videos with known events, reference-format RL/SFT jsonl)"
  # 200 short videos; SFT trajectories with one tool call each (mixing one and two calls teaches a tiny model to
  # call the tool a third time instead of answering)
  "$PY" data_prep/make_synthetic.py "$OUT/synthetic" --n-videos 200 --min-seconds 8 --max-seconds 16 --fps 4 \
    --sft-calls 1 --sft-tasks qa,grounding --sft-trajectories-per-video 2 --no-progress

  step "3/8 jsonl -> parquet (RL and SFT)"
  "$PY" data_prep/prepare_rl.py "$OUT/synthetic/rl/qa.jsonl" "$OUT/synthetic/rl/grounding.jsonl" \
    --video-root "$OUT/synthetic" --output-dir "$OUT/rl" --no-progress "${BUDGET[@]}"
  "$PY" data_prep/prepare_sft.py "$OUT/synthetic/sft/wi_tool_call/synthetic_ranges.jsonl" \
    --video-root "$OUT/synthetic" --output-dir "$OUT/sft" --no-progress "${BUDGET[@]}"

  step "4/8 SFT cold start: verl sft_trainer (torchrun, FSDP2, CPU), last-two-rounds loss mask, frozen ViT"
  rm -rf "$OUT/ckpt/sft"
  TENSORBOARD_DIR="$OUT/tensorboard/sft" PLATFORM=cpu PYTHON="$PY" MODEL_PATH="$OUT/tiny_model" \
    TRAIN_FILES="$OUT/sft/train.parquet" VAL_FILES=null EXPERIMENT=quickstart_sft \
    bash examples/run_sft.sh trainer.total_training_steps=60 trainer.total_epochs=100 \
    trainer.default_local_dir="$OUT/ckpt/sft" > "$OUT/sft.log" 2>&1 \
    || { echo "SFT failed: see $OUT/sft.log" >&2; tail -40 "$OUT/sft.log" >&2; exit 1; }
  grep -oE "step:[0-9]+ - .*train/loss:[0-9.e-]+" "$OUT/sft.log" | sed -E 's/^step:([0-9]+) - .*train\/loss:([0-9.e-]+).*/  SFT step \1: loss \2/' \
    | awk 'NR==1 || NR%20==0' || true
  SFT_MODEL=$("$PY" -m eval.checkpoint "$OUT/ckpt/sft")
  echo "  SFT checkpoint as a Hugging Face model: $SFT_MODEL"
  echo "  does the SFT model emit the protocol's format? (rollouts through VideoTempAgentLoop, real clip tool)"
  "$PY" examples/measure_format.py --model "$SFT_MODEL" --data "$OUT/rl/train.parquet" --prompts 8 --samples 2 \
    --json "$OUT/sft_format.json" 2>&1 | grep -vE "Warning|warn\(" | tail -12

  step "5/8 GRPO: verl main_ppo, 2 steps from the SFT model (vLLM rollout, FSDP2 actor/ref, recipe reward)"
  export TENSORBOARD_DIR="$OUT/tensorboard/grpo"
  rm -rf "$OUT/ckpt/grpo" "$TENSORBOARD_DIR"
  AGENT_LOOPS="$REPO/recipe/videotemp_o3/config/agent_loop.yaml"
  if [[ "${STEER:-1}" == 1 ]]; then
    # A few minutes of SFT on 2 cores do not teach the tiny model the whole format (see its figures above), and
    # GRPO would see only zero rewards. So vLLM's structured outputs keep each turn inside the protocol's two
    # shapes (eval/harness/steered_loop.py); the engine still samples the reasoning, the times and the answer.
    echo "  NOTE: GRPO turns are steered into the protocol's shapes by vLLM structured outputs (STEER=0: free sampling)"
    AGENT_LOOPS="$OUT/agent_loop_steered.yaml"
    "$PY" -c 'import sys, yaml
entries = yaml.safe_load(open(sys.argv[1]))
for entry in entries:
    entry["_target_"] = "eval.harness.steered_loop.ProtocolSteeredAgentLoop"
open(sys.argv[2], "w").write(yaml.safe_dump(entries, sort_keys=False))' "$REPO/recipe/videotemp_o3/config/agent_loop.yaml" "$AGENT_LOOPS"
  fi
  set +e
  MODEL="$SFT_MODEL" TRAIN_FILES="$OUT/rl/train.parquet" VAL_FILES="$OUT/rl/train.parquet" PLATFORM=cpu PYTHON="$PY" \
    EXPERIMENT=quickstart_grpo OUTPUT_DIR="$OUT/ckpt/grpo" \
    timeout 1200 bash examples/run_videotemp_o3_grpo.sh trainer.total_training_steps=2 trainer.save_freq=2 \
    actor_rollout_ref.rollout.agent.agent_loop_config_path="$AGENT_LOOPS" \
    2>&1 | tee "$OUT/grpo.log" | "$PY" examples/plot_reward_curves.py --follow
  GRPO_RC=${PIPESTATUS[0]}; set -e
  [[ $GRPO_RC == 0 ]] || { echo "GRPO failed: see $OUT/grpo.log" >&2; tail -40 "$OUT/grpo.log" >&2; exit 1; }
  "$PY" examples/plot_reward_curves.py "$TENSORBOARD_DIR" -o "$OUT/reward_curves.png" \
    --title "VideoTemp-o3 GRPO on CPU (tiny model): reward components per step"
  echo "  GRPO checkpoint as a Hugging Face model: $("$PY" -m eval.checkpoint "$OUT/ckpt/grpo")"

  step "6/8 synthetic benchmarks in the public layouts"
  "$PY" -m eval.tasks.fixtures "$OUT/bench"

  step "7/8 evaluation of the GRPO checkpoint through vLLM (eval/run_all.sh, verl engine) and scores"
  eval "$("$PY" -m recipe.videotemp_o3.cpu_platform)"
  set +e
  MODEL="$OUT/ckpt/grpo" DATA_ROOT="$OUT/bench" OUT_DIR="$OUT/eval" ENGINE=verl PYTHON="$PY" VLLM_CPU_KVCACHE_SPACE=1 \
    bash eval/run_all.sh videotemp videotemp_g charades_sta -- \
    --max-frames 16 --max-pixels 3136 --min-pixels 3136 --max-new-tokens 256 \
    --prompt-length 2048 --response-length 1024 --max-model-len 3072 2>&1 | grep -vE "pid=[0-9]+\)|^(INFO|WARNING|W[0-9]{4})|Triton|UserWarning|warnings.warn|^[[:space:]]*$"
  EVAL_RC=${PIPESTATUS[0]}; set -e
  [[ $EVAL_RC == 0 ]] || { echo "evaluation failed (exit $EVAL_RC)" >&2; exit 1; }

  step "8/8 HTML trajectory report"
  "$PY" eval/view.py "$OUT/eval/videotemp.jsonl" -o "$OUT/report.html"

  kill $MEM_PID 2>/dev/null || true
  printf '\nDone in %d s. ' "$(( $(date +%s) - T_START ))"
  "$PY" -c 'import sys; v=[int(x) for x in open(sys.argv[1]) if x.strip()]; g=2**30
print(f"Peak memory in use on this machine: {max(v)/g:.1f} GiB ({(max(v)-v[0])/g:.1f} GiB above the start).")' "$MEM_LOG"
  printf 'Outputs in %s:\n' "$OUT"
  printf '  reward_curves.png  per-step reward components   tensorboard/  GRPO event files   grpo.log  trainer console\n'
  printf '  ckpt/sft ckpt/grpo verl checkpoints              eval/*.jsonl  predictions + settings + metrics\n'
  printf '  report.html        trajectory report            rl/ sft/      parquet for training\n'
  printf 'A tiny model on synthetic videos: the curves show the pipeline and the format learnt in SFT, not the method.\n'
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
