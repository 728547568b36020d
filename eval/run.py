"""Run benchmarks through the VideoTemp-o3 agent loop and append predictions (resumable), all on one engine start.

    python eval/run.py videomme mlvu --data-root data --model Kwai-Keye/VideoTemp-o3 --output-dir runs/eval

Writes ``<output_dir>/<benchmark>.jsonl`` (one complete line per finished sample) and
``<output_dir>/<benchmark>.settings.json`` per benchmark. Re-running skips the ids already written; a
settings change is refused unless ``--force``. A benchmark whose data is missing or malformed is reported
and skipped while the others run; a sample whose video cannot be read is written as a failed sample (with
its reason) and scored as unanswered. Exit status: 0 when every benchmark ran, 3 when some failed (the
last line names them), 2 on a usage error. Score with ``python eval/score.py <benchmark> --input-file ...``.
Defaults are the reference's eval settings (256 frames of 200,704 pixels at 2 fps, temperature 0.1, 4096
new tokens per turn, 3 turns).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from eval.engines import ENGINES, EvalSettings, make_engine, platform_settings, prompt_version
from eval.predictions import (
    CorruptPredictions,
    PredictionFileLocked,
    PredictionWriter,
    SettingsMismatch,
    check_settings,
    done_ids,
    predictions_path,
    read_settings,
    remove_stale_partials,
    repair_and_read,
    settings_path,
    with_earlier_settings,
    write_json_atomic,
)
from eval.scoring.extract import reference_response
from eval.tasks import BenchmarkError, EvalSample, all_tasks, benchmark_dir, get_task, load_benchmark, task_names
from tools.cli import ArgumentParser, quiet_verl_warnings

DEFAULTS = EvalSettings()
EXIT_SOME_FAILED = 3


def git_commit() -> str:
    """The repository's HEAD commit (``+dirty`` with uncommitted changes), or "unknown"."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
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
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "benchmarks",
        nargs="+",
        metavar="benchmark",
        help=f"benchmark(s) to run, on one engine start: {', '.join(task_names(with_aliases=True))}, or 'all'",
    )
    p.add_argument(
        "--data-dir",
        help="the benchmark's directory (its public layout; one benchmark only); default: <data_root>/<benchmark dir>",
    )
    p.add_argument("--data-root", default="data", help="root holding every benchmark's directory (default: data)")
    p.add_argument(
        "--model",
        required=True,
        help="HF model directory, hub id (e.g. Kwai-Keye/VideoTemp-o3), or a verl training "
        "checkpoint (merged once into a cached HF directory)",
    )
    p.add_argument("--model-revision", help="hub id: the revision (branch, tag or commit) to use (default: main)")
    p.add_argument(
        "--model-mirror",
        default=os.environ.get("VIDEOTEMP_MODEL_MIRROR"),
        help="hub id: a local mirror directory holding <org>/<name> or a hub-cache layout (env VIDEOTEMP_MODEL_MIRROR)",
    )
    p.add_argument("--output-dir", default="runs/eval", help="where <benchmark>.jsonl and its settings file go")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=DEFAULTS.engine,
        help="verl: vLLM replicas on Ray (GPU); transformers: a local HF model (CPU/1 GPU); scripted: scripted turns",
    )
    p.add_argument(
        "--max-frames", type=int, default=DEFAULTS.max_frames, help="frames of the main video (default %(default)s)"
    )
    p.add_argument(
        "--max-pixels", type=int, default=DEFAULTS.max_pixels, help="max pixels per frame (default %(default)s)"
    )
    p.add_argument(
        "--min-pixels", type=int, default=DEFAULTS.min_pixels, help="min pixels per frame (default %(default)s)"
    )
    p.add_argument(
        "--fps", type=float, default=DEFAULTS.fps, help="sampling rate of the main video (default %(default)s)"
    )
    p.add_argument(
        "--temperature", type=float, default=DEFAULTS.temperature, help="sampling temperature (default %(default)s)"
    )
    p.add_argument("--top-p", type=float, default=DEFAULTS.top_p, help="nucleus sampling (default %(default)s)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULTS.max_new_tokens,
        help="new tokens per assistant turn (default %(default)s)",
    )
    p.add_argument(
        "--max-turns", type=int, default=DEFAULTS.max_turns, help="assistant turns per sample (default %(default)s)"
    )
    p.add_argument(
        "--clip-caption",
        action="store_true",
        help="tell the model each clip's absolute range in text (off in the reference)",
    )
    image = p.add_mutually_exclusive_group()
    image.add_argument(
        "--with-image",
        dest="with_image",
        action="store_true",
        default=DEFAULTS.with_image,
        help="show a sample's image after the video (Video-MMMU Adaptation; the reference behaviour, on by default)",
    )
    image.add_argument(
        "--no-image",
        dest="with_image",
        action="store_false",
        help="leave the Video-MMMU Adaptation image out of the prompt (recorded as with_image=false)",
    )
    p.add_argument(
        "--prompt-length",
        type=int,
        default=DEFAULTS.prompt_length,
        help="token budget of the prompt (default %(default)s)",
    )
    p.add_argument(
        "--response-length",
        type=int,
        default=DEFAULTS.response_length,
        help="token budget of all turns incl. clips (default %(default)s)",
    )
    p.add_argument(
        "--max-model-len", type=int, default=DEFAULTS.max_model_len, help="context length (default %(default)s)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="samples per engine call; a kill loses at most one batch (default: engine's)",
    )
    p.add_argument(
        "--tensor-parallel", type=int, default=DEFAULTS.tensor_parallel, help="verl engine: GPUs per vLLM replica"
    )
    p.add_argument("--n-gpus-per-node", type=int, default=DEFAULTS.n_gpus_per_node, help="verl engine: GPUs per node")
    p.add_argument(
        "--nnodes", type=int, default=DEFAULTS.nnodes, help="verl engine: nodes of the Ray cluster (RAY_ADDRESS)"
    )
    p.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=DEFAULTS.gpu_memory_utilization,
        help="verl engine: vLLM memory share",
    )
    p.add_argument(
        "--mm-processor-cache-gb",
        type=float,
        default=DEFAULTS.mm_processor_cache_gb,
        help="verl engine: vLLM multimodal processor cache in GiB; same outputs, the prompt video encoded once per "
        "sample instead of once per turn; 0 = the reference's setting (default %(default)s)",
    )
    p.add_argument("--script", help="scripted engine: JSON {sample id: [turn texts]} ('*' for all others)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="run seed: each request is seeded from (seed, sample id, turn), every engine",
    )
    p.add_argument("--limit", type=int, help="only the first N samples (of the shard)")
    p.add_argument("--shard", type=parse_shard, help="i/n: run every n-th sample starting at i (own output file)")
    p.add_argument(
        "--force", action="store_true", help="append even if the existing file was written with other settings"
    )
    p.add_argument(
        "--no-check-videos", action="store_true", help="do not check that every video file exists before starting"
    )
    return p


