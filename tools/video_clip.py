"""The ``get_video_clip_frame`` tool: cut clips out of the source video by time range.

:func:`run_clip_call` is the pure function the agent loop calls with an already parsed
:class:`~tools.protocol.ToolCall`; :class:`VideoClipTool` wraps it as a verl
``BaseTool``. Both never raise: every failure becomes the protocol's failure text.

CLI (look at what the tool returns for one range)::

    python tools/video_clip.py VIDEO --start 10 --end 20 --json --contact-sheet sheet.png --frames-dir frames/
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence
from uuid import uuid4

from tools.cli import ArgumentParser  # light: standard library only
from tools.protocol import (  # light: no torch, no verl
    CLIP_FPS,
    CLIP_MAX_FRAMES,
    CLIP_MIN_FRAMES,
    MAX_CLIPS_PER_CALL,
    NO_TIMESTAMP_ERROR,
    RL_RULES,
    TOOL_NAME,
    TOOL_SUCCESS_TEXT,
    TRAIN_PIXELS,
    VIDEO_UNREADABLE_ERROR,
    ClipRange,
    LoopRules,
    ToolCall,
    failure_text,
    feedback_text,
    no_timestamp_text,
    parse_tool_call,
    validate_ranges,
)

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments (defined before the heavy imports so that ``--help`` answers at once)."""
    parser = ArgumentParser(
        description=f"Run the {TOOL_NAME} tool on one time range of a video and show what the model would see."
    )
    parser.add_argument("video", help="path of the source video")
    parser.add_argument("--start", type=float, required=True, help="clip start in seconds of the video")
    parser.add_argument("--end", type=float, required=True, help="clip end in seconds of the video")
    parser.add_argument("--fps", type=float, default=CLIP_FPS, help=f"clip sampling rate (default {CLIP_FPS})")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=TRAIN_PIXELS,
        help=f"pixel budget per frame, also used as min (default {TRAIN_PIXELS})",
    )
    parser.add_argument("--image-factor", type=int, default=28, help="28 for Qwen2.5-VL, 32 for Qwen3-VL")
    parser.add_argument("--json", action="store_true", help="print frame times, shape and sampled fps as JSON")
    parser.add_argument("--contact-sheet", metavar="PNG", help="save a grid of the frames labelled with times")
    parser.add_argument(
        "--frames-dir",
        metavar="DIR",
        help="save the exact frames the model sees, one PNG per frame "
        "named NNN_fINDEX_TIMEs.png (position in the clip, source frame index, time in seconds); "
        "DIR is replaced as a whole and must be empty or hold only such frames",
    )
    return parser


if __name__ == "__main__":
    _CLI_ARGS = build_parser().parse_args()  # --help and argument errors exit here, before torch and verl load
    from tools.cli import quiet_verl_warnings

    quiet_verl_warnings()

from verl.tools.base_tool import BaseTool  # noqa: E402
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse  # noqa: E402

from tools.files import atomic_write, atomic_write_dir, parquet_value, remove_stale_temps  # noqa: E402
from tools.frame_cache import FrameCache, shared_frame_cache  # noqa: E402
from tools.video_io import probe, sample_clip  # noqa: E402
from tools.video_types import SampledVideo, VideoError  # noqa: E402


@dataclass
class ClipSettings:
    """How clips are sampled (docs/protocol.md defaults; pixel budget = the main video's)."""

    fps: float = CLIP_FPS
    min_frames: int = CLIP_MIN_FRAMES
    max_frames: int = CLIP_MAX_FRAMES
    min_pixels: int = TRAIN_PIXELS
    max_pixels: int = TRAIN_PIXELS
    max_clips: int = MAX_CLIPS_PER_CALL  # ranges looked at per call (0: all, as the reference's eval loop)
    image_factor: int = 28
    caption: bool = False  # one line giving each clip's absolute range (off in the reference)
    timeout_s: float = 60.0

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> "ClipSettings":
        """Read the known keys of a tool config dict (others are ignored)."""
        config = dict(config or {})
        settings = cls()
        for name, default in asdict(settings).items():
            if config.get(name) is not None:
                setattr(settings, name, type(default)(config[name]))
        return settings


