"""RL jsonl -> verl parquet for ``RLHFDataset`` and the ``videotemp_agent`` loop.

Input rows, in either of two schemas (several files may be given; they are concatenated):

* reference (``rl/data/{qa,grounding}.jsonl``)::

    {"messages": [{"role": "system", ...}, {"role": "user", "content": "<video>Question ... A. ... B. ..."}],
     "videos": ["videos/x.mp4"], "data_type": "qa", "timestamp": [[12.0, 30.5]], "solution": "<answer>B</answer>"}

  The row's own system prompt is kept (``--replace-system-prompt`` puts the protocol module's in its
  place); ``solution`` is required for qa rows only (a grounding row's target is its ``timestamp``).
* plain::

    {"video": "videos/x.mp4", "question": "...", "options": ["...", "..."], "answer": "B",
     "timestamps": [[12.0, 30.5]], "data_type": "qa"}

  (the system prompt is the protocol module's).

Evidence that ends past the probed duration by at most ``DURATION_TOLERANCE_S`` (annotation rounding)
is clamped to the duration and counted in the summary; further out the row is rejected.
Output (``OUT/train.parquet``, ``OUT/val.parquet`` with ``--val-fraction``, ``OUT/rejects.jsonl``):
``data_source``, ``agent_name``, ``prompt`` (system + user with ``<video>``), ``videos`` (one fixed key
set: video, fps, max_frames, min_pixels, max_pixels), ``ability``, ``reward_model.ground_truth``
(``{data_type, answer, timestamps}``) and ``extra_info`` (index, data type, duration, video path, the
clip tool's ``tools_kwargs``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from data_prep.common import (
    DURATION_TOLERANCE_S,
    LETTERS,
    Fixes,
    MediaInfo,
    ProbeCache,
    Result,
    RowError,
    add_common_arguments,
    answer_letter,
    answer_text,
    check_arguments,
    check_letter,
    check_segments,
    clamp_segments,
    format_options,
    interrupted,
    media_path,
    option_letters_in_text,
    parse_inputs,
    parse_segments,
    probe_cache_path,
    probe_media,
    reject_at,
    require,
    resolve_path,
    split_result,
    write_outputs,
)
from data_prep.release_layout import resolve_inputs
from reward_fns.answer_parsing import answer_segments
from tools.cli import ArgumentParser
from tools.protocol import (
    AGENT_NAME,
    SYSTEM_PROMPT,
    TOOL_NAME,
    TRAIN_MAX_FRAMES,
    TRAIN_PIXELS,
    VIDEO_FPS,
    VIDEO_PLACEHOLDER,
    user_prompt,
)

DATA_TYPES = ("qa", "grounding")
ABILITY = {"qa": "video_qa", "grounding": "video_grounding"}


@dataclass(frozen=True)
class VideoSettings:
    """The prompt-video sampling keys written into every row's ``videos`` entry."""

    fps: float = VIDEO_FPS
    max_frames: int = TRAIN_MAX_FRAMES
    min_pixels: int = TRAIN_PIXELS
    max_pixels: int = TRAIN_PIXELS

    def entry(self, path: str) -> dict[str, Any]:
        return {
            "video": path,
            "fps": self.fps,
            "max_frames": self.max_frames,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }


@dataclass
class ParsedRow:
    """An input row read and checked as far as possible without the video."""

    source: str  # "file:line"
    video: str  # absolute path
    question: str  # user text after the <video> placeholder (options included)
    data_type: str
    answer: str  # qa: the letter; grounding: the answer text
    timestamps: list[tuple[float, float]]
    system: str | None = None  # the row's own system prompt, if it has one


