"""Clip cutting for the loop: one tool call per video at a time in this process, frame-cache counters."""

from __future__ import annotations

import threading
from typing import Any

from tools import protocol

_PATH_LOCKS: dict[str, threading.Lock] = {}
_PATH_LOCKS_GUARD = threading.Lock()


def cut_clips(
    video_path: str,
    call: protocol.ToolCall,
    settings: Any,
    *,
    duration: float | None,
    cache: Any,
    rules: protocol.LoopRules = protocol.RL_RULES,
):
    """``tools.video_clip.run_clip_call``, one call per video at a time in this process.

    The rollouts of a group ask for overlapping ranges of the same video at about the same moment;
    run concurrently, each would decode the same frames before any reached the frame cache.
    Serialized per video, the first call decodes and the others mostly hit the cache (calls on
    different videos still run in parallel). Blocking: run it in a thread.
    """
    from tools.video_clip import run_clip_call

    with _PATH_LOCKS_GUARD:
        lock = _PATH_LOCKS.setdefault(video_path, threading.Lock())
    with lock:
        return run_clip_call(video_path, call, settings, duration=duration, cache=cache, rules=rules)


def frame_cache_counts(cache: Any) -> tuple[int, int]:
    """(hits, misses) of a frame cache whose ``stats`` is a dict, an object or a method returning either."""
    stats = getattr(cache, "stats", None)
    if callable(stats):
        stats = stats()
    if stats is None:
        return 0, 0
    get = stats.get if isinstance(stats, dict) else (lambda k, d=0: getattr(stats, k, d))
    return int(get("hits", 0) or 0), int(get("misses", 0) or 0)