@dataclass
class ClipResult:
    """What one tool call produced: the clips (in request order), their ranges and the feedback text."""

    clips: list[SampledVideo] = field(default_factory=list)
    ranges: list[ClipRange] = field(default_factory=list)
    text: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.clips)


def _failure(error: str, text: str | None = None) -> ClipResult:
    """A failed call: no clip, ``text`` (default: ``error`` and the failure sentence) as feedback."""
    return ClipResult([], [], text if text is not None else feedback_text([], error=error), error)


def _range_failure(messages: list[str], rules: LoopRules) -> ClipResult:
    errors = [rules.error_prefix + message for message in messages]
    return _failure("; ".join(errors), failure_text(errors, rules))


def run_clip_call(
    video_path: str | os.PathLike,
    call: ToolCall,
    settings: ClipSettings,
    *,
    duration: float | None = None,
    cache: FrameCache | None = None,
    rules: LoopRules = RL_RULES,
) -> ClipResult:
    """Execute one parsed tool call against ``video_path`` with the reference's rules. Never raises.

    A call that does not read (bad JSON, wrong name, a missing or unreadable ``arguments`` or entry)
    or that asks for no range fails with "[Error] No valid timestamp found ..." (RL); under
    ``rules.empty_call_succeeds`` (eval) an empty range list gives the success text and no clip.
    The first ``settings.max_clips`` ranges (0: all) are validated and clamped by
    ``protocol.validate_ranges`` (``duration``: the video's when already known, else probed); **if any
    of them fails, the whole call fails**: each failed range's error and the failure sentence, no clip.
    """
    try:
        if not call.well_formed:
            return _failure(NO_TIMESTAMP_ERROR, no_timestamp_text())
        ranges = list(call.ranges[: settings.max_clips] if settings.max_clips > 0 else call.ranges)
        if not ranges:
            if rules.empty_call_succeeds:
                return ClipResult([], [], TOOL_SUCCESS_TEXT, None)
            return _failure(NO_TIMESTAMP_ERROR, no_timestamp_text())
        if duration is None:
            duration = probe(video_path, timeout_s=settings.timeout_s).duration
        check = validate_ranges(ranges, duration, None)
        if check.errors:
            return _range_failure(check.errors, rules)
        clips = []
        for clip in check.clips:
            try:
                clips.append(
                    sample_clip(
                        video_path,
                        clip.start,
                        clip.end,
                        fps=settings.fps,
                        min_frames=settings.min_frames,
                        max_frames=settings.max_frames,
                        min_pixels=settings.min_pixels,
                        max_pixels=settings.max_pixels,
                        image_factor=settings.image_factor,
                        cache=cache,
                        timeout_s=settings.timeout_s,
                    )
                )
            except ValueError:  # a range that is empty in the real video (``duration`` was too long)
                return _range_failure(["nframes should in interval [2, 0], but got 0."], rules)
        return ClipResult(clips, check.clips, feedback_text(check.clips, caption=settings.caption), None)
    except Exception as exc:  # VideoError or a decoder surprise: never let it end the rollout
        reason = str(exc) or type(exc).__name__
        logger.warning("clip call on %s failed (the model gets the error as feedback): %r", os.fspath(video_path), exc)
        return _range_failure([f"Error reading video file {os.fspath(video_path)}: {reason}"], rules)


def tool_call_from_parameters(parameters: Any) -> ToolCall:
    """Read tool parameters in any shape verl's tool API may hand over, with the one parser.

    Accepts ``{"arguments": [...]}`` (the list also as a JSON string or a single object), the list of
    ranges itself, a single ``{"start_time", "end_time"}`` object, or a full ``{"name": ...,
    "arguments": ...}`` call. (This adapter is for verl's tool-calling loops; the agent loop reads the
    model's text with the reference's stricter rules, where a single object fails.)
    """
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except (ValueError, RecursionError):
            return parse_tool_call(parameters)  # gives the bad-JSON error
    if isinstance(parameters, dict) and "name" in parameters:
        body: Any = dict(parameters)
    elif isinstance(parameters, dict) and "arguments" in parameters:
        body = {"name": TOOL_NAME, "arguments": parameters["arguments"]}
    else:
        body = {"name": TOOL_NAME, "arguments": parameters}
    args = body.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except (ValueError, RecursionError):
            pass
    if isinstance(args, dict):
        args = [args]
    if "arguments" in body:
        body["arguments"] = args
    try:
        text = json.dumps(body, default=str)
    except (TypeError, ValueError, RecursionError):
        return parse_tool_call("not json")
    return parse_tool_call(text)


