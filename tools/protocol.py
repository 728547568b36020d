"""The VideoTemp-o3 agent protocol: the one place that holds its texts, limits and turn parsing.

Used by the agent loop, the tool, the rewards, data preparation and evaluation. Nothing here
imports verl or torch, so every part of the project can use it cheaply.

Conversation: system prompt, user turn with the video and the question, then up to
``MAX_ASSISTANT_TURNS`` assistant turns of exactly one of two shapes::

    <think>...</think><tool_call>{"name": "get_video_clip_frame", "arguments": [...]}</tool_call>
    <think>...</think><answer>...</answer>

After a tool call a new *user* turn carries one video per clip plus ``TOOL_SUCCESS_TEXT``
(or an error text plus ``TOOL_FAILURE_TEXT``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

TOOL_NAME = "get_video_clip_frame"

# Name of the agent loop in verl's registry: data rows' ``agent_name`` and rollout.agent.default_agent_loop
# (the recipe's yaml configs spell it out; tests/test_recipe_config.py checks they match).
AGENT_NAME = "videotemp_agent"

MAX_ASSISTANT_TURNS = 3
MAX_CLIPS_PER_CALL = 3

# Clip sampling (docs/protocol.md): 2 fps, frame count clamped to [4, 64] and made even.
CLIP_FPS = 2.0
CLIP_MIN_FRAMES = 4
CLIP_MAX_FRAMES = 64

# Main-video budgets of the reference.
VIDEO_FPS = 2.0
TRAIN_MAX_FRAMES = 512
TRAIN_PIXELS = 50_176  # 224 x 224 area; min = max
EVAL_MAX_FRAMES = 256
EVAL_PIXELS = 200_704  # 448 x 448 area

TOOL_CALL_TEMPLATE = (
    '<tool_call>{"name":"get_video_clip_frame","arguments":'
    '[{"start_time":[start_time],"end_time":[end_time]}]}</tool_call>'
)

# The reference's system prompt (its ``PREFIX_PROMPT``, eval/utils.py), byte for byte: paragraphs
# separated by one blank line, backticks around the placeholders in the sentence, none in the template,
# no trailing newline. The released checkpoint was trained and evaluated with exactly this text.
SYSTEM_PROMPT = (
    "You are a helpful assistant.\n\n"
    "Think step-by-step before providing your final answer.\n\n"
    "Enclose your entire reasoning process within <think> and </think> tags. "
    "Enclose your final answer within <answer> and </answer> tags.\n\n"
    "If analyzing a specific video segment is necessary to answer the question, "
    "you may use the following tool to extract a clip from `[start_time]` to `[end_time]`:\n\n"
    f"{TOOL_CALL_TEMPLATE}\n\n"
    "Use the insights from the clip to inform your reasoning and construct the final answer."
)

TOOL_SUCCESS_TEXT = (
    "Tool execution successful. Analyze the visual information from the provided video clip "
    "to answer the user's question."
)
TOOL_FAILURE_TEXT = (
    "Tool execution failed. Please continue your analysis based on your existing knowledge "
    "and the information from the conversation so far."
)
NO_TIMESTAMP_ERROR = "[Error] No valid timestamp found in the model output."
BAD_JSON_ERROR = "[Error] The tool call is not valid JSON."
WRONG_TOOL_ERROR = f"[Error] Unknown tool name; the only tool is {TOOL_NAME}."
NO_VALID_RANGE_ERROR = "[Error] No valid time range: each range needs 0 <= start_time < end_time within the video."
VIDEO_UNREADABLE_ERROR = "[Error] The video could not be read."

VIDEO_PLACEHOLDER = "<video>"

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

# Every parser below scans with ``str.find`` and never backtracks, so it is linear in the text length:
# the reference's lazy regexes (``<tool_call>(.*?)</tool_call>`` and the format regexes) take quadratic
# time on a degenerate response such as 24,832 repetitions of ``<tool_call>``; these give the same
# results (``tests/test_reference_rules.py`` compares them on random turns).


@dataclass(frozen=True)
class ToolCall:
    """One parsed ``<tool_call>`` body.

    ``ranges`` holds the float pairs read in order; parsing stops at the first entry that is not a
    pair of float-convertible ``start_time``/``end_time`` (``error`` says why). ``valid_json`` and
    ``name_ok`` tell the format reward whether the body is well formed; ``all_entries_ok`` is false
    when some entry could not be read.
    """

    ranges: tuple[tuple[float, float], ...]
    valid_json: bool
    name_ok: bool
    all_entries_ok: bool
    error: str | None = None

    @property
    def well_formed(self) -> bool:
        return self.valid_json and self.name_ok and self.all_entries_ok


@dataclass(frozen=True)
class ParsedTurn:
    """One assistant turn read the way the agent loop acts on it."""

    kind: Literal["tool_call", "answer", "invalid"]
    think: str | None = None
    tool_call: ToolCall | None = None
    answer: str | None = None
    well_formed: bool = False  # the turn fully matches one of the two shapes (format reward)


def _to_float(value: Any) -> float:
    """Python's ``float()``, as the reference applies it (ints, floats, numeric strings, booleans)."""
    return float(value)


