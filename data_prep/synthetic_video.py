"""Synthetic test videos whose frames say which frame they are.

Every frame carries its own frame index as a binary code: the top half of the frame is a grid of
``CODE_ROWS x CODE_COLS`` big black/white blocks (most significant bit first, row by row). The
blocks are large enough to survive H.264/MPEG-4 at default quality and resizing down to about
32x24 pixels, so a test can decode or resize a frame and still read back exactly which source
frame it came from (:func:`read_frame_index`).

The bottom half is mid grey; during an :class:`Event` a coloured square is drawn there (used by
the synthetic dataset: "a red square appears during [s, e)"), see :func:`event_color_at`.

Videos are written with PyAV (no ffmpeg CLI needed): a few seconds at 64x48 take well under a
second.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from tools.cli import ArgumentParser
from tools.files import atomic_write, remove_stale_temps

CODE_ROWS = 2
CODE_COLS = 8
CODE_BITS = CODE_ROWS * CODE_COLS  # frame indices up to 65,535 (30 min at 25 fps = 45,000)
MAX_INDEX = (1 << CODE_BITS) - 1

BACKGROUND = 128
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 20, 20),
    "green": (20, 200, 20),
    "blue": (20, 20, 230),
    "yellow": (230, 230, 20),
    "cyan": (20, 220, 220),
    "magenta": (220, 20, 220),
}

# Event square, as fractions of the frame (rows, cols): inside the bottom half, clear of the code.
_EVENT_BOX = ((0.62, 0.92), (0.34, 0.66))


@dataclass(frozen=True)
class Event:
    """A coloured square visible during ``[start, end)`` seconds."""

    start: float
    end: float
    color: str = "red"

    def __post_init__(self) -> None:
        if self.color not in COLORS:
            raise ValueError(f"unknown event colour {self.color!r}; known: {sorted(COLORS)}")
        if not self.end > self.start:
            raise ValueError(f"event needs end > start, got [{self.start}, {self.end})")


def _bits(index: int) -> np.ndarray:
    """``CODE_ROWS x CODE_COLS`` array of 0/1, most significant bit first."""
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"frame index {index} does not fit in {CODE_BITS} bits")
    bits = [(index >> (CODE_BITS - 1 - k)) & 1 for k in range(CODE_BITS)]
    return np.array(bits, dtype=np.uint8).reshape(CODE_ROWS, CODE_COLS)


def _block_edges(length: int, parts: int) -> list[int]:
    return [round(length * k / parts) for k in range(parts + 1)]


def _box(height: int, width: int) -> tuple[slice, slice]:
    (r0, r1), (c0, c1) = _EVENT_BOX
    return slice(int(height * r0), int(height * r1)), slice(int(width * c0), int(width * c1))


def render_frame(index: int, width: int, height: int, event_color: str | None = None) -> np.ndarray:
    """One RGB frame ``[height, width, 3]`` uint8 carrying ``index`` (and an optional event square)."""
    frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    bits = _bits(index)
    rows = _block_edges(height // 2, CODE_ROWS)
    cols = _block_edges(width, CODE_COLS)
    for r in range(CODE_ROWS):
        for c in range(CODE_COLS):
            frame[rows[r] : rows[r + 1], cols[c] : cols[c + 1]] = 255 if bits[r, c] else 0
    if event_color is not None:
        frame[_box(height, width)] = COLORS[event_color]
    return frame


def _as_hwc(frame: Any) -> np.ndarray:
    """Accept a tensor/array ``[3,H,W]`` or ``[H,W,3]`` and return a numpy ``[H,W,3]``."""
    arr = frame.detach().cpu().numpy() if hasattr(frame, "detach") else np.asarray(frame)
    if arr.ndim != 3:
        raise ValueError(f"expected a 3-D frame [3,H,W] or [H,W,3], got shape {arr.shape}")
    if arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    elif arr.shape[-1] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {arr.shape}")
    return arr.astype(np.float32)


def read_frame_index(frame: Any) -> int:
    """Read back the frame index encoded by :func:`render_frame`, at any (resized) size."""
    arr = _as_hwc(frame)
    height, width = arr.shape[:2]
    luma = arr.mean(axis=2)
    rows = _block_edges(height // 2, CODE_ROWS)
    cols = _block_edges(width, CODE_COLS)
    index = 0
    for r in range(CODE_ROWS):
        for c in range(CODE_COLS):
            # The block's central half: away from edges blurred by resizing and compression.
            r0, r1, c0, c1 = rows[r], rows[r + 1], cols[c], cols[c + 1]
            dr, dc = (r1 - r0) // 4, (c1 - c0) // 4
            block = luma[r0 + dr : max(r1 - dr, r0 + dr + 1), c0 + dc : max(c1 - dc, c0 + dc + 1)]
            index = (index << 1) | int(block.mean() > 127.5)
    return index


def event_color_at(frame: Any) -> str | None:
    """Name of the event colour visible in ``frame``, or None when the event area is plain grey."""
    arr = _as_hwc(frame)
    rows, cols = _box(*arr.shape[:2])
    r0, r1, c0, c1 = rows.start, rows.stop, cols.start, cols.stop
    dr, dc = (r1 - r0) // 4, (c1 - c0) // 4
    mean = arr[r0 + dr : max(r1 - dr, r0 + dr + 1), c0 + dc : max(c1 - dc, c0 + dc + 1)].reshape(-1, 3).mean(axis=0)
    candidates = {"none": (BACKGROUND,) * 3, **COLORS}
    best = min(candidates, key=lambda name: float(np.sum((mean - np.array(candidates[name])) ** 2)))
    return None if best == "none" else best


def _event_at(time_s: float, events: Sequence[Event]) -> str | None:
    for event in events:
        if event.start <= time_s < event.end:
            return event.color
    return None


def write_index_video(
    path: str | os.PathLike,
    *,
    num_frames: int,
    fps: float,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    keyint: int | None = None,
    events: Iterable[Event] = (),
    pix_fmt: str = "yuv420p",
    preset: str | None = None,
    progress: bool = False,
    times: Sequence[float] | None = None,
    rotate: int = 0,
) -> Path:
    """Write a video whose frame ``i`` encodes ``i`` (see module doc). Returns the path.

    ``codec``: ``libx264`` (H.264) or ``mpeg4`` (or any encoder PyAV has); ``keyint``: keyframe
    interval in frames (encoder default when None); ``events``: coloured squares by time;
    ``preset``: x264 speed preset (e.g. ``ultrafast`` for long benchmark videos). The file is
    written to a temporary name next to ``path`` and renamed when complete.

    ``times``: presentation time in seconds of each frame (a variable-frame-rate video, millisecond
    time base; ``fps`` is then only the nominal rate). ``rotate``: display rotation in degrees stored
    in the stream's metadata (as phones write portrait video); the pixels are stored unrotated.
    """
    import av

    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_frames - 1 > MAX_INDEX:
        raise ValueError(f"num_frames {num_frames} exceeds the {CODE_BITS}-bit index code")
    path = Path(path)
    events = list(events)
    rate = Fraction(fps).limit_denominator(1001)
    if times is not None:
        if len(times) != num_frames or any(b <= a for a, b in zip(times, times[1:])) or times[0] < 0:
            raise ValueError("times must give one increasing, non-negative time per frame")
    time_base = Fraction(1, 1000) if times is not None else 1 / rate

    def write(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format=_container_format(path)) as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            if rotate:
                stream.set_display_rotation(rotate)  # display matrix; read back as ``frame.rotation``
            options: dict[str, str] = {}
            if keyint is not None:
                stream.codec_context.gop_size = keyint
                if codec == "libx264":
                    options["x264-params"] = f"keyint={keyint}:min-keyint={keyint}:scenecut=0"
            if preset is not None and codec == "libx264":
                options["preset"] = preset
            if options:
                stream.options = options
            frames: Iterable[int] = range(num_frames)
            if progress:
                from tqdm import tqdm

                frames = tqdm(frames, desc=f"writing {path.name}", unit="frame")
            for i in frames:
                at = times[i] if times is not None else i / float(rate)
                rgb = render_frame(i, width, height, _event_at(at, events))
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = round(at * 1000) if times is not None else i
                frame.time_base = time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    remove_stale_temps(path.parent)
    atomic_write(path, write)  # hidden temp beside ``path``, the user's umask applied
    return path


def _container_format(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".mov": "mov", ".webm": "webm"}.get(
        suffix, suffix[1:] or None
    )


def write_corrupt_video(path: str | os.PathLike, *, mode: str = "garbage") -> Path:
    """Write a damaged video file.

    ``mode="garbage"``: a valid MP4 ``ftyp`` header followed by random bytes (no readable stream);
    ``mode="truncated"``: a real H.264 MP4 cut in half (its index, at the end, is lost).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if mode == "garbage":
        ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
        data = ftyp + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    elif mode == "truncated":
        full = path.with_name(f".{path.stem}.full.mp4")
        write_index_video(full, num_frames=48, fps=12)
        raw = full.read_bytes()
        full.unlink()
        data = raw[: len(raw) // 2]
    else:
        raise ValueError(f"unknown corruption mode {mode!r}; use 'garbage' or 'truncated'")
    path.write_bytes(data)
    return path


def write_empty_video(path: str | os.PathLike) -> Path:
    """Write a 0-byte file with a video name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _parse_event(text: str) -> Event:
    try:
        start, end, color = text.split(":")
        return Event(float(start), float(end), color)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"event {text!r}: expected START:END:COLOR, {err}") from None


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(description="Write a synthetic video whose frames encode their own index.")
    parser.add_argument("output", help="output video path (.mp4, .mkv, .avi)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration in seconds (default 5)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    parser.add_argument("--width", type=int, default=64, help="frame width in pixels, even (default 64)")
    parser.add_argument("--height", type=int, default=48, help="frame height in pixels, even (default 48)")
    parser.add_argument("--codec", default="libx264", help="encoder: libx264 or mpeg4 (default libx264)")
    parser.add_argument("--keyint", type=int, default=None, help="keyframe interval in frames (encoder default)")
    parser.add_argument("--preset", default=None, help="x264 preset, e.g. ultrafast for long videos")
    parser.add_argument(
        "--event",
        type=_parse_event,
        action="append",
        default=[],
        help="coloured square START:END:COLOR in seconds, e.g. 2:4:red (repeatable)",
    )
    args = parser.parse_args(argv)
    num_frames = max(1, round(args.seconds * args.fps))
    out = write_index_video(
        args.output,
        num_frames=num_frames,
        fps=args.fps,
        width=args.width,
        height=args.height,
        codec=args.codec,
        keyint=args.keyint,
        events=args.event,
        preset=args.preset,
        progress=True,
    )
    print(out)


if __name__ == "__main__":
    main()
