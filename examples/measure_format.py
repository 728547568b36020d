"""Does a model emit the VideoTemp-o3 protocol? Roll it out through the project's agent loop and print the figures.

    python examples/measure_format.py --model outputs/quickstart/ckpt/sft --data outputs/quickstart/rl/train.parquet

``--model`` is a Hugging Face model directory or a verl checkpoint (merged once by ``eval.checkpoint``). Rows come
from the RL parquet through verl's ``RLHFDataset``; each is rolled out by ``VideoTempAgentLoop`` inside verl's
``AgentLoopWorker`` with a ``transformers`` model (``eval.harness.hf_server``), the real clip tool cutting
the requested ranges, and every trajectory is scored by the recipe reward. Per temperature it prints:

  well-formed turns   assistant turns with one of the protocol's two strict shapes / all assistant turns
  first turn tool     trajectories whose first turn is a tool call (complete ``<tool_call>`` block)
  parseable ranges    tool-call turns whose call names the tool with at least one valid time range
  answered            trajectories that end with an ``<answer>``
  format reward       mean of the reward's ``format`` component (1 iff every turn is well formed)
  acc, score          mean accuracy and total reward (the synthetic set needs vision: expect chance accuracy
                      from a tiny model)

Temperature 0 is greedy decoding (one rollout per prompt); other temperatures sample ``--samples`` per prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tools.cli import ArgumentParser

FIGURES = (
    "well_formed_turns",
    "first_turn_tool_call",
    "parseable_ranges",
    "answered",
    "format_reward",
    "acc",
    "score",
    "turns",
)


def _plain(value: Any) -> Any:
    """numpy containers from parquet -> plain Python."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _interleave_types(rows: list[dict]) -> list[dict]:
    """Rows round-robin over their ``data_type`` (qa, grounding, qa, ...), so a prefix holds both kinds."""
    queues: dict[str, list[dict]] = {}
    for row in rows:
        queues.setdefault(str((row.get("extra_info") or {}).get("data_type")), []).append(row)
    out: list[dict] = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                out.append(queue.pop(0))
    return out


def figures(trajectories: list[dict[str, Any]]) -> dict[str, float]:
    """The format figures of scored trajectories (each with ``turn_texts`` and ``reward``)."""
    from tools import protocol

    turns = [t for traj in trajectories for t in traj["turn_texts"]]
    calls = [protocol.parse_turn(t) for t in turns]
    calls = [c for c in calls if c.kind == "tool_call"]
    firsts = [traj["turn_texts"][0] if traj["turn_texts"] else "" for traj in trajectories]
    n = max(len(trajectories), 1)

    def mean(key: str) -> float:
        return sum(float(traj["reward"][key]) for traj in trajectories) / n

    return {
        "trajectories": float(len(trajectories)),
        "well_formed_turns": sum(protocol.is_well_formed_turn(t) for t in turns) / max(len(turns), 1),
        "first_turn_tool_call": sum(protocol.parse_turn(t).kind == "tool_call" for t in firsts) / n,
        "parseable_ranges": sum(
            c.tool_call is not None
            and c.tool_call.well_formed
            and bool(protocol.validate_ranges(c.tool_call.ranges, float("inf")).clips)
            for c in calls
        )
        / max(len(calls), 1),
        "answered": sum(bool(traj["answered"]) for traj in trajectories) / n,
        "format_reward": mean("format"),
        "acc": mean("acc"),
        "score": mean("score"),
        "turns": sum(len(traj["turn_texts"]) for traj in trajectories) / n,
    }


