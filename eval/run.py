"""Run one benchmark through the VideoTemp-o3 agent loop and append predictions (resumable).

    python eval/run.py videomme --data_dir data/videomme --model Qwen/Qwen2.5-VL-7B-Instruct --output_dir runs/eval

Writes ``<output_dir>/<benchmark>.jsonl`` (one complete line per finished sample) and
``<output_dir>/<benchmark>.settings.json``. Re-running skips the ids already written; a settings
change is refused unless ``--force``. Score with ``python eval/score.py <benchmark> --input_file ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):  # `python eval/run.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.benchmarks import BENCHMARKS, EvalSample, benchmark_dir, load_benchmark  # noqa: E402
from eval.engines import ENGINES, EvalSettings, make_engine, prompt_version  # noqa: E402
from eval.predictions import PredictionWriter, check_settings, predictions_path, repair_and_read, settings_path, write_json_atomic  # noqa: E402
from eval.scoring.extract import reference_response  # noqa: E402

DEFAULTS = EvalSettings()


def git_commit() -> str:
    """The repository's HEAD commit (``+dirty`` with uncommitted changes), or "unknown"."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard expects i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= i < n")
    return i, n


def select(samples: list[EvalSample], shard: tuple[int, int] | None, limit: int | None) -> list[EvalSample]:
    """The shard's samples (every n-th, offset i), then the first ``limit`` of them."""
    if shard:
        samples = samples[shard[0] :: shard[1]]
    return samples[:limit] if limit is not None else samples


def make_record(sample: EvalSample, traj: dict[str, Any]) -> dict[str, Any]:
    """One prediction line: the sample (with ground truth) and its trajectory."""
    turns = [str(t) for t in traj.get("turn_texts") or []]
    record = sample.to_record()
    record.update(
        turns=turns,
        response=reference_response(turns),
        final_answer=traj.get("final_answer"),
        tool_calls=[[list(map(float, r)) for r in call] for call in traj.get("tool_ranges") or []],
        n_clips=traj.get("n_clips"),
        termination=traj.get("termination"),
        prompt_tokens=traj.get("prompt_tokens"),
        response_tokens=traj.get("response_tokens"),
        generated_tokens=traj.get("generated_tokens"),
        trajectory=traj.get("response_text"),
    )
    return record


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmark", choices=sorted(BENCHMARKS), help="benchmark to run")
    p.add_argument("--data_dir", help="the benchmark's directory (its public layout); default: <data_root>/<benchmark dir>")
    p.add_argument("--data_root", default="data", help="root holding every benchmark's directory (default: data)")
    p.add_argument("--model", required=True, help="HF model directory, hub id, or a verl training checkpoint (merged once into a cached HF directory)")
    p.add_argument("--output_dir", default="runs/eval", help="where <benchmark>.jsonl and its settings file go")
    p.add_argument("--engine", choices=ENGINES, default=DEFAULTS.engine,
                   help="verl: vLLM replicas on Ray (GPU); transformers: a local HF model (CPU/1 GPU); scripted: scripted turns")
    p.add_argument("--max_frames", type=int, default=DEFAULTS.max_frames, help="frames of the main video (default %(default)s)")
    p.add_argument("--max_pixels", type=int, default=DEFAULTS.max_pixels, help="max pixels per frame (default %(default)s)")
    p.add_argument("--min_pixels", type=int, default=DEFAULTS.min_pixels, help="min pixels per frame (default %(default)s)")
    p.add_argument("--fps", type=float, default=DEFAULTS.fps, help="sampling rate of the main video (default %(default)s)")
    p.add_argument("--temperature", type=float, default=DEFAULTS.temperature, help="sampling temperature (default %(default)s)")
    p.add_argument("--top_p", type=float, default=DEFAULTS.top_p, help="nucleus sampling (default %(default)s)")
    p.add_argument("--max_new_tokens", type=int, default=DEFAULTS.max_new_tokens, help="new tokens per assistant turn (default %(default)s)")
    p.add_argument("--max_turns", type=int, default=DEFAULTS.max_turns, help="assistant turns per sample (default %(default)s)")
    p.add_argument("--clip_caption", action="store_true", help="tell the model each clip's absolute range in text (off in the reference)")
    image = p.add_mutually_exclusive_group()
    image.add_argument("--with_image", dest="with_image", action="store_true", default=DEFAULTS.with_image,
                       help="show a sample's image after the video (Video-MMMU Adaptation; the reference behaviour, on by default)")
    image.add_argument("--no_image", dest="with_image", action="store_false",
                       help="leave the Video-MMMU Adaptation image out of the prompt (recorded as with_image=false)")
    p.add_argument("--prompt_length", type=int, default=DEFAULTS.prompt_length, help="token budget of the prompt (default %(default)s)")
    p.add_argument("--response_length", type=int, default=DEFAULTS.response_length,
                   help="token budget of all turns incl. clips (default %(default)s)")
    p.add_argument("--max_model_len", type=int, default=DEFAULTS.max_model_len, help="context length (default %(default)s)")
    p.add_argument("--batch_size", type=int, default=0, help="samples per engine call; a kill loses at most one batch (default: engine's)")
    p.add_argument("--tensor_parallel", type=int, default=DEFAULTS.tensor_parallel, help="verl engine: GPUs per vLLM replica")
    p.add_argument("--n_gpus_per_node", type=int, default=DEFAULTS.n_gpus_per_node, help="verl engine: GPUs per node")
    p.add_argument("--nnodes", type=int, default=DEFAULTS.nnodes, help="verl engine: nodes of the Ray cluster (RAY_ADDRESS)")
    p.add_argument("--gpu_memory_utilization", type=float, default=DEFAULTS.gpu_memory_utilization, help="verl engine: vLLM memory share")
    p.add_argument("--script", help="scripted engine: JSON {sample id: [turn texts]} ('*' for all others)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (transformers engine)")
    p.add_argument("--limit", type=int, help="only the first N samples (of the shard)")
    p.add_argument("--shard", type=parse_shard, help="i/n: run every n-th sample starting at i (own output file)")
    p.add_argument("--force", action="store_true", help="append even if the existing file was written with other settings")
    p.add_argument("--no_check_videos", action="store_true", help="do not check that every video file exists before starting")
    return p


