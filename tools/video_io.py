"""The one place that decodes video: probing, prompt-video sampling and clip sampling.

Sampling rules
--------------
* Whole (prompt) video: exactly qwen-vl-utils 0.0.14 (``smart_nframes`` for the frame count,
  ``linspace(0, total - 1, n).round()`` for the indices, ``smart_resize`` with ``fetch_video``'s
  effective pixel cap for the size), so frames match what verl's own data path would give.
* Every video has a fixed **2-fps grid** ``G``: the qwen-vl-utils 2-fps sampling of the whole video
  without the frame cap. An uncapped prompt video at 2 fps *is* ``G``; a clip takes the grid points
  inside its range. Decoded frames are cached by ``(path, source index, H, W)`` in a
  :class:`FrameCache`, so clips that overlap the prompt video or each other decode nothing new.
* Clip frame count (docs/protocol.md): ``fps`` over the clip clamped to ``[min_frames, max_frames]``,
  rounded down to even, never more than the source frames in the range (if fewer than 2 exist the
  frame is repeated to 2).

Metadata follows the convention of qwen-vl-utils and transformers' ``VideoMetadata``: ``fps`` is
the *source* frame rate, ``frames_indices`` are absolute source indices and ``total_num_frames`` is
the number of source frames the sample spans, so that the processor's
``sampled_fps = len(frames_indices) / total_num_frames * fps`` is the true sampled rate
(:attr:`SampledVideo.sample_fps`; Qwen2.5-VL derives ``second_per_grid_ts`` from it, Qwen3-VL its
absolute timestamps from ``frames_indices / fps``).

Rotation: a video with a display rotation (portrait phone video) is decoded upright, the size and the
pixels alike, as decord (qwen-vl-utils' reader) and ffmpeg do: frames are scaled in stored orientation
to the target size's transpose and turned by the rotation (multiples of 90 degrees; others are ignored,
as decord ignores them).

Variable frame rate: the probe reads every frame's presentation time. A video whose frames sit
within half a frame of ``i / fps`` is constant-rate and sampled exactly as above. Otherwise
(variable frame rate, or a nominal rate that drifts from the real one) frames are chosen by
presentation time: the prompt video and the grid take the frame nearest to each of the evenly
spaced times, a clip the frames whose times fall in its range; ``duration`` is the end of the last
frame, ``fps`` the mean rate ``num_frames / duration``, and :attr:`SampledVideo.times` are the frames'
real presentation times.

Probing (frame count, fps, size, frame times) uses decord, as qwen-vl-utils does, so frame numbering matches it.
Decoding uses PyAV: one container per video, indexed once (frame ``i`` = the packet with the
``i``-th smallest pts, decord's numbering), decoded forward and seeking to the keyframe at or before
a wanted frame only when that skips frames; only the wanted frames are converted to RGB, straight at
the target size (bilinear swscale, the same pixels as a decord reader opened at that size), so no
full-resolution RGB frame is ever made and peak memory stays near the size of the uint8 result.
A video PyAV cannot index that way (packet count differs from decord's, missing pts), and any frame
its decoder does not give out, is decoded by decord at the target size (readers parked with
``seek(0)`` and closed after use: decord 0.6 keeps decoding in the background otherwise,
dmlc/decord#208). Open PyAV readers are kept in a small LRU pool keyed by path, with a lock each
(a decoder is not thread-safe); the decoder keeps its position between calls, so a forward
request continues where the last one stopped. Every decode runs in a worker thread bounded by
``timeout_s``. ``VIDEOTEMP_DECODE_THREADS`` sets the decoder threads (0 = one per usable core, at
most 8).
"""

from __future__ import annotations

import bisect
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import av
import numpy as np
import torch
from qwen_vl_utils import vision_process as qwen

from tools.protocol import CLIP_MAX_FRAMES, CLIP_MIN_FRAMES, TRAIN_MAX_FRAMES, TRAIN_PIXELS

GRID_FPS = 2.0
DEFAULT_PIXELS = TRAIN_PIXELS  # 50,176 px = 224 x 224 area, the reference's training budget
DEFAULT_TIMEOUT_S = 120.0
DECODE_CHUNK_FRAMES = 16  # frames per decord get_batch call (fallback path)
DEFAULT_MAX_READERS = int(os.environ.get("VIDEOTEMP_MAX_OPEN_READERS", "8"))
DECODE_THREADS = int(os.environ.get("VIDEOTEMP_DECODE_THREADS", "0"))  # 0 = one per core, at most 8
DEFAULT_CACHE_BYTES = int(os.environ.get("VIDEOTEMP_FRAME_CACHE_BYTES", str(2 << 30)))

