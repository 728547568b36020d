"""SFT jsonl (reference format) -> parquet for verl's SFT trainer with ``recipe.videotemp_o3.sft_dataset``.

Input rows (``sft/data/{wo_tool_call,wi_tool_call}/*.jsonl``)::

    {"messages": [{"role": "system", ...}, {"role": "user", "content": "<video>Question"},
                  {"role": "assistant", "content": "<think>..</think><tool_call>{..}</tool_call>"},
                  {"role": "user", "content": "<video>Tool execution successful. ..."},
                  {"role": "assistant", "content": "<think>..</think><answer>C</answer>"}],
     "videos": ["main.mp4", "clip_0.mp4"]}            # or "images": ["x.jpg"] with <image>

Clips of tool-call trajectories may be given three ways; none of them cuts anything:

* a pre-cut clip file (``"clip_0.mp4"``), sampled whole by the clip rule at training time;
* a range of the source video: ``{"video": "main.mp4", "clip": [s, e]}`` (or ``video_start``/``video_end``);
* nothing: when ``videos`` lists only the main video(s), each feedback turn's clips are derived from the
  preceding assistant tool call (the protocol's range rules: validated, clamped, at most 3).

Output (``OUT/train.parquet``, ``OUT/val.parquet`` with ``--val-fraction``, ``OUT/rejects.jsonl``):
``messages`` (role/content strings with ``<video>``/``<image>`` placeholders; a row's own system prompt
is kept, rows without one get the protocol's, ``--replace-system-prompt`` gives every row the
protocol's; instructions copied into the first user turn are removed there, never sent twice), ``videos`` (one fixed key set: video, role "main"/"clip", fps, min_frames, max_frames,
min_pixels, max_pixels, video_start, video_end; ranges in seconds of ``video``, null for whole files),
``images`` (image, min_pixels, max_pixels), ``data_source`` and ``extra_info``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from data_prep.common import (
    DURATION_TOLERANCE_S,
    Fixes,
    MediaInfo,
    ProbeCache,
    Result,
    RowError,
    add_common_arguments,
    check_arguments,
    check_segments,
    interrupted,
    media_kind,
    media_path,
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
from tools.cli import ArgumentParser
from tools.protocol import (
    CLIP_FPS,
    CLIP_MAX_FRAMES,
    CLIP_MIN_FRAMES,
    EVAL_PIXELS,
    MAX_ASSISTANT_TURNS,
    SYSTEM_PROMPT,
    TRAIN_MAX_FRAMES,
    TRAIN_PIXELS,
    VIDEO_FPS,
    VIDEO_PLACEHOLDER,
    is_well_formed_turn,
    parse_turn,
    validate_ranges,
)

IMAGE_PLACEHOLDER = "<image>"
MAIN_MIN_FRAMES = 4  # qwen-vl-utils' FPS_MIN_FRAMES
IMAGE_MIN_PIXELS = 3136  # 56 x 56


@dataclass(frozen=True)
class SftSettings:
    """Sampling keys written into every ``videos`` / ``images`` entry."""

    fps: float = VIDEO_FPS
    max_frames: int = TRAIN_MAX_FRAMES
    min_pixels: int = TRAIN_PIXELS
    max_pixels: int = TRAIN_PIXELS
    clip_fps: float = CLIP_FPS
    clip_min_frames: int = CLIP_MIN_FRAMES
    clip_max_frames: int = CLIP_MAX_FRAMES
    image_min_pixels: int = IMAGE_MIN_PIXELS
    image_max_pixels: int = EVAL_PIXELS
    replace_system_prompt: bool = False
    keep_malformed_turns: bool = False

    def video_entry(self, path: str, role: str, start: float | None = None, end: float | None = None) -> dict[str, Any]:
        clip = role == "clip"
        return {
            "video": path,
            "role": role,
            "fps": self.clip_fps if clip else self.fps,
            "min_frames": self.clip_min_frames if clip else MAIN_MIN_FRAMES,
            "max_frames": self.clip_max_frames if clip else self.max_frames,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "video_start": start,
            "video_end": end,
        }

    def image_entry(self, path: str) -> dict[str, Any]:
        return {"image": path, "min_pixels": self.image_min_pixels, "max_pixels": self.image_max_pixels}


@dataclass
class VideoSlot:
    """One ``<video>`` placeholder: a whole file, a range of a file, or clips still to derive from a tool call."""

    path: str
    role: str  # "main" or "clip"
    start: float | None = None
    end: float | None = None


@dataclass
class ParsedSft:
    source: str
    messages: list[dict[str, str]]
    slots: list[VideoSlot]  # in placeholder order; derived clips are added at build time
    derive: dict[int, int] = field(default_factory=dict)  # feedback message index -> its <video> count
    images: list[str] = field(default_factory=list)
    data_source: str = ""


def _schema() -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    video = pa.struct(
        [
            ("video", pa.string()),
            ("role", pa.string()),
            ("fps", pa.float64()),
            ("min_frames", pa.int64()),
            ("max_frames", pa.int64()),
            ("min_pixels", pa.int64()),
            ("max_pixels", pa.int64()),
            ("video_start", pa.float64()),
            ("video_end", pa.float64()),
        ]
    )
    image = pa.struct([("image", pa.string()), ("min_pixels", pa.int64()), ("max_pixels", pa.int64())])
    extra_info = pa.struct(
        [
            ("index", pa.int64()),
            ("source", pa.string()),
            ("n_assistant_turns", pa.int64()),
            ("n_tool_calls", pa.int64()),
            ("n_clips", pa.int64()),
        ]
    )
    return pa.schema(
        [
            ("messages", pa.list_(message)),
            ("videos", pa.list_(video)),
            ("images", pa.list_(image)),
            ("data_source", pa.string()),
            ("extra_info", extra_info),
        ]
    )


def _without_instructions(text: str, instructions: set[str]) -> str:
    """``text`` without a copy of the system prompt's instructions (the system message already has them)."""
    for instruction in instructions:
        instruction = instruction.strip()
        if instruction and instruction in text:
            text = text.replace(instruction, "").lstrip("\n ")
    return text


