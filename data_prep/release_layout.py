"""The VideoTemp-o3 release's training-data file names: the hub's and the original README's, both accepted.

The hub dataset ``Kwai-Keye/VideoTemp-o3`` names its files differently from the release README:

==============================  ==================================
hub (``download.py`` writes)     release README
==============================  ==================================
``sft/<name>.jsonl``            ``sft/data/wo_tool_call/<name>.jsonl``
``sft_tool_call/<name>.jsonl``  ``sft/data/wi_tool_call/<name>.jsonl``
``rl/qa-1k.jsonl``              ``rl/data/qa.jsonl``
``rl/grounding.jsonl``          ``rl/data/grounding.jsonl``
==============================  ==================================

:func:`resolve_inputs` maps an input path (or an unexpanded shell glob) that does not exist onto the
other naming, so ``prepare_sft.py`` / ``prepare_rl.py`` take either. Video paths inside the jsonl are
relative to the dataset root (where ``sft_videos/`` and ``rl_videos/`` shards unpack), which is what
``--video-root`` names.
"""

from __future__ import annotations

import glob
import re
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

from tools.files import read_jsonl

# (hub prefix, README prefix); file-level renames first, then folder renames.
FILE_ALIASES: tuple[tuple[str, str], ...] = (
    ("rl/qa-1k.jsonl", "rl/data/qa.jsonl"),
    ("rl/grounding.jsonl", "rl/data/grounding.jsonl"),
)
# README name first: "sft/data/wo_tool_call/" must win over the hub's "sft/".
DIR_ALIASES: tuple[tuple[str, str], ...] = (
    ("sft/data/wo_tool_call/", "sft/"),
    ("sft/data/wi_tool_call/", "sft_tool_call/"),
    ("rl/data/", "rl/"),
    ("sft_tool_call/", "sft/data/wi_tool_call/"),
    ("sft/", "sft/data/wo_tool_call/"),
    ("rl/", "rl/data/"),
)
# Folders holding the release's annotation jsonl (both namings), relative to the dataset root.
TRAINING_DIRS = ("sft", "sft_tool_call", "rl", "sft/data/wo_tool_call", "sft/data/wi_tool_call", "rl/data")
_GLOB_CHARS = set("*?[")


def alternative_names(path: str) -> list[str]:
    """The same file under the other naming (hub <-> README), or [] when the path matches neither."""
    posix = path.replace("\\", "/")
    for hub, readme in FILE_ALIASES:
        for this, other in ((hub, readme), (readme, hub)):
            if posix == this or posix.endswith("/" + this):
                return [posix[: len(posix) - len(this)] + other]
    for this, other in DIR_ALIASES:
        matches = list(re.finditer(r"(?:^|/)(" + re.escape(this) + ")", posix))
        if matches:
            start, end = matches[-1].span(1)
            return [posix[:start] + other + posix[end:]]
    return []


def resolve_inputs(inputs: Sequence[str], *, log=sys.stderr) -> list[str]:
    """Input paths with release aliases applied: a missing path (or a glob matching nothing) is replaced by
    its other name when that exists; shell globs left unexpanded are expanded. Others pass unchanged."""
    out: list[str] = []
    for path in inputs:
        if Path(path).exists():
            out.append(path)
            continue
        candidates = [path, *alternative_names(path)]
        resolved: list[str] = []
        for candidate in candidates:
            if _GLOB_CHARS & set(candidate):
                resolved = sorted(glob.glob(candidate))
            elif Path(candidate).exists():
                resolved = [candidate]
            if resolved:
                break
        if resolved and candidate != path:
            print(f"note: {path} does not exist; using the release's other name {candidate}", file=log)
        out.extend(resolved or [path])
    return out


def training_files(root: Path) -> list[Path]:
    """The release's annotation jsonl files under a dataset root (either naming)."""
    seen: dict[Path, None] = {}
    for sub in TRAINING_DIRS:
        for path in sorted((root / sub).glob("*.jsonl")):
            seen.setdefault(path, None)
    return list(seen)


def _media_entries(row: dict[str, Any]) -> Iterator[str]:
    for key in ("videos", "images"):
        value = row.get(key) or []
        for entry in value if isinstance(value, list) else [value]:
            if isinstance(entry, str):
                yield entry
            elif isinstance(entry, dict):
                for field in ("video", "image", "path"):
                    if isinstance(entry.get(field), str):
                        yield entry[field]
                        break


def training_media(root: Path) -> Iterator[tuple[str, str]]:
    """(where, media path as written) for every video/image the release's jsonl files name."""
    for path in training_files(root):
        for lineno, row in read_jsonl(path, keep_going=True):
            if isinstance(row, dict):  # bad lines are skipped: prepare_* reports them with their reasons
                for media in _media_entries(row):
                    yield f"{path}:{lineno}", media