T = TypeVar("T")


class VideoError(Exception):
    """A video could not be read; the message names the path and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video without sampling it."""

    path: str
    duration: float
    fps: float
    num_frames: int
    width: int
    height: int
    frame_times: tuple[float, ...] | None = None  # presentation times (s) of a variable-rate video; None: i / fps

    @property
    def variable_rate(self) -> bool:
        return self.frame_times is not None

    def time_of(self, index: int) -> float:
        """Presentation time in seconds of source frame ``index``."""
        return self.frame_times[index] if self.frame_times is not None else index / self.fps


@dataclass
class SampledVideo:
    """Decoded uint8 frames ``[T, 3, H, W]`` with their source times and processor metadata."""

    frames: torch.Tensor
    times: list[float]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_fps(self) -> float:
        """True sampled frame rate (what transformers computes as ``VideoMetadata.sampled_fps``)."""
        meta = self.metadata
        return len(meta["frames_indices"]) / meta["total_num_frames"] * meta["fps"]

    @property
    def frame_indices(self) -> list[int]:
        return list(self.metadata["frames_indices"])

    def as_verl_video(self) -> tuple[torch.Tensor, dict[str, Any]]:
        """``(frames, metadata)``: one video as verl, vLLM and the HF processors take it."""
        return self.frames, dict(self.metadata)


# --------------------------------------------------------------------------- frame cache


class FrameCache:
    """Thread-safe LRU of decoded uint8 frames keyed by ``(path, index, H, W)`` with a byte budget."""

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._frames: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = 0
        self._hits = self._misses = self._evictions = self._decoded = 0

    def get_many(self, keys: list[tuple]) -> dict[tuple, torch.Tensor]:
        """Frames found for ``keys`` (counted as hits; the rest as misses), marked recently used."""
        found: dict[tuple, torch.Tensor] = {}
        with self._lock:
            for key in keys:
                frame = self._frames.get(key)
                if frame is None:
                    self._misses += 1
                else:
                    self._frames.move_to_end(key)
                    found[key] = frame
                    self._hits += 1
        return found

    def put(self, key: tuple, frame: torch.Tensor) -> None:
        """Store one decoded frame (counted in ``decoded_frames``), evicting the oldest over budget."""
        size = frame.numel() * frame.element_size()
        with self._lock:
            self._decoded += 1
            if size > self.max_bytes:
                return
            old = self._frames.pop(key, None)
            if old is not None:
                self._bytes -= old.numel() * old.element_size()
            self._frames[key] = frame
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._frames.popitem(last=False)
                self._bytes -= evicted.numel() * evicted.element_size()
                self._evictions += 1

    def drop_path(self, path: str) -> None:
        """Forget every frame of one video (e.g. after the file changed)."""
        with self._lock:
            for key in [k for k in self._frames if k[0] == path]:
                frame = self._frames.pop(key)
                self._bytes -= frame.numel() * frame.element_size()

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0

    @property
    def stats(self) -> dict[str, int]:
        """``hits``, ``misses``, ``bytes``, ``frames``, ``evictions``, ``decoded_frames``."""
        with self._lock:
            return {
                "hits": self._hits,
                "misses": self._misses,
                "bytes": self._bytes,
                "frames": len(self._frames),
                "evictions": self._evictions,
                "decoded_frames": self._decoded,
            }


_shared_cache: FrameCache | None = None
_shared_cache_lock = threading.Lock()


def shared_frame_cache(max_bytes: int | None = None) -> FrameCache:
    """The process-wide :class:`FrameCache` (one per Ray worker); ``max_bytes`` applies on first use.

    Default budget: ``VIDEOTEMP_FRAME_CACHE_BYTES`` (2 GiB).
    """
    global _shared_cache
    with _shared_cache_lock:
        if _shared_cache is None:
            _shared_cache = FrameCache(DEFAULT_CACHE_BYTES if max_bytes is None else max_bytes)
        return _shared_cache


# --------------------------------------------------------------------------- readers


