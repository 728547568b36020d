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
* Clip frame count (PROTOCOL.md): ``fps`` over the clip clamped to ``[min_frames, max_frames]``,
  rounded down to even, never more than the source frames in the range (if fewer than 2 exist the
  frame is repeated to 2).

Metadata follows the convention of qwen-vl-utils and transformers' ``VideoMetadata``: ``fps`` is
the *source* frame rate, ``frames_indices`` are absolute source indices and ``total_num_frames`` is
the number of source frames the sample spans, so that the processor's
``sampled_fps = len(frames_indices) / total_num_frames * fps`` is the true sampled rate
(:attr:`SampledVideo.sample_fps`; Qwen2.5-VL derives ``second_per_grid_ts`` from it, Qwen3-VL its
absolute timestamps from ``frames_indices / fps``).

Decoding uses decord ``get_batch`` in chunks with the reader opened at the target size (decord
scales in its ffmpeg pipeline), so no full-resolution RGB frame is ever held and peak memory stays
near the size of the uint8 result. Open readers are kept in a small LRU pool keyed by
``(path, H, W)`` with a lock each (decord readers are not thread-safe) and parked with ``seek(0)`` after use (decord 0.6
keeps decoding in the background otherwise, dmlc/decord#208). Every decode runs in a worker thread
bounded by ``timeout_s``.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import torch
from qwen_vl_utils import vision_process as qwen
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as tvf

from recipe.videotemp_o3.protocol import CLIP_MAX_FRAMES, CLIP_MIN_FRAMES, TRAIN_MAX_FRAMES, TRAIN_PIXELS

GRID_FPS = 2.0
DEFAULT_PIXELS = TRAIN_PIXELS  # 50,176 px = 224 x 224 area, the reference's training budget
DEFAULT_TIMEOUT_S = 120.0
DECODE_CHUNK_FRAMES = 16  # full-resolution frames held at once while decoding
DEFAULT_MAX_READERS = int(os.environ.get("VIDEOTEMP_MAX_OPEN_READERS", "8"))
DECODE_THREADS = int(os.environ.get("VIDEOTEMP_DECODE_THREADS", "0"))  # 0 = decord/ffmpeg auto
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


class _Reader:
    """An open decord reader that outputs frames at one size, with its lock."""

    def __init__(self, vr: Any, info: VideoInfo, size: tuple[int, int], mtime: float):
        self.vr = vr
        self.info = info
        self.size = size
        self.mtime = mtime
        self.lock = threading.Lock()


_ReaderKey = tuple[str, int, int]


class _ReaderPool:
    """Small LRU of open readers keyed by ``(path, height, width)`` (and file mtime)."""

    def __init__(self, max_readers: int):
        self.max_readers = max_readers
        self._readers: OrderedDict[_ReaderKey, _Reader] = OrderedDict()
        self._lock = threading.Lock()
        self.opened = 0

    def get(self, info: VideoInfo, height: int, width: int, timeout_s: float | None) -> _Reader:
        key = (info.path, height, width)
        mtime = _check_file(info.path)
        with self._lock:
            reader = self._readers.get(key)
            if reader is not None and reader.mtime == mtime:
                self._readers.move_to_end(key)
                return reader
        reader = _run_with_timeout(lambda: _open_sized_reader(info, height, width, mtime), timeout_s, info.path,
                                   "opening")
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
        key = (reader.info.path, *reader.size)
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
    """Number of decord readers currently kept open."""
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
    finally:
        del vr
    height, width = int(first.shape[1]), int(first.shape[2])
    return VideoInfo(path, num_frames / fps, fps, num_frames, width, height)


def _open_sized_reader(info: VideoInfo, height: int, width: int, mtime: float) -> _Reader:
    # decord scales inside its decode pipeline: full-resolution RGB frames are never materialised,
    # which is both faster and far lighter than decoding at full size and resizing afterwards.
    same = (height, width) == (info.height, info.width)
    vr = _decord_reader(info.path, -1 if same else height, -1 if same else width)
    return _Reader(vr, info, (height, width), mtime)


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
    lo = min(math.ceil(start * info.fps - 1e-6), last)
    hi = min(math.floor(end * info.fps + 1e-6), last)
    if hi < lo:  # the range falls between two frames: take the nearest one
        lo = hi = min(round((start + end) / 2 * info.fps), last)
    available = hi - lo + 1
    n = clip_frame_count(end - start, available, fps=fps, min_frames=min_frames, max_frames=max_frames)
    inside = [i for i in grid_indices(info.num_frames, info.fps) if lo <= i <= hi]
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
    else:
        indices = torch.linspace(lo, hi, n).round().long().tolist()
    if indices[-1] > indices[0]:
        spanned = max(1, round(len(indices) * (indices[-1] - indices[0]) / (len(indices) - 1)))
    else:
        spanned = available
    return indices, spanned


# --------------------------------------------------------------------------- decoding


def _resize_uint8(chunk: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Safety net: readers already output the target size, so this is normally a no-op."""
    if chunk.shape[-2:] == (height, width):
        return chunk.contiguous()
    return tvf.resize(chunk, [height, width], interpolation=InterpolationMode.BILINEAR, antialias=True)


def _decode_into(reader: _Reader, indices: list[int], height: int, width: int,
                 out: dict[int, torch.Tensor]) -> None:
    """Decode ``indices`` (sorted, unique) in chunks, resizing each chunk at once."""
    path = reader.info.path
    with reader.lock:
        try:
            for pos in range(0, len(indices), DECODE_CHUNK_FRAMES):
                chunk_idx = indices[pos : pos + DECODE_CHUNK_FRAMES]
                raw = reader.vr.get_batch(chunk_idx).asnumpy()
                frames = torch.from_numpy(raw).permute(0, 3, 1, 2)
                del raw
                small = _resize_uint8(frames, height, width)
                del frames
                for k, idx in enumerate(chunk_idx):
                    out[idx] = small[k].clone()
        except Exception as err:
            raise VideoError(f"{path}: decoding frames failed ({_first_line(err)})") from None
        finally:
            try:
                reader.vr.seek(0)  # park: stops decord's background decoding (dmlc/decord#208)
            except Exception:
                pass


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
    reader = _readers.get(info, height, width, timeout_s)
    frames = _fetch_frames(norm, reader, indices, height, width, cache, timeout_s)
    metadata = {
        "fps": info.fps,
        "frames_indices": indices,
        "total_num_frames": spanned,
        "video_backend": "decord",
    }
    return SampledVideo(frames, [i / info.fps for i in indices], metadata)


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
        idx = main_video_indices(info.num_frames, info.fps, fps=fps, min_frames=min_frames, max_frames=max_frames)
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
