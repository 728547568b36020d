"""Latency and memory of the clip tool against the reference method and the decode floor.

Per clip range (5 s, 30 s, 120 s at random positions of a long 1280x720 25 fps H.264 video with a
10 s keyframe interval):

* ours cold: a fresh reader (the video opened and indexed) and an empty frame cache
  (``tools.video_io.sample_clip``);
* ours warm: the reader already open (no frame-cache hits);
* reference: cut the range into a new full-resolution mp4 (ffmpeg re-encode, as the reference cut
  clips with OpenCV), then decode that file at 2 fps with the pixel budget (``qwen_vl_utils.fetch_video``);
* floor: ffmpeg decoding only that range at 2 fps at the same size, output discarded.

Then the whole-prompt decode (512 frames at 50,176 px) of a 10-minute 720p video: ours vs
``qwen_vl_utils.fetch_video``, each in its own subprocess (time and peak RSS over the process's
baseline after imports), and ffmpeg's decode floor for the same frames; ``--prompt-repeats`` runs
of each, interleaved, reported as medians (the CPU may be shared).

    python benchmarks/tool_latency.py            # full run (generates the videos once, minutes)
    python benchmarks/tool_latency.py --quick    # small smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.cli import ArgumentParser

os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PIXELS = 50_176
FPS = 25
WIDTH, HEIGHT = 1280, 720
KEYINT = 10 * FPS


def ensure_video(cache_dir: Path, minutes: float) -> Path:
    """The synthetic 720p H.264 test video of ``minutes`` length, generated once into ``cache_dir``."""
    from data_prep.synthetic_video import write_index_video

    path = cache_dir / f"index_{minutes:g}min_{WIDTH}x{HEIGHT}_{FPS}fps_k{KEYINT}.mp4"
    if not path.exists():
        print(f"generating {path} (once) ...", flush=True)
        write_index_video(
            path,
            num_frames=round(minutes * 60 * FPS),
            fps=FPS,
            width=WIDTH,
            height=HEIGHT,
            keyint=KEYINT,
            preset="ultrafast",
            progress=True,
        )
    return path


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ffmpeg_floor(path: Path, start: float | None, end: float | None, rate: str, height: int, width: int) -> None:
    cmd = ["ffmpeg", "-v", "error", "-nostdin"]
    if start is not None:
        cmd += ["-ss", f"{start:.3f}", "-to", f"{end:.3f}"]
    cmd += ["-i", str(path), "-vf", f"fps={rate},scale={width}:{height}", "-f", "null", "-"]
    subprocess.run(cmd, check=True)


def reference_clip(path: Path, start: float, end: float, workdir: Path) -> None:
    from qwen_vl_utils import fetch_video

    out = workdir / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-ss",
            f"{start:.3f}",
            "-to",
            f"{end:.3f}",
            "-i",
            str(path),
            "-an",
            "-c:v",
            "mpeg4",
            "-q:v",
            "4",
            str(out),
        ],
        check=True,
    )
    fetch_video(
        {"video": str(out), "fps": 2.0, "min_frames": 4, "max_frames": 64, "min_pixels": PIXELS, "max_pixels": PIXELS}
    )
    out.unlink()


def bench_clips(path: Path, lengths: list[float], repeats: int, seed: int) -> None:
    import random

    from tools import video_io
    from tools.video_sampling import resized_hw

    info = video_io.probe(path)
    height, width = resized_hw(info.height, info.width, min_pixels=PIXELS, max_pixels=PIXELS)
    rng = random.Random(seed)
    baseline = rss_mb()
    rows = []
    all_ratios_floor, all_ratios_ref = [], []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for length in lengths:
            times: dict[str, list[float]] = {"cold": [], "warm": [], "reference": [], "floor": []}
            for _ in range(repeats):
                start = rng.uniform(0, info.duration - length)
                end = start + length
                video_io.close_all_readers()
                times["cold"].append(timed(lambda: video_io.sample_clip(path, start, end)))
                times["warm"].append(timed(lambda: video_io.sample_clip(path, start, end)))
                times["reference"].append(timed(lambda: reference_clip(path, start, end, workdir)))
                times["floor"].append(timed(lambda: ffmpeg_floor(path, start, end, "2", height, width)))
                all_ratios_floor.append(times["warm"][-1] / times["floor"][-1])
                all_ratios_ref.append(times["warm"][-1] / times["reference"][-1])
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((length, med))
    print(
        f"\nclip latency, {info.duration / 60:.0f}-min {info.width}x{info.height} {info.fps:g} fps H.264, "
        f"keyframe every {KEYINT / FPS:g} s, frames {height}x{width}, {repeats} random ranges each (medians, s)"
    )
    print(
        f"{'range':>7} {'ours cold':>10} {'ours warm':>10} {'reference':>10} {'floor':>8} "
        f"{'warm/ref':>9} {'warm/floor':>11} {'cold/floor':>11}"
    )
    for length, med in rows:
        print(
            f"{length:>6g}s {med['cold']:>10.3f} {med['warm']:>10.3f} {med['reference']:>10.3f} {med['floor']:>8.3f} "
            f"{med['warm'] / med['reference']:>9.2f} {med['warm'] / med['floor']:>11.2f} "
            f"{med['cold'] / med['floor']:>11.2f}"
        )
    print(
        f"median over the mix: ours(warm)/floor = {statistics.median(all_ratios_floor):.2f}, "
        f"ours(warm)/reference = {statistics.median(all_ratios_ref):.2f}"
    )
    print(
        f"peak RSS during the clip runs (reference included: it decodes at full resolution): "
        f"{peak_rss_mb() - baseline:.0f} MB over the process baseline"
    )


def worker(kind: str, path: str, max_frames: int) -> None:
    """Subprocess body: one whole-prompt decode, printing JSON with time and peak RSS over baseline."""
    if kind == "ours":
        from tools.video_io import sample_video

        def run():
            return sample_video(path, max_frames=max_frames, min_pixels=PIXELS, max_pixels=PIXELS).frames
    else:
        from qwen_vl_utils import fetch_video

        def run():
            return fetch_video(
                {"video": path, "fps": 2.0, "max_frames": max_frames, "min_pixels": PIXELS, "max_pixels": PIXELS}
            )

    import threading

    import torch  # noqa: F401  (imports belong to the baseline)

    # Sampled RSS, not ru_maxrss: Linux carries the parent's high-water mark across fork+exec.
    baseline = rss_mb()
    peak = [baseline]
    done = threading.Event()

    def monitor() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss_mb())

    threading.Thread(target=monitor, daemon=True).start()
    start = time.perf_counter()
    frames = run()
    elapsed = time.perf_counter() - start
    done.set()
    peak[0] = max(peak[0], rss_mb())
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_over_baseline_mb": peak[0] - baseline,
                "result_mb": frames.numel() * frames.element_size() / 2**20,
                "shape": list(frames.shape),
            }
        )
    )


def bench_prompt(path: Path, max_frames: int, repeats: int) -> None:
    from tools import video_io
    from tools.video_sampling import resized_hw

    info = video_io.probe(path)
    height, width = resized_hw(info.height, info.width, min_pixels=PIXELS, max_pixels=PIXELS)
    runs: dict[str, list[dict]] = {"ours": [], "qwen": []}
    floors: list[float] = []
    n = 0
    for _ in range(repeats):
        for kind in runs:
            out = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    kind,
                    str(path),
                    "--prompt-frames",
                    str(max_frames),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
        n = runs["ours"][-1]["shape"][0]
        floors.append(timed(lambda: ffmpeg_floor(path, None, None, f"{n}/{info.duration:.3f}", height, width)))
    floor = statistics.median(floors)
    print(
        f"\nwhole-prompt decode: {info.duration / 60:.0f}-min {info.width}x{info.height}, {n} frames at "
        f"{height}x{width}, medians of {repeats} runs"
    )
    print(f"{'':>6} {'seconds':>8} {'x floor':>8} {'peak RSS over baseline (MB)':>28} {'result (MB)':>12}   runs (s)")
    for kind, results in runs.items():
        seconds = [r["seconds"] for r in results]
        med = statistics.median(seconds)
        peak = statistics.median(r["peak_over_baseline_mb"] for r in results)
        print(
            f"{kind:>6} {med:>8.2f} {med / floor:>8.2f} {peak:>28.0f} {results[0]['result_mb']:>12.0f}   "
            + " ".join(f"{x:.2f}" for x in seconds)
        )
    print(
        f"{'floor':>6} {floor:>8.2f} {1.0:>8.2f}   (ffmpeg fps+scale to null)"
        f"{'':>30}" + " ".join(f"{x:.2f}" for x in floors)
    )


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description="Clip-tool latency vs the reference method and ffmpeg's decode floor.")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the clip benchmark video (default 30)")
    parser.add_argument(
        "--prompt-minutes", type=float, default=10.0, help="length of the whole-prompt benchmark video (default 10)"
    )
    parser.add_argument("--prompt-frames", type=int, default=512, help="frame cap of the prompt video (default 512)")
    parser.add_argument("--repeats", type=int, default=5, help="random ranges per clip length (default 5)")
    parser.add_argument(
        "--prompt-repeats",
        type=int,
        default=3,
        help="runs of each whole-prompt decode (ours, qwen-vl-utils, floor), interleaved (default 3)",
    )
    parser.add_argument(
        "--lengths",
        type=float,
        nargs="+",
        default=[5.0, 30.0, 120.0],
        help="clip lengths in seconds (default 5 30 120)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random range positions")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "videotemp_bench",
        help="where the generated videos are kept between runs",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2-min videos, 5 s and 30 s ranges, 2 repeats")
    parser.add_argument("--skip-prompt", action="store_true", help="skip the whole-prompt decode comparison")
    parser.add_argument("--skip-clips", action="store_true", help="skip the clip latency comparison")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "VIDEO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], args.prompt_frames)
        return
    if shutil.which("ffmpeg") is None:
        parser.error("the ffmpeg CLI is needed for the reference and floor measurements")
    if args.quick:
        args.minutes, args.prompt_minutes, args.repeats, args.lengths = 2.0, 1.0, 2, [5.0, 30.0]
        args.prompt_repeats = 1
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"CPU cores visible: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
    if not args.skip_clips:
        bench_clips(ensure_video(args.cache_dir, args.minutes), args.lengths, args.repeats, args.seed)
    if not args.skip_prompt:
        bench_prompt(ensure_video(args.cache_dir, args.prompt_minutes), args.prompt_frames, args.prompt_repeats)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