def parse_tool_call(body: str) -> ToolCall:
    """Parse the JSON body of one ``<tool_call>`` block with the reference's rules. Never raises.

    The body (stripped) must be a JSON object whose ``name`` is the tool and whose ``arguments`` is
    iterated as the reference iterates it: a list gives its entries; a string or an object gives its
    characters or keys, so a non-empty one fails (a single ``{"start_time", "end_time"}`` object or a
    stringified list fails) and an empty one reads as no range; a missing ``arguments``, null or a
    number fails. Each entry must be an object with ``start_time``/``end_time`` accepted by ``float()``;
    reading stops at the first entry that is not (``ranges`` keeps the earlier ones).
    """
    try:
        obj = json.loads(body.strip())
    except (ValueError, RecursionError):
        return ToolCall((), False, False, False, BAD_JSON_ERROR)
    if not isinstance(obj, dict):
        return ToolCall((), True, False, False, BAD_JSON_ERROR)
    if obj.get("name") != TOOL_NAME:
        return ToolCall((), True, False, False, WRONG_TOOL_ERROR)
    if "arguments" not in obj:
        return ToolCall((), True, True, False, NO_VALID_RANGE_ERROR)
    args = obj["arguments"]
    if isinstance(args, (str, dict)):
        entries: list[Any] = list(args)[:1]  # characters / keys: the first one already fails
    elif isinstance(args, list):
        entries = args
    else:
        return ToolCall((), True, True, False, NO_VALID_RANGE_ERROR)
    ranges: list[tuple[float, float]] = []
    for entry in entries:
        try:
            if not isinstance(entry, dict):
                raise TypeError("entry is not an object")
            ranges.append((_to_float(entry["start_time"]), _to_float(entry["end_time"])))
        except (KeyError, ValueError, TypeError, OverflowError):
            return ToolCall(tuple(ranges), True, True, False, NO_VALID_RANGE_ERROR)
    return ToolCall(tuple(ranges), True, True, True, None)


def blocks(text: str, open_tag: str, close_tag: str) -> list[str]:
    """Bodies of the non-overlapping ``open_tag ... close_tag`` blocks, in order (shortest body each).

    The same result as ``re.findall(open + "(.*?)" + close, text, re.DOTALL)``, in linear time.
    """
    out: list[str] = []
    pos = 0
    while True:
        start = text.find(open_tag, pos)
        if start < 0:
            return out
        body = start + len(open_tag)
        end = text.find(close_tag, body)
        if end < 0:  # no later opening tag can close either
            return out
        out.append(text[body:end])
        pos = end + len(close_tag)


def first_block(text: str, open_tag: str, close_tag: str) -> str | None:
    """Body of the first ``open_tag ... close_tag`` block (``re.search`` of the lazy pattern), or None."""
    start = text.find(open_tag)
    if start < 0:
        return None
    body = start + len(open_tag)
    end = text.find(close_tag, body)
    return text[body:end] if end >= 0 else None


def tool_call_bodies(text: str) -> list[str]:
    """Bodies of every complete ``<tool_call>...</tool_call>`` block, in order."""
    return blocks(text, TOOL_OPEN, TOOL_CLOSE)


