"""GRPO-style rollouts of prompt groups through VideoTempAgentLoop on CPU, scored by the reward.

    python examples/cpu_demo_rollout.py --model outputs/quickstart/tiny_model \
        --data outputs/quickstart/rl/train.parquet --group-size 4 --prompts 2

What runs is what training runs, up to the trainer: rows come from verl's ``RLHFDataset`` reading the
prepared parquet, each prompt is rolled out ``--group-size`` times by ``VideoTempAgentLoop`` inside
verl's ``AgentLoopWorker`` (prompt video decoded once for the group, clips cut from the frame cache),
the reward function scores each trajectory from the text verl decodes, and verl's GRPO estimator turns
the scores into advantages.

A tiny random-weight model cannot follow the protocol, so with ``--policy scripted`` (the default) each
rollout's turns are written by a small scripted policy that asks for a clip around the evidence with a
different amount of error and answers right or wrong; the model still scores every token (its
log-probs are real). ``--policy model`` lets the model sample freely (use it with a real checkpoint).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tools import protocol  # noqa: E402


def _as_python(value: Any) -> Any:
    """numpy containers from parquet -> plain lists/dicts."""
    if isinstance(value, np.ndarray):
        return [_as_python(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _as_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_python(v) for v in value]
    return value


class ScriptedPolicy:
    """Turn texts for the rollouts of one prompt: slot k asks for a clip with error ``k * step`` seconds.

    Even slots answer correctly, odd slots wrongly, so a group spreads over accuracy and IoU and GRPO
    has something to rank. Slots are handed out to request ids in the order they first appear.
    """

    def __init__(self, ground_truth: dict, duration: float, seed: int):
        self.gt = ground_truth
        self.duration = duration
        self.rng = random.Random(seed)
        self.slots: dict[str, int] = {}

    def __call__(self, request_id: str, turn: int) -> str | None:
        slot = self.slots.setdefault(request_id, len(self.slots))
        start, end = (self.gt.get("timestamps") or [[0.0, self.duration]])[0]
        shift = slot * max(1.0, (end - start) / 2)
        if turn == 0:
            s = max(0.0, start - shift + self.rng.uniform(-0.5, 0.5))
            e = min(self.duration, end + shift + self.rng.uniform(-0.5, 0.5))
            call = {"name": protocol.TOOL_NAME, "arguments": [{"start_time": round(s, 1), "end_time": round(e, 1)}]}
            return f"<think>The question is about a short event; look at it more closely.</think><tool_call>{json.dumps(call)}</tool_call>"
        if self.gt.get("data_type") == "grounding":
            answer = f"[{start + shift:.1f}, {end + shift:.1f}]"
        else:
            letter = str(self.gt.get("answer", "A"))[:1] or "A"
            answer = letter if slot % 2 == 0 else ("B" if letter != "B" else "C")
        return f"<think>The clip shows the event.</think><answer>{answer}</answer>"


def build_argparser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", required=True, help="HF model directory (e.g. the tiny model of data_prep/make_tiny_model.py)")
    parser.add_argument("--data", required=True, help="RL parquet written by data_prep/prepare_rl.py")
    parser.add_argument("--group-size", type=int, default=4, help="rollouts per prompt (GRPO group size; training uses 8)")
    parser.add_argument("--prompts", type=int, default=2, help="number of prompts (rows) to roll out")
    parser.add_argument("--policy", choices=["scripted", "model"], default="scripted", help="who writes the turns (see above)")
    parser.add_argument("--max-frames", type=int, default=32, help="main-video frame cap for the demo (training: 512)")
    parser.add_argument("--max-pixels", type=int, default=protocol.TRAIN_PIXELS, help="pixels per frame")
    parser.add_argument("--response-length", type=int, default=4096, help="data.max_response_length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="write the scored trajectories as JSONL here")
    return parser


def _mix_data_types(rows: list[dict]) -> list[dict]:
    """Rows reordered round-robin over their data types (qa, grounding, qa, ...)."""
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        by_type.setdefault(str((row.get("extra_info") or {}).get("data_type")), []).append(row)
    mixed = []
    while any(by_type.values()):
        for queue in by_type.values():
            if queue:
                mixed.append(queue.pop(0))
    return mixed


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    from recipe.videotemp_o3.hf_server import HFServerClient
    from recipe.videotemp_o3.local_rollout import LocalRollout, compose_config, rows_from_parquet
    from reward_fns.videotemp import compute_score

    config = compose_config(
        args.model,
        [
            f"data.max_response_length={args.response_length}",
            "data.max_prompt_length=8192",
            "actor_rollout_ref.rollout.max_model_len=16384",
            f"actor_rollout_ref.rollout.n={args.group_size}",
            "actor_rollout_ref.rollout.agent.num_workers=1",
        ],
    )
    client = HFServerClient.from_pretrained(args.model, seed=args.seed, default_max_tokens=64)
    rollout = LocalRollout(config, client, agent_kwargs={"max_tokens_per_turn": 64})
    rows = _mix_data_types(rows_from_parquet(args.data, config, rollout.tokenizer, rollout.processor))[: args.prompts]
    results: list[dict[str, Any]] = []
    for row_number, row in enumerate(rows):
        # the demo's frame budget (a tiny model on CPU); training uses 512 frames
        for message in row["raw_prompt"]:
            if isinstance(message.get("content"), list):
                for block in message["content"]:
                    if block.get("type") == "video":
                        block.update(max_frames=args.max_frames, min_pixels=min(block.get("min_pixels") or args.max_pixels, args.max_pixels), max_pixels=args.max_pixels)
        ground_truth = _as_python(row["reward_model"]["ground_truth"])
        extra_info = _as_python(row.get("extra_info") or {})
        client.force = ScriptedPolicy(ground_truth, float(extra_info.get("duration") or 0.0), args.seed + row_number) if args.policy == "scripted" else None
        batch = await rollout.generate([row], n=args.group_size)
        trajectories = rollout.trajectories(batch)
        scores = []
        for i, traj in enumerate(trajectories):
            valid = batch.batch["attention_mask"][i][batch.batch["prompts"].shape[1]:].bool()
            solution_str = rollout.tokenizer.decode(batch.batch["responses"][i][valid].tolist(), skip_special_tokens=True)
            info = {**extra_info, **{k: traj[k] for k in ("turn_texts", "tool_ranges", "n_clips", "answered", "termination")}}
            reward = compute_score(row["data_source"], solution_str, ground_truth, info)
            scores.append(reward["score"])
            traj.update(reward=reward, ground_truth=ground_truth, data_source=row["data_source"], question=extra_info.get("question"))
        token_rewards = torch.zeros_like(batch.batch["response_mask"], dtype=torch.float32)
        lengths = batch.batch["response_mask"].shape[1] - 1 - torch.flip(batch.batch["attention_mask"][:, batch.batch["prompts"].shape[1]:], dims=[1]).long().argmax(dim=1)
        token_rewards[torch.arange(len(scores)), lengths] = torch.tensor(scores)
        advantages, _ = compute_grpo_outcome_advantage(token_rewards, batch.batch["response_mask"], np.array([row_number] * len(scores)))
        for i, traj in enumerate(trajectories):
            traj["advantage"] = float(advantages[i][batch.batch["response_mask"][i].bool()][0]) if batch.batch["response_mask"][i].any() else 0.0
        results.extend(trajectories)
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    header = "| prompt | type | tool ranges | answer | termination | acc | iou | format | score | advantage |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for traj in results:
        r = traj["reward"]
        ranges = "; ".join(",".join(f"[{s:.1f}, {e:.1f}]" for s, e in call) for call in traj["tool_ranges"]) or "-"
        print(
            f"| {traj['index']} | {traj['ground_truth'].get('data_type')} | {ranges} | {traj['final_answer'] or '-'} | "
            f"{traj['termination']} | {r['acc']:.2f} | {r['iou']:+.2f} | {r['format']:.0f} | {r['score']:+.2f} | {traj['advantage']:+.2f} |"
        )


def main(argv: list[str] | None = None) -> int:
    args = build_argparser().parse_args(argv)
    for path in (args.model, args.data):
        if not Path(path).exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
    results = asyncio.run(run(args))
    print_table(results)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w") as handle:
            for traj in results:
                handle.write(json.dumps(traj, default=str) + "\n")
        print(f"[demo] {len(results)} scored trajectories -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
