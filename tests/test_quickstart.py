"""The README's first command on a CPU machine: the quick start's CPU path runs to its score table and report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quickstart_cpu_path(tmp_path):
    out = tmp_path / "qs"
    env = {**os.environ, "OUT": str(out), "SKIP_SETUP": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        ["bash", str(REPO / "examples/quickstart.sh"), "--cpu"], capture_output=True, text=True, env=env, timeout=1200, cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    log = proc.stdout

    # GRPO rollouts: 2 prompts x a group of 4, each scored by the reward, advantages centred per group
    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 8
    assert {r["ground_truth"]["data_type"] for r in rollouts} == {"qa", "grounding"}
    for r in rollouts:
        assert set(r["reward"]) >= {"score", "acc", "iou", "format", "n_tool_calls", "n_clips", "answered"}
        assert r["n_tool_calls"] == 1 and r["n_clips"] == 1 and r["termination"] == "answer"
        assert r["reward"]["format"] == 1.0
    for index in {r["index"] for r in rollouts}:
        group = [r["advantage"] for r in rollouts if r["index"] == index]
        assert abs(sum(group)) < 1e-3
    assert "| prompt | type | tool ranges |" in log

    # eval through run_all.sh: predictions, settings and metrics per benchmark, tables printed
    for bench, n in (("videotemp", 3), ("videotemp_g", 3), ("charades_sta", 2)):
        lines = (out / "eval" / f"{bench}.jsonl").read_text().splitlines()
        assert len(lines) == n
        metrics = json.loads((out / "eval" / f"{bench}.metrics.json").read_text())
        assert metrics[f"{bench}/n"] == n
        settings = json.loads((out / "eval" / f"{bench}.settings.json").read_text())
        assert settings["engine"] == "transformers" and settings["max_frames"] == 16
        assert f"## {bench}:" in log
    report = (out / "report.html").read_text()
    assert report.count('class="sample"') == 3
    for parquet in ("rl/train.parquet", "sft/train.parquet"):
        assert (out / parquet).stat().st_size > 0
