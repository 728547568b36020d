"""A small, self-consistent VideoTemp-o3 dataset built from synthetic videos with known events.

Each video shows its frame index as a code (``synthetic_video``) and one or two coloured squares
that appear during known ``[start, end)`` ranges. From those events the script writes, with paths
relative to ``OUT_DIR`` (use ``--video-root OUT_DIR`` with the prepare scripts)::

    videos/vid_NNN.mp4                      the source videos
    clips/vid_NNN_cN.mp4                    pre-cut clip files of the tool-call trajectories
    images/img_NNN.png                      frames for the image samples
    rl/qa.jsonl  rl/grounding.jsonl         reference RL format
    sft/wo_tool_call/synthetic.jsonl        direct answers (video qa, grounding, one image sample per video)
    sft/wi_tool_call/synthetic.jsonl        tool-call trajectories with pre-cut clip files (one- and
                                            two-call qa trajectories by default; see --sft-calls)
    sft/wi_tool_call/synthetic_ranges.jsonl the same trajectories with clips as ranges ({"video", "clip"})
                                            or derived from the tool call (only the main video listed)
    events.json                             every video's duration, fps and events

Every first user turn is ``<video>\n<question>``, the text ``prepare_rl`` writes for RL prompts
(``protocol.user_prompt``), so SFT and RL show the model the same prompt tokens.

Tiny by default (64x48, 10-30 s, 4-8 fps) so CPU tests and demos stay quick. For teaching a tiny model the
protocol (the CPU quick start), ``--sft-calls 1 --sft-tasks qa,grounding --sft-trajectories-per-video 2``
writes only one-call trajectories: mixing one- and two-call trajectories teaches a small model to call the
tool a varying number of times, and it then often calls it a third time instead of answering.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from data_prep.synthetic_video import COLORS, Event, render_frame, write_index_video
from tools.cli import ArgumentParser
from tools.files import atomic_write_jsonl, atomic_write_text
from tools.protocol import (
    SENTENCE_GROUNDING_PROMPT,
    SYSTEM_PROMPT,
    TOOL_NAME,
    VIDEO_PLACEHOLDER,
    ClipRange,
    feedback_text,
    user_prompt,
)

COLOR_NAMES = sorted(COLORS)
QA_QUESTION = "What colour is the square that appears first in the video?"
IMAGE_QUESTION = "What colour is the square in the image?"
SFT_TASKS = ("qa", "grounding")


@dataclass
class SyntheticVideo:
    """One generated video and its ground truth."""

    name: str
    path: str  # relative to the output directory
    duration: float
    fps: float
    num_frames: int
    events: list[dict[str, Any]] = field(default_factory=list)  # [{"start", "end", "color"}]


@dataclass
class SyntheticDataset:
    """What :func:`make_synthetic` wrote (paths absolute)."""

    root: Path
    videos: list[SyntheticVideo]
    files: dict[str, Path]


def _options(rng: random.Random, answer: str) -> tuple[list[str], str]:
    """Four colour options containing ``answer``; returns (options, answer letter)."""
    others = [c for c in COLOR_NAMES if c != answer]
    options = rng.sample(others, 3) + [answer]
    rng.shuffle(options)
    return options, "ABCD"[options.index(answer)]


def _question_with_options(question: str, options: list[str]) -> str:
    return question + "".join(f"\n{letter}. {opt}" for letter, opt in zip("ABCD", options))


def _tool_call(ranges: Sequence[tuple[float, float]]) -> str:
    arguments = [{"start_time": round(s, 1), "end_time": round(e, 1)} for s, e in ranges]
    return f"<tool_call>{json.dumps({'name': TOOL_NAME, 'arguments': arguments})}</tool_call>"


def _events(rng: random.Random, duration: float) -> list[Event]:
    """One or two non-overlapping events of 2-5 s with distinct colours."""
    count = rng.choice([1, 2])
    colors = rng.sample(COLOR_NAMES, count)
    slot = duration / count
    events = []
    for k, color in enumerate(colors):
        length = rng.uniform(2.0, min(5.0, slot * 0.6))
        start = k * slot + rng.uniform(0.5, slot - length - 0.2)
        events.append(Event(round(start, 1), round(start + length, 1), color))
    return events


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def _rl_rows(video: SyntheticVideo, rng: random.Random) -> tuple[dict, dict]:
    first = video.events[0]
    options, letter = _options(rng, first["color"])
    qa = {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_prompt(_question_with_options(QA_QUESTION, options))},
        ],
        "videos": [video.path],
        "data_type": "qa",
        "timestamp": [[first["start"], first["end"]]],
        "solution": f"<answer>{letter}</answer>",
    }
    sentence = f"a {first['color']} square appears."
    grounding = {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_prompt(SENTENCE_GROUNDING_PROMPT.format(query=sentence))},
        ],
        "videos": [video.path],
        "data_type": "grounding",
        "timestamp": [[first["start"], first["end"]]],
        "solution": f"<answer>The event happens in the {_fmt(first['start'])} - {_fmt(first['end'])} seconds</answer>",
    }
    return qa, grounding


def _sft_direct(video: SyntheticVideo, rng: random.Random) -> list[dict]:
    first = video.events[0]
    options, letter = _options(rng, first["color"])
    qa = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_prompt(_question_with_options(QA_QUESTION, options))},
        {
            "role": "assistant",
            "content": f"<think>A {first['color']} square is the first thing that appears, "
            f"at about {_fmt(first['start'])} s.</think><answer>{letter}</answer>",
        },
    ]
    sentence = f"a {first['color']} square appears."
    grounding = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_prompt(SENTENCE_GROUNDING_PROMPT.format(query=sentence))},
        {
            "role": "assistant",
            "content": f"<think>The {first['color']} square is visible from about "
            f"{_fmt(first['start'])} s to {_fmt(first['end'])} s.</think>"
            f"<answer>The event happens in the {_fmt(first['start'])} - "
            f"{_fmt(first['end'])} seconds</answer>",
        },
    ]
    return [{"messages": qa, "videos": [video.path]}, {"messages": grounding, "videos": [video.path]}]


def _trajectory(
    video: SyntheticVideo, rng: random.Random, calls: int, task: str = "qa"
) -> tuple[list[dict], list[tuple[float, float]]]:
    """A one- or two-call trajectory of a ``qa`` or ``grounding`` question; returns (messages, clip ranges)."""
    first = video.events[0]
    coarse = (max(0.0, round(first["start"] - 3.0, 1)), min(video.duration, round(first["end"] + 3.0, 1)))
    fine = (first["start"], first["end"])
    ranges = [fine] if calls == 1 else [coarse, fine]
    if task == "qa":
        options, letter = _options(rng, first["color"])
        question = _question_with_options(QA_QUESTION, options)
        final = f"<think>The clip shows a {first['color']} square.</think><answer>{letter}</answer>"
    else:
        question = SENTENCE_GROUNDING_PROMPT.format(query=f"a {first['color']} square appears.")
        final = (
            f"<think>The {first['color']} square is visible in the clip.</think><answer>The event happens in "
            f"the {_fmt(first['start'])} - {_fmt(first['end'])} seconds</answer>"
        )
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_prompt(question)},
    ]
    for k, (start, end) in enumerate(ranges):
        why = "I need a closer look at the start of the video." if k == 0 else "Let me narrow the range."
        messages.append({"role": "assistant", "content": f"<think>{why}</think>{_tool_call([(start, end)])}"})
        messages.append({"role": "user", "content": VIDEO_PLACEHOLDER + feedback_text([ClipRange(start, end)])})
    messages.append({"role": "assistant", "content": final})
    return messages, ranges


def _write_clip(out: Path, rel: str, video: SyntheticVideo, start: float, end: float, width: int, height: int) -> None:
    """A pre-cut clip file: the source's events shifted to clip time (as the reference's OpenCV cut)."""
    events = [
        Event(max(0.0, e["start"] - start), e["end"] - start, e["color"])
        for e in video.events
        if e["end"] > start and e["start"] < end
    ]
    num_frames = max(2, round((end - start) * video.fps))
    write_index_video(out / rel, num_frames=num_frames, fps=video.fps, width=width, height=height, events=events)


def _write_image(path: Path, color: str, width: int, height: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(render_frame(0, width, height, color)).save(path)


def make_synthetic(
    out_dir: str | Path,
    *,
    n_videos: int = 4,
    seed: int = 0,
    width: int = 64,
    height: int = 48,
    fps: float | None = None,
    min_seconds: float = 10.0,
    max_seconds: float = 30.0,
    codec: str = "libx264",
    sft_calls: Sequence[int] = (1, 2),
    sft_tasks: Sequence[str] = ("qa",),
    sft_trajectories_per_video: int = 1,
    progress: bool = False,
) -> SyntheticDataset:
    """Write the dataset under ``out_dir`` (see module doc) and return what was written.

    Tool-call SFT trajectories per video: ``sft_trajectories_per_video`` for each tool-call count in
    ``sft_calls`` (1 or 2), the tasks of ``sft_tasks`` (``qa``, ``grounding``) taken in turn.
    """
    if n_videos < 1:
        raise ValueError(f"n_videos must be >= 1, got {n_videos}")
    if not sft_calls or any(c not in (1, 2) for c in sft_calls):
        raise ValueError(f"sft_calls must be a non-empty list of 1 and/or 2, got {list(sft_calls)}")
    if not sft_tasks or any(t not in SFT_TASKS for t in sft_tasks):
        raise ValueError(f"sft_tasks must be a non-empty list of {SFT_TASKS}, got {list(sft_tasks)}")
    if sft_trajectories_per_video < 1:
        raise ValueError(f"sft_trajectories_per_video must be >= 1, got {sft_trajectories_per_video}")
    if not 8.0 <= min_seconds <= max_seconds:
        raise ValueError(f"need 8 <= min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    out = Path(out_dir).resolve()
    rng = random.Random(seed)
    videos: list[SyntheticVideo] = []
    rl_qa, rl_grounding, sft_direct, sft_clips, sft_ranges = [], [], [], [], []
    indices: Any = range(n_videos)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synthetic videos", unit="video", file=sys.stderr)
    for i in indices:
        video_fps = float(fps) if fps else float(rng.randint(4, 8))
        duration = round(rng.uniform(min_seconds, max_seconds))
        num_frames = int(round(duration * video_fps))
        events = _events(rng, duration)
        name = f"vid_{i:03d}"
        video = SyntheticVideo(
            name, f"videos/{name}.mp4", num_frames / video_fps, video_fps, num_frames, [asdict(e) for e in events]
        )
        write_index_video(
            out / video.path,
            num_frames=num_frames,
            fps=video_fps,
            width=width,
            height=height,
            codec=codec,
            events=events,
        )
        videos.append(video)

        qa, grounding = _rl_rows(video, rng)
        rl_qa.append(qa)
        rl_grounding.append(grounding)

        sft_direct.extend(_sft_direct(video, rng))
        image_rel = f"images/img_{i:03d}.png"
        _write_image(out / image_rel, events[0].color, width, height)
        options, letter = _options(rng, events[0].color)
        sft_direct.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": "<image>\n" + _question_with_options(IMAGE_QUESTION, options)},
                    {
                        "role": "assistant",
                        "content": f"<think>The square is {events[0].color}.</think><answer>{letter}</answer>",
                    },
                ],
                "images": [image_rel],
            }
        )

        for calls in sft_calls:
            for repeat in range(sft_trajectories_per_video):
                task = sft_tasks[repeat % len(sft_tasks)]
                messages, ranges = _trajectory(video, rng, calls, task)
                # a call count's ranges depend only on the event: every repeat shares the clip files
                clip_files = [f"clips/{name}_call{calls}_c{k}.mp4" for k in range(len(ranges))]
                if repeat == 0:
                    for rel, (start, end) in zip(clip_files, ranges):
                        _write_clip(out, rel, video, start, end, width, height)
                sft_clips.append({"messages": messages, "videos": [video.path, *clip_files]})
                if calls == 1:  # clip given as a range
                    sft_ranges.append(
                        {
                            "messages": messages,
                            "videos": [video.path, *({"video": video.path, "clip": list(r)} for r in ranges)],
                        }
                    )
                else:  # clips derived from the tool calls: only the main video is listed
                    sft_ranges.append({"messages": messages, "videos": [video.path]})

    files = {
        "rl_qa": atomic_write_jsonl(out / "rl" / "qa.jsonl", rl_qa),
        "rl_grounding": atomic_write_jsonl(out / "rl" / "grounding.jsonl", rl_grounding),
        "sft_direct": atomic_write_jsonl(out / "sft" / "wo_tool_call" / "synthetic.jsonl", sft_direct),
        "sft_clips": atomic_write_jsonl(out / "sft" / "wi_tool_call" / "synthetic.jsonl", sft_clips),
        "sft_ranges": atomic_write_jsonl(out / "sft" / "wi_tool_call" / "synthetic_ranges.jsonl", sft_ranges),
    }
    files["events"] = atomic_write_text(out / "events.json", json.dumps([asdict(v) for v in videos], indent=1))
    return SyntheticDataset(out, videos, files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        description="Write a small synthetic VideoTemp-o3 dataset: videos with coloured-square events and matching "
        "RL (rl/qa.jsonl, rl/grounding.jsonl) and SFT (sft/wo_tool_call, sft/wi_tool_call) jsonl in "
        "the reference format, paths relative to OUT_DIR.",
    )
    parser.add_argument("out_dir", help="output directory (created; existing files with the same names are replaced)")
    parser.add_argument(
        "--n-videos",
        type=int,
        default=4,
        help="number of source videos (default 4); each gives "
        "1 qa + 1 grounding RL row, 3 direct SFT rows and the tool-call trajectories below",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of durations, events and options (default 0)")
    parser.add_argument("--width", type=int, default=64, help="frame width in pixels, even (default 64)")
    parser.add_argument("--height", type=int, default=48, help="frame height in pixels, even (default 48)")
    parser.add_argument(
        "--fps", type=float, default=None, help="frame rate of every video (default: 4-8, drawn per video)"
    )
    parser.add_argument("--min-seconds", type=float, default=10.0, help="shortest video in seconds, >= 8 (default 10)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="longest video in seconds (default 30)")
    parser.add_argument("--codec", default="libx264", help="video encoder: libx264 or mpeg4 (default libx264)")
    parser.add_argument(
        "--sft-calls",
        default="1,2",
        help="tool calls per SFT trajectory, comma-separated: '1,2' "
        "(default: a one-call and a two-call trajectory per video) or '1' (one-call only: a consistent "
        "call-then-answer pattern, what a tiny model learns the protocol from)",
    )
    parser.add_argument(
        "--sft-tasks",
        default="qa",
        help="questions of the tool-call trajectories, comma-separated, "
        "taken in turn: 'qa' (default) or 'qa,grounding'",
    )
    parser.add_argument(
        "--sft-trajectories-per-video",
        type=int,
        default=1,
        help="tool-call trajectories per video and call count (default 1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        calls = [int(c) for c in args.sft_calls.split(",") if c.strip()]
    except ValueError:
        print(f"error: --sft-calls must be comma-separated integers, got {args.sft_calls!r}", file=sys.stderr)
        return 2
    try:
        data = make_synthetic(
            args.out_dir,
            n_videos=args.n_videos,
            seed=args.seed,
            width=args.width,
            height=args.height,
            fps=args.fps,
            min_seconds=args.min_seconds,
            max_seconds=args.max_seconds,
            codec=args.codec,
            sft_calls=calls,
            sft_tasks=[t.strip() for t in args.sft_tasks.split(",") if t.strip()],
            sft_trajectories_per_video=args.sft_trajectories_per_video,
            progress=not args.no_progress,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for key, path in data.files.items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