def _schema() -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    video = pa.struct(
        [
            ("video", pa.string()),
            ("fps", pa.float64()),
            ("max_frames", pa.int64()),
            ("min_pixels", pa.int64()),
            ("max_pixels", pa.int64()),
        ]
    )
    segments = pa.list_(pa.list_(pa.float64()))
    ground_truth = pa.struct([("data_type", pa.string()), ("answer", pa.string()), ("timestamps", segments)])
    create_kwargs = pa.struct([("video", pa.string()), ("duration", pa.float64())])
    tools_kwargs = pa.struct([(TOOL_NAME, pa.struct([("create_kwargs", create_kwargs)]))])
    extra_info = pa.struct(
        [
            ("index", pa.int64()),
            ("data_type", pa.string()),
            ("duration", pa.float64()),
            ("video_path", pa.string()),
            ("question", pa.string()),
            ("source", pa.string()),
            ("need_tools_kwargs", pa.bool_()),
            ("tools_kwargs", tools_kwargs),
        ]
    )
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("agent_name", pa.string()),
            ("prompt", pa.list_(message)),
            ("videos", pa.list_(video)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", ground_truth)])),
            ("extra_info", extra_info),
        ]
    )


def _data_type(row: dict[str, Any]) -> str:
    data_type = str(require(row, "data_type")).strip().lower()
    if data_type not in DATA_TYPES:
        raise RowError(f"data_type must be one of {DATA_TYPES}, got {data_type!r}")
    return data_type


def own_system_prompt(messages: Any) -> str | None:
    """The text of a row's leading system message, or None when it has none (or an empty one)."""
    if (
        isinstance(messages, list)
        and messages
        and isinstance(messages[0], dict)
        and messages[0].get("role") == "system"
    ):
        content = messages[0].get("content")
        if not isinstance(content, str):
            raise RowError("the system message content must be a string")
        return content if content.strip() else None
    return None


def strip_instructions(question: str, system: str | None) -> str:
    """The question without a copy of the system prompt's instructions (some exports prepend them to the user turn)."""
    for text in {SYSTEM_PROMPT, system or ""}:
        if text.strip() and text.strip() in question:
            question = question.replace(text.strip(), "").strip()
    return question


def _user_content(messages: Any) -> str:
    if not isinstance(messages, list):
        raise RowError("messages must be a list")
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if not isinstance(content, str):
                raise RowError("the user message content must be a string with a <video> placeholder")
            return content
    raise RowError("messages has no user turn")


def parse_reference_row(row: dict[str, Any], video_root: str | None) -> tuple[str, str, str, Any, Any, list[str]]:
    """Reference schema -> (video, question, data_type, raw answer, raw timestamps, option letters)."""
    content = _user_content(require(row, "messages"))
    videos = require(row, "videos")
    if not isinstance(videos, list):
        raise RowError("videos must be a list")
    placeholders = content.count(VIDEO_PLACEHOLDER)
    if placeholders != 1 or len(videos) != 1:
        raise RowError(
            f"mismatched <video> count: {placeholders} placeholder(s) in the user turn, "
            f"{len(videos)} video(s); expected 1 and 1"
        )
    question = strip_instructions(content.replace(VIDEO_PLACEHOLDER, "").strip(), own_system_prompt(row["messages"]))
    if not question:
        raise RowError("the user turn has no question text")
    video = resolve_path(media_path(videos[0]), video_root)
    timestamps = row.get("timestamp", row.get("timestamps"))
    data_type = _data_type(row)
    solution = require(row, "solution") if data_type == "qa" else row.get("solution")  # grounding: the timestamp
    if solution is not None and not isinstance(solution, (str, int, float)):
        raise RowError(f"solution must be a string, got {type(solution).__name__}")
    return video, question, data_type, solution, timestamps, option_letters_in_text(question)


