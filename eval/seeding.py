"""Per-sample sampling seeds, so an interrupted-and-resumed eval run equals an uninterrupted one.

Every generation request of an eval sample carries ``seed = sample_seed(run seed, sample id, turn)``
whatever the engine (vLLM and the ``transformers`` server both honour ``sampling_params["seed"]``), so a
sample's result depends neither on which samples ran before it in the process nor on batch composition.
:class:`EvalAgentLoop` is the training loop class with only that added; the eval engines name it in the
agent-loop configuration they write.
"""

from __future__ import annotations

import hashlib
from typing import Any

from recipe.videotemp_o3.agent_loop import VideoTempAgentLoop


def sample_seed(seed: int, sample_id: str, turn: int) -> int:
    """A 31-bit seed from (run seed, sample id, assistant turn)."""
    digest = hashlib.sha256(f"{int(seed)}\0{sample_id}\0{int(turn)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class SeededServer:
    """Wraps an LLM client: the k-th ``generate`` of the sample gets ``sampling_params["seed"] = sample_seed(seed, id, k)``."""

    def __init__(self, inner: Any, seed: int, sample_id: str):
        self._inner = inner
        self._seed = seed
        self._sample_id = sample_id
        self._turn = 0

    async def generate(self, request_id: str, *args: Any, **kwargs: Any) -> Any:
        params = dict(kwargs.get("sampling_params") or {})
        params["seed"] = sample_seed(self._seed, self._sample_id, self._turn)
        self._turn += 1
        kwargs["sampling_params"] = params
        return await self._inner.generate(request_id, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class EvalAgentLoop(VideoTempAgentLoop):
    """``VideoTempAgentLoop`` whose requests carry per-sample seeds (``eval_seed`` + the row's ``extra_info.sample_id``)."""

    def __init__(self, *args: Any, eval_seed: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.eval_seed = eval_seed

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any):
        extra = kwargs.get("extra_info") or {}
        sample_id = str(extra.get("sample_id", extra.get("index", "")))
        self.server_manager = SeededServer(self.server_manager, self.eval_seed, sample_id)
        return await super().run(sampling_params, **kwargs)