def _messages(raw: Any, settings: SftSettings) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise RowError("messages must be a non-empty list")
    messages = []
    for k, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise RowError(f"message {k} must be an object with role system/user/assistant")
        if not isinstance(message.get("content"), str):
            raise RowError(f"message {k} content must be a string")
        messages.append({"role": message["role"], "content": message["content"]})
    own = messages[0]["content"] if messages[0]["role"] == "system" and messages[0]["content"].strip() else None
    if messages[0]["role"] == "system":
        messages.pop(0)
    system = SYSTEM_PROMPT if settings.replace_system_prompt or own is None else own
    messages.insert(0, {"role": "system", "content": system})
    first_user = next((m for m in messages[1:] if m["role"] == "user"), None)
    if first_user is not None:
        first_user["content"] = _without_instructions(first_user["content"], {SYSTEM_PROMPT, own or ""})
    roles = [m["role"] for m in messages[1:]]
    if (
        not roles
        or roles[-1] != "assistant"
        or any(r != ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(roles))
    ):
        raise RowError(
            f"turns must alternate user/assistant after the system prompt and end with assistant, got {roles}"
        )
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    if len(assistant) > MAX_ASSISTANT_TURNS:
        raise RowError(f"{len(assistant)} assistant turns; the protocol allows at most {MAX_ASSISTANT_TURNS}")
    if not settings.keep_malformed_turns:
        for k, text in enumerate(assistant):
            if not is_well_formed_turn(text):
                raise RowError(
                    f"assistant turn {k + 1} is not <think>..</think><tool_call>..</tool_call> or "
                    f"<think>..</think><answer>..</answer>: {text[:80]!r}"
                )
    for message in messages:
        if message["role"] != "user" and (
            VIDEO_PLACEHOLDER in message["content"] or IMAGE_PLACEHOLDER in message["content"]
        ):
            raise RowError(f"a {message['role']} turn holds a media placeholder")
    return messages


def _slot(entry: Any, role: str, root: str | None) -> VideoSlot:
    path = resolve_path(media_path(entry), root)
    if isinstance(entry, dict) and (entry.get("clip") is not None or entry.get("video_start") is not None):
        raw = entry["clip"] if entry.get("clip") is not None else [entry.get("video_start"), entry.get("video_end")]
        segments = parse_segments([raw], "clip")
        return VideoSlot(path, role, *segments[0])
    return VideoSlot(path, role)


