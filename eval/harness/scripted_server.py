"""An LLM server client that answers with scripted turn texts.

Same ``generate()`` signature as verl's ``LLMServerClient``; the "model" is a script: a callable
receiving a :class:`ScriptRequest` (turn index, decoded prompt, videos) and returning the text of
the turn. The text is tokenized with the tokenizer and closed with ``<|im_end|>`` like a chat model
would, ``max_tokens`` and ``stop`` strings are honoured like vLLM does, and fake log-probs are
returned. Used by tests, the eval ``scripted`` engine and benchmarks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

from verl.workers.rollout.replica import TokenOutput


@dataclass(frozen=True)
class ScriptRequest:
    """What a script sees of one request."""

    request_id: str
    turn: int  # 0 for the first request of this request_id
    prompt_ids: list[int]
    prompt_text: str  # decoded with special tokens kept
    video_data: list[Any]
    sampling_params: dict[str, Any]


Script = Union[Sequence[str], Callable[[ScriptRequest], str]]


class ScriptedServerClient:
    """``generate()`` returning scripted texts.

    Args:
        tokenizer: tokenizer of the model the loop renders prompts for.
        script: a list of turn texts (turn k of every trajectory gets ``script[k]``; the last one
            repeats) or a callable ``ScriptRequest -> str``.
        logprob: the log-prob reported for every generated token.
        end_token: appended after the text unless a stop string ended it (``None``: nothing).
        delay_s: simulated generation time per request (``asyncio.sleep``).
    """

    def __init__(
        self,
        tokenizer: Any,
        script: Script,
        *,
        logprob: float = -0.5,
        end_token: Optional[str] = "<|im_end|>",
        delay_s: float = 0.0,
    ):
        self.tokenizer = tokenizer
        self.script = script
        self.logprob = logprob
        self.end_token_id = tokenizer.convert_tokens_to_ids(end_token) if end_token else None
        self.delay_s = delay_s
        self._turns: dict[str, int] = {}
        self.calls: list[ScriptRequest] = []

    def text_for(self, request: ScriptRequest) -> str:
        if callable(self.script):
            return self.script(request)
        if not self.script:
            raise ValueError("empty script")
        return self.script[min(request.turn, len(self.script) - 1)]

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> TokenOutput:
        """Tokens of the scripted text for this request's turn."""
        turn = self._turns.get(request_id, 0)
        self._turns[request_id] = turn + 1
        request = ScriptRequest(
            request_id=request_id,
            turn=turn,
            prompt_ids=list(prompt_ids),
            prompt_text=self.tokenizer.decode(prompt_ids, skip_special_tokens=False),
            video_data=list(video_data or []),
            sampling_params=dict(sampling_params),
        )
        self.calls.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self.text_for(request)

        stopped = False
        for stop in sampling_params.get("stop") or []:
            at = text.find(stop)
            if stop and at >= 0:
                keep = sampling_params.get("include_stop_str_in_output", False)
                text = text[: at + len(stop)] if keep else text[:at]
                stopped = True
                break
        token_ids = list(self.tokenizer.encode(text, add_special_tokens=False))
        if not stopped and self.end_token_id is not None:
            token_ids.append(self.end_token_id)
        max_tokens = sampling_params.get("max_tokens")
        if max_tokens is not None:
            token_ids = token_ids[: int(max_tokens)]
        log_probs = [self.logprob] * len(token_ids) if sampling_params.get("logprobs") else None
        return TokenOutput(token_ids=token_ids, log_probs=log_probs, stop_reason="completed", extra_fields={})