def settings_from_args(args: argparse.Namespace, benchmark: str, revision: str | None = None) -> EvalSettings:
    """The settings of ``benchmark`` in this run (the benchmark's prompt templates enter ``prompt_version``)."""
    settings = EvalSettings(
        benchmark=benchmark,
        model=str(args.model),
        engine=args.engine,
        max_frames=args.max_frames,
        max_pixels=args.max_pixels,
        min_pixels=args.min_pixels,
        fps=args.fps,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        max_turns=args.max_turns,
        clip_caption=args.clip_caption,
        with_image=args.with_image,
        prompt_length=args.prompt_length,
        response_length=args.response_length,
        max_model_len=args.max_model_len,
        batch_size=args.batch_size,
        tensor_parallel=args.tensor_parallel,
        n_gpus_per_node=args.n_gpus_per_node,
        nnodes=args.nnodes,
        gpu_memory_utilization=args.gpu_memory_utilization,
        mm_processor_cache_gb=args.mm_processor_cache_gb,
        script=str(Path(args.script).resolve()) if args.script else None,
        seed=args.seed,
        model_revision=revision,
        prompt_version=prompt_version(get_task(benchmark).prompts),
        git_commit=git_commit(),
    )
    return platform_settings(settings)


def failed_record(sample: EvalSample, reason: str) -> dict[str, Any]:
    """The prediction line of a sample that could not be run (scored as unanswered)."""
    record = sample.to_record()
    record.update(
        turns=[],
        response="",
        final_answer=None,
        tool_calls=[],
        n_clips=0,
        termination="failed",
        failed=True,
        error=reason[:2000],
    )
    return record


