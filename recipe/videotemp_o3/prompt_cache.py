"""Prompt videos decoded once per GRPO group and process, and the thread pool the loop decodes in.

The rollouts of one group share one prompt and start at about the same moment: :class:`PromptVideoCache`
hands them the same decoded ``SampledVideo`` (uint8 frames from ``tools.video_io.sample_video``), on top of
the byte-budgeted frame cache that clips reuse too. :data:`DECODE_EXECUTOR` runs every blocking decode of
the loop (prompt videos, prompt images, clips) off the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

DECODE_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="videotemp-decode")


@dataclass(frozen=True)
class VideoBudget:
    """Sampling budget of one video: the key of a decoded prompt video together with its path."""

    fps: float
    min_frames: int
    max_frames: int
    min_pixels: int
    max_pixels: int
    image_factor: int


class PromptVideoCache:
    """Decoded prompt videos shared by concurrent rollouts inside one process.

    ``acquire`` returns the same ``SampledVideo`` object to every caller asking for the same
    (path, budget); concurrent callers wait on one decode (a thread-safe future, so it works from any
    event loop). Entries in use are always kept; up to ``max_idle`` released ones stay for rollouts
    that start later.
    """

    def __init__(self, max_idle: int = 2):
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._entries: dict[tuple, concurrent.futures.Future] = {}
        self._users: dict[tuple, int] = {}
        self._idle: OrderedDict[tuple, None] = OrderedDict()
        self.decodes = 0  # number of decodes started (tests and metrics)

    async def acquire(self, key: tuple, decode: Callable[[], Any]) -> tuple[Any, bool]:
        """Video for ``key`` (decoding it with ``decode`` in a thread if absent) and whether it was shared."""
        with self._lock:
            future = self._entries.get(key)
            shared = future is not None
            if future is None:
                future = DECODE_EXECUTOR.submit(decode)
                self._entries[key] = future
                self.decodes += 1
            self._users[key] = self._users.get(key, 0) + 1
            self._idle.pop(key, None)
        try:
            return await asyncio.wrap_future(future), shared
        except BaseException:
            with self._lock:
                if self._entries.get(key) is future and future.done() and future.exception() is not None:
                    self._entries.pop(key, None)  # do not cache failures
            self.release(key)
            raise

    def release(self, key: tuple) -> None:
        """One user of ``key`` is done with it."""
        with self._lock:
            users = self._users.get(key, 0) - 1
            if users > 0:
                self._users[key] = users
                return
            self._users.pop(key, None)
            if key not in self._entries:
                return
            self._idle[key] = None
            while len(self._idle) > self.max_idle:
                old, _ = self._idle.popitem(last=False)
                self._entries.pop(old, None)

    def clear(self) -> None:
        """Forget every entry and reset the decode count."""
        with self._lock:
            self._entries.clear()
            self._users.clear()
            self._idle.clear()
            self.decodes = 0


_PROMPT_VIDEOS = PromptVideoCache()


def prompt_video_cache() -> PromptVideoCache:
    """The process-wide prompt video cache."""
    return _PROMPT_VIDEOS
