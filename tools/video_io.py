"""The video readers: probing (decord) and decoding (PyAV, decord as fallback) with timeouts, and the two
sampling entry points :func:`sample_video` (the prompt video) and :func:`sample_clip` (a clip by time range).

Which frames and what size are decided by :mod:`tools.video_sampling`; decoded frames are kept in a
:class:`~tools.frame_cache.FrameCache`; the types live in :mod:`tools.video_types`.

Rotation: a video with a display rotation (portrait phone video) is decoded upright, the size and the
pixels alike, as decord (qwen-vl-utils' reader) and ffmpeg do: frames are scaled in stored orientation
to the target size's transpose and turned by the rotation (multiples of 90 degrees; others are ignored,
as decord ignores them).

Variable frame rate: the probe reads every frame's presentation time. A video whose frames sit
within half a frame of ``i / fps`` is constant-rate (``VideoInfo.frame_times`` None). Otherwise
(variable frame rate, or a nominal rate that drifts from the real one) ``duration`` is the end of the
last frame, ``fps`` the mean rate ``num_frames / duration``, and :attr:`SampledVideo.times` are the
frames' real presentation times.

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
from typing import Any, Callable, TypeVar

import av
import numpy as np
import torch
from qwen_vl_utils import vision_process as qwen

from tools.files import strip_file_uri
from tools.frame_cache import FrameCache
from tools.protocol import CLIP_MAX_FRAMES, CLIP_MIN_FRAMES, TRAIN_MAX_FRAMES, TRAIN_PIXELS
from tools.video_sampling import GRID_FPS, clip_indices, target_hw, video_indices
from tools.video_types import SampledVideo, VideoError, VideoInfo

DEFAULT_PIXELS = TRAIN_PIXELS  # 50,176 px = 224 x 224 area, the reference's training budget
DEFAULT_TIMEOUT_S = 120.0
DECODE_CHUNK_FRAMES = 16  # frames per decord get_batch call (fallback path)
DEFAULT_MAX_READERS = int(os.environ.get("VIDEOTEMP_MAX_OPEN_READERS", "8"))
DECODE_THREADS = int(os.environ.get("VIDEOTEMP_DECODE_THREADS", "0"))  # 0 = one per core, at most 8

T = TypeVar("T")


# --------------------------------------------------------------------------- readers


class Unindexable(Exception):
    """PyAV cannot map this video's frames to decord's indices; decord decodes it instead."""


class PyAVReader:
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
            self.open()
        except Unindexable:
            self.container = None

    @property
    def indexed(self) -> bool:
        return self.container is not None

    def open(self) -> None:
        """Open the container and index its packets; :class:`Unindexable` when decord's numbering cannot be matched."""
        from av.video.reformatter import VideoReformatter

        try:
            container = av.open(self.info.path)
        except Exception as err:
            raise Unindexable(_first_line(err)) from None
        try:
            stream, all_pts, key_pts = self._index_packets(container)
        except BaseException:
            container.close()
            raise
        frame_pts = sorted(all_pts)
        self.index_of_pts = {pts: i for i, pts in enumerate(frame_pts)}
        if len(frame_pts) != self.info.num_frames or len(self.index_of_pts) != len(frame_pts) or not key_pts:
            container.close()
            raise Unindexable(f"{len(frame_pts)} packets for {self.info.num_frames} frames")
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
            raise Unindexable("no video stream")
        all_pts: list[int] = []
        key_pts: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's final flush packet
                    continue
                if packet.pts is None:
                    raise Unindexable("packets without pts")
                all_pts.append(packet.pts)
                if packet.is_keyframe:
                    key_pts.append(packet.pts)
        except av.FFmpegError as err:
            raise Unindexable(_first_line(err)) from None
        return stream, all_pts, key_pts

    def _decoded_frames(self) -> Any:
        for packet in self.container.demux(self.stream):
            for frame in packet.decode():
                index = self.index_of_pts.get(frame.pts)
                if index is None:
                    raise Unindexable(f"decoded a frame with unknown pts {frame.pts}")
                yield index, frame

    def seek(self, index: int) -> None:
        """Seek the decoder to frame ``index`` (a keyframe); decoding continues from there."""
        self._frames = None
        self.container.seek(self.frame_pts[index], stream=self.stream, backward=True)
        self._frames = self._decoded_frames()
        self._pos = None
        self._frame = None

    def frame_at(self, index: int) -> Any:
        """The decoded frame ``index``, or None if the decoder does not give it out."""
        k = max(bisect.bisect_right(self.keyframes, index) - 1, 0)
        key = self.keyframes[k]
        if self._frames is not None and self._pos == index:
            return self._frame  # a range that starts where the previous one ended
        if self._frames is None or self._pos is None or index < self._pos or key > self._pos + 1:
            self.seek(key)
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
            self.seek(retries.pop(0))

    def decode(self, indices: list[int], height: int, width: int, out: dict[int, torch.Tensor]) -> None:
        """Decode ``indices`` (sorted, unique) into ``out`` as ``[3, H, W]`` uint8; skips frames not given out."""
        for index in indices:
            frame = self.frame_at(index)
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
        self._readers: OrderedDict[_ReaderKey, PyAVReader] = OrderedDict()
        self._lock = threading.Lock()
        self.opened = 0

    def get(self, info: VideoInfo, timeout_s: float | None) -> PyAVReader:
        key = info.path
        mtime = _check_file(info.path)
        with self._lock:
            reader = self._readers.get(key)
            if reader is not None and reader.mtime == mtime:
                self._readers.move_to_end(key)
                return reader
        reader = _run_with_timeout(lambda: PyAVReader(info, mtime), timeout_s, info.path, "opening")
        with self._lock:
            self.opened += 1
            self._readers[key] = reader
            self._readers.move_to_end(key)
            self._trim()
        return reader

    def _trim(self) -> None:
        while len(self._readers) > self.max_readers:
            self._readers.popitem(last=False)  # freed once no call holds it any more

    def drop(self, reader: PyAVReader) -> None:
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


