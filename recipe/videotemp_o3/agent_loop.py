"""The VideoTemp-o3 agent loop for verl: think, cut clips out of the video, answer.

One trajectory (docs/protocol.md)::

    system + user(video, [image,] question)
    assistant: <think>..</think><tool_call>{...}</tool_call>   -> user(clip videos..., feedback text)
    assistant: <think>..</think><answer>..</answer>            -> done

States: ``PENDING`` (decode the prompt video, tokenize) -> ``GENERATING`` (one assistant turn) ->
``PROCESSING_TOOL`` (cut clips, append the feedback user turn) -> ``GENERATING`` ... -> ``TERMINATED``.

What verl needs from this loop and where it is ensured:

* every video in the token ids is in ``multi_modal_data["videos"]`` in token order (``Trajectory.videos``),
  every prompt image in ``multi_modal_data["images"]`` (``Trajectory.images``; e.g. Video-MMMU
  Adaptation shows one after the video) and in every request's ``image_data``;
  feedback turns are appended only once they fit the budget, so no half-appended turn ever exists;
* feedback tokens carry ``response_mask`` 0 (``ct_merge_context_msg``), generated tokens 1;
* ``max_tokens`` of every request is ``min(per-turn cap, response budget left, context left)``.

This module holds the loop only. Beside it: ``prompt_cache`` (prompt videos decoded once per GRPO group
and process, and the decode thread pool), ``messages`` (the prompt's video/image blocks and budget,
images decoded per rollout by qwen-vl-utils' ``fetch_image``), ``clips`` (tool calls serialized per
video), ``processor_info`` (pixel factor, patch size, vision tokens) and ``verl_hooks`` (the verl fixes,
installed by ``verl_hooks.install``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput
from verl.utils.rollout_trace import rollout_trace_op

from recipe.videotemp_o3 import verl_hooks
from recipe.videotemp_o3.clips import cut_clips, frame_cache_counts
from recipe.videotemp_o3.messages import (
    decode_image,
    image_blocks,
    number,
    prompt_video_path,
    video_block,
    video_budget,
)
from recipe.videotemp_o3.processor_info import image_factor, image_patch_size, vision_token_ids
from recipe.videotemp_o3.prompt_cache import DECODE_EXECUTOR, VideoBudget, prompt_video_cache
from tools import protocol

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "WARN"))


class AgentState(Enum):
    PENDING = "pending"
    GENERATING = "generating"
    PROCESSING_TOOL = "processing_tool"
    TERMINATED = "terminated"


class Termination(str, Enum):
    """Why a trajectory ended (``extra_fields["termination"]``)."""

    ANSWER = "answer"  # the model answered
    MAX_TURNS = "max_turns"  # the last allowed turn was a tool call or had no answer
    RESPONSE_BUDGET = "response_budget"  # rollout.response_length reached
    CONTEXT_BUDGET = "context_budget"  # rollout.max_model_len reached
    ABORTED = "aborted"  # the server aborted the request
    TURN_LENGTH = (
        "turn_length"  # RL rules: a turn cut by its token cap ends the episode (ms-swift finish_reason "length")
    )
    MALFORMED = "malformed"  # eval rules: an unreadable tool call, or a turn with neither answer nor tool call
    VISION_TOKEN = "vision_token"  # the model generated a vision special token; the turn is cut before it


# --------------------------------------------------------------------------------------------
# Trajectory state
# --------------------------------------------------------------------------------------------


@dataclass
class Trajectory:
    """Mutable state of one rollout."""

    request_id: str
    messages: list[dict[str, Any]]
    video_path: str
    duration: float
    budget: VideoBudget
    videos: list[tuple[Any, dict]] = field(default_factory=list)  # token order
    images: list[Any] = field(default_factory=list)  # prompt images (PIL), token order
    token_ids: list[int] = field(default_factory=list)  # prompt + response so far
    response_mask: list[int] = field(default_factory=list)
    response_logprobs: list[float] = field(default_factory=list)
    has_logprobs: bool = False
    assistant_turns: int = 0
    user_turns: int = 0
    last_turn: protocol.ParsedTurn | None = None
    turn_texts: list[str] = field(default_factory=list)
    tool_ranges: list[list[list[float]]] = field(default_factory=list)
    clip_errors: list[str | None] = field(default_factory=list)
    n_clips: int = 0
    termination: Termination | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    server_extra: dict[str, Any] = field(default_factory=dict)
    clip_seconds: float = 0.0
    holds_prompt_video: bool = False  # released back to the PromptVideoCache at the end
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def prompt_len(self) -> int:
        return len(self.token_ids) - len(self.response_mask)


# --------------------------------------------------------------------------------------------
# The agent loop
# --------------------------------------------------------------------------------------------


# Registered by its agent-loop yaml entry (config/agent_loop.yaml; eval writes its own), never by verl's
# ``@register`` decorator: verl loads the yaml entries when a worker starts and only then imports this module (at
# the first trajectory), so a decorator would replace the entry, and the settings it carries (per-turn token cap,
# loop rules, eval seeding), for every later trajectory.
class VideoTempAgentLoop(AgentLoopBase):
    """Multi-turn "thinking with videos" loop with the ``get_video_clip_frame`` tool.

    Extra keyword arguments (the ``agent_loop.yaml`` entry):
        clip_fps, clip_min_frames, clip_max_frames: clip sampling (protocol defaults 2.0, 4, 64).
        loop_rules: ``"rl"`` (the reference's RL scheduler, default) or ``"eval"`` (its eval loop: no clip
            cap, an unreadable tool call or a turn with neither answer nor tool call ends the loop,
            ``</answer>`` anywhere ends it); see ``protocol.LoopRules``.
        max_clips_per_call: ranges looked at per tool call, extra ones ignored (None: the rules' cap,
            3 for RL, none for eval; 0: no cap).
        max_assistant_turns: assistant turns per trajectory (3).
        clip_caption: prepend a line giving each clip's absolute range to the feedback (False).
        frame_cache_gb: byte budget of the process-wide decoded-frame cache (8).
        max_tokens_per_turn: cap of one assistant turn (None: the response budget).
        stop_on_answer: stop generating at ``</answer>`` (kept in the text) (True).
        prompt_video_reader: ``"shared"`` (uint8 decode once per group) or ``"qwen_vl_utils"``
            (verl's per-rollout path, for comparison) ("shared").
        decode_timeout_s: timeout of one clip decode (60).
    """

    def __init__(
        self,
        *args: Any,
        clip_fps: float = protocol.CLIP_FPS,
        clip_min_frames: int = protocol.CLIP_MIN_FRAMES,
        clip_max_frames: int = protocol.CLIP_MAX_FRAMES,
        loop_rules: str = "rl",
        max_clips_per_call: int | None = None,
        max_assistant_turns: int = protocol.MAX_ASSISTANT_TURNS,
        clip_caption: bool = False,
        frame_cache_gb: float = 8.0,
        max_tokens_per_turn: int | None = None,
        stop_on_answer: bool = True,
        prompt_video_reader: str = "shared",
        decode_timeout_s: float = 60.0,
        **kwargs: Any,
    ):
        kwargs.pop("name", None)
        kwargs.pop("tools", None)  # the clip tool runs inside the loop (one code path with the tool)
        super().__init__(*args, **kwargs)
        if prompt_video_reader not in ("shared", "qwen_vl_utils"):
            raise ValueError(f"prompt_video_reader must be 'shared' or 'qwen_vl_utils', got {prompt_video_reader!r}")
        self.clip_fps = float(clip_fps)
        self.clip_min_frames = int(clip_min_frames)
        self.clip_max_frames = int(clip_max_frames)
        self.rules = protocol.loop_rules(loop_rules)
        if max_clips_per_call is None:
            max_clips_per_call = self.rules.max_clips_per_call or 0
        self.max_clips_per_call = int(max_clips_per_call)
        self.max_assistant_turns = int(max_assistant_turns)
        self.clip_caption = bool(clip_caption)
        self.frame_cache_bytes = int(float(frame_cache_gb) * (1 << 30))
        self.max_tokens_per_turn = int(max_tokens_per_turn) if max_tokens_per_turn else None
        self.stop_on_answer = bool(stop_on_answer)
        self.prompt_video_reader = prompt_video_reader
        self.decode_timeout_s = float(decode_timeout_s)

        self.response_length = int(self.rollout_config.response_length)
        max_model_len = self.rollout_config.get("max_model_len", None)
        self.max_model_len = int(max_model_len) if max_model_len else None
        if self.processor is None:
            raise ValueError("VideoTempAgentLoop needs a vision-language processor (processor is None)")
        self.image_factor = image_factor(self.processor)
        self.image_patch_size = image_patch_size(self.processor)
        verl_hooks.install(self.processor)
        self.im_end_id = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.end_ids = {
            t for t in (self.im_end_id, self.tokenizer.eos_token_id, self.tokenizer.pad_token_id) if t is not None
        }
        self.vision_ids = vision_token_ids(self.tokenizer)

    # ---------------------------------------------------------------- run

    @rollout_trace_op
    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        messages = [dict(m) for m in kwargs["raw_prompt"]]
        extra_info = kwargs.get("extra_info") or {}
        block = video_block(messages)
        path = prompt_video_path(block, extra_info)
        budget = video_budget(block, self.image_factor)
        traj = Trajectory(
            request_id=uuid4().hex,
            messages=messages,
            video_path=path,
            duration=number(extra_info, "duration", float("nan")),
            budget=budget,
        )
        key = (path, budget)
        try:
            state = AgentState.PENDING
            while state != AgentState.TERMINATED:
                if state == AgentState.PENDING:
                    state = await self._pending(traj, key)
                elif state == AgentState.GENERATING:
                    state = await self._generating(traj, sampling_params)
                elif state == AgentState.PROCESSING_TOOL:
                    state = await self._processing_tool(traj)
                else:  # pragma: no cover - defensive
                    raise RuntimeError(f"invalid state {state}")
        finally:
            if traj.holds_prompt_video:
                prompt_video_cache().release(key)
        return self._output(traj)

    # ---------------------------------------------------------------- states

    async def _pending(self, traj: Trajectory, key: tuple) -> AgentState:
        """Decode the prompt video and images and tokenize the prompt."""
        self._assert_mm_supported(True)
        t0 = time.perf_counter()
        blocks = image_blocks(traj.messages)
        if blocks:
            traj.images = await asyncio.get_running_loop().run_in_executor(
                DECODE_EXECUTOR, lambda: [decode_image(b, self.image_patch_size) for b in blocks]
            )
        if self.prompt_video_reader == "shared":
            sampled, shared = await prompt_video_cache().acquire(key, lambda: self._decode_prompt(traj))
            traj.holds_prompt_video = True
            video = sampled.as_verl_video()
            traj.metrics["prompt_frames"] = len(sampled.times)
        else:
            # Only the video block: the images are decoded above, once.
            mm = await self.process_multi_modal_info([{"role": "user", "content": [video_block(traj.messages)]}])
            video, shared = mm["videos"][0], False
            traj.metrics["prompt_frames"] = int(video[0].shape[0])
        if math.isnan(traj.duration):  # the whole video's metadata gives it (as probe(): frames / fps)
            meta = video[1]
            traj.duration = float(meta["total_num_frames"]) / float(meta["fps"])
        traj.metrics["prompt_decode_s"] = time.perf_counter() - t0
        traj.metrics["prompt_decode_shared"] = shared
        traj.videos.append(video)
        traj.token_ids = await self.ct_build_initial_tokens(traj.messages, images=traj.images or None, videos=[video])
        return AgentState.GENERATING

    async def _generating(self, traj: Trajectory, sampling_params: dict[str, Any]) -> AgentState:
        """Generate one assistant turn and decide what follows."""
        response_left = self.response_length - len(traj.response_mask)
        if response_left <= 0:
            return self._terminate(traj, Termination.RESPONSE_BUDGET)
        max_tokens = response_left
        context_left = None
        if self.max_model_len is not None:
            context_left = self.max_model_len - len(traj.token_ids)
            if context_left <= 0:
                return self._terminate(traj, Termination.CONTEXT_BUDGET)
            max_tokens = min(max_tokens, context_left)
        if self.max_tokens_per_turn is not None:
            max_tokens = min(max_tokens, self.max_tokens_per_turn)

        params = dict(sampling_params)
        params["max_tokens"] = max_tokens
        if self.stop_on_answer:
            params["stop"] = list(dict.fromkeys([*(params.get("stop") or []), "</answer>"]))
            params["include_stop_str_in_output"] = True

        t0 = time.perf_counter()
        output = await self.server_manager.generate(
            traj.request_id,
            prompt_ids=traj.token_ids,
            sampling_params=params,
            image_data=traj.images or None,
            video_data=traj.videos,
            mm_processor_kwargs=self._get_mm_processor_kwargs(),
        )
        traj.metrics["generate_sequences"] = traj.metrics.get("generate_sequences", 0.0) + time.perf_counter() - t0
        if output.num_preempted is not None:
            traj.metrics["num_preempted"] = max(traj.metrics.get("num_preempted", 0), 0) + output.num_preempted
        if not traj.server_extra:
            traj.server_extra = dict(output.extra_fields or {})
        elif output.extra_fields.get("max_global_steps") is not None:
            traj.server_extra["max_global_steps"] = output.extra_fields["max_global_steps"]

        token_ids = list(output.token_ids)[:max_tokens]  # a server must not overrun the budget
        hit_cap = len(token_ids) >= max_tokens and not (token_ids and token_ids[-1] in self.end_ids)
        vision_at = next((i for i, t in enumerate(token_ids) if t in self.vision_ids), None)
        if vision_at is not None:
            # A vision special token in generated text would make the processor expect one more image or
            # video than the trajectory has, and fail the whole batch: cut the turn before it and end here.
            token_ids = token_ids[:vision_at]
        logprobs = list(output.log_probs)[: len(token_ids)] if output.log_probs else None
        if logprobs is not None and len(logprobs) != len(token_ids):
            raise ValueError(f"server returned {len(logprobs)} log-probs for {len(token_ids)} tokens")
        if logprobs is not None and not traj.has_logprobs and traj.response_mask:
            raise ValueError("server returned log-probs for some turns only")
        traj.has_logprobs = traj.has_logprobs or logprobs is not None

        merge, mask, lps = await self.ct_merge_assistant_token(
            traj.token_ids,
            token_ids,
            traj.response_mask,
            traj.response_logprobs if traj.has_logprobs else None,
            assistant_logprobs=logprobs,
        )
        traj.token_ids = merge.token_ids
        traj.response_mask = mask
        if lps is not None:
            traj.response_logprobs = lps
        traj.assistant_turns += 1

        text = self._turn_text(token_ids)
        traj.turn_texts.append(text)
        turn = protocol.parse_turn(text)
        traj.last_turn = turn
        traj.messages.append({"role": "assistant", "content": text})

        if output.stop_reason == "aborted":
            return self._terminate(traj, Termination.ABORTED)
        if vision_at is not None:
            return self._terminate(traj, Termination.VISION_TOKEN)
        if protocol.ends_episode(text, self.rules):  # even when the turn also calls the tool (reference)
            return self._terminate(traj, Termination.ANSWER)
        if self.rules.malformed_ends_loop and (turn.tool_call is None or not turn.tool_call.well_formed):
            return self._terminate(traj, Termination.MALFORMED)
        if (
            self.rules.length_ends_episode
            and hit_cap
            and self.max_tokens_per_turn is not None
            and max_tokens >= self.max_tokens_per_turn
        ):
            return self._terminate(traj, Termination.TURN_LENGTH)
        if len(traj.response_mask) >= self.response_length:
            return self._terminate(traj, Termination.RESPONSE_BUDGET)
        if self.max_model_len is not None and len(traj.token_ids) >= self.max_model_len:
            return self._terminate(traj, Termination.CONTEXT_BUDGET)
        if traj.assistant_turns >= self.max_assistant_turns:
            return self._terminate(traj, Termination.MAX_TURNS)
        return AgentState.PROCESSING_TOOL

    async def _processing_tool(self, traj: Trajectory) -> AgentState:
        """Answer the last turn with a feedback user turn (clips + text), if it fits the budget."""
        turn = traj.last_turn
        clips: list[Any] = []
        if turn is not None and turn.kind == "tool_call" and turn.tool_call is not None:
            result = await self._cut_clips(traj, turn.tool_call)
            clips = [clip.as_verl_video() for clip in result.clips]
            text = result.text
            traj.tool_ranges.append([[float(s), float(e)] for s, e in turn.tool_call.ranges])
            traj.clip_errors.append(result.error)
        else:
            text = protocol.no_timestamp_text()

        content: list[dict[str, Any]] = []
        for clip in clips:  # RL: "<video>\n" per clip, as the reference's feedback text; eval: none
            content.append({"type": "video", "video": clip})
            if self.rules.newline_after_clip:
                content.append({"type": "text", "text": "\n"})
        content.append({"type": "text", "text": text})
        feedback = {"role": "user", "content": content}

        token_ids, mask, logprobs = traj.token_ids, traj.response_mask, traj.response_logprobs
        if token_ids and token_ids[-1] not in self.end_ids:
            # The turn ended without <|im_end|> (e.g. cut by max_tokens): close it so the
            # conversation stays well formed; the closing token is not the model's (mask 0).
            token_ids, mask = token_ids + [self.im_end_id], mask + [0]
            logprobs = logprobs + [0.0] if traj.has_logprobs else logprobs
        previous = list(traj.messages)
        merge, new_mask, new_logprobs = await self.ct_merge_context_msg(
            previous,
            previous + [feedback],
            token_ids,
            mask,
            logprobs if traj.has_logprobs else None,
        )
        # Commit only if the whole feedback turn fits with room for at least one generated token.
        if len(new_mask) >= self.response_length:
            return self._terminate(traj, Termination.RESPONSE_BUDGET)
        if self.max_model_len is not None and len(merge.token_ids) >= self.max_model_len:
            return self._terminate(traj, Termination.CONTEXT_BUDGET)
        traj.messages.append(feedback)
        traj.token_ids = merge.token_ids
        traj.response_mask = new_mask
        if traj.has_logprobs:
            traj.response_logprobs = new_logprobs
        traj.videos.extend(clips)
        traj.n_clips += len(clips)
        traj.user_turns += 1
        return AgentState.GENERATING

    # ---------------------------------------------------------------- helpers

    def _decode_prompt(self, traj: Trajectory):
        from tools.frame_cache import shared_frame_cache
        from tools.video_io import sample_video

        b = traj.budget
        return sample_video(
            traj.video_path,
            fps=b.fps,
            min_frames=b.min_frames,
            max_frames=b.max_frames,
            min_pixels=b.min_pixels,
            max_pixels=b.max_pixels,
            image_factor=b.image_factor,
            cache=shared_frame_cache(self.frame_cache_bytes),
        )

    async def _cut_clips(self, traj: Trajectory, call: protocol.ToolCall):
        from tools.frame_cache import shared_frame_cache
        from tools.video_clip import ClipSettings

        settings = ClipSettings(
            fps=self.clip_fps,
            min_frames=self.clip_min_frames,
            max_frames=self.clip_max_frames,
            min_pixels=traj.budget.min_pixels,
            max_pixels=traj.budget.max_pixels,
            max_clips=self.max_clips_per_call,
            image_factor=traj.budget.image_factor,
            caption=self.clip_caption,
            timeout_s=self.decode_timeout_s,
        )
        cache = shared_frame_cache(self.frame_cache_bytes)
        before = frame_cache_counts(cache)
        t0 = time.perf_counter()
        result = await asyncio.get_running_loop().run_in_executor(
            DECODE_EXECUTOR,
            lambda: cut_clips(traj.video_path, call, settings, duration=traj.duration, cache=cache, rules=self.rules),
        )
        traj.clip_seconds += time.perf_counter() - t0
        after = frame_cache_counts(cache)
        traj.cache_hits += after[0] - before[0]  # process-wide counters: approximate under concurrency
        traj.cache_misses += after[1] - before[1]
        traj.metrics["tool_calls"] = traj.metrics.get("tool_calls", 0.0) + time.perf_counter() - t0
        return result

    def _turn_text(self, token_ids: list[int]) -> str:
        """Text of one generated turn without its closing end-of-turn token(s)."""
        end = len(token_ids)
        while end > 0 and token_ids[end - 1] in self.end_ids:
            end -= 1
        return self.tokenizer.decode(token_ids[:end], skip_special_tokens=False)

    def _final_answer(self, traj: Trajectory) -> tuple[bool, str | None]:
        """Whether the last turn answered, and the final answer the rules read.

        RL: the first ``<answer>`` of a last turn that holds no tool call (the reward's rule). Eval:
        the first ``<answer>`` of the last turn, else that whole turn (the reference's eval loop); None
        when the episode ended on a tool call at the turn limit (the reference drops such a sample).
        """
        turn = traj.last_turn
        if turn is None or not traj.turn_texts:
            return False, None
        answered = traj.termination == Termination.ANSWER and turn.answer is not None
        if not self.rules.stop_on_close_tag:
            answered = answered and turn.kind != "tool_call"
            return answered, turn.answer if answered else None
        if traj.termination == Termination.MAX_TURNS and turn.kind == "tool_call":
            return False, None
        return answered, turn.answer if turn.answer is not None else traj.turn_texts[-1]

    @staticmethod
    def _terminate(traj: Trajectory, reason: Termination) -> AgentState:
        traj.termination = reason
        return AgentState.TERMINATED

    @staticmethod
    def _multi_modal_data(traj: Trajectory) -> dict[str, list[Any]]:
        """All media of the token ids, each kind in token order (``"images"`` only when there are any:
        verl hands the dict to the processor, which must not get an empty image list)."""
        media: dict[str, list[Any]] = {"videos": list(traj.videos)}
        if traj.images:
            media["images"] = list(traj.images)
        return media

    def _output(self, traj: Trajectory) -> AgentLoopOutput:
        n_resp = len(traj.response_mask)
        prompt_ids = traj.token_ids[: len(traj.token_ids) - n_resp]
        response_ids = traj.token_ids[len(prompt_ids) :]
        answered, final_answer = self._final_answer(traj)
        extra: dict[str, Any] = dict(traj.server_extra)
        extra.update(
            turn_texts=list(traj.turn_texts),
            tool_ranges=[list(r) for r in traj.tool_ranges],
            n_tool_calls=len(traj.tool_ranges),
            n_clips=traj.n_clips,
            answered=answered,
            termination=(traj.termination or Termination.ABORTED).value,
            final_answer=final_answer,
            clip_errors=list(traj.clip_errors),
            prompt_frames=int(traj.metrics.get("prompt_frames", 0)),
            prompt_images=len(traj.images),
            prompt_decode_shared=bool(traj.metrics.get("prompt_decode_shared", False)),
            frame_cache_hits=traj.cache_hits,
            frame_cache_misses=traj.cache_misses,
            clip_seconds=traj.clip_seconds,
            turn_scores=[],
            tool_rewards=[],
        )
        metrics = {
            "generate_sequences": traj.metrics.get("generate_sequences", 0.0),
            "tool_calls": traj.metrics.get("tool_calls", 0.0),
            "num_preempted": traj.metrics.get("num_preempted", -1),
        }
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids[: self.response_length],
            response_mask=traj.response_mask[: self.response_length],
            response_logprobs=traj.response_logprobs[: self.response_length] if traj.has_logprobs else None,
            multi_modal_data=self._multi_modal_data(traj),
            mm_processor_kwargs=self._get_mm_processor_kwargs(),
            num_turns=traj.user_turns + traj.assistant_turns + 1,
            metrics=metrics,
            extra_fields=extra,
        )