def parse_plain_row(row: dict[str, Any], video_root: str | None) -> tuple[str, str, str, Any, Any, list[str]]:
    """Plain schema -> (video, question, data_type, raw answer, raw timestamps, option letters)."""
    video = resolve_path(media_path(require(row, "video")), video_root)
    question = require(row, "question")
    if not isinstance(question, str):
        raise RowError(f"question must be a string, got {type(question).__name__}")
    question = strip_instructions(question.strip(), None)
    data_type = _data_type(row)
    letters: list[str] = []
    if data_type == "qa":
        if row.get("options"):
            letters, lines = format_options(row["options"])
            question = question + "\n" + "\n".join(lines)
        else:
            letters = option_letters_in_text(question)
            if not letters:
                raise RowError("missing field 'options' (and no 'A. ...' option lines in the question)")
        answer = require(row, "answer")
        if isinstance(answer, int) and not isinstance(answer, bool):  # 0-based option index
            if not 0 <= answer < len(letters):
                raise RowError(f"answer index {answer} is not among the {len(letters)} options")
            answer = letters[answer] if letters else LETTERS[answer]
    else:
        answer = row.get("answer") or ""
    return video, question, data_type, answer, row.get("timestamps", row.get("timestamp")), letters


def parse_row(row: dict[str, Any], source: str, video_root: str | None) -> ParsedRow:
    """Read one input row (either schema); :class:`RowError` says what is wrong."""
    system = None
    if "messages" in row:
        video, question, data_type, raw_answer, raw_ts, letters = parse_reference_row(row, video_root)
        system = own_system_prompt(row["messages"])
    elif "question" in row:
        video, question, data_type, raw_answer, raw_ts, letters = parse_plain_row(row, video_root)
    else:
        raise RowError("missing field 'messages' (reference schema) or 'question' (plain schema)")
    timestamps = parse_segments(raw_ts, "timestamps")
    if data_type == "qa":
        answer = answer_letter(answer_text(raw_answer))
        check_letter(answer, letters)
    else:
        answer = answer_text(raw_answer)
        if not timestamps and answer:
            timestamps = parse_segments(_answer_segment(answer), "answer")
    if not timestamps:
        raise RowError("missing field 'timestamp' (the evidence / target segments)")
    if data_type == "grounding" and not answer:
        answer = ", ".join(f"[{s:g}, {e:g}]" for s, e in timestamps)
    return ParsedRow(source, video, question, data_type, answer, timestamps, system)


def _answer_segment(text: str) -> list[tuple[float, float]]:
    segments = answer_segments(text)  # the reward's reading of a grounding answer
    if len(segments) != 1:
        raise RowError(f"grounding answer {text!r} does not hold exactly one [start, end] pair")
    return segments


def build_row(
    parsed: ParsedRow,
    info: MediaInfo,
    index: int,
    settings: VideoSettings,
    data_source: str,
    fixes: Fixes | None = None,
    replace_system_prompt: bool = False,
) -> dict[str, Any]:
    """The parquet row for one checked input row (evidence ends past the duration are clamped and counted)."""
    clamped = check_segments(parsed.timestamps, info.duration)
    if fixes is not None:
        fixes.add(f"evidence end past the video by <= {DURATION_TOLERANCE_S:g} s, clamped to its duration", clamped)
    system = SYSTEM_PROMPT if replace_system_prompt or parsed.system is None else parsed.system
    duration = round(info.duration, 3)
    ground_truth = {
        "data_type": parsed.data_type,
        "answer": parsed.answer,
        "timestamps": clamp_segments(parsed.timestamps, info.duration),
    }
    return {
        "data_source": f"{data_source}_{parsed.data_type}",
        "agent_name": AGENT_NAME,
        "prompt": [{"role": "system", "content": system}, {"role": "user", "content": user_prompt(parsed.question)}],
        "videos": [settings.entry(parsed.video)],
        "ability": ABILITY[parsed.data_type],
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": {
            "index": index,
            "data_type": parsed.data_type,
            "duration": duration,
            "video_path": parsed.video,
            "question": parsed.question,
            "source": parsed.source,
            "need_tools_kwargs": True,
            "tools_kwargs": {TOOL_NAME: {"create_kwargs": {"video": parsed.video, "duration": duration}}},
        },
    }


