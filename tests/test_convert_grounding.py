"""data_prep/convert_grounding.py: official annotation files (tests/fixtures/official/, tiny copies in the
official formats) -> annotations.jsonl that the eval loaders read."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from data_prep import convert_grounding as cg
from eval.tasks import load_benchmark
from eval.tasks.base import BenchmarkError
from eval.tasks.fixtures import build_fixture_benchmarks

OFFICIAL = Path(__file__).resolve().parent / "fixtures" / "official"


@pytest.fixture(scope="module")
def source_videos(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("fixture_bench")
    build_fixture_benchmarks(out)
    return {"a": out / "_source/a.mp4", "b": out / "_source/b.mp4"}


def _place(videos: dict[str, Path], root: Path, names: dict[str, str]) -> None:
    for rel, key in names.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(videos[key], root / rel)


def _run(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = cg.main(list(argv))
    return code, buf.getvalue()


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]


def test_charades_sta(source_videos, tmp_path):
    out = tmp_path / "charades_sta"
    _place(source_videos, out / "videos", {"AO8RW.mp4": "a", "3MSZA.mp4": "b"})
    code, text = _run(
        "charades_sta",
        "--annotations",
        str(OFFICIAL / "charades_sta_test.txt"),
        "--durations",
        str(OFFICIAL / "Charades_v1_test.csv"),
        "--out-dir",
        str(out),
    )
    assert code == 0
    assert "6 questions: 3 converted (1 spans clamped to the video), 3 skipped" in text
    for reason in (
        "line is not 'VID start end##sentence'",
        "span ends before it starts",
        "video not in the durations csv",
    ):
        assert f"skipped 1: {reason}" in text
    assert _rows(out) == [
        {
            "id": "AO8RW_0",
            "video": "videos/AO8RW.mp4",
            "duration": 8.0,
            "query": "a person opens a door.",
            "span": [2.0, 5.0],
        },
        {
            "id": "AO8RW_1",
            "video": "videos/AO8RW.mp4",
            "duration": 8.0,
            "query": "person turns on the light.",
            "span": [1.5, 8.0],
        },
        {
            "id": "3MSZA_0",
            "video": "videos/3MSZA.mp4",
            "duration": 8.0,
            "query": "a person is sitting on a chair.",
            "span": [4.0, 7.0],
        },
    ]
    samples = load_benchmark("charades_sta", out)
    assert [(s.id, s.span, Path(s.video).name) for s in samples] == [
        ("AO8RW_0", (2.0, 5.0), "AO8RW.mp4"),
        ("AO8RW_1", (1.5, 8.0), "AO8RW.mp4"),
        ("3MSZA_0", (4.0, 7.0), "3MSZA.mp4"),
    ]
    assert samples[0].question.endswith("# Sentence: a person opens a door.")


def test_activitynet_mr(source_videos, tmp_path):
    out = tmp_path / "activitynet_mr"
    # one file carries the v_ prefix, one not, and one in a subfolder: found by name at any depth
    _place(source_videos, tmp_path / "anet_videos", {"v_uqiMw7tQ1Cc.mp4": "a", "val/bXdq2zI1Ms0.mkv": "b"})
    code, text = _run(
        "activitynet_mr",
        "--annotations",
        str(OFFICIAL / "activitynet_val_2.json"),
        "--videos",
        str(tmp_path / "anet_videos"),
        "--out-dir",
        str(out),
    )
    assert code == 0
    assert "5 questions: 3 converted (1 spans clamped to the video), 2 skipped" in text
    assert "skipped 2: video not found" in text
    rows = _rows(out)
    assert [(r["id"], r["query"], r["span"]) for r in rows] == [
        ("v_uqiMw7tQ1Cc_0", "A red square is shown on the screen.", [2.0, 5.0]),
        ("v_uqiMw7tQ1Cc_1", "The square fades away.", [4.1, 8.0]),
        ("v_bXdq2zI1Ms0_0", "A blue square appears.", [4.0, 7.0]),
    ]
    assert rows[2]["video"] == str((tmp_path / "anet_videos/val/bXdq2zI1Ms0.mkv").resolve())  # outside OUT: absolute
    assert [s.span for s in load_benchmark("activitynet_mr", out)] == [(2.0, 5.0), (4.1, 8.0), (4.0, 7.0)]


def test_nextgqa_several_spans(source_videos, tmp_path):
    out = tmp_path / "nextgqa"
    _place(source_videos, out / "videos", {"0000/1001.mp4": "a", "0001/2002.mp4": "b"})
    code, text = _run(
        "nextgqa",
        "--questions",
        str(OFFICIAL / "nextgqa_test.csv"),
        "--spans",
        str(OFFICIAL / "nextgqa_gsub_test.json"),
        "--video-map",
        str(OFFICIAL / "nextgqa_map_vid_vidorID.json"),
        "--out-dir",
        str(out),
    )
    assert code == 0
    assert "5 questions: 3 converted (1 with several evidence spans), 2 skipped" in text
    assert "skipped 1: no evidence span" in text and "skipped 1: answer not among the options" in text
    rows = _rows(out)
    assert [(r["id"], r["video"], r["answer"], r["span"]) for r in rows] == [
        ("1001_0", "videos/0000/1001.mp4", "B", [2.0, 5.0]),
        ("1001_1", "videos/0000/1001.mp4", "B", [[2.0, 3.0], [4.5, 5.0]]),
        ("2002_3", "videos/0001/2002.mp4", "C", [4.0, 7.0]),
    ]
    assert rows[0]["options"] == ["blue", "red", "green", "yellow", "white"]
    # the loader of this branch takes one span per question; one that takes several reads all three rows
    try:
        samples = load_benchmark("nextgqa", out)
    except BenchmarkError as exc:
        assert "annotations.jsonl:2" in str(exc) and "span" in str(exc)
        single = out / "single"
        single.mkdir()
        (single / "annotations.jsonl").write_text(
            "".join(
                json.dumps({**r, "video": str(out / r["video"])}) + "\n"
                for r in rows
                if not isinstance(r["span"][0], list)
            )
        )
        samples = load_benchmark("nextgqa", single)
        assert [(s.id, s.answer, s.span) for s in samples] == [("1001_0", "B", (2.0, 5.0)), ("2002_3", "C", (4.0, 7.0))]
    else:
        assert [(s.id, s.answer) for s in samples] == [("1001_0", "B"), ("1001_1", "B"), ("2002_3", "C")]
    assert "\nB. red" in samples[0].question


def test_rextime(source_videos, tmp_path):
    out = tmp_path / "rextime"
    _place(source_videos, out / "videos", {"anet/v_uqiMw7tQ1Cc.mp4": "a", "qvh/j7rJstUseKg_60.0_210.0.mp4": "b"})
    code, text = _run(
        "rextime",
        "--annotations",
        str(OFFICIAL / "rextime_val.json"),
        "--windows",
        str(OFFICIAL / "rextime_val.jsonl"),
        "--out-dir",
        str(out),
    )
    assert code == 0
    assert "3 questions: 2 converted, 1 skipped" in text and "skipped 1: answer not among the options" in text
    rows = _rows(out)
    assert [(r["id"], r["video"], r["duration"], r["answer"], r["span"]) for r in rows] == [
        ("anet_val_0", "videos/anet/v_uqiMw7tQ1Cc.mp4", 8.0, "A", [2.0, 5.0]),
        ("qvh_val_1", "videos/qvh/j7rJstUseKg_60.0_210.0.mp4", 8.0, "B", [4.0, 7.0]),
    ]
    samples = load_benchmark("rextime", out)
    assert [(s.id, s.answer, s.span, s.duration) for s in samples] == [
        ("anet_val_0", "A", (2.0, 5.0), 8.0),
        ("qvh_val_1", "B", (4.0, 7.0), 8.0),
    ]


def test_rextime_options_free_jsonl_is_refused_per_row(tmp_path):
    code, text = _run(
        "rextime",
        "--annotations",
        str(OFFICIAL / "rextime_val.jsonl"),
        "--out-dir",
        str(tmp_path),
        "--allow-missing-videos",
    )
    assert code == 1  # nothing converted, nothing written
    assert "skipped 3: no options (use the json release" in text
    assert not (tmp_path / "annotations.jsonl").exists()


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "videos").mkdir()
    code, _ = _run("charades_sta", "--annotations", str(tmp_path / "nope.txt"), "--out-dir", str(tmp_path))
    assert code == 2
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("video,question\n1,x\n")
    with pytest.raises(cg.ConvertError, match="bad.csv: expected the columns"):
        cg.convert_nextgqa(bad_csv, OFFICIAL / "nextgqa_gsub_test.json", None, cg.VideoIndex(None), tmp_path)
    code, _ = _run(
        "activitynet_mr",
        "--annotations",
        str(OFFICIAL / "activitynet_val_2.json"),
        "--videos",
        str(tmp_path / "missing_dir"),
        "--out-dir",
        str(tmp_path),
    )
    assert code == 2
