"""The README's first command on a CPU machine: the quick start's CPU path on verl's real trainer and vLLM.

tiny model -> synthetic data -> prepare_sft / prepare_rl -> SFT (verl sft_trainer) -> 2 GRPO steps (main_ppo,
vLLM rollout, FSDP2) -> eval of the GRPO checkpoint through vLLM -> score tables -> report -> reward-curve PNG.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REWARD_COMPONENTS = ("score", "acc", "iou", "format")

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def test_quickstart_cpu_path(tmp_path):
    out = tmp_path / "qs"
    env = {**os.environ, "OUT": str(out), "SKIP_SETUP": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        ["bash", str(REPO / "examples/quickstart.sh"), "--cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=2300,
        cwd=REPO,
        start_new_session=True,
    )
    log = proc.stdout
    assert proc.returncode == 0, log[-4000:] + proc.stderr[-4000:]

    # SFT with verl's trainer wrote a checkpoint; GRPO started from it (main_ppo's model path is the merged SFT model)
    assert (out / "ckpt/sft/latest_checkpointed_iteration.txt").is_file()
    grpo_log = (out / "grpo.log").read_text()
    sft_model = re.search(r"SFT checkpoint as a Hugging Face model: (\S+)", log).group(1)
    assert f"actor_rollout_ref.model.path={sft_model}" in grpo_log

    # two GRPO steps, each with its reward components, on the console and in TensorBoard, plotted to a PNG
    for step in (1, 2):
        line = re.search(rf"^step {step}: (.*)$", log, re.M)
        assert line, f"no console line for GRPO step {step}"
        for component in REWARD_COMPONENTS:
            assert re.search(rf"\b{component} -?\d+\.\d{{3}}", line.group(1)), (step, component)
    assert (out / "ckpt/grpo/latest_checkpointed_iteration.txt").read_text().strip() == "2"
    assert list((out / "tensorboard/grpo").glob("events.out.tfevents.*"))
    assert "format_reward" in (out / "sft_format.json").read_text()
    png = (out / "reward_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    # eval of the GRPO checkpoint through vLLM (verl engine): predictions, settings and metrics per benchmark
    for bench, n in (("videotemp", 3), ("videotemp_g", 3), ("charades_sta", 2)):
        lines = (out / "eval" / f"{bench}.jsonl").read_text().splitlines()
        assert len(lines) == n
        metrics = json.loads((out / "eval" / f"{bench}.metrics.json").read_text())
        assert metrics[f"{bench}/n"] == n
        settings = json.loads((out / "eval" / f"{bench}.settings.json").read_text())
        assert settings["engine"] == "verl" and settings["max_frames"] == 16
        assert settings["model_source"].endswith("ckpt/grpo")  # the GRPO checkpoint, merged by eval.checkpoint
        assert settings["n_gpus_per_node"] == 1  # what ran: one vLLM CPU replica
        assert f"## {bench}:" in log
    report = (out / "report.html").read_text()
    assert report.count('class="sample"') == 3
    for parquet in ("rl/train.parquet", "sft/train.parquet"):
        assert (out / parquet).stat().st_size > 0
    assert re.search(r"Peak memory in use on this machine: \d+\.\d GiB", log)
    # the demo's GRPO turns are steered by vLLM structured outputs, and it says so
    assert "steered into the protocol's shapes by vLLM structured outputs" in log