def convert(
    inputs: Sequence[str | os.PathLike],
    *,
    video_root: str | os.PathLike | None,
    settings: VideoSettings = VideoSettings(),
    data_source: str = "videotemp_o3",
    cache: ProbeCache | None = None,
    workers: int = 4,
    val_fraction: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    replace_system_prompt: bool = False,
) -> Result:
    """Read, probe, check and build every row; nothing is written here."""
    root = os.fspath(video_root) if video_root is not None else None
    fixes = Fixes()
    parsed, rejects = parse_inputs(inputs, lambda row, source, _path: parse_row(row, source, root))
    infos = probe_media((p.video for p in parsed), cache or ProbeCache(None), workers=workers, progress=progress)
    rows: list[dict[str, Any]] = []
    for item in parsed:
        info = infos[item.video]
        try:
            if not info.ok:
                raise RowError(info.error or "video not readable")
            rows.append(build_row(item, info, len(rows), settings, data_source, fixes, replace_system_prompt))
        except Exception as err:  # noqa: BLE001 - one bad row never stops a conversion
            rejects.append(reject_at(item.source, err))
    keys = [
        hashlib.sha1(f"{r['videos'][0]['video']}\n{r['extra_info']['question']}".encode()).hexdigest() for r in rows
    ]
    return split_result(rows, keys, rejects, val_fraction, seed, fixes)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description="Convert VideoTemp-o3 RL jsonl (reference or plain schema) into verl parquet for RLHFDataset "
        "and the videotemp_agent loop. Writes OUT/train.parquet, OUT/val.parquet (with --val-fraction) "
        "and OUT/rejects.jsonl (file, line, reason of every rejected row).",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        help="input jsonl files (reference schema with messages/videos/"
        "data_type/timestamp/solution, or plain schema with video/question/options/answer/"
        "timestamps/data_type; both may be mixed)",
    )
    add_common_arguments(parser, "video")
    parser.add_argument(
        "--fps",
        type=float,
        default=VIDEO_FPS,
        help=f"prompt-video sampling rate written to every row (default {VIDEO_FPS})",
    )
    parser.add_argument(
        "--max-frames", type=int, default=TRAIN_MAX_FRAMES, help=f"prompt-video frame cap (default {TRAIN_MAX_FRAMES})"
    )
    parser.add_argument(
        "--min-pixels",
        type=int,
        default=TRAIN_PIXELS,
        help=f"minimum pixels per frame (default {TRAIN_PIXELS} = 224x224 area)",
    )
    parser.add_argument(
        "--max-pixels", type=int, default=TRAIN_PIXELS, help=f"maximum pixels per frame (default {TRAIN_PIXELS})"
    )
    parser.add_argument(
        "--data-source",
        default="videotemp_o3",
        help="data_source prefix; rows get "
        "'<prefix>_qa' or '<prefix>_grounding' (validation metrics are grouped by it)",
    )
    parser.add_argument(
        "--replace-system-prompt",
        action="store_true",
        help="give every row the protocol's system "
        "prompt (default: keep a row's own system prompt, the text the release trained on; rows "
        "without one get the protocol's)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.inputs = resolve_inputs(args.inputs)  # the release's hub and README file names both work
    if args.min_pixels > args.max_pixels:
        print(f"error: --min-pixels {args.min_pixels} > --max-pixels {args.max_pixels}", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    cache_path = probe_cache_path(args.probe_cache, out)
    error = check_arguments(args, cache_path)
    if error:
        print(error, file=sys.stderr)
        return 2
    cache = ProbeCache(cache_path)
    started = time.perf_counter()
    try:
        result = convert(
            args.inputs,
            video_root=args.video_root,
            settings=VideoSettings(args.fps, args.max_frames, args.min_pixels, args.max_pixels),
            data_source=args.data_source,
            cache=cache,
            workers=args.workers,
            val_fraction=args.val_fraction,
            seed=args.seed,
            progress=not args.no_progress,
            replace_system_prompt=args.replace_system_prompt,
        )
    except KeyboardInterrupt:
        return interrupted("prepare_rl", cache)
    cache.save()
    return write_outputs("prepare_rl", args, out, result, _schema(), started)


if __name__ == "__main__":
    sys.exit(main())