async def run_samples(engine, batch: list[EvalSample], start_index: int) -> list[dict[str, Any]]:
    """Prediction lines of ``batch``; a batch that raises is re-run one sample at a time, and a sample that
    still raises (an unreadable video, ...) becomes a failed record with its reason."""
    try:
        trajectories = await engine.run_batch(batch, start_index=start_index)
        if len(trajectories) != len(batch):
            raise RuntimeError(f"engine returned {len(trajectories)} trajectories for {len(batch)} samples")
        return [make_record(s, t) for s, t in zip(batch, trajectories)]
    except Exception:  # noqa: BLE001 - one bad sample must not stop the run
        if len(batch) > 1:
            out = []
            for i, sample in enumerate(batch):
                out.extend(await run_samples(engine, [sample], start_index + i))
            return out
        problem = input_problem(batch[0])
        if problem is None:  # the inputs read fine: not a bad sample but a failing engine, stop with its error
            raise
        print(
            f"[run] {batch[0].benchmark} sample {batch[0].id}: failed ({problem}); recorded as unanswered",
            file=sys.stderr,
        )
        return [failed_record(batch[0], problem)]


def input_problem(sample: EvalSample) -> str | None:
    """Why the sample's video (or image) cannot be read, or None when both read fine."""
    try:
        from tools.video_io import probe, sample_clip

        info = probe(sample.video)
        sample_clip(sample.video, 0.0, float(info.duration), min_pixels=28 * 28, max_pixels=56 * 56)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the answer
        return f"video {sample.video} cannot be read ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    if sample.image:
        try:
            from PIL import Image

            with Image.open(sample.image) as img:
                img.load()
        except Exception as exc:  # noqa: BLE001
            return f"image {sample.image} cannot be read ({exc.__class__.__name__})"
    return None


class _Plan:
    """One benchmark of the run: its samples still to do and its open (locked) prediction file."""

    def __init__(
        self, name: str, settings: EvalSettings, out: Path, todo: list[EvalSample], total: int, writer: PredictionWriter
    ):
        self.name, self.settings, self.out, self.todo, self.total, self.writer = (
            name,
            settings,
            out,
            todo,
            total,
            writer,
        )


def _prepare(args: argparse.Namespace, name: str, revision: str | None, model_source: str) -> _Plan:
    """Load the benchmark, lock its prediction file, check settings and resume state, write the settings file."""
    data_dir = Path(args.data_dir) if args.data_dir else benchmark_dir(name, args.data_root)
    samples = select(load_benchmark(name, data_dir, check_videos=not args.no_check_videos), args.shard, args.limit)
    settings = settings_from_args(args, name, revision)
    out = predictions_path(args.output_dir, name, args.shard)
    writer = PredictionWriter(out)  # the lock: a second run on this file stops here
    try:
        earlier = read_settings(out)
        mixed = check_settings(out, settings.to_dict(), args.force)
        if mixed:
            print(
                f"[run] {name}: --force: appending to {out} with other settings ({'; '.join(mixed)}); "
                "the earlier settings stay in its settings file (earlier_settings)",
                file=sys.stderr,
            )
        lines: list[int] = []
        records = repair_and_read(out, lines=lines)
        done = done_ids(out, records, lines)
        todo = [s for s in samples if s.id not in done]
        # model_source: what the user pointed at (a hub id or training checkpoint, recorded next to the resolved dir)
        record = {
            **settings.to_dict(),
            "data_dir": str(data_dir.resolve()),
            "model_source": model_source,
            "shard": f"{args.shard[0]}/{args.shard[1]}" if args.shard else None,
            "n_selected": len(samples),
        }
        write_json_atomic(settings_path(out), with_earlier_settings(record, earlier, bool(mixed)))
    except BaseException:
        writer.close()
        raise
    return _Plan(name, settings, out, todo, len(samples), writer)


