"""Memory and time of the agent loop's video work for one GRPO group, shared vs verl's default path.

A group of ``--rollouts`` rollouts of one prompt on a long video at training settings (512 frames
max, 50,176 px per frame); every rollout makes two tool calls on ranges around the same moment.
Variants, each in its own subprocess (clean RSS):

* ``single``: one rollout, our path (uint8 prompt decode + clips through the frame cache);
* ``shared``: the group on our path: one prompt decode shared by all rollouts (the loop's
  ``PromptVideoCache``), clips through the loop's ``cut_clips`` (``run_clip_call``, serialized per video);
* ``verl``: the group with verl's default prompt decode (qwen-vl-utils, float32, once per rollout,
  what ``AgentLoopBase.process_multi_modal_info`` does), clips as in ``shared``.

It drives the same functions the loop calls (``PromptVideoCache.acquire``, ``sample_video``,
``cut_clips``), concurrently like the worker does, and keeps every rollout's videos alive until
the group is done. The processor tensors verl builds per sample (``pixel_values_videos``) are the
same for every variant and are not part of this measurement.

Also measured: one decode-floor call per range (``ffmpeg -ss S -to E -i in.mp4 -vf fps=2,scale=W:H
-f null -``) against the amortized clip cost per call of the ``shared`` variant.

    python benchmarks/agent_loop_memory.py            # 10-minute 1280x720 video (generated if absent)
    python benchmarks/agent_loop_memory.py --quick    # 90-second 640x360 video, 4 rollouts

verl's default decode needs several GB per rollout on a long HD video (qwen-vl-utils decodes every
prompt frame at full resolution and converts it to float): 8 concurrent rollouts of the default
10-minute 720p video need ~50 GB and would be killed. The ``verl`` variant therefore runs with the
rollouts that fit in ``--mem-fraction`` of the available memory (estimated from the video before it
starts, see :func:`verl_rollout_estimate_mb`), says so, and compares per rollout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tools.cli import ArgumentParser, quiet_verl_warnings

os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")

PIXELS = 50_176
MAX_FRAMES = 512
# Peak bytes of verl's default prompt decode per full-resolution RGB byte of the sampled frames:
# decord's uint8 batch, its torch copy and the float32 resize input/output. Measured 5.7 on a
# 10-minute 1280x720 video (8.0 GB for 512 frames) and 6.8 on a 90-second 640x360 one (806 MB for
# 180 frames); 7 keeps the estimate on the safe side.
VERL_BYTES_PER_FRAME_BYTE = 7.0


def available_mb() -> float:
    """``MemAvailable`` of /proc/meminfo in MB (the memory this machine can give without swapping)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("MemAvailable not in /proc/meminfo")


def verl_rollout_estimate_mb(video: str) -> float:
    """Estimated extra peak (MB) of one rollout on verl's default decode path for ``video``."""
    from tools.video_io import probe
    from tools.video_sampling import main_video_indices

    info = probe(video)
    frames = len(main_video_indices(info.num_frames, info.fps, max_frames=MAX_FRAMES))
    return VERL_BYTES_PER_FRAME_BYTE * frames * info.width * info.height * 3 / 2**20


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
    except OSError:
        pass


def make_video(path: Path, seconds: int, width: int, height: int) -> None:
    """A synthetic H.264 test video (25 fps, a keyframe every 10 s)."""
    from tools.files import atomic_write

    def encode(tmp: Path) -> None:
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size={width}x{height}:rate=25",
                "-t",
                str(seconds),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "250",
                "-pix_fmt",
                "yuv420p",
                "-f",
                "mp4",
                str(tmp),
            ],
            check=True,
        )

    atomic_write(path, encode)


def ranges_for(rollout: int, moment: float) -> list[list[tuple[float, float]]]:
    """Two tool calls of one rollout: a wide range, then a refined one, jittered per rollout."""
    j = float(rollout % 4)
    return [[(moment - 15 + j, moment + 15 + j)], [(moment - 5 + j, moment + 8 + j)]]


