"""The decoded-frame cache: a thread-safe LRU of uint8 frames keyed by ``(path, source index, H, W)``.

Clips that overlap the prompt video or each other (both sampled on the video's fixed 2-fps grid,
:mod:`tools.video_sampling`) find their frames here and decode nothing new. One process-wide cache
(:func:`shared_frame_cache`) serves the agent loop and the clip tool of a worker.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import torch

DEFAULT_CACHE_BYTES = int(os.environ.get("VIDEOTEMP_FRAME_CACHE_BYTES", str(2 << 30)))


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