def resolve_benchmarks(names: Sequence[str]) -> list[str]:
    """Our names of the requested benchmarks ('all': every one), in the given order, without repeats."""
    if list(names) == ["all"]:
        return list(all_tasks())
    return list(dict.fromkeys(get_task(n).name for n in names))


async def run(args: argparse.Namespace) -> dict[str, str]:
    """Run every requested benchmark on one engine; returns {benchmark: "ok" or the reason it failed}."""
    from tqdm import tqdm

    names = resolve_benchmarks(args.benchmarks)
    if args.data_dir and len(names) > 1:
        raise BenchmarkError("--data-dir names one benchmark's directory; with several benchmarks use --data-root")
    remove_stale_partials(args.output_dir)
    model_source, revision = str(args.model), args.model_revision
    if args.engine != "scripted":
        from eval.checkpoint import is_hub_id, resolve_hub_model, resolve_model

        if is_hub_id(args.model):
            args.model, revision = resolve_hub_model(str(args.model), args.model_revision, args.model_mirror)
        else:
            args.model = resolve_model(args.model)  # a verl FSDP checkpoint is merged into a HF directory once
    status: dict[str, str] = {}
    plans: list[_Plan] = []
    for name in names:
        try:
            plans.append(_prepare(args, name, revision, model_source))
        except (BenchmarkError, SettingsMismatch, PredictionFileLocked, CorruptPredictions, OSError) as exc:
            status[name] = str(exc)
            print(f"[run] {name}: skipped: {exc}", file=sys.stderr)
    engine = None
    try:
        for plan in plans:
            with plan.writer:
                if not plan.todo:
                    print(f"[run] {plan.name}: all {plan.total} samples already in {plan.out}")
                    status[plan.name] = "ok"
                    continue
                if engine is None:
                    print(f"[run] starting the {args.engine} engine with {args.model}", flush=True)
                    engine = make_engine(plan.settings, Path(args.output_dir))
                    await engine.start()
                batch_size = args.batch_size or engine.default_batch_size
                with tqdm(
                    total=plan.total,
                    initial=plan.total - len(plan.todo),
                    desc=plan.name,
                    unit="sample",
                    dynamic_ncols=True,
                ) as bar:
                    for start in range(0, len(plan.todo), batch_size):
                        batch = plan.todo[start : start + batch_size]
                        for record in await run_samples(engine, batch, start):
                            plan.writer.append(record)
                        bar.update(len(batch))
                print(f"[run] {plan.name}: {plan.total} samples in {plan.out}")
                status[plan.name] = "ok"
    finally:
        for plan in plans:
            plan.writer.close()
        if engine is not None:
            engine.close()
    return {name: status.get(name, "not run") for name in names}


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_verl_warnings()  # before any engine imports verl
    from eval.checkpoint import CheckpointError

    try:
        status = asyncio.run(run(args))
    except (BenchmarkError, CheckpointError, SettingsMismatch, PredictionFileLocked, CorruptPredictions) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = {k: v for k, v in status.items() if v != "ok"}
    if failed:
        print(
            f"[run] failed: {', '.join(failed)} (ran: {', '.join(k for k in status if k not in failed) or 'none'})",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