class _Unindexable(Exception):
    """PyAV cannot map this video's frames to decord's indices; decord decodes it instead."""


class _Reader:
    """One video opened with PyAV: its packet index, decoder position and lock (not thread-safe).

    Frame ``i`` is the packet with the ``i``-th smallest pts, which is decord's (and so qwen-vl-utils')
    numbering. Decoding goes forward from the current position and seeks to the keyframe at or
    before a wanted frame only when that skips frames, so a sorted request decodes each needed
    GOP once, and only the frames asked for are converted (to RGB at the target size).
    """

    def __init__(self, info: VideoInfo, mtime: float):
        self.info = info
        self.mtime = mtime
        self.lock = threading.Lock()
        self.container: Any = None
        self._frames: Any = None  # generator of (index, frame) continuing after ``self._pos``
        self._pos: int | None = None  # index of the last frame the decoder gave out
        self._frame: Any = None  # and that frame
        try:
            self._open()
        except _Unindexable:
            self.container = None

    @property
    def indexed(self) -> bool:
        return self.container is not None

    def _open(self) -> None:
        from av.video.reformatter import VideoReformatter

        try:
            container = av.open(self.info.path)
        except Exception as err:
            raise _Unindexable(_first_line(err)) from None
        try:
            stream, all_pts, key_pts = self._index_packets(container)
        except BaseException:
            container.close()
            raise
        frame_pts = sorted(all_pts)
        self.index_of_pts = {pts: i for i, pts in enumerate(frame_pts)}
        if len(frame_pts) != self.info.num_frames or len(self.index_of_pts) != len(frame_pts) or not key_pts:
            container.close()
            raise _Unindexable(f"{len(frame_pts)} packets for {self.info.num_frames} frames")
        self.frame_pts = frame_pts
        self.keyframes = sorted(self.index_of_pts[pts] for pts in key_pts)
        stream.thread_type = "AUTO"
        stream.thread_count = DECODE_THREADS or _auto_decode_threads()
        self.container, self.stream = container, stream
        self.reformatter = VideoReformatter()

    @staticmethod
    def _index_packets(container: Any) -> tuple[Any, list[int], list[int]]:
        """The stream decord would pick (ffmpeg's best video stream), its packets' pts and its keyframes' pts."""
        stream = container.streams.best("video")
        if stream is None:
            raise _Unindexable("no video stream")
        all_pts: list[int] = []
        key_pts: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's final flush packet
                    continue
                if packet.pts is None:
                    raise _Unindexable("packets without pts")
                all_pts.append(packet.pts)
                if packet.is_keyframe:
                    key_pts.append(packet.pts)
        except av.FFmpegError as err:
            raise _Unindexable(_first_line(err)) from None
        return stream, all_pts, key_pts

    def _decoded_frames(self) -> Any:
        for packet in self.container.demux(self.stream):
            for frame in packet.decode():
                index = self.index_of_pts.get(frame.pts)
                if index is None:
                    raise _Unindexable(f"decoded a frame with unknown pts {frame.pts}")
                yield index, frame

    def _seek(self, index: int) -> None:
        self._frames = None
        self.container.seek(self.frame_pts[index], stream=self.stream, backward=True)
        self._frames = self._decoded_frames()
        self._pos = None
        self._frame = None

    def _frame_at(self, index: int) -> Any:
        """The decoded frame ``index``, or None if the decoder does not give it out."""
        k = max(bisect.bisect_right(self.keyframes, index) - 1, 0)
        key = self.keyframes[k]
        if self._frames is not None and self._pos == index:
            return self._frame  # a range that starts where the previous one ended
        if self._frames is None or self._pos is None or index < self._pos or key > self._pos + 1:
            self._seek(key)
        # A demuxer that lands past the keyframe asked for gets one earlier keyframe, then the first.
        retries = [self.keyframes[j] for j in sorted({max(k - 1, 0), 0}, reverse=True) if j < k]
        while True:
            for got, frame in self._frames:
                self._pos, self._frame = got, frame
                if got == index:
                    return frame
                if got > index:
                    break
            if not retries:
                self.reset()
                return None
            self._seek(retries.pop(0))

    def decode(self, indices: list[int], height: int, width: int, out: dict[int, torch.Tensor]) -> None:
        """Decode ``indices`` (sorted, unique) into ``out`` as ``[3, H, W]`` uint8; skips frames not given out."""
        for index in indices:
            frame = self._frame_at(index)
            if frame is None:
                continue
            # Bilinear swscale, as decord's own scaling: the same pixels as a decord reader at this size.
            turns = _quarter_turns(frame)
            w_in, h_in = (height, width) if turns % 2 else (width, height)
            rgb = self.reformatter.reformat(frame, w_in, h_in, "rgb24", interpolation="BILINEAR", threads=1)
            array = rgb.to_ndarray()
            if turns:
                array = np.ascontiguousarray(np.rot90(array, turns))
            out[index] = torch.from_numpy(array).permute(2, 0, 1)

    def reset(self) -> None:
        """Forget the decoder position (after an error) so that the next request seeks."""
        self._frames = None
        self._pos = None
        self._frame = None