async def run_variant(variant: str, video: str, rollouts: int, moment: float) -> dict:
    import torch

    from recipe.videotemp_o3.clips import cut_clips
    from recipe.videotemp_o3.prompt_cache import VideoBudget, prompt_video_cache
    from tools import protocol
    from tools.frame_cache import shared_frame_cache
    from tools.video_clip import ClipSettings
    from tools.video_io import probe, sample_video

    duration = probe(video).duration
    cache = shared_frame_cache(8 << 30)
    budget = VideoBudget(2.0, 4, MAX_FRAMES, PIXELS, PIXELS, 28)
    key = (video, budget)
    settings = ClipSettings(min_pixels=PIXELS, max_pixels=PIXELS)
    message = [
        {
            "role": "user",
            "content": [
                {
                    "type": "video",
                    "video": video,
                    "fps": 2.0,
                    "max_frames": MAX_FRAMES,
                    "min_pixels": PIXELS,
                    "max_pixels": PIXELS,
                }
            ],
        }
    ]
    loop = asyncio.get_running_loop()
    clip_times: list[float] = []
    clip_spans: list[tuple[float, float]] = []

    async def one(r: int):
        if variant == "verl":
            from qwen_vl_utils import process_vision_info

            _, videos = await loop.run_in_executor(
                None, lambda: process_vision_info(message, image_patch_size=14, return_video_metadata=True)
            )
            kept = [videos[0]]
        else:
            sampled, _ = await prompt_video_cache().acquire(
                key,
                lambda: sample_video(video, max_frames=MAX_FRAMES, min_pixels=PIXELS, max_pixels=PIXELS, cache=cache),
            )
            kept = [sampled.as_verl_video()]
        for call_ranges in ranges_for(r, moment):
            call = protocol.ToolCall(tuple(call_ranges), True, True, True)
            t0 = time.perf_counter()
            result = await loop.run_in_executor(
                None, lambda: cut_clips(video, call, settings, duration=duration, cache=cache)
            )
            clip_times.append(time.perf_counter() - t0)
            clip_spans.append((t0, time.perf_counter()))
            assert result.error is None, result.error
            kept.extend(c.as_verl_video() for c in result.clips)
        return kept

    # Warm imports and the reader so the baseline holds the libraries, not the work.
    import qwen_vl_utils  # noqa: F401

    probe(video)
    base_kb = _status_kb("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    outputs = await asyncio.gather(*(one(r) for r in range(rollouts)))
    wall = time.perf_counter() - t0
    peak_kb = _status_kb("VmHWM")
    prompt_bytes = sum(o[0][0].numel() * o[0][0].element_size() for o in outputs)
    distinct_prompts = len({id(o[0][0]) for o in outputs})
    del outputs
    torch.set_num_threads(torch.get_num_threads())
    return {
        "variant": variant,
        "rollouts": rollouts,
        "wall_s": wall,
        "extra_peak_mb": (peak_kb - base_kb) / 1024,
        "clip_calls": len(clip_times),
        "clip_total_s": sum(clip_times),  # summed latencies (concurrent calls overlap)
        "clip_busy_s": _union_length(clip_spans),  # wall time during which any clip call ran
        "prompt_decodes": prompt_video_cache().decodes if variant != "verl" else rollouts,
        "distinct_prompt_tensors": distinct_prompts,
        "prompt_bytes_held": prompt_bytes,
        "frame_cache": cache.stats,
    }


def _union_length(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def decode_floor(video: str, start: float, end: float, width: int, height: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-ss",
            str(start),
            "-to",
            str(end),
            "-i",
            video,
            "-vf",
            f"fps=2,scale={width}:{height}",
            "-f",
            "null",
            "-",
        ],
        check=True,
    )
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--video",
        type=Path,
        default=None,
        help="input video; default: a generated synthetic video under outputs/bench/",
    )
    parser.add_argument("--quick", action="store_true", help="90-second 640x360 video and 4 rollouts (a smoke run)")
    parser.add_argument("--rollouts", type=int, default=None, help="rollouts in the group (default 8, quick 4)")
    parser.add_argument(
        "--moment", type=float, default=None, help="time (s) the tool calls are centred on (default: 60%% of the video)"
    )
    parser.add_argument("--variants", default="single,shared,verl", help="comma-separated variants to run")
    parser.add_argument(
        "--mem-fraction",
        type=float,
        default=0.5,
        help="share of the available memory the verl variant may use; it runs with the rollouts that fit (default 0.5)",
    )
    parser.add_argument(
        "--mem-budget-mb",
        type=float,
        default=None,
        help="memory (MB) the verl variant may use (default: --mem-fraction of MemAvailable)",
    )
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    args = parser.parse_args(argv)
    quiet_verl_warnings()  # the verl variant (and its subprocesses) import verl

    seconds, width, height = (90, 640, 360) if args.quick else (600, 1280, 720)
    video = args.video or Path("outputs/bench") / f"synthetic_{seconds}s_{width}x{height}.mp4"
    rollouts = args.rollouts or (4 if args.quick else 8)

    if args.variant:
        from tools.video_io import probe

        moment = args.moment if args.moment is not None else 0.6 * probe(str(video)).duration
        n = 1 if args.variant == "single" else rollouts
        print(json.dumps(asyncio.run(run_variant(args.variant, str(video), n, moment))))
        return 0

    if not video.exists():
        print(f"generating {video} ...", flush=True)
        make_video(video, seconds, width, height)
    results = {}
    counts = {"single": 1, "shared": rollouts, "verl": rollouts}
    if "verl" in args.variants.split(","):
        budget = args.mem_budget_mb if args.mem_budget_mb is not None else args.mem_fraction * available_mb()
        per_rollout = verl_rollout_estimate_mb(str(video))
        counts["verl"] = min(rollouts, int(budget // per_rollout))
        if counts["verl"] < rollouts:
            print(
                f"   verl: default decode needs ~{per_rollout:.0f} MB per rollout on this video; {rollouts} rollouts "
                f"(~{per_rollout * rollouts / 1024:.1f} GB) exceed the {budget / 1024:.1f} GB allowed, so it runs "
                f"{counts['verl']} rollout(s) and is compared per rollout",
                flush=True,
            )
    for variant in args.variants.split(","):
        if counts.get(variant, rollouts) < 1:
            print(f"{variant:>7}: skipped, not even one rollout fits in the memory allowed (see --mem-budget-mb)")
            continue
        cmd = [
            sys.executable,
            __file__,
            "--variant",
            variant,
            "--video",
            str(video),
            "--rollouts",
            str(counts.get(variant, rollouts)),
        ]
        if args.moment is not None:
            cmd += ["--moment", str(args.moment)]
        if args.quick:
            cmd.append("--quick")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            why = "killed by the kernel (out of memory?)" if done.returncode in (-9, 137) else f"exit {done.returncode}"
            print(f"{variant:>7}: failed, {why}; {done.stderr.strip().splitlines()[-1:] or ''}", flush=True)
            continue
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        r = results[variant]
        print(
            f"{variant:>7}: rollouts={r['rollouts']} wall={r['wall_s']:.1f}s extra_peak={r['extra_peak_mb']:.0f} MB "
            f"prompt_decodes={r['prompt_decodes']} clip_calls={r['clip_calls']} clip_busy={r['clip_busy_s']:.2f}s "
            f"(summed latency {r['clip_total_s']:.2f}s)",
            flush=True,
        )

    from tools.video_io import probe

    moment = args.moment if args.moment is not None else 0.6 * probe(str(video)).duration
    floors = [
        decode_floor(str(video), s, e, 224, 224)
        for r in range(rollouts)
        for call in ranges_for(r, moment)
        for s, e in call
    ]
    floor = statistics.median(floors)
    print(f" floor: ffmpeg decode of one range at 2 fps, median {floor:.2f}s over {len(floors)} ranges")
    if "shared" in results and "single" in results:
        print(
            f"memory: group of {rollouts} shared / single rollout extra peak = "
            f"{results['shared']['extra_peak_mb'] / max(results['single']['extra_peak_mb'], 1e-6):.2f}x (goal <= 1.5x)"
        )
    if "shared" in results and "verl" in results:
        shared, verl = results["shared"], results["verl"]
        if verl["rollouts"] == shared["rollouts"]:
            print(
                f"memory: shared / verl default = {shared['extra_peak_mb'] / max(verl['extra_peak_mb'], 1e-6):.2f}x; "
                f"wall: shared / verl = {shared['wall_s'] / verl['wall_s']:.2f}x"
            )
        else:  # verl's default path decodes once per rollout: its peak grows with the rollouts
            per = verl["extra_peak_mb"] / verl["rollouts"]
            print(
                f"memory: verl default measured at {verl['rollouts']} of {shared['rollouts']} rollouts: {per:.0f} MB per "
                f"rollout, ~{per * shared['rollouts']:.0f} MB for {shared['rollouts']} (extrapolated); shared / verl "
                f"default per rollout = {(shared['extra_peak_mb'] / shared['rollouts']) / max(per, 1e-6):.2f}x"
            )
    if "shared" in results:
        per_call = results["shared"]["clip_busy_s"] / results["shared"]["clip_calls"]
        print(
            f"  clip: amortized (clip wall time / calls) {per_call:.3f}s per call = {per_call / floor:.2f}x one decode-floor call (goal <= 0.3x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
