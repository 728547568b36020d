"""A hub id resolves to a local model directory and its commit: a local mirror, or the Hugging Face cache (offline)."""

from __future__ import annotations

import pytest

from eval.checkpoint import CheckpointError, is_hub_id, resolve_hub_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _model_dir(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"x")
    return path


def test_hub_cache_layout(tmp_path, monkeypatch):
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--Kwai-Keye--VideoTemp-o3"
    snap = _model_dir(repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("VIDEOTEMP_MODEL_MIRROR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert is_hub_id("Kwai-Keye/VideoTemp-o3")
    assert resolve_hub_model("Kwai-Keye/VideoTemp-o3") == (str(snap), COMMIT)
    assert resolve_hub_model("Kwai-Keye/VideoTemp-o3", revision=COMMIT) == (str(snap), COMMIT)
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE is set"):
        resolve_hub_model("Kwai-Keye/VideoTemp-o3", revision="v2")
    with pytest.raises(CheckpointError, match="not in"):
        resolve_hub_model("Other/Model")


def test_local_mirror_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mirror = tmp_path / "mirror"
    plain = _model_dir(mirror / "Kwai-Keye" / "VideoTemp-o3")
    (plain / ".git" / "refs" / "heads").mkdir(parents=True)
    (plain / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (plain / ".git" / "refs" / "heads" / "main").write_text(COMMIT + "\n")
    assert resolve_hub_model("Kwai-Keye/VideoTemp-o3", mirror=mirror) == (str(plain), COMMIT)
    flat = _model_dir(mirror / "Qwen--Qwen2.5-VL-7B-Instruct")
    monkeypatch.setenv("VIDEOTEMP_MODEL_MIRROR", str(mirror))
    assert resolve_hub_model("Qwen/Qwen2.5-VL-7B-Instruct") == (str(flat), None)  # no commit known
    with pytest.raises(CheckpointError, match="holds revision"):
        resolve_hub_model("Kwai-Keye/VideoTemp-o3", revision="f" * 40)