def _quarter_turns(frame: Any) -> int:
    """Counter-clockwise quarter turns that make a decoded frame upright (its display rotation, as decord applies it)."""
    try:
        rotation = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        return 0
    if not math.isfinite(rotation) or rotation % 90:
        return 0
    return int(rotation // 90) % 4


def _auto_decode_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


_ReaderKey = str


class _ReaderPool:
    """Small LRU of open readers keyed by path (and file mtime)."""

    def __init__(self, max_readers: int):
        self.max_readers = max_readers
        self._readers: OrderedDict[_ReaderKey, _Reader] = OrderedDict()
        self._lock = threading.Lock()
        self.opened = 0

    def get(self, info: VideoInfo, timeout_s: float | None) -> _Reader:
        key = info.path
        mtime = _check_file(info.path)
        with self._lock:
            reader = self._readers.get(key)
            if reader is not None and reader.mtime == mtime:
                self._readers.move_to_end(key)
                return reader
        reader = _run_with_timeout(lambda: _Reader(info, mtime), timeout_s, info.path, "opening")
        with self._lock:
            self.opened += 1
            self._readers[key] = reader
            self._readers.move_to_end(key)
            self._trim()
        return reader

    def _trim(self) -> None:
        while len(self._readers) > self.max_readers:
            self._readers.popitem(last=False)  # freed once no call holds it any more

    def drop(self, reader: _Reader) -> None:
        key = reader.info.path
        with self._lock:
            if self._readers.get(key) is reader:
                self._readers.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._readers)

    def clear(self) -> None:
        with self._lock:
            self._readers.clear()


_readers = _ReaderPool(DEFAULT_MAX_READERS)
_infos: OrderedDict[str, tuple[float, VideoInfo]] = OrderedDict()
_infos_lock = threading.Lock()
_MAX_INFOS = 4096


def reader_pool_size() -> int:
    """Number of video readers currently kept open."""
    return len(_readers)


def set_max_open_readers(count: int) -> None:
    """Bound the reader pool (default ``VIDEOTEMP_MAX_OPEN_READERS`` = 8); drops the oldest now."""
    if count < 1:
        raise ValueError(f"need at least one open reader, got {count}")
    with _readers._lock:
        _readers.max_readers = count
        _readers._trim()


def close_all_readers() -> None:
    """Close every pooled reader and forget probed infos (tests, benchmarks, before forking)."""
    _readers.clear()
    with _infos_lock:
        _infos.clear()


def forget_probe(path: str | os.PathLike) -> None:
    """Drop the remembered probe and the open reader of one video (before retrying a failed read)."""
    norm = _norm_path(path)
    with _infos_lock:
        _infos.pop(norm, None)
    with _readers._lock:
        _readers._readers.pop(norm, None)


def _check_file(path: str) -> float:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise VideoError(f"{path}: no such video file") from None
    except OSError as err:
        raise VideoError(f"{path}: cannot access the file ({err.strerror})") from None
    if not os.path.isfile(path):
        raise VideoError(f"{path}: not a regular file")
    if stat.st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    return stat.st_mtime


def _decord_reader(path: str, height: int = -1, width: int = -1) -> Any:
    import decord

    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), width=width, height=height, num_threads=DECODE_THREADS)
    except Exception as err:  # decord raises RuntimeError / DECORDError with long C++ traces
        raise VideoError(f"{path}: cannot open as a video ({_first_line(err)})") from None


