"""PromptVideoCache: one decode per group, failures not cached, idle entries bounded."""

from __future__ import annotations

import asyncio
import threading

import pytest

from recipe.videotemp_o3.prompt_cache import PromptVideoCache


async def test_concurrent_acquires_share_one_decode():
    cache = PromptVideoCache(max_idle=1)
    started = threading.Event()
    release = threading.Event()

    def decode():
        started.set()
        release.wait(5)
        return object()

    tasks = [asyncio.create_task(cache.acquire("k", decode)) for _ in range(4)]
    await asyncio.sleep(0.05)
    assert started.is_set() and cache.decodes == 1
    release.set()
    results = await asyncio.gather(*tasks)
    assert len({id(video) for video, _ in results}) == 1
    assert sorted(shared for _, shared in results) == [False, True, True, True]


async def test_failed_decode_is_not_cached():
    cache = PromptVideoCache()
    calls = []

    def bad():
        calls.append(1)
        raise RuntimeError("unreadable")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.acquire("k", bad)
    assert len(calls) == 2
    video, shared = await cache.acquire("k", lambda: "ok")
    assert (video, shared) == ("ok", False)


async def test_idle_entries_are_bounded_and_used_ones_kept():
    cache = PromptVideoCache(max_idle=1)
    a, _ = await cache.acquire("a", lambda: "A")
    await cache.acquire("b", lambda: "B")
    cache.release("b")
    await cache.acquire("c", lambda: "C")
    cache.release("c")  # "b" evicted (idle beyond 1), "a" kept (in use)
    assert (await cache.acquire("a", lambda: "A2")) == ("A", True)
    assert (await cache.acquire("c", lambda: "C2")) == ("C", True)
    assert (await cache.acquire("b", lambda: "B2")) == ("B2", False)
    assert cache.decodes == 4