async def _rollouts(args: argparse.Namespace, model_dir: str, temperature: float, client: Any) -> list[dict]:
    from eval.harness.local_rollout import (
        LocalRollout,
        compose_config,
        rows_from_parquet,
    )
    from reward_fns.videotemp import compute_score

    samples = 1 if temperature == 0 else args.samples
    config = compose_config(
        model_dir,
        [
            f"data.max_response_length={args.response_length}",
            "data.max_prompt_length=4096",
            f"actor_rollout_ref.rollout.max_model_len={args.response_length + 4096}",
            f"actor_rollout_ref.rollout.n={samples}",
            f"actor_rollout_ref.rollout.temperature={temperature}",
            "actor_rollout_ref.rollout.top_p=1.0",
            "actor_rollout_ref.rollout.top_k=-1",
            "actor_rollout_ref.rollout.agent.num_workers=1",
        ],
    )
    rollout = LocalRollout(config, client, agent_kwargs={"max_tokens_per_turn": args.max_tokens_per_turn})
    rows = _interleave_types(rows_from_parquet(args.data, config, rollout.tokenizer, rollout.processor))[: args.prompts]
    batch = await rollout.generate(rows, n=samples)
    out = []
    for i, traj in enumerate(rollout.trajectories(batch)):
        row = rows[i // samples]
        truth = _plain(row["reward_model"]["ground_truth"])
        info = {
            **_plain(row.get("extra_info") or {}),
            **{k: traj[k] for k in ("turn_texts", "tool_ranges", "n_clips", "answered", "termination")},
        }
        traj.update(
            reward=compute_score(row["data_source"], traj["response_text"], truth, info),
            temperature=temperature,
            ground_truth=truth,
        )
        out.append(traj)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--model",
        required=True,
        help="HF model directory or verl checkpoint (trainer.default_local_dir, global_step_N/ or its actor/)",
    )
    parser.add_argument("--data", required=True, help="RL parquet written by data_prep/prepare_rl.py")
    parser.add_argument(
        "--prompts", type=int, default=16, help="prompts (rows) to roll out, qa and grounding in turn (default 16)"
    )
    parser.add_argument("--samples", type=int, default=2, help="rollouts per prompt at temperatures > 0 (default 2)")
    parser.add_argument("--temperatures", default="0,1.0", help="comma-separated; 0 = greedy (default '0,1.0')")
    parser.add_argument("--max-tokens-per-turn", type=int, default=128, help="cap of one assistant turn (default 128)")
    parser.add_argument("--response-length", type=int, default=2048, help="data.max_response_length (default 2048)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--output", default=None, help="write every scored trajectory as JSONL here")
    parser.add_argument("--json", default=None, help="write the figures as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.data).is_file():
        print(f"error: --data {args.data}: no such file (write it with data_prep/prepare_rl.py)", file=sys.stderr)
        return 2
    try:
        temperatures = [float(t) for t in args.temperatures.split(",") if t.strip()]
    except ValueError:
        print(f"error: --temperatures must be comma-separated numbers, got {args.temperatures!r}", file=sys.stderr)
        return 2
    if not temperatures or any(t < 0 for t in temperatures) or args.prompts < 1 or args.samples < 1:
        print("error: need temperatures >= 0, --prompts >= 1 and --samples >= 1", file=sys.stderr)
        return 2
    from eval.checkpoint import CheckpointError, resolve_model
    from eval.harness.hf_server import HFServerClient

    try:
        model_dir = resolve_model(args.model)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = HFServerClient.from_pretrained(model_dir, seed=args.seed, default_max_tokens=args.max_tokens_per_turn)
    results: dict[str, dict[str, float]] = {}
    everything: list[dict] = []
    print(f"[format] {model_dir}: {args.prompts} prompts of {args.data}")
    header = f"| temperature | {' | '.join(FIGURES)} | terminations | seconds |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for temperature in temperatures:
        start = time.monotonic()
        trajectories = asyncio.run(_rollouts(args, model_dir, temperature, client))
        seconds = time.monotonic() - start
        figs = figures(trajectories)
        results[f"{temperature:g}"] = {**figs, "seconds": seconds}
        everything.extend(trajectories)
        ends = Counter(str(t["termination"]) for t in trajectories)
        lines.append(
            f"| {temperature:g} | "
            + " | ".join(f"{figs[k]:.2f}" for k in FIGURES)
            + f" | {', '.join(f'{k} {v}' for k, v in sorted(ends.items()))} | {seconds:.0f} |"
        )
    print("\n".join(lines))
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(t, default=str) + "\n" for t in everything))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": model_dir, "figures": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