def _probe_file(path: str) -> VideoInfo:
    vr = _decord_reader(path)
    try:
        num_frames = len(vr)
        if num_frames <= 0:
            raise VideoError(f"{path}: the video has no frames")
        fps = float(vr.get_avg_fps())
        if not (fps > 0 and math.isfinite(fps)):
            raise VideoError(f"{path}: the video has no valid frame rate (got {fps})")
        try:
            first = vr.get_batch([0]).asnumpy()
            vr.seek(0)
        except Exception as err:
            raise VideoError(f"{path}: cannot decode the first frame ({_first_line(err)})") from None
        try:
            stamps = np.asarray(vr.get_frame_timestamp(list(range(num_frames))), dtype=np.float64).reshape(num_frames, 2)
        except Exception:  # no timestamps: constant rate is all we can assume
            stamps = None
    finally:
        del vr
    height, width = int(first.shape[1]), int(first.shape[2])
    times = _variable_frame_times(stamps, fps)
    if times is None:
        return VideoInfo(path, num_frames / fps, fps, num_frames, width, height)
    # The last frame lasts its packet duration, and at least as long as the gap before it (muxers often
    # give the last packet the time base's minimum).
    last = max(float(stamps[-1, 1] - stamps[-1, 0]), times[-1] - times[-2])
    duration = times[-1] + last
    return VideoInfo(path, duration, num_frames / duration, num_frames, width, height, tuple(times))