def parse_row(row: dict[str, Any], source: str, root: str | None, settings: SftSettings, data_source: str) -> ParsedSft:
    """Read one SFT row; :class:`RowError` says what is wrong. Derived clips wait for the probe."""
    messages = _messages(require(row, "messages"), settings)
    videos = row.get("videos") or []
    images = row.get("images") or []
    if not isinstance(videos, list) or not isinstance(images, list):
        raise RowError("videos and images must be lists")
    counts = [m["content"].count(VIDEO_PLACEHOLDER) for m in messages]
    n_images = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in messages)
    if n_images != len(images):
        raise RowError(f"mismatched <image> count: {n_images} placeholder(s), {len(images)} image(s)")
    first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
    n_main = counts[first_user]
    later = sum(counts) - n_main
    own_source = row.get("data_source")
    if own_source is not None and not isinstance(own_source, str):
        raise RowError(f"data_source must be a string, got {type(own_source).__name__} {own_source!r}")
    image_paths = [resolve_path(media_path(i), root) for i in images]
    for path in image_paths:
        if media_kind(path) != "image":
            raise RowError(
                f"images entry {path} is not an image file (suffix {Path(path).suffix or 'none'!r}); "
                "list videos under 'videos'"
            )
    parsed = ParsedSft(source, messages, [], images=image_paths, data_source=own_source or data_source)
    if len(videos) == sum(counts):
        roles = [("main" if i <= first_user else "clip") for i, c in enumerate(counts) for _ in range(c)]
        parsed.slots = [_slot(entry, role, root) for entry, role in zip(videos, roles)]
    elif later and len(videos) == n_main:
        parsed.slots = [_slot(entry, "main", root) for entry in videos]
        if n_main != 1:
            raise RowError(f"clips can be derived from tool calls only with one main video, got {n_main}")
        for i, count in enumerate(counts):
            if i > first_user and count:
                if messages[i - 1]["role"] != "assistant" or parse_turn(messages[i - 1]["content"]).kind != "tool_call":
                    raise RowError(f"message {i} has <video> but the turn before it is not a tool call")
                parsed.derive[i] = count
    else:
        raise RowError(
            f"mismatched <video> count: {sum(counts)} placeholder(s) ({n_main} in the first user turn), "
            f"{len(videos)} video(s)"
        )
    if any(s.role == "main" and s.start is not None for s in parsed.slots):
        raise RowError("the main video of the first user turn cannot be a clip range")
    return parsed


def _derived_slots(parsed: ParsedSft, info: MediaInfo) -> list[VideoSlot]:
    """All slots in placeholder order, with each feedback turn's clips read from the tool call before it."""
    main = parsed.slots[0]
    slots = list(parsed.slots)
    for i, count in sorted(parsed.derive.items()):
        call = parse_turn(parsed.messages[i - 1]["content"]).tool_call
        clips = validate_ranges(call.ranges if call else (), info.duration).clips
        if len(clips) != count:
            raise RowError(
                f"mismatched <video> count: message {i} has {count} placeholder(s) but the tool call "
                f"before it gives {len(clips)} valid clip(s)"
            )
        slots.extend(VideoSlot(main.path, "clip", c.start, c.end) for c in clips)
    return slots


def build_row(
    parsed: ParsedSft, infos: dict[str, MediaInfo], index: int, settings: SftSettings, fixes: Fixes | None = None
) -> dict[str, Any]:
    """The parquet row of one parsed input row, after the media checks."""
    for path in [s.path for s in parsed.slots] + parsed.images:
        if not infos[path].ok:
            raise RowError(infos[path].error or "media not readable")
    slots = list(_derived_slots(parsed, infos[parsed.slots[0].path]) if parsed.derive else parsed.slots)
    for k, slot in enumerate(slots):
        if slot.start is not None:
            duration = infos[slot.path].duration
            if check_segments([(slot.start, slot.end)], duration, "clip") and fixes is not None:
                fixes.add(f"clip end past the video by <= {DURATION_TOLERANCE_S:g} s, clamped to its duration")
            if slot.end > duration:
                slots[k] = VideoSlot(slot.path, slot.role, slot.start, duration)
    assistant = [m["content"] for m in parsed.messages if m["role"] == "assistant"]
    return {
        "messages": parsed.messages,
        "videos": [settings.video_entry(s.path, s.role, s.start, s.end) for s in slots],
        "images": [settings.image_entry(p) for p in parsed.images],
        "data_source": parsed.data_source,
        "extra_info": {
            "index": index,
            "source": parsed.source,
            "n_assistant_turns": len(assistant),
            "n_tool_calls": sum(parse_turn(t).kind == "tool_call" for t in assistant),
            "n_clips": sum(s.role == "clip" for s in slots),
        },
    }


def _default_data_source(path: str | os.PathLike) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.stem}" if p.parent.name else p.stem


