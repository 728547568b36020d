"""verl's real SFT trainer (``torchrun -m verl.trainer.sft_trainer``) with the recipe SFT config and the CPU overlay.

One run, in its own process with a timeout, on a tiny Qwen2.5-VL and parquet from ``prepare_sft``: it exits 0, logs
a finite loss per step and writes a checkpoint; the loss mask the engine trained on covers exactly the last two
assistant turns (read inside the trainer by tests/sft_trainer_probe.py, loaded through verl's external-module
hook); the merged checkpoint has the initial ViT weights and changed LLM weights.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from data_helpers import synthetic_dataset
from model_helpers import tiny_model_dir

from data_prep import prepare_sft
from recipe.videotemp_o3 import cpu_platform
from recipe.videotemp_o3.verl_hooks import is_vision_tower_param

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
PIXELS = 3136  # 56 x 56 frames
BATCH = 7  # 14 rows: two steps cover every row once
STEPS = 2
TIMEOUT_S = 900


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sft_trainer")
    data = synthetic_dataset()
    inputs = [data.files[k] for k in ("sft_direct", "sft_clips", "sft_ranges")]
    rc = prepare_sft.main(
        [
            *map(str, inputs),
            "--video-root",
            str(data.root),
            "--output-dir",
            str(tmp / "sft"),
            "--min-pixels",
            str(PIXELS),
            "--max-pixels",
            str(PIXELS),
            "--no-progress",
        ]
    )
    assert rc == 0
    parquet = tmp / "sft" / "train.parquet"
    assert len(pd.read_parquet(parquet)) == BATCH * STEPS

    model = tiny_model_dir()
    probe = tmp / "probe.jsonl"
    env = {
        **os.environ,
        **cpu_platform.env_vars(),
        "SFT_PROBE_OUT": str(probe),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "FORCE_QWENVL_VIDEO_READER": "decord",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env["VERL_USE_EXTERNAL_MODULES"] += ",sft_trainer_probe"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node=1",
        "-m",
        "verl.trainer.sft_trainer",
        f"--config-path={REPO}/recipe/videotemp_o3/config",
        "--config-name=videotemp_o3_sft",
        "+platform=cpu_sft",
        f"data.train_files={parquet}",
        "data.val_files=null",
        f"model.path={model}",
        f"data.train_batch_size={BATCH}",
        f"trainer.total_training_steps={STEPS}",
        "trainer.total_epochs=1",
        f"trainer.save_freq={STEPS}",
        "trainer.test_freq=-1",
        "trainer.logger=[console]",
        f"trainer.default_local_dir={tmp / 'ckpt'}",
    ]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    return {"tmp": tmp, "log": log, "probe": probe, "parquet": parquet, "model": model, "ckpt": tmp / "ckpt"}


def test_trainer_logs_finite_loss_and_writes_a_checkpoint(run):
    losses = {int(s): float(v) for s, v in re.findall(r"step:(\d+) - .*?train/loss:([-\d.e+na]+)", run["log"])}
    assert sorted(losses) == list(range(1, STEPS + 1)), run["log"][-3000:]
    assert all(math.isfinite(v) and v > 0 for v in losses.values()), losses
    step_dir = run["ckpt"] / f"global_step_{STEPS}"
    assert (run["ckpt"] / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)
    assert list((step_dir).rglob("model_world_size_1_rank_0.pt")), sorted(p.name for p in step_dir.rglob("*"))


def _assistant_blocks(ids: list[int], tokenizer) -> list[tuple[int, int]]:
    """(first content token, end) of every ``<|im_start|>assistant\\n ... <|im_end|>\\n`` block."""
    start_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    header = len(tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False))
    starts = [i for i, t in enumerate(ids) if t == start_id] + [len(ids)]
    return [
        (a + header, b)
        for a, b in itertools.pairwise(starts)
        if tokenizer.decode(ids[a + 1 : a + header]).startswith("assistant")
    ]


def test_engine_trained_on_the_last_two_assistant_turns(run):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run["model"])
    records = [json.loads(line) for line in run["probe"].read_text().splitlines()]
    assert len(records) == STEPS
    samples = [(ids, mask) for r in records for ids, mask in zip(r["input_ids"], r["loss_mask"])]
    assert len(samples) == BATCH * STEPS

    rows = pd.read_parquet(run["parquet"])
    turns_of = {}  # trained text of each row -> its assistant turns
    for messages in rows["messages"]:
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        turns_of["".join(f"{t}<|im_end|>\n" for t in answers[-2:])] = answers

    by_turns = {1: 0, 2: 0, 3: 0}
    for ids, mask in samples:
        assert len(ids) == len(mask)
        blocks = _assistant_blocks(ids, tokenizer)
        trained_positions = [i for i, m in enumerate(mask) if m]
        expected_positions = [i for a, b in blocks[-2:] for i in range(a, b)]
        assert trained_positions == expected_positions
        trained = tokenizer.decode([ids[i] for i in trained_positions])
        assert trained in turns_of, trained  # exactly the last two assistant turns of a parquet row
        answers = turns_of[trained]
        assert len(answers) == len(blocks)
        by_turns[len(answers)] += 1
        if len(answers) == 3:  # the first (coarse) tool call is in the input but not trained
            first = blocks[0]
            assert not any(mask[first[0] : first[1]])
            assert tokenizer.decode(ids[first[0] : first[1]]) == answers[0] + "<|im_end|>\n"
            assert sum(mask) == sum(b - a for a, b in blocks[1:])
    assert by_turns[3] >= 2 and by_turns[2] >= 2 and by_turns[1] >= 2, by_turns


def test_checkpoint_keeps_the_vit_and_changes_the_llm(run):
    from safetensors.torch import load_file

    from eval.checkpoint import resolve_model

    def weights(directory: Path) -> dict:
        tensors = {}
        for path in sorted(Path(directory).glob("*.safetensors")):
            tensors.update(load_file(path))
        return tensors

    initial = weights(run["model"])
    trained = weights(Path(resolve_model(run["ckpt"], cache_dir=run["tmp"] / "merged")))
    assert set(initial) == set(trained)

    def same(key: str) -> bool:  # verl's merger writes bf16: compare at the merged precision
        return trained[key].equal(initial[key].to(trained[key].dtype))

    vit = [k for k in initial if is_vision_tower_param(k)]
    merger = [k for k in initial if "visual" in k and not is_vision_tower_param(k)]
    llm = [k for k in initial if "visual" not in k]
    assert vit and merger and llm
    assert [k for k in vit if not same(k)] == []
    changed = [k for k in llm if not same(k)]
    assert len(changed) >= 0.9 * len(llm), sorted(set(llm) - set(changed))
    assert any(not same(k) for k in merger)
