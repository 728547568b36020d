"""Conventions shared by every command-line program of the project.

- Flags are spelled with dashes (``--max-frames``); the underscore spelling (``--max_frames``) is accepted
  too, so older commands keep working, and ``--help`` shows the dashed one only: build parsers with
  :class:`ArgumentParser` instead of ``argparse.ArgumentParser``.
- :func:`quiet_verl_warnings` silences the import warnings of verl's optional training engines (torchtitan,
  veomni, automodel, mindspeed, megatron), which say nothing about a run of this project; our programs call it
  before they import verl, and it passes the filter on to child processes (Ray workers, torchrun ranks).

Importing this module is cheap (standard library only), so ``--help`` answers without torch or verl.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Iterable, MutableMapping, Sequence

#: verl's optional engines whose absence ``verl.workers.engine`` reports with a UserWarning at import.
VERL_OPTIONAL_ENGINES = ("torchtitan", "veomni", "automodel", "mindspeed", "megatron")
_VERL_ENGINE_MODULE = "verl.workers.engine"


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every long option string of ``parser`` and of its sub-command parsers."""
    found: set[str] = set()
    for action in parser._actions:  # argparse keeps no public list of its actions
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _long_options(sub)
    return found


def dashed_argv(argv: Iterable[str], known: set[str]) -> list[str]:
    """``argv`` with every ``--a_b`` (or ``--a_b=value``) whose dashed form ``--a-b`` is in ``known`` rewritten
    to the dashed form. Nothing after a bare ``--`` is touched, nor tokens that are not known options."""
    out: list[str] = []
    rest = False
    for token in argv:
        if rest or not token.startswith("--") or token == "--":
            rest = rest or token == "--"
            out.append(token)
            continue
        name, eq, value = token.partition("=")
        dashed = name.replace("_", "-")
        if dashed != name and name not in known and dashed in known:
            token = dashed + eq + value
        out.append(token)
    return out


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that accepts ``--max_frames`` for a flag declared as ``--max-frames``.

    Declare every long flag with dashes; ``args.max_frames`` is the attribute either way. Sub-command parsers
    made with ``add_subparsers()`` are of this class too."""

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        if args is None:
            args = sys.argv[1:]
        return super().parse_known_args(dashed_argv(args, _long_options(self)), namespace)


def _verl_warning_entries() -> list[str]:
    """The ``PYTHONWARNINGS`` entries (``action:message:category:module``) that hide verl's engine warnings."""
    return [
        f"ignore:{name} engine is not available:UserWarning:{_VERL_ENGINE_MODULE}" for name in VERL_OPTIONAL_ENGINES
    ]


def quiet_pythonwarnings(current: str = "") -> str:
    """``current`` (a ``PYTHONWARNINGS`` value) with the filter of verl's engine warnings appended once."""
    entries = [e for e in current.split(",") if e]
    return ",".join(entries + [e for e in _verl_warning_entries() if e not in entries])


def quiet_verl_warnings(environ: MutableMapping[str, str] | None = os.environ) -> None:
    """Hide the "<engine> engine is not available" UserWarnings verl prints when it is imported.

    Installs the filter in this process and, unless ``environ`` is None, appends the same filter to
    ``environ["PYTHONWARNINGS"]`` so that processes started from here (Ray workers, torchrun ranks, engine
    subprocesses) inherit it. Other warnings, including verl's other ones, are left alone. Call it before
    verl is first imported: the warnings are raised once, at import."""
    for name in VERL_OPTIONAL_ENGINES:
        warnings.filterwarnings(
            "ignore",
            message=f"{name} engine is not available",
            category=UserWarning,
            module=_VERL_ENGINE_MODULE.replace(".", r"\."),
        )
    if environ is None:
        return
    environ["PYTHONWARNINGS"] = quiet_pythonwarnings(environ.get("PYTHONWARNINGS", ""))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.cli pythonwarnings``: print ``$PYTHONWARNINGS`` with the verl filter added, for launch
    scripts of programs that are not ours (``export PYTHONWARNINGS=$(python -m tools.cli pythonwarnings)``
    before ``python -m verl.trainer.main_ppo``; Ray workers and torchrun ranks inherit it)."""
    parser = ArgumentParser(
        prog="python -m tools.cli",
        description="Print $PYTHONWARNINGS with the filter of verl's optional-engine import warnings added, for "
        "launch scripts of programs that are not ours: export PYTHONWARNINGS=$(python -m tools.cli pythonwarnings) "
        "before python -m verl.trainer.main_ppo; Ray workers and torchrun ranks inherit it.",
    )
    parser.add_argument("what", choices=["pythonwarnings"], help="the value to print")
    parser.parse_args(argv)
    print(quiet_pythonwarnings(os.environ.get("PYTHONWARNINGS", "")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