TOOL_DESCRIPTION = (
    "Extract clips of the video by time range and look at them at a higher frame rate. "
    'Call with "arguments": a list of up to 3 objects {"start_time": S, "end_time": E}, '
    "times in seconds of the original video, 0 <= S < E."
)


class VideoClipTool(BaseTool):
    """``get_video_clip_frame`` as a verl tool.

    Config keys (all optional): ``fps``, ``min_frames``, ``max_frames``, ``min_pixels``,
    ``max_pixels``, ``max_clips``, ``image_factor``, ``caption``, ``timeout_s``, and
    ``cache_bytes`` (budget of the process-wide frame cache on first use).
    ``create(create_kwargs={"video": path, "duration": seconds})`` binds a trajectory to its video.
    """

    def __init__(self, config: dict | None = None, tool_schema: Any = None):
        config = dict(config or {})
        self.settings = ClipSettings.from_config(config)
        self.cache = shared_frame_cache(config.get("cache_bytes"))
        self._instances: dict[str, dict[str, Any]] = {}
        super().__init__(config, tool_schema)

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        return OpenAIFunctionToolSchema.model_validate(
            {
                "type": "function",
                "function": {
                    "name": TOOL_NAME,
                    "description": TOOL_DESCRIPTION,
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "arguments": {
                                "type": "array",
                                "description": 'list of {"start_time": number, "end_time": number} in seconds',
                            }
                        },
                        "required": ["arguments"],
                    },
                },
            }
        )

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolResponse]:
        create_kwargs = dict(kwargs.get("create_kwargs") or {})
        for key in ("video", "duration"):
            if key in kwargs and key not in create_kwargs:
                create_kwargs[key] = kwargs[key]
        instance_id = instance_id or str(uuid4())
        self._instances[instance_id] = {"video": create_kwargs.get("video"), "duration": create_kwargs.get("duration")}
        return instance_id, ToolResponse()

    async def execute(self, instance_id: str, parameters: Any, **kwargs: Any) -> tuple[ToolResponse, float, dict]:
        started = time.perf_counter()
        try:
            call = tool_call_from_parameters(parameters)
            instance = self._instances.get(instance_id) or {}
            video = instance.get("video")
            if isinstance(video, dict):  # a qwen-vl-utils video dict from the dataset row
                video = video.get("video")
            if not video:
                result = _failure(VIDEO_UNREADABLE_ERROR)
            else:
                duration = parquet_value(instance.get("duration"))  # None/NaN: a missing struct key
                duration = float(duration) if duration is not None and math.isfinite(float(duration)) else None
                result = await asyncio.to_thread(
                    run_clip_call, video, call, self.settings, duration=duration, cache=self.cache
                )
        except Exception:
            result = _failure(VIDEO_UNREADABLE_ERROR)
        response = ToolResponse(text=result.text)  # ``video=None`` fails ToolResponse's validator
        if result.clips:
            response = ToolResponse(text=result.text, video=[clip.as_verl_video() for clip in result.clips])
        metrics = {
            "num_clips": len(result.clips),
            "num_frames": sum(int(clip.frames.shape[0]) for clip in result.clips),
            "failed": result.error is not None,
            "latency_s": time.perf_counter() - started,
        }
        return response, 0.0, metrics

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        self._instances.pop(instance_id, None)


# --------------------------------------------------------------------------- CLI


