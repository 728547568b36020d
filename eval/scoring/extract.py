"""Answer extraction conventions of evaluation (the reference release's rules and the lmms-eval variant).

The reference figures are reproduced by default: these rules are deliberately literal (e.g. the
Video-MME phrase removal does not strip again, so "The best answer is C" gives no answer).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reward_fns.answer_parsing import answer_segments
from tools import protocol
from tools.segments import Segment

VIDEOMME_PHRASES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
    "Answer:",
    "Option:",
    "The correct answer",
    "The correct option",
)
# The reference grounding scorer's number regex (think text included).
REFERENCE_NUMBER_RE = re.compile(r"-?\d+\.?\d*")
_THINK_BLOCK_RE = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
_ANSWER_TAG_RE = re.compile(r"</?answer>")


def reference_response(turns: Sequence[str]) -> str:
    """The reference's ``response``: the stripped first ``<answer>`` of the last assistant turn, else that whole turn stripped."""
    if not turns:
        return ""
    last = turns[-1]
    answer = protocol.first_answer(last)
    return answer if answer is not None else last.strip()


def letter_or_default(response: str | None, valid: str, default: str = "A") -> tuple[str, bool]:
    """Reference MCQ rule: the first character if it is one of ``valid``, else ``default``.

    Returns (letter, parsed) where ``parsed`` is False when the default was used.
    """
    if response and response[0] in valid:
        return response[0], True
    return default, False


def _without_answer_phrases(response: str | None, replacement: str = "") -> str:
    """The response with every Video-MME answer phrase replaced, in the listed order (no second strip)."""
    s = response or ""
    for phrase in VIDEOMME_PHRASES:
        s = s.replace(phrase, replacement)
    return s


def videomme_reference_letter(response: str | None) -> str | None:
    """Video-MME, reference release: strip, delete the answer phrases, then the first char must be A-D."""
    s = _without_answer_phrases((response or "").strip())
    has_letter = re.search(r"[ABCD]", s)
    if len(s.split()) > 10 and not has_letter:
        return None
    if not s or s[0] not in "ABCD":
        return None
    return has_letter.group(0)


def lenient_letter(response: str | None, valid: str) -> str | None:
    """lmms-eval style: drop think blocks, answer tags and answer phrases, then the first standalone option letter.

    "(C)", "C.", "The best answer is C" all give "C"; lowercase letters are not options; None if none.
    """
    s = _THINK_BLOCK_RE.sub(" ", response or "")
    s = _without_answer_phrases(_ANSWER_TAG_RE.sub(" ", s), " ")
    match = re.search(rf"(?<![A-Za-z])([{valid}])(?![A-Za-z])", s)
    return match.group(1) if match else None


def videomme_lmms_letter(response: str | None) -> str | None:
    """Video-MME, lmms-eval / official script: phrase removal, then the first A-D anywhere (None for a long letterless text)."""
    s = _without_answer_phrases((response or "").strip())
    if len(s.split()) > 10 and not re.search(r"[ABCD]", s):
        return None
    match = re.search(r"[ABCD]", s)
    return match.group(0) if match else None


def reference_grounding_span(response: str | None) -> Segment | None:
    """Reference grounding rule: the first two numbers of the whole response, in order (a reversed pair
    such as "100 - 70" has no intersection and scores IoU 0); None if fewer than two."""
    numbers = REFERENCE_NUMBER_RE.findall(response or "")
    if len(numbers) < 2:
        return None
    return (float(numbers[0]), float(numbers[1]))


def first_answer_span(response: str | None) -> Segment | None:
    """Grounding sets without a reference script: the first span of the answer (numbers paired in order).

    Kept as written: a span with start >= end scores IoU 0.
    """
    segments = answer_segments(response)
    return segments[0] if segments else None
