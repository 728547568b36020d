"""data_prep/prepare_rl.py: reference and plain schemas -> verl parquet, rejects, strict mode, split, probe cache,
and the round trip through verl's own RLHFDataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from data_helpers import REPO_ROOT, read_rejects, reference_rl_row, synthetic_dataset, write_jsonl

from data_prep import common, prepare_rl
from data_prep.synthetic_video import write_corrupt_video
from tools.protocol import SYSTEM_PROMPT, TOOL_NAME, TRAIN_PIXELS


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset()


def _run(tmp_path: Path, inputs: list[Path], *extra: str, root: Path | None = None) -> int:
    args = [str(p) for p in inputs] + ["--output-dir", str(tmp_path / "out"), "--no-progress", *extra]
    if root is not None:
        args += ["--video-root", str(root)]
    return prepare_rl.main(args)


def test_synthetic_rl_converts_with_expected_columns(tmp_path, data):
    rc = _run(tmp_path, [data.files["rl_qa"], data.files["rl_grounding"]], root=data.root)
    assert rc == 0
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert len(df) == 2 * len(data.videos)
    assert not (tmp_path / "out" / "val.parquet").exists()
    assert read_rejects(tmp_path / "out") == []
    first = data.videos[0]
    row = df.iloc[0]
    path = str(data.root / first.path)
    assert row["agent_name"] == "videotemp_agent"
    assert row["data_source"] == "videotemp_o3_qa" and row["ability"] == "video_qa"
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["prompt"][0]["content"] == SYSTEM_PROMPT
    assert row["prompt"][1]["content"].startswith("<video>\n") and row["prompt"][1]["content"].count("<video>") == 1
    assert list(row["videos"]) == [
        {"video": path, "fps": 2.0, "max_frames": 512, "min_pixels": TRAIN_PIXELS, "max_pixels": TRAIN_PIXELS}
    ]
    truth = row["reward_model"]["ground_truth"]
    event = first.events[0]
    assert truth["data_type"] == "qa"
    assert [list(t) for t in truth["timestamps"]] == [[event["start"], event["end"]]]
    options = row["prompt"][1]["content"].split("\n")[-4:]
    assert options["ABCD".index(truth["answer"])].endswith(event["color"])
    extra = row["extra_info"]
    assert extra["index"] == 0 and extra["data_type"] == "qa"
    assert extra["duration"] == pytest.approx(first.duration)
    assert extra["video_path"] == path
    assert extra["tools_kwargs"] == {TOOL_NAME: {"create_kwargs": {"video": path, "duration": extra["duration"]}}}
    grounding = df[df["data_source"] == "videotemp_o3_grounding"].iloc[0]
    assert grounding["reward_model"]["ground_truth"]["data_type"] == "grounding"
    assert "The event happens in the" in grounding["reward_model"]["ground_truth"]["answer"]


def test_round_trip_through_verl_rlhf_dataset(tmp_path, data):
    import verl
    from model_helpers import tiny_model_dir
    from omegaconf import OmegaConf
    from verl.utils import hf_processor, hf_tokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    assert _run(tmp_path, [data.files["rl_qa"]], root=data.root) == 0
    cfg = OmegaConf.load(Path(verl.__file__).parent / "trainer" / "config" / "data" / "legacy_data.yaml")
    model = str(tiny_model_dir())
    dataset = RLHFDataset(
        data_files=[str(tmp_path / "out" / "train.parquet")],
        tokenizer=hf_tokenizer(model),
        config=cfg,
        processor=hf_processor(model),
    )
    item = dataset[1]
    video = data.videos[1]
    system, user = item["raw_prompt"]
    assert system["content"] == [{"type": "text", "text": SYSTEM_PROMPT}]
    assert user["content"][0] == {
        "type": "video",
        "video": str(data.root / video.path),
        "fps": 2.0,
        "max_frames": 512,
        "min_pixels": TRAIN_PIXELS,
        "max_pixels": TRAIN_PIXELS,
    }
    assert user["content"][1]["type"] == "text" and "What colour" in user["content"][1]["text"]
    assert item["reward_model"]["ground_truth"]["timestamps"] == [[video.events[0]["start"], video.events[0]["end"]]]
    assert item["agent_name"] == "videotemp_agent" and item["index"] == 1
    assert item["tools_kwargs"][TOOL_NAME]["create_kwargs"]["video"] == str(data.root / video.path)


def test_plain_schema_and_options(tmp_path, data):
    video = data.videos[0].path
    rows = [
        {
            "video": video,
            "question": "Which colour?",
            "options": ["red", "blue", "green"],
            "answer": "B",
            "timestamps": [[1.0, 3.0]],
            "data_type": "qa",
        },
        {
            "video": video,
            "question": "Which colour?",
            "options": ["red", "blue"],
            "answer": 0,
            "timestamps": [[1.0, 3.0]],
            "data_type": "qa",
        },
        {"video": video, "question": "Find the red square.", "timestamps": [[1.0, 3.0]], "data_type": "grounding"},
    ]
    assert _run(tmp_path, [write_jsonl(tmp_path / "plain.jsonl", rows)], root=data.root) == 0
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert df.iloc[0]["prompt"][1]["content"] == "<video>\nWhich colour?\nA. red\nB. blue\nC. green"
    assert [r["reward_model"]["ground_truth"]["answer"] for _, r in df.iterrows()] == ["B", "A", "[1, 3]"]


def test_every_malformed_class_is_rejected_with_file_and_line(tmp_path, data):
    video = data.videos[0].path
    duration = data.videos[0].duration
    corrupt = write_corrupt_video(tmp_path / "corrupt.mp4")
    good = reference_rl_row(video)
    no_solution = reference_rl_row(video)
    del no_solution["solution"]
    two_videos = reference_rl_row(video)
    two_videos["videos"] = [video, video]
    rows = [
        good,  # 1 ok
        "{not json",  # 2
        no_solution,  # 3
        reference_rl_row("videos/missing.mp4"),  # 4
        reference_rl_row(str(corrupt)),  # 5
        reference_rl_row(video, timestamp=[(2.0, duration + 5)]),  # 6
        reference_rl_row(video, timestamp=[(5.0, 2.0)]),  # 7
        reference_rl_row(video, solution="<answer>F</answer>"),  # 8
        two_videos,  # 9
        reference_rl_row(video, data_type="caption"),  # 10
        reference_rl_row(video, solution="C"),  # 11 ok
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    assert _run(tmp_path, [path], root=data.root) == 0
    rejects = read_rejects(tmp_path / "out")
    by_line = {r["line"]: r["reason"] for r in rejects}
    assert all(r["file"] == str(path) for r in rejects)
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert by_line[2].startswith("bad JSON")
    assert "missing field 'solution'" in by_line[3]
    assert "video not found" in by_line[4]
    assert "video not decodable" in by_line[5]
    assert "outside the video" in by_line[6]
    assert "end <= start" in by_line[7]
    assert "not among the options" in by_line[8]
    assert "mismatched <video> count" in by_line[9]
    assert "data_type" in by_line[10]
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert [r["reward_model"]["ground_truth"]["answer"] for _, r in df.iterrows()] == ["B", "C"]
    assert [r["extra_info"]["source"] for _, r in df.iterrows()] == [f"{path}:1", f"{path}:11"]

    out2 = tmp_path / "strict"
    rc = prepare_rl.main(
        [str(path), "--video-root", str(data.root), "--output-dir", str(out2), "--no-progress", "--strict"]
    )
    assert rc == 1
    assert not (out2 / "train.parquet").exists()
    assert len(read_rejects(out2)) == 9


def test_split_is_deterministic_and_probes_are_cached(tmp_path, data, monkeypatch):
    rows = [reference_rl_row(data.videos[i % 2].path, question=f"Q{i}?\nA. x\nB. y") for i in range(20)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    assert _run(tmp_path, [path], "--val-fraction", "0.25", "--seed", "3", root=data.root) == 0
    out = tmp_path / "out"
    train, val = pd.read_parquet(out / "train.parquet"), pd.read_parquet(out / "val.parquet")
    assert (len(train), len(val)) == (15, 5)
    cache = json.loads((out / common.DEFAULT_PROBE_CACHE_NAME).read_text())
    assert sorted(cache["entries"]) == sorted(str(data.root / v.path) for v in data.videos)

    def no_probe(path, kind):
        raise AssertionError(f"probed {path} again")

    monkeypatch.setattr(common, "_probe_one", no_probe)
    assert _run(tmp_path, [path], "--val-fraction", "0.25", "--seed", "3", root=data.root) == 0
    val_again = pd.read_parquet(out / "val.parquet")
    assert list(val_again["extra_info"].map(lambda e: e["question"])) == list(
        val["extra_info"].map(lambda e: e["question"])
    )
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


@pytest.mark.parametrize("script", ["prepare_rl", "prepare_sft", "make_synthetic"])
def test_help_runs_as_script_and_module(script):
    # the path form finds the packages through the installed (editable) project; PYTHONPATH stands in for
    # installing this checkout (without it the path form would load the installed copy, not this one)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    by_path = subprocess.run(
        [sys.executable, f"data_prep/{script}.py", "--help"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    by_module = subprocess.run(
        [sys.executable, "-m", f"data_prep.{script}", "--help"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert by_path.returncode == 0, by_path.stderr
    assert by_module.returncode == 0, by_module.stderr
    assert by_path.stdout == by_module.stdout.replace(f"python -m data_prep.{script}", f"{script}.py")
    assert "--help" in by_path.stdout and "usage:" in by_path.stdout
