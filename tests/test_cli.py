"""The command-line conventions of tools/cli.py and every script's --help (dashed flags, no torch, no verl)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import pytest
from data_helpers import REPO_ROOT

from tools.cli import VERL_OPTIONAL_ENGINES, ArgumentParser, dashed_argv, quiet_verl_warnings

# Every program a user runs by path; each must answer --help without torch or verl.
SCRIPTS = [
    "data_prep/prepare_rl.py",
    "data_prep/prepare_sft.py",
    "data_prep/convert_grounding.py",
    "data_prep/download.py",
    "data_prep/make_synthetic.py",
    "data_prep/make_tiny_model.py",
    "data_prep/synthetic_video.py",
    "eval/run.py",
    "eval/score.py",
    "eval/view.py",
    "eval/checkpoint.py",
    "eval/merge.py",
    "tools/video_clip.py",
    "benchmarks/agent_loop_memory.py",
    "benchmarks/parsing_time.py",
    "benchmarks/tool_latency.py",
    "examples/plot_reward_curves.py",
]


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="demo")
    p.add_argument("--max-frames", type=int, default=1)
    p.add_argument("--no-check-videos", action="store_true")
    p.add_argument("--keep_me", default=None)  # declared with an underscore: that spelling stays the only one
    p.add_argument("rest", nargs="*")
    return p


def test_underscore_spelling_sets_the_dashed_flag():
    args = _parser().parse_args(["--max_frames", "7", "--no_check_videos"])
    assert args.max_frames == 7 and args.no_check_videos is True
    assert _parser().parse_args(["--max_frames=9"]).max_frames == 9
    assert _parser().parse_args(["--max-frames", "5"]).max_frames == 5
    assert _parser().parse_args(["--keep_me", "x"]).keep_me == "x"


def test_help_shows_the_dashed_spelling_only():
    text = _parser().format_help()
    assert "--max-frames" in text and "--max_frames" not in text


def test_unknown_underscore_flag_is_still_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["--max_frame_count", "3"])
    assert exc.value.code == 2
    assert "--max_frame_count" in capsys.readouterr().err


def test_tokens_after_double_dash_and_values_are_left_alone():
    known = {"--max-frames", "--output-dir"}
    argv = ["--max_frames", "3", "--output_dir=a_b", "x_y", "--", "--max_frames"]
    assert dashed_argv(argv, known) == ["--max-frames", "3", "--output-dir=a_b", "x_y", "--", "--max_frames"]


def test_subcommand_flags_accept_underscores():
    p = ArgumentParser(prog="demo")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("one")
    s.add_argument("--out-dir", required=True)
    args = p.parse_args(["one", "--out_dir", "d"])
    assert args.cmd == "one" and args.out_dir == "d"


def test_quiet_verl_warnings_filters_the_engine_warnings_only():
    env = {"PYTHONWARNINGS": "default::DeprecationWarning"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_verl_warnings(env)
        for name in VERL_OPTIONAL_ENGINES:
            warnings.warn_explicit(
                f"{name} engine is not available: ModuleNotFoundError('x')",
                UserWarning,
                "verl/workers/engine/__init__.py",
                32,
                module="verl.workers.engine",
            )
        warnings.warn_explicit(
            "something else", UserWarning, "verl/workers/engine/__init__.py", 1, module="verl.workers.engine"
        )
    assert [str(w.message) for w in caught] == ["something else"]
    entries = env["PYTHONWARNINGS"].split(",")
    assert entries[0] == "default::DeprecationWarning" and len(entries) == 1 + len(VERL_OPTIONAL_ENGINES)
    quiet_verl_warnings(env)  # idempotent: no entry twice
    assert env["PYTHONWARNINGS"].split(",") == entries


def test_pythonwarnings_entries_silence_a_child_process():
    env = {**os.environ}
    env.pop("PYTHONWARNINGS", None)
    with warnings.catch_warnings():
        quiet_verl_warnings(env)
    code = (
        "import warnings\n"
        "warnings.warn_explicit('megatron engine is not available: x', UserWarning, 'e.py', 1, module='verl.workers.engine')\n"
        "warnings.warn_explicit('kept', UserWarning, 'e.py', 2, module='verl.workers.engine')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "megatron engine" not in done.stderr and "UserWarning: kept" in done.stderr
    assert "Invalid -W option" not in done.stderr


def test_pythonwarnings_for_launch_scripts_keeps_the_user_filters():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONWARNINGS": "error::FutureWarning"}
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "pythonwarnings"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    entries = done.stdout.strip().split(",")
    assert entries[0] == "error::FutureWarning"
    assert entries[1:] == [
        f"ignore:{n} engine is not available:UserWarning:verl.workers.engine" for n in VERL_OPTIONAL_ENGINES
    ]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_by_path_is_dashed_and_loads_neither_torch_nor_verl(script):
    # The path form finds the project's packages through the installed (editable) project; PYTHONPATH stands
    # in for installing this checkout.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", script, "--help"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"torch", "verl", "vllm", "transformers"}, sorted(
        imported & {"torch", "verl", "vllm", "transformers"}
    )
    flags = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9_-]*", done.stdout))
    assert flags and not [f for f in flags if "_" in f], sorted(flags)