def convert(
    inputs: Sequence[str | os.PathLike],
    *,
    video_root: str | os.PathLike | None,
    settings: SftSettings = SftSettings(),
    data_source: str | None = None,
    cache: ProbeCache | None = None,
    workers: int = 4,
    val_fraction: float = 0.0,
    seed: int = 0,
    progress: bool = True,
) -> Result:
    """Read, probe, check and build every row; nothing is written here."""
    root = os.fspath(video_root) if video_root is not None else None
    fixes = Fixes()
    parsed, rejects = parse_inputs(
        inputs,
        lambda row, source, path: parse_row(row, source, root, settings, data_source or _default_data_source(path)),
    )
    media = [s.path for p in parsed for s in p.slots] + [i for p in parsed for i in p.images]
    infos = probe_media(media, cache or ProbeCache(None), workers=workers, progress=progress)
    rows: list[dict[str, Any]] = []
    for item in parsed:
        try:
            rows.append(build_row(item, infos, len(rows), settings, fixes))
        except Exception as err:  # noqa: BLE001 - one bad row never stops a conversion
            rejects.append(reject_at(item.source, err))
    keys = [
        hashlib.sha1(json.dumps([r["messages"], r["videos"], r["images"]], sort_keys=True).encode()).hexdigest()
        for r in rows
    ]
    return split_result(rows, keys, rejects, val_fraction, seed, fixes)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description="Convert VideoTemp-o3 SFT jsonl (reference format: messages with <video>/<image> placeholders, "
        "videos, images) into parquet for verl's SFT trainer with the recipe's dataset class. Writes "
        "OUT/train.parquet, OUT/val.parquet (with --val-fraction) and OUT/rejects.jsonl.",
    )
    parser.add_argument(
        "inputs", nargs="+", help="input jsonl files (e.g. sft/data/wo_tool_call/*.jsonl sft/data/wi_tool_call/*.jsonl)"
    )
    add_common_arguments(parser, "video/image")
    parser.add_argument("--fps", type=float, default=VIDEO_FPS, help=f"main-video sampling rate (default {VIDEO_FPS})")
    parser.add_argument(
        "--max-frames", type=int, default=TRAIN_MAX_FRAMES, help=f"main-video frame cap (default {TRAIN_MAX_FRAMES})"
    )
    parser.add_argument(
        "--min-pixels",
        type=int,
        default=TRAIN_PIXELS,
        help=f"minimum pixels per video frame, main and clips (default {TRAIN_PIXELS} = 224x224 area)",
    )
    parser.add_argument(
        "--max-pixels", type=int, default=TRAIN_PIXELS, help=f"maximum pixels per video frame (default {TRAIN_PIXELS})"
    )
    parser.add_argument("--clip-fps", type=float, default=CLIP_FPS, help=f"clip sampling rate (default {CLIP_FPS})")
    parser.add_argument(
        "--clip-min-frames",
        type=int,
        default=CLIP_MIN_FRAMES,
        help=f"fewest frames per clip (default {CLIP_MIN_FRAMES})",
    )
    parser.add_argument(
        "--clip-max-frames", type=int, default=CLIP_MAX_FRAMES, help=f"most frames per clip (default {CLIP_MAX_FRAMES})"
    )
    parser.add_argument(
        "--image-min-pixels",
        type=int,
        default=IMAGE_MIN_PIXELS,
        help=f"minimum pixels per image (default {IMAGE_MIN_PIXELS})",
    )
    parser.add_argument(
        "--image-max-pixels",
        type=int,
        default=EVAL_PIXELS,
        help=f"maximum pixels per image (default {EVAL_PIXELS} = 448x448 area)",
    )
    parser.add_argument(
        "--replace-system-prompt",
        action="store_true",
        help="give every row the protocol's system "
        "prompt (default: keep a row's own system prompt, the text the release trained on; rows "
        "without one get the protocol's)",
    )
    parser.add_argument("--keep-system-prompt", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument(
        "--keep-malformed-turns",
        action="store_true",
        help="keep rows whose assistant turns do not "
        "have one of the protocol's two strict shapes (default: reject them)",
    )
    parser.add_argument(
        "--data-source",
        default=None,
        help="data_source of every row (default: "
        "'<parent dir>/<file stem>' of each input, e.g. wi_tool_call/activitynet)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.inputs = resolve_inputs(args.inputs)  # the release's hub and README file names both work
    if args.min_pixels > args.max_pixels or args.image_min_pixels > args.image_max_pixels:
        print("error: a --*min-pixels value is larger than its --*max-pixels", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    cache_path = probe_cache_path(args.probe_cache, out)
    error = check_arguments(args, cache_path)
    if error:
        print(error, file=sys.stderr)
        return 2
    cache = ProbeCache(cache_path)
    settings = SftSettings(
        args.fps,
        args.max_frames,
        args.min_pixels,
        args.max_pixels,
        args.clip_fps,
        args.clip_min_frames,
        args.clip_max_frames,
        args.image_min_pixels,
        args.image_max_pixels,
        args.replace_system_prompt,
        args.keep_malformed_turns,
    )
    started = time.perf_counter()
    try:
        result = convert(
            args.inputs,
            video_root=args.video_root,
            settings=settings,
            data_source=args.data_source,
            cache=cache,
            workers=args.workers,
            val_fraction=args.val_fraction,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        return interrupted("prepare_sft", cache)
    cache.save()
    return write_outputs("prepare_sft", args, out, result, _schema(), started)


if __name__ == "__main__":
    sys.exit(main())