def has_tool_call(text: str) -> bool:
    """Whether ``text`` holds a complete ``<tool_call>...</tool_call>`` block."""
    return first_block(text, TOOL_OPEN, TOOL_CLOSE) is not None


def first_answer(text: str) -> str | None:
    """Stripped text of the first ``<answer>...</answer>``, or None."""
    body = first_block(text, ANSWER_OPEN, ANSWER_CLOSE)
    return body.strip() if body is not None else None


def matches_shape(text: str, open_tag: str, close_tag: str) -> bool:
    r"""Whether the whole ``text`` is ``<think>.*</think>\s*<open>.*<close>`` (DOTALL; Unicode ``\s``).

    The reference's format regex (``^<think>.*?</think>\s*<tag>.*?</tag>$`` with ``fullmatch``) in
    linear time: the text starts with ``<think>`` and ends with the closing tag, and some ``</think>``
    is followed, after whitespace only, by the opening tag, which ends before the final closing tag.
    The lazy ``.*?`` may span other tags, so repeated blocks are accepted, as in the reference.
    """
    if not (text.startswith(THINK_OPEN) and text.endswith(close_tag)):
        return False
    last_open = len(text) - len(close_tag) - len(open_tag)  # the opening tag must start at or before this
    pos = len(THINK_OPEN)
    while True:
        close = text.find(THINK_CLOSE, pos)
        if close < 0 or close > last_open:
            return False
        after = close + len(THINK_CLOSE)
        while after < len(text) and text[after].isspace():
            after += 1
        if after <= last_open and text.startswith(open_tag, after):
            return True
        pos = close + 1