def contact_sheet(clip: SampledVideo, out_path: str | os.PathLike, *, columns: int = 8) -> None:
    """Save a PNG grid of the clip's frames, each labelled with its source time (written atomically)."""
    from PIL import Image, ImageDraw

    count, _, height, width = clip.frames.shape
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    label_h = 14
    sheet = Image.new("RGB", (columns * width, rows * (height + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for k in range(count):
        x, y = (k % columns) * width, (k // columns) * (height + label_h)
        sheet.paste(Image.fromarray(clip.frames[k].permute(1, 2, 0).numpy()), (x, y + label_h))
        draw.text((x + 2, y + 1), f"{clip.times[k]:.2f}s", fill="black")
    remove_stale_temps(Path(out_path).parent)
    atomic_write(out_path, lambda tmp: sheet.save(tmp, format="PNG"))


FRAME_NAME_RE = re.compile(r"^\d{3,}_f\d+_\d+\.\d{3}s\.png$")


def frame_file_name(position: int, index: int, time_s: float) -> str:
    """``NNN_fINDEX_TIMEs.png``: position in the clip, source frame index, presentation time."""
    return f"{position:03d}_f{index:06d}_{time_s:08.3f}s.png"


def check_frames_dir(directory: str | os.PathLike) -> str | None:
    """Why ``directory`` cannot receive frames (it holds other files, or is a file), else None."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        return f"--frames-dir {path} exists and is not a folder"
    if path.is_dir():
        others = [p.name for p in path.iterdir() if not FRAME_NAME_RE.match(p.name)]
        if others:
            return (
                f"--frames-dir {path} holds other files ({', '.join(sorted(others)[:3])}); give an empty or new folder"
            )
    return None


def write_frames(clip: SampledVideo, directory: str | os.PathLike) -> list[Path]:
    """Save every frame of ``clip`` exactly as the model gets it (RGB, model resolution) as a PNG in ``directory``.

    The folder is written next to ``directory`` under a hidden name and put in place when complete,
    replacing earlier frames: it holds this clip's frames only, or is left as it was.
    """
    from PIL import Image

    target = Path(directory)
    problem = check_frames_dir(target)
    if problem:
        raise ValueError(problem)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent)
    names = [frame_file_name(k, index, time_s) for k, (index, time_s) in enumerate(zip(clip.frame_indices, clip.times))]

    def fill(tmp: Path) -> None:
        for k, name in enumerate(names):
            Image.fromarray(clip.frames[k].permute(1, 2, 0).numpy()).save(tmp / name, format="PNG")

    atomic_write_dir(target, fill)
    return [target / name for name in names]


def main(argv: Sequence[str] | argparse.Namespace | None = None) -> int:
    args = argv if isinstance(argv, argparse.Namespace) else build_parser().parse_args(argv)
    if args.frames_dir:
        problem = check_frames_dir(args.frames_dir)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    settings = ClipSettings(
        fps=args.fps, min_pixels=args.max_pixels, max_pixels=args.max_pixels, image_factor=args.image_factor
    )
    call = ToolCall(((args.start, args.end),), True, True, True)
    started = time.perf_counter()
    result = run_clip_call(args.video, call, settings)
    elapsed = time.perf_counter() - started
    if result.error is not None:
        try:
            probe(args.video)
            reason = result.error
        except VideoError as err:
            reason = str(err)
        print(f"error: {reason}", file=sys.stderr)
        return 1
    clip = result.clips[0]
    if args.json:
        print(
            json.dumps(
                {
                    "range": [result.ranges[0].start, result.ranges[0].end],
                    "shape": list(clip.frames.shape),
                    "sample_fps": clip.sample_fps,
                    "times": [round(t, 4) for t in clip.times],
                    "frames_indices": clip.frame_indices,
                    "seconds": round(elapsed, 4),
                    "text": result.text,
                },
                indent=2,
            )
        )
    else:
        print(
            f"{clip.frames.shape[0]} frames {tuple(clip.frames.shape[2:])} at {clip.sample_fps:.3f} fps "
            f"from {clip.times[0]:.2f}s to {clip.times[-1]:.2f}s in {elapsed:.3f}s"
        )
    if args.contact_sheet:
        contact_sheet(clip, args.contact_sheet)
        print(f"contact sheet: {args.contact_sheet}", file=sys.stderr)
    if args.frames_dir:
        written = write_frames(clip, args.frames_dir)
        print(f"frames: {len(written)} PNG files in {args.frames_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(_CLI_ARGS))
