"""A demo agent loop whose turns vLLM's structured outputs keep inside the protocol's two shapes.

A tiny model trained for a few minutes on a CPU has not learnt the protocol well enough for GRPO to see rewards.
:class:`ProtocolSteeredAgentLoop` is :class:`~recipe.videotemp_o3.agent_loop.VideoTempAgentLoop` with one change:
every request carries a regular expression (vLLM ``StructuredOutputsParams(regex=...)``) that admits only

    <think>...</think><tool_call>{"name": "get_video_clip_frame", "arguments": [{"start_time": S, "end_time": E}]}</tool_call>
    <think>...</think><answer>X</answer>          (X a letter, or "The event happens in the S - E seconds")

The real engine still samples every token inside that grammar (the reasoning text, the times, the letter), so the
rewards vary and GRPO's advantages are real; the format is given, not learnt. Used by the CPU quick start only (it
says so in its output); training never uses it.
"""

from __future__ import annotations

from typing import Any

from recipe.videotemp_o3.agent_loop import VideoTempAgentLoop
from tools.protocol import TOOL_NAME

_NUMBER = r"(0|[1-9][0-9]{0,2})(\.[0-9])?"  # a JSON number: no leading zeros
PROTOCOL_REGEX = (
    r"<think>[A-Za-z0-9 ,.]{1,80}</think>("
    rf'<tool_call>\{{"name": "{TOOL_NAME}", "arguments": \[\{{"start_time": {_NUMBER}, "end_time": {_NUMBER}\}}\]\}}</tool_call>'
    r"|<answer>([A-G]|The event happens in the " + _NUMBER + " - " + _NUMBER + r" seconds)</answer>)"
)


class ProtocolSteeredAgentLoop(VideoTempAgentLoop):
    """:class:`VideoTempAgentLoop` with every turn constrained to the protocol's shapes by vLLM structured outputs."""

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any):
        from vllm.sampling_params import StructuredOutputsParams

        steered = dict(sampling_params, structured_outputs=StructuredOutputsParams(regex=PROTOCOL_REGEX))
        return await super().run(steered, **kwargs)