def pooled_reader(info: VideoInfo, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> PyAVReader:
    """The open reader of ``info``'s video from the pool (opened within ``timeout_s`` if not there or the file changed)."""
    return _readers.get(info, timeout_s)


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
            stamps = np.asarray(vr.get_frame_timestamp(list(range(num_frames))), dtype=np.float64).reshape(
                num_frames, 2
            )
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
    return os.path.abspath(strip_file_uri(path))


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


# --------------------------------------------------------------------------- decoding


def _decord_decode(info: VideoInfo, indices: list[int], height: int, width: int, out: dict[int, torch.Tensor]) -> None:
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


def _decode_into(reader: PyAVReader, indices: list[int], height: int, width: int, out: dict[int, torch.Tensor]) -> None:
    """Decode ``indices`` (sorted, unique) with PyAV, and whatever it cannot give with decord."""
    path = reader.info.path
    with reader.lock:
        try:
            if reader.indexed:
                try:
                    reader.decode(indices, height, width, out)
                except Unindexable:
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


def _fetch_frames(
    path: str,
    reader: PyAVReader,
    indices: list[int],
    height: int,
    width: int,
    cache: FrameCache | None,
    timeout_s: float | None,
) -> torch.Tensor:
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
            _run_with_timeout(
                lambda: _decode_into(reader, missing, height, width, decoded), timeout_s, path, "decoding"
            )
        except VideoError:
            _readers.drop(reader)  # a hung or failing reader is not reused
            raise
        for i in missing:
            if cache is not None:
                cache.put(keys[i], decoded[i])
            got[i] = decoded[i]
    return torch.stack([got[i] for i in indices])


def _sample(
    path: str | os.PathLike,
    pick: Callable[[VideoInfo], tuple[list[int], int]],
    *,
    factor: int,
    min_pixels: int | None,
    max_pixels: int | None,
    total_pixels: float | None,
    cache: FrameCache | None,
    timeout_s: float | None,
) -> SampledVideo:
    norm = _norm_path(path)
    info = probe(norm, timeout_s=timeout_s)
    indices, spanned = pick(info)
    height, width = target_hw(info, len(indices), factor, min_pixels, max_pixels, total_pixels)
    reader = _readers.get(info, timeout_s)
    frames = _fetch_frames(norm, reader, indices, height, width, cache, timeout_s)
    metadata = {
        "fps": info.fps,
        "frames_indices": indices,
        "total_num_frames": spanned,
        "video_backend": "pyav",
    }
    return SampledVideo(frames, [info.time_of(i) for i in indices], metadata)


def sample_video(
    path: str | os.PathLike,
    *,
    fps: float = GRID_FPS,
    min_frames: int = qwen.FPS_MIN_FRAMES,
    max_frames: int = TRAIN_MAX_FRAMES,
    min_pixels: int | None = DEFAULT_PIXELS,
    max_pixels: int | None = DEFAULT_PIXELS,
    total_pixels: float | None = None,
    image_factor: int = 28,
    cache: FrameCache | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> SampledVideo:
    """The whole video as the prompt video, sampled and sized exactly as qwen-vl-utils 0.0.14 does.

    ``image_factor``: 28 for Qwen2.5-VL (patch 14), 32 for Qwen3-VL (patch 16). ``min_pixels`` /
    ``max_pixels`` / ``total_pixels`` None = qwen-vl-utils' defaults. Raises :class:`VideoError`.
    """

    def pick(info: VideoInfo) -> tuple[list[int], int]:
        idx = video_indices(info, fps=fps, min_frames=min_frames, max_frames=max_frames)
        return idx, info.num_frames

    return _sample(
        path,
        pick,
        factor=image_factor,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        total_pixels=total_pixels,
        cache=cache,
        timeout_s=timeout_s,
    )


def sample_clip(
    path: str | os.PathLike,
    start: float,
    end: float,
    *,
    fps: float = GRID_FPS,
    min_frames: int = CLIP_MIN_FRAMES,
    max_frames: int = CLIP_MAX_FRAMES,
    min_pixels: int | None = DEFAULT_PIXELS,
    max_pixels: int | None = DEFAULT_PIXELS,
    total_pixels: float | None = None,
    image_factor: int = 28,
    cache: FrameCache | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> SampledVideo:
    """The clip ``[start, end]`` seconds (clamped to the video), sampled by the protocol's clip rule.

    Raises :class:`VideoError` for unreadable videos and ``ValueError`` for an empty range.
    """

    def pick(info: VideoInfo) -> tuple[list[int], int]:
        return clip_indices(info, start, end, fps=fps, min_frames=min_frames, max_frames=max_frames)

    return _sample(
        path,
        pick,
        factor=image_factor,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        total_pixels=total_pixels,
        cache=cache,
        timeout_s=timeout_s,
    )