def has_single_blocks(text: str, open_tag: str, close_tag: str) -> bool:
    """Each tag of the shape occurs exactly once and no tag of the other shape occurs."""
    tags = (THINK_OPEN, THINK_CLOSE, TOOL_OPEN, TOOL_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
    wanted = (THINK_OPEN, THINK_CLOSE, open_tag, close_tag)
    return all(text.count(tag) == (1 if tag in wanted else 0) for tag in tags)


def is_well_formed_turn(text: str, single_blocks: bool = False) -> bool:
    """Strict shape check of one assistant turn (the format reward's rule, as the reference's regexes).

    The whole text must be ``<think>..</think><tool_call>..</tool_call>`` or
    ``<think>..</think><answer>..</answer>`` (whitespace only between the blocks, nothing before or
    after); the first tool-call body must be JSON naming the tool with float-convertible ranges.
    The reference's lazy regexes accept repeated blocks (two ``<think>`` or two ``<tool_call>``
    blocks); ``single_blocks`` (an improvement, off by default) rejects them.
    """
    if matches_shape(text, ANSWER_OPEN, ANSWER_CLOSE):
        return not single_blocks or has_single_blocks(text, ANSWER_OPEN, ANSWER_CLOSE)
    if matches_shape(text, TOOL_OPEN, TOOL_CLOSE):
        if single_blocks and not has_single_blocks(text, TOOL_OPEN, TOOL_CLOSE):
            return False
        body = first_block(text, TOOL_OPEN, TOOL_CLOSE)
        return body is not None and parse_tool_call(body).well_formed
    return False


def parse_turn(text: str) -> ParsedTurn:
    """Read one assistant turn as the agent loop acts on it. Never raises; linear time.

    A complete ``<tool_call>`` block makes the turn a tool call (only the first block is used); else
    an ``<answer>`` block makes it an answer; else the turn is invalid. ``answer`` is the first
    ``<answer>`` block whatever the kind (the loop's rules decide whether it ends the episode).
    """
    think = first_block(text, THINK_OPEN, THINK_CLOSE)
    think = think.strip() if think is not None else None
    well_formed = is_well_formed_turn(text)
    answer = first_answer(text)
    body = first_block(text, TOOL_OPEN, TOOL_CLOSE)
    if body is not None:
        return ParsedTurn("tool_call", think, parse_tool_call(body), answer, well_formed)
    if answer is not None:
        return ParsedTurn("answer", think, None, answer, well_formed)
    return ParsedTurn("invalid", think, None, None, False)


@dataclass(frozen=True)
class ClipRange:
    """A validated, clamped clip range in seconds of the source video."""

    start: float
    end: float


@dataclass
class RangeCheck:
    """Result of validating the ranges of a tool call against a video."""

    clips: list[ClipRange] = field(default_factory=list)
    rejected: list[tuple[float, float]] = field(default_factory=list)
    dropped_over_limit: int = 0
    errors: list[str] = field(default_factory=list)  # the reference's error message of each rejected range


def range_error(start: float, end: float, duration: float) -> str | None:
    """The reference's error message for one requested range, or None when it gives a clip.

    ``start < 0`` or ``end <= start``: "Invalid timestamp: start=S, end=E" (Python's float text).
    A range clamped to ``[0, duration]`` that is empty (it starts at or after the end of the video)
    fails in the reference's frame count with "nframes should in interval [2, 0], but got 0.".
    Non-finite values (a JSON ``NaN``/``Infinity``) are refused as invalid timestamps here.
    """
    if start < 0 or end <= start or not (math.isfinite(start) and math.isfinite(end)):
        return f"Invalid timestamp: start={start}, end={end}"
    if min(end, duration) <= min(start, duration):
        return "nframes should in interval [2, 0], but got 0."
    return None


def validate_ranges(
    ranges: tuple[tuple[float, float], ...] | list[tuple[float, float]],
    duration: float,
    max_clips: int | None = MAX_CLIPS_PER_CALL,
) -> RangeCheck:
    """Apply the protocol's range rules: ``0 <= start < end``, finite, clamp to ``[0, duration]``.

    Only the first ``max_clips`` ranges are looked at (None: all; the rest are counted in
    ``dropped_over_limit``), as the reference's ``timestamps[:3]``. Each is a clip or a rejected
    range with its error message; the loop fails the whole call when any range is rejected.
    """
    check = RangeCheck()
    ranges = list(ranges)
    if max_clips is not None and len(ranges) > max_clips:
        check.dropped_over_limit = len(ranges) - max_clips
        ranges = ranges[:max_clips]
    for start, end in ranges:
        error = range_error(start, end, duration)
        if error is None:
            check.clips.append(ClipRange(max(0.0, min(start, duration)), min(end, duration)))
        else:
            check.rejected.append((start, end))
            check.errors.append(error)
    return check


@dataclass(frozen=True)
class LoopRules:
    """The loop decisions where the reference's RL scheduler and its eval loop differ (docs/protocol.md).

    ``RL_RULES`` reproduce ``rl/video_crop_plugin.py`` (training), ``EVAL_RULES`` its eval loop
    (``eval/utils.py``); the agent loop takes them by name (``loop_rules: rl | eval``).
    """

    name: str
    max_clips_per_call: int | None  # ranges looked at per call (None: all)
    stop_on_close_tag: bool  # eval: "</answer>" in the text ends; RL: a complete <answer>..</answer> block
    malformed_ends_loop: bool  # eval: an unreadable tool call or a turn with neither ends the loop
    empty_call_succeeds: bool  # eval: "arguments": [] gives the success text and no clip
    error_prefix: str  # before each failed range's message
    errors_as_list: bool  # RL: str(list of errors) + failure sentence; eval: the errors one after another
    newline_after_clip: bool  # RL: "<video>\n" per clip before the success text
    length_ends_episode: bool  # RL: a turn cut by the per-turn token cap ends the episode (ms-swift)


RL_RULES = LoopRules(
    name="rl",
    max_clips_per_call=MAX_CLIPS_PER_CALL,
    stop_on_close_tag=False,
    malformed_ends_loop=False,
    empty_call_succeeds=False,
    error_prefix="[Error] Video processing error: ",
    errors_as_list=True,
    newline_after_clip=True,
    length_ends_episode=True,
)
EVAL_RULES = LoopRules(
    name="eval",
    max_clips_per_call=None,
    stop_on_close_tag=True,
    malformed_ends_loop=True,
    empty_call_succeeds=True,
    error_prefix="Video processing error: ",
    errors_as_list=False,
    newline_after_clip=False,
    length_ends_episode=False,
)
LOOP_RULES = {rules.name: rules for rules in (RL_RULES, EVAL_RULES)}


def loop_rules(name: str | LoopRules) -> LoopRules:
    """The named ``LoopRules`` (``"rl"`` or ``"eval"``)."""
    if isinstance(name, LoopRules):
        return name
    if name not in LOOP_RULES:
        raise ValueError(f"loop_rules must be one of {sorted(LOOP_RULES)}, got {name!r}")
    return LOOP_RULES[name]


def ends_episode(text: str, rules: LoopRules = RL_RULES) -> bool:
    """Whether an assistant turn ends the episode by answering, even if it also calls the tool.

    RL: a complete ``<answer>...</answer>`` block (``check_finished``); eval: ``</answer>`` anywhere.
    """
    if rules.stop_on_close_tag:
        return ANSWER_CLOSE in text
    return first_block(text, ANSWER_OPEN, ANSWER_CLOSE) is not None


def failure_text(errors: list[str], rules: LoopRules = RL_RULES) -> str:
    """The feedback text of a failed call: the error message(s) and the failure sentence, as the reference.

    ``errors`` are full messages (prefix included). RL writes ``str(errors)`` (Python's list text)
    followed directly by the sentence; eval writes each error and then the sentence, with nothing
    in between (its separate text blocks render back to back).
    """
    if rules.errors_as_list:
        return str(list(errors)) + TOOL_FAILURE_TEXT
    return "".join(errors) + TOOL_FAILURE_TEXT


def no_timestamp_text() -> str:
    """The RL feedback for a turn without a readable tool call (and without an answer)."""
    return NO_TIMESTAMP_ERROR + TOOL_FAILURE_TEXT


def feedback_text(clips: list[ClipRange], error: str | None = None, caption: bool = False) -> str:
    """Text of the user turn that answers a tool call (after its video blocks).

    ``error`` given (or no clips): the error text and the failure sentence. With ``caption`` the
    success text is preceded by one line giving each clip's absolute range (off by default, as the
    reference gives no timestamp text).
    """
    if error is not None or not clips:
        return f"{error or NO_VALID_RANGE_ERROR}{TOOL_FAILURE_TEXT}"
    if caption:
        spans = "; ".join(f"clip {i + 1}: {c.start:.2f}s - {c.end:.2f}s" for i, c in enumerate(clips))
        return f"The clips cover {spans} of the video. {TOOL_SUCCESS_TEXT}"
    return TOOL_SUCCESS_TEXT


_FEEDBACK_ENDS = tuple(f"{sentence}\nassistant\n" for sentence in (TOOL_SUCCESS_TEXT, TOOL_FAILURE_TEXT))


def split_assistant_turns(solution_str: str) -> list[str]:
    """Split the decoded multi-turn response (special tokens removed) into assistant turn texts.

    A feedback turn reads ``\nuser\n...<success or failure sentence>\nassistant\n``; the split takes the
    leftmost such span with the shortest body (as ``re.split`` of the lazy pattern), in linear time.
    """
    turns: list[str] = []
    pos = 0  # start of the current turn
    search = 0
    while True:
        start = solution_str.find("\nuser\n", search)
        if start < 0:
            break
        ends = [(i, len(end)) for end in _FEEDBACK_ENDS if (i := solution_str.find(end, start + 6)) >= 0]
        if not ends:  # no later "\nuser\n" can be closed either
            break
        i, n = min(ends)
        turns.append(solution_str[pos:start])
        pos = search = i + n
    turns.append(solution_str[pos:])
    return turns


def user_prompt(question: str) -> str:
    """Content of the first user turn: the video placeholder followed by the question."""
    return f"{VIDEO_PLACEHOLDER}\n{question.strip()}"


def build_prompt_messages(question: str) -> list[dict[str, str]]:
    """System + user messages in verl's RLHFDataset form (``<video>`` placeholder in the text)."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_prompt(question)},
    ]


# Moment-retrieval (sentence grounding) question: Charades-STA / ActivityNet-MR evaluation, and the synthetic
# grounding rows of the training data, which teach the same answer format.
SENTENCE_GROUNDING_PROMPT = (
    "Please find the visual event described by a sentence in the video, determining its starting and "
    "ending times. The format should be: 'The event happens in the start time - end time'. "
    "For example, The event happens in the 24.30 - 30.42 seconds.\n# Sentence: {query}"
)
