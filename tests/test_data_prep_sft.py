"""data_prep/prepare_sft.py: clip files, clip ranges, clips derived from tool calls, image rows, rejects."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from data_helpers import (
    assistant_answer,
    feedback,
    read_rejects,
    sft_row,
    synthetic_dataset,
    write_jsonl,
)

from data_prep import prepare_sft
from data_prep.synthetic_video import write_corrupt_video
from tools.protocol import CLIP_MAX_FRAMES, SYSTEM_PROMPT, TRAIN_MAX_FRAMES


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset()


def _run(tmp_path: Path, inputs, *extra: str, root=None) -> int:
    args = [str(p) for p in inputs] + ["--output-dir", str(tmp_path / "out"), "--no-progress", *extra]
    if root is not None:
        args += ["--video-root", str(root)]
    return prepare_sft.main(args)


def _videos(row) -> list[tuple]:
    return [(v["video"], v["role"], v["video_start"], v["video_end"]) for v in row["videos"]]


def test_synthetic_sft_files_convert(tmp_path, data):
    inputs = [data.files["sft_direct"], data.files["sft_clips"], data.files["sft_ranges"]]
    assert _run(tmp_path, inputs, root=data.root) == 0
    assert read_rejects(tmp_path / "out") == []
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    n = len(data.videos)
    assert df["data_source"].value_counts().to_dict() == {
        "wo_tool_call/synthetic": 3 * n,
        "wi_tool_call/synthetic": 2 * n,
        "wi_tool_call/synthetic_ranges": 2 * n,
    }
    for _, row in df.iterrows():
        placeholders = sum(m["content"].count("<video>") for m in row["messages"])
        assert placeholders == len(row["videos"])
        assert sum(m["content"].count("<image>") for m in row["messages"]) == len(row["images"])
        assert row["messages"][0]["content"] == SYSTEM_PROMPT
        assert row["extra_info"]["n_clips"] == row["extra_info"]["n_tool_calls"]

    main = str(data.root / data.videos[0].path)
    files = df[df["data_source"] == "wi_tool_call/synthetic"].iloc[1]  # two calls, pre-cut clip files
    assert [(v[1], v[2]) for v in _videos(files)] == [("main", None), ("clip", None), ("clip", None)]
    assert files["videos"][1]["video"].endswith("clips/vid_000_call2_c0.mp4")
    assert files["videos"][0]["max_frames"] == TRAIN_MAX_FRAMES and files["videos"][1]["max_frames"] == CLIP_MAX_FRAMES

    ranges = df[df["data_source"] == "wi_tool_call/synthetic_ranges"]
    event = data.videos[0].events[0]
    one_call, two_calls = ranges.iloc[0], ranges.iloc[1]  # explicit range, derived from the tool calls
    assert _videos(one_call) == [(main, "main", None, None), (main, "clip", event["start"], event["end"])]
    derived = _videos(two_calls)
    assert derived[0] == (main, "main", None, None)
    assert [d[1:] for d in derived[2:]] == [("clip", event["start"], event["end"])]
    assert derived[1][2] == pytest.approx(max(0.0, round(event["start"] - 3, 1)))

    image_row = df[df["images"].map(len) > 0].iloc[0]
    assert image_row["images"][0]["image"] == str(data.root / "images/img_000.png") and len(image_row["videos"]) == 0


def test_derived_clips_are_clamped_and_limited_like_the_tool(tmp_path, data):
    video = data.videos[0].path
    duration = data.videos[0].duration
    row = sft_row(video, [(2.0, duration + 10.0)], clips="derive")
    assert _run(tmp_path, [write_jsonl(tmp_path / "d.jsonl", [row])], root=data.root) == 0
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert _videos(df.iloc[0])[1][2:] == (2.0, pytest.approx(duration))


def test_every_malformed_class_is_rejected_with_file_and_line(tmp_path, data):
    video = data.videos[0].path
    duration = data.videos[0].duration
    corrupt = write_corrupt_video(tmp_path / "corrupt.mp4")
    no_messages = {"videos": [video]}
    too_many_videos = sft_row(video, [(1.0, 3.0)])
    too_many_videos["videos"].append(video)
    malformed_turn = sft_row(video, [])
    malformed_turn["messages"][-1]["content"] += "\n"
    derive_mismatch = sft_row(video, [(1.0, 3.0)], clips="derive")
    derive_mismatch["messages"][3] = feedback(2)
    image_mismatch = {"messages": [{"role": "user", "content": "<image>What?"}, assistant_answer()], "images": []}
    rows = [
        sft_row(video, [(1.0, 3.0)]),  # 1 ok
        "[1, 2",  # 2 bad JSON
        no_messages,  # 3 missing field
        sft_row("videos/missing.mp4", []),  # 4 missing video
        sft_row(str(corrupt), []),  # 5 corrupt video
        sft_row(video, [(2.0, duration + 30.0)]),  # 6 clip outside the video
        sft_row(video, [(5.0, 2.0)]),  # 7 end < start
        too_many_videos,  # 8 mismatched <video> count
        malformed_turn,  # 9 assistant turn not well formed
        derive_mismatch,  # 10 derived clips != placeholders
        image_mismatch,  # 11 mismatched <image> count
        sft_row(video, [(1.0, 3.0), (1.5, 2.5)], clips="derive"),  # 12 ok
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    assert _run(tmp_path, [path], root=data.root) == 0
    rejects = read_rejects(tmp_path / "out")
    by_line = {r["line"]: r["reason"] for r in rejects}
    assert all(r["file"] == str(path) for r in rejects)
    assert sorted(by_line) == list(range(2, 12))
    assert by_line[2].startswith("bad JSON")
    assert "missing field 'messages'" in by_line[3]
    assert "video not found" in by_line[4]
    assert "video not decodable" in by_line[5]
    assert "outside the video" in by_line[6]
    assert "end <= start" in by_line[7]
    assert "mismatched <video> count" in by_line[8]
    assert "assistant turn 1 is not" in by_line[9]
    assert "mismatched <video> count" in by_line[10]
    assert "mismatched <image> count" in by_line[11]
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert [r["extra_info"]["source"] for _, r in df.iterrows()] == [f"{path}:1", f"{path}:12"]
    assert [len(r["videos"]) for _, r in df.iterrows()] == [2, 3]

    rc = prepare_sft.main(
        [
            str(path),
            "--video-root",
            str(data.root),
            "--output-dir",
            str(tmp_path / "strict"),
            "--no-progress",
            "--strict",
        ]
    )
    assert rc == 1 and not (tmp_path / "strict" / "train.parquet").exists()


def test_keep_flags(tmp_path, data):
    row = sft_row(data.videos[0].path, [])
    row["messages"][0]["content"] = "custom system"
    row["messages"][-1]["content"] = "plain text answer"
    path = write_jsonl(tmp_path / "k.jsonl", [row])
    assert _run(tmp_path, [path], "--keep-system-prompt", "--keep-malformed-turns", root=data.root) == 0
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert df.iloc[0]["messages"][0]["content"] == "custom system"
    assert df.iloc[0]["messages"][-1]["content"] == "plain text answer"