def _variable_frame_times(stamps: np.ndarray | None, fps: float) -> list[float] | None:
    """Frame start times from zero when they stray more than half a frame from ``i / fps``, else None."""
    if stamps is None or len(stamps) < 2 or not np.all(np.isfinite(stamps)):
        return None
    starts = stamps[:, 0] - stamps[0, 0]
    if np.any(np.diff(starts) <= 0):
        return None  # not a usable clock (duplicate or unordered times): keep the index clock
    nominal = np.arange(len(starts)) / fps
    if float(np.max(np.abs(starts - nominal))) <= 0.5 / fps:
        return None
    return [round(float(t), 6) for t in starts]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _run_with_timeout(fn: Callable[[], T], timeout_s: float | None, path: str, what: str) -> T:
    """Run ``fn`` in a daemon thread; raise :class:`VideoError` if it takes longer than ``timeout_s``."""
    if timeout_s is None:
        return fn()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err
        finally:
            done.set()

    threading.Thread(target=target, name=f"video-{what}", daemon=True).start()
    if not done.wait(timeout_s):
        raise VideoError(f"{path}: {what} took longer than {timeout_s:g} s (damaged file?)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _norm_path(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return os.path.abspath(text)


def probe(path: str | os.PathLike, *, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> VideoInfo:
    """Duration, fps, frame count and size of a video (remembered per path and mtime).

    Raises :class:`VideoError` (naming the path and the reason) for a missing, empty, corrupt or
    frameless file.
    """
    norm = _norm_path(path)
    mtime = _check_file(norm)
    with _infos_lock:
        known = _infos.get(norm)
        if known is not None and known[0] == mtime:
            _infos.move_to_end(norm)
            return known[1]
    info = _run_with_timeout(lambda: _probe_file(norm), timeout_s, norm, "probing")
    with _infos_lock:
        _infos[norm] = (mtime, info)
        while len(_infos) > _MAX_INFOS:
            _infos.popitem(last=False)
    return info


# --------------------------------------------------------------------------- sampling rules


def resized_hw(height: int, width: int, *, min_pixels: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """Target ``(height, width)``: qwen-vl-utils' ``smart_resize`` (multiples of ``factor``, area in budget)."""
    return qwen.smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)


def _effective_max_pixels(nframes: int, factor: int, min_pixels: int, max_pixels: int | None,
                          total_pixels: float | None) -> int:
    """The per-frame pixel cap that qwen-vl-utils' ``fetch_video`` applies for ``nframes`` frames."""
    total = total_pixels if total_pixels is not None else qwen.MODEL_SEQ_LEN * factor * factor * 0.9
    cap = max(min(qwen.VIDEO_MAX_TOKEN_NUM * factor * factor, total / nframes * qwen.FRAME_FACTOR),
              int(min_pixels * 1.05))
    return cap if max_pixels is None else min(max_pixels, cap)


def _target_hw(info: VideoInfo, nframes: int, factor: int, min_pixels: int | None, max_pixels: int | None,
               total_pixels: float | None) -> tuple[int, int]:
    min_px = min_pixels if min_pixels is not None else qwen.VIDEO_MIN_TOKEN_NUM * factor * factor
    max_px = _effective_max_pixels(nframes, factor, min_px, max_pixels, total_pixels)
    if max_px < min_px:
        raise ValueError(f"max_pixels {max_px} is below min_pixels {min_px}; lower min_pixels")
    height, width = resized_hw(info.height, info.width, min_pixels=min_px, max_pixels=max_px, factor=factor)
    if height <= 0 or width <= 0:
        raise ValueError(f"pixel budget {max_px} is too small for a {info.width}x{info.height} video "
                         f"(smart_resize gives {width}x{height})")
    return height, width


def main_video_indices(num_frames: int, video_fps: float, *, fps: float = GRID_FPS,
                       min_frames: int = qwen.FPS_MIN_FRAMES, max_frames: int | None = TRAIN_MAX_FRAMES) -> list[int]:
    """qwen-vl-utils' frame indices for the whole video (``max_frames=None``: no cap)."""
    ele: dict[str, Any] = {"fps": fps, "min_frames": min_frames}
    ele["max_frames"] = num_frames if max_frames is None else max_frames
    try:
        n = qwen.smart_nframes(ele, total_frames=num_frames, video_fps=video_fps)
    except ValueError:
        n = 0
    if n < qwen.FRAME_FACTOR:  # qwen refuses videos of 0-1 frames; repeat the frame to one pair
        return [0] * qwen.FRAME_FACTOR if num_frames < qwen.FRAME_FACTOR else [0, num_frames - 1]
    return torch.linspace(0, num_frames - 1, n).round().long().tolist()


def grid_indices(num_frames: int, video_fps: float) -> list[int]:
    """The video's fixed 2-fps grid ``G`` (qwen-vl-utils' 2-fps sampling without a frame cap)."""
    return main_video_indices(num_frames, video_fps, fps=GRID_FPS, max_frames=None)


def _nearest_frames(info: VideoInfo, targets: Any) -> list[int]:
    """Index of the frame whose presentation time is nearest to each target time (variable-rate videos)."""
    times = np.asarray(info.frame_times, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    right = np.clip(np.searchsorted(times, targets), 1, len(times) - 1)
    left = right - 1
    pick = np.where(np.abs(times[right] - targets) < np.abs(targets - times[left]), right, left)
    return [int(i) for i in pick]


def video_indices(info: VideoInfo, *, fps: float = GRID_FPS, min_frames: int = qwen.FPS_MIN_FRAMES,
                  max_frames: int | None = TRAIN_MAX_FRAMES) -> list[int]:
    """The prompt video's source indices: :func:`main_video_indices` for a constant-rate video; for a
    variable-rate one the same count, at the frames nearest to evenly spaced presentation times."""
    indices = main_video_indices(info.num_frames, info.fps, fps=fps, min_frames=min_frames, max_frames=max_frames)
    if info.frame_times is None or info.num_frames < 2:
        return indices
    times = info.frame_times
    return _nearest_frames(info, np.linspace(times[0], times[-1], len(indices)))


def video_grid(info: VideoInfo) -> list[int]:
    """The video's fixed 2-fps grid ``G`` (by presentation time for a variable-rate video)."""
    return video_indices(info, fps=GRID_FPS, max_frames=None)


def clip_frame_count(duration: float, available: int, *, fps: float = GRID_FPS,
                     min_frames: int = CLIP_MIN_FRAMES, max_frames: int = CLIP_MAX_FRAMES) -> int:
    """Frames for a clip: ``fps * duration`` clamped to ``[min, max]``, even, at most ``available`` (>= 2)."""
    n = min(max(duration * fps, min_frames), max_frames, available)
    n = int(math.floor(n / 2) * 2)
    return max(n, 2)


def clip_indices(info: VideoInfo, start: float, end: float, *, fps: float = GRID_FPS,
                 min_frames: int = CLIP_MIN_FRAMES, max_frames: int = CLIP_MAX_FRAMES) -> tuple[list[int], int]:
    """Source indices for the clip ``[start, end]`` seconds and the number of source frames it spans.

    Grid points of ``G`` inside the range when the clip rate is the grid rate and at least
    ``min_frames`` exist (a centred run of the even count when at most two are extra, else uniformly
    sub-sampled to the count of :func:`clip_frame_count`); otherwise that many evenly spaced source
    frames in the range.
    """
    start = min(max(start, 0.0), info.duration)
    end = min(max(end, 0.0), info.duration)
    if not end > start:
        raise ValueError(f"empty clip range [{start}, {end}] for a {info.duration:.3f} s video")
    last = info.num_frames - 1
    if info.frame_times is None:
        lo = min(math.ceil(start * info.fps - 1e-6), last)
        hi = min(math.floor(end * info.fps + 1e-6), last)
        if hi < lo:  # the range falls between two frames: take the nearest one
            lo = hi = min(round((start + end) / 2 * info.fps), last)
    else:  # by presentation time
        lo = min(bisect.bisect_left(info.frame_times, start - 1e-6), last)
        hi = min(bisect.bisect_right(info.frame_times, end + 1e-6) - 1, last)
        if hi < lo:
            lo = hi = _nearest_frames(info, [(start + end) / 2])[0]
    available = hi - lo + 1
    n = clip_frame_count(end - start, available, fps=fps, min_frames=min_frames, max_frames=max_frames)
    inside = [i for i in video_grid(info) if lo <= i <= hi]
    if fps == GRID_FPS and len(inside) >= min_frames:
        # The grid's spacing can be a little over 0.5 s (qwen rounds its count down to even), so
        # the range may hold up to two grid points fewer than the nominal count: take what is there.
        count = min(n, len(inside) // 2 * 2)
        if len(inside) - count <= 2:
            offset = (len(inside) - count) // 2
            indices = inside[offset : offset + count]
        else:
            picks = torch.linspace(0, len(inside) - 1, count).round().long().tolist()
            indices = [inside[p] for p in picks]
    elif info.frame_times is None:
        indices = torch.linspace(lo, hi, n).round().long().tolist()
    else:
        indices = _nearest_frames(info, np.linspace(info.frame_times[lo], info.frame_times[hi], n))
    if indices[-1] > indices[0]:
        span = indices[-1] - indices[0]
        if info.frame_times is not None:  # in mean-rate frames, so that the sampled rate is the real one
            span = (info.frame_times[indices[-1]] - info.frame_times[indices[0]]) * info.fps
        spanned = max(1, round(len(indices) * span / (len(indices) - 1)))
    else:
        spanned = available
    return indices, spanned


# --------------------------------------------------------------------------- decoding


def _decord_decode(info: VideoInfo, indices: list[int], height: int, width: int,
                   out: dict[int, torch.Tensor]) -> None:
    """Fallback for what PyAV cannot index: decord at the target size, ``get_batch`` in chunks."""
    same = (height, width) == (info.height, info.width)
    vr = _decord_reader(info.path, -1 if same else height, -1 if same else width)
    try:
        for pos in range(0, len(indices), DECODE_CHUNK_FRAMES):
            chunk_idx = indices[pos : pos + DECODE_CHUNK_FRAMES]
            chunk = torch.from_numpy(vr.get_batch(chunk_idx).asnumpy()).permute(0, 3, 1, 2)
            for k, idx in enumerate(chunk_idx):
                out[idx] = chunk[k].clone()
    finally:
        try:
            vr.seek(0)  # park: stops decord's background decoding (dmlc/decord#208)
        except Exception:
            pass
        del vr


def _decode_into(reader: _Reader, indices: list[int], height: int, width: int,
                 out: dict[int, torch.Tensor]) -> None:
    """Decode ``indices`` (sorted, unique) with PyAV, and whatever it cannot give with decord."""
    path = reader.info.path
    with reader.lock:
        try:
            if reader.indexed:
                try:
                    reader.decode(indices, height, width, out)
                except _Unindexable:
                    reader.container = None  # this video goes to decord from now on
                except av.FFmpegError:
                    reader.reset()  # damaged data: decord gets its try at the frames still missing
                except BaseException:
                    reader.reset()
                    raise
            rest = [i for i in indices if i not in out]
            if rest:
                _decord_decode(reader.info, rest, height, width, out)
        except Exception as err:
            raise VideoError(f"{path}: decoding frames failed ({_first_line(err)})") from None


def _fetch_frames(path: str, reader: _Reader, indices: list[int], height: int, width: int,
                  cache: FrameCache | None, timeout_s: float | None) -> torch.Tensor:
    """Frames ``indices`` (any order, repeats allowed) as ``[T, 3, H, W]`` uint8, decoding only misses."""
    unique = sorted(set(indices))
    keys = {i: (path, i, height, width) for i in unique}
    got: dict[int, torch.Tensor] = {}
    if cache is not None:
        found = cache.get_many([keys[i] for i in unique])
        got = {key[1]: frame for key, frame in found.items()}
    missing = [i for i in unique if i not in got]
    if missing:
        decoded: dict[int, torch.Tensor] = {}
        try:
            _run_with_timeout(lambda: _decode_into(reader, missing, height, width, decoded), timeout_s, path,
                              "decoding")
        except VideoError:
            _readers.drop(reader)  # a hung or failing reader is not reused
            raise
        for i in missing:
            if cache is not None:
                cache.put(keys[i], decoded[i])
            got[i] = decoded[i]
    return torch.stack([got[i] for i in indices])


def _sample(path: str | os.PathLike, pick: Callable[[VideoInfo], tuple[list[int], int]], *, factor: int,
            min_pixels: int | None, max_pixels: int | None, total_pixels: float | None,
            cache: FrameCache | None, timeout_s: float | None) -> SampledVideo:
    norm = _norm_path(path)
    info = probe(norm, timeout_s=timeout_s)
    indices, spanned = pick(info)
    height, width = _target_hw(info, len(indices), factor, min_pixels, max_pixels, total_pixels)
    reader = _readers.get(info, timeout_s)
    frames = _fetch_frames(norm, reader, indices, height, width, cache, timeout_s)
    metadata = {
        "fps": info.fps,
        "frames_indices": indices,
        "total_num_frames": spanned,
        "video_backend": "pyav",
    }
    return SampledVideo(frames, [info.time_of(i) for i in indices], metadata)


def sample_video(path: str | os.PathLike, *, fps: float = GRID_FPS, min_frames: int = qwen.FPS_MIN_FRAMES,
                 max_frames: int = TRAIN_MAX_FRAMES, min_pixels: int | None = DEFAULT_PIXELS,
                 max_pixels: int | None = DEFAULT_PIXELS, total_pixels: float | None = None,
                 image_factor: int = 28, cache: FrameCache | None = None,
                 timeout_s: float | None = DEFAULT_TIMEOUT_S) -> SampledVideo:
    """The whole video as the prompt video, sampled and sized exactly as qwen-vl-utils 0.0.14 does.

    ``image_factor``: 28 for Qwen2.5-VL (patch 14), 32 for Qwen3-VL (patch 16). ``min_pixels`` /
    ``max_pixels`` / ``total_pixels`` None = qwen-vl-utils' defaults. Raises :class:`VideoError`.
    """
    def pick(info: VideoInfo) -> tuple[list[int], int]:
        idx = video_indices(info, fps=fps, min_frames=min_frames, max_frames=max_frames)
        return idx, info.num_frames

    return _sample(path, pick, factor=image_factor, min_pixels=min_pixels, max_pixels=max_pixels,
                   total_pixels=total_pixels, cache=cache, timeout_s=timeout_s)


def sample_clip(path: str | os.PathLike, start: float, end: float, *, fps: float = GRID_FPS,
                min_frames: int = CLIP_MIN_FRAMES, max_frames: int = CLIP_MAX_FRAMES,
                min_pixels: int | None = DEFAULT_PIXELS, max_pixels: int | None = DEFAULT_PIXELS,
                total_pixels: float | None = None, image_factor: int = 28, cache: FrameCache | None = None,
                timeout_s: float | None = DEFAULT_TIMEOUT_S) -> SampledVideo:
    """The clip ``[start, end]`` seconds (clamped to the video), sampled by the protocol's clip rule.

    Raises :class:`VideoError` for unreadable videos and ``ValueError`` for an empty range.
    """
    def pick(info: VideoInfo) -> tuple[list[int], int]:
        return clip_indices(info, start, end, fps=fps, min_frames=min_frames, max_frames=max_frames)

    return _sample(path, pick, factor=image_factor, min_pixels=min_pixels, max_pixels=max_pixels,
                   total_pixels=total_pixels, cache=cache, timeout_s=timeout_s)