def settings_from_args(args: argparse.Namespace) -> EvalSettings:
    from eval.benchmarks import local_sets, mlvu, videotemp  # their prompt templates enter the prompt hash

    return EvalSettings(
        benchmark=args.benchmark, model=str(args.model), engine=args.engine, max_frames=args.max_frames, max_pixels=args.max_pixels,
        min_pixels=args.min_pixels, fps=args.fps, temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
        max_turns=args.max_turns, clip_caption=args.clip_caption, with_image=args.with_image, prompt_length=args.prompt_length,
        response_length=args.response_length, max_model_len=args.max_model_len, batch_size=args.batch_size,
        tensor_parallel=args.tensor_parallel, n_gpus_per_node=args.n_gpus_per_node, nnodes=args.nnodes,
        gpu_memory_utilization=args.gpu_memory_utilization, script=str(Path(args.script).resolve()) if args.script else None,
        seed=args.seed,
        prompt_version=prompt_version([videotemp.GROUNDING_PROMPT, mlvu.PROMPT_HEAD, local_sets.GROUNDING_PROMPT]),
        git_commit=git_commit(),
    )


async def run(args: argparse.Namespace) -> Path:
    """Run the selected samples not yet in the prediction file; returns its path."""
    from tqdm import tqdm

    data_dir = Path(args.data_dir) if args.data_dir else benchmark_dir(args.benchmark, args.data_root)
    samples = select(load_benchmark(args.benchmark, data_dir, check_videos=not args.no_check_videos), args.shard, args.limit)
    model_source = str(args.model)
    if args.engine != "scripted":
        from eval.checkpoint import resolve_model  # a verl FSDP checkpoint is merged into a HF directory once

        args.model = resolve_model(args.model)
    settings = settings_from_args(args)
    out = predictions_path(args.output_dir, args.benchmark, args.shard)
    check_settings(out, settings.to_dict(), args.force)
    done = {str(r.get("id")) for r in repair_and_read(out)}
    todo = [s for s in samples if s.id not in done]
    # model_source: what the user pointed at (a training checkpoint is recorded next to its merged HF dir)
    write_json_atomic(settings_path(out), {**settings.to_dict(), "data_dir": str(data_dir.resolve()), "model_source": model_source})
    if not todo:
        print(f"[run] {args.benchmark}: all {len(samples)} samples already in {out}")
        return out
    engine = make_engine(settings, Path(args.output_dir))
    batch_size = args.batch_size or engine.default_batch_size
    try:
        await engine.start()
        with PredictionWriter(out) as writer, tqdm(total=len(samples), initial=len(samples) - len(todo),
                                                   desc=args.benchmark, unit="sample", dynamic_ncols=True) as bar:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                trajectories = await engine.run_batch(batch, start_index=start)
                if len(trajectories) != len(batch):
                    raise RuntimeError(f"engine returned {len(trajectories)} trajectories for {len(batch)} samples")
                for sample, traj in zip(batch, trajectories):
                    writer.append(make_record(sample, traj))
                bar.update(len(batch))
    finally:
        engine.close()
    print(f"[run] {args.benchmark}: {len(samples)} samples in {out}")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(run(args))
    except Exception as exc:  # clear one-line errors for layout/settings problems
        from eval.benchmarks import BenchmarkError
        from eval.checkpoint import CheckpointError
        from eval.predictions import SettingsMismatch

        if isinstance(exc, (BenchmarkError, CheckpointError, SettingsMismatch)):
            sys.exit(f"error: {exc}")
        raise


if __name__ == "__main__":
    main()
