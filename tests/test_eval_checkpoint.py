"""Eval accepts a verl training checkpoint: FSDP shards merged once (verl's merger) into a cached HF dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from model_helpers import tiny_model_dir

from eval.checkpoint import CheckpointError, find_actor_dir, resolve_model
from eval.tasks.fixtures import build_fixture_benchmarks

REPO = Path(__file__).resolve().parent.parent


def _verl_checkpoint(root: Path, step: int, scale: float = 1.0) -> Path:
    """A trainer ``default_local_dir`` as verl writes it: tracker + global_step_N/actor/{shards, fsdp_config, huggingface}."""
    from transformers import AutoModelForImageTextToText

    model_dir = tiny_model_dir()
    actor = root / f"global_step_{step}" / "actor"
    (actor / "huggingface").mkdir(parents=True)
    for item in model_dir.iterdir():  # config, tokenizer, processor, chat template: no weights
        if item.is_file() and not item.name.endswith((".safetensors", ".bin")) and "index" not in item.name:
            shutil.copy2(item, actor / "huggingface" / item.name)
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir))
    state = {k: v * scale if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(state, actor / "model_world_size_1_rank_0.pt")
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": 1}))
    (root / "latest_checkpointed_iteration.txt").write_text(str(step))
    return actor


def test_latest_step_is_found_merged_once_and_cached(tmp_path):
    from transformers import AutoModelForImageTextToText

    ckpt = tmp_path / "ckpt"
    _verl_checkpoint(ckpt, 2, scale=0.5)
    actor = _verl_checkpoint(ckpt, 5, scale=1.0)  # the tracker now points at step 5
    assert find_actor_dir(ckpt) == actor
    assert find_actor_dir(actor.parent) == actor and find_actor_dir(actor) == actor

    cache = tmp_path / "cache"
    merged = Path(resolve_model(ckpt, cache_dir=cache))
    assert merged.parent == cache and (merged / "config.json").is_file()
    assert (merged / "chat_template.jinja").exists() or (merged / "tokenizer_config.json").exists()
    reference = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir()))
    loaded = AutoModelForImageTextToText.from_pretrained(str(merged), dtype=torch.float32)
    ref_state, got_state = reference.state_dict(), loaded.state_dict()
    assert set(ref_state) == set(got_state)
    for key, value in ref_state.items():  # the merger saves bf16
        torch.testing.assert_close(got_state[key], value.to(torch.bfloat16).to(torch.float32), rtol=0, atol=0)

    stamp = (merged / "config.json").stat().st_mtime_ns
    assert resolve_model(ckpt, cache_dir=cache) == str(merged)  # cached: not merged again
    assert (merged / "config.json").stat().st_mtime_ns == stamp
    assert not list(cache.glob("*.tmp*"))  # no half-written directory left behind


def test_hf_dirs_and_hub_ids_pass_through(tmp_path):
    model_dir = tiny_model_dir()
    assert resolve_model(model_dir) == str(model_dir)
    assert resolve_model("Qwen/Qwen2.5-VL-7B-Instruct") == "Qwen/Qwen2.5-VL-7B-Instruct"
    with pytest.raises(CheckpointError, match="not a Hugging Face model directory"):
        resolve_model(tmp_path)
    with pytest.raises(CheckpointError, match="no such directory"):
        resolve_model(tmp_path / "missing" / "deeper" / "x")


def test_eval_run_takes_a_checkpoint_directly(tmp_path):
    ckpt = tmp_path / "ckpt"
    _verl_checkpoint(ckpt, 1)
    data = tmp_path / "bench"
    build_fixture_benchmarks(data)
    out = tmp_path / "eval"
    env = {**os.environ, "VIDEOTEMP_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        str(REPO / "eval/run.py"),
        "charades_sta",
        "--data_root",
        str(data),
        "--model",
        str(ckpt),
        "--engine",
        "transformers",
        "--output_dir",
        str(out),
        "--limit",
        "1",
        "--max_frames",
        "8",
        "--max_pixels",
        "12544",
        "--min_pixels",
        "3136",
        "--max_new_tokens",
        "8",
        "--prompt_length",
        "4096",
        "--response_length",
        "2048",
        "--max_model_len",
        "8192",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "charades_sta.jsonl").read_text().splitlines()]
    assert len(records) == 1
    settings = json.loads((out / "charades_sta.settings.json").read_text())
    merged = list((tmp_path / "cache" / "merged").iterdir())
    assert len(merged) == 1 and (merged[0] / "config.json").is_file()
    assert settings["model_source"] == str(ckpt) and settings["model"] == str(merged[0])


def test_cli_prints_only_the_model_path(tmp_path):
    ckpt = tmp_path / "ckpt"
    _verl_checkpoint(ckpt, 1)
    env = {**os.environ, "VIDEOTEMP_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "eval.checkpoint", str(ckpt)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = Path(proc.stdout.strip())  # stdout is the path alone: usable as MODEL=$(python -m eval.checkpoint ...)
    assert path.parent == tmp_path / "cache" / "merged" and (path / "config.json").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "eval.checkpoint", str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert bad.returncode == 2 and "not a Hugging Face model directory" in bad.stderr
