"""data_prep on careless and hostile input: bad rows become rejects, argument errors come first, the
probe cache keeps successes only, outputs are this run's only, the release's row shapes convert."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from data_helpers import read_rejects, reference_rl_row, sft_row, synthetic_dataset, write_jsonl

from data_prep import common, prepare_rl, prepare_sft
from tools.protocol import SYSTEM_PROMPT


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset()


def _rl(out: Path, inputs: list[Path], *extra: str, root: Path | None = None) -> int:
    args = [str(p) for p in inputs] + ["--output-dir", str(out), "--no-progress", *extra]
    return prepare_rl.main(args + (["--video-root", str(root)] if root is not None else []))


def _sft(out: Path, inputs: list[Path], *extra: str, root: Path | None = None) -> int:
    args = [str(p) for p in inputs] + ["--output-dir", str(out), "--no-progress", *extra]
    return prepare_sft.main(args + (["--video-root", str(root)] if root is not None else []))


def _reasons(out: Path) -> dict[int, str]:
    return {r["line"]: r["reason"] for r in read_rejects(out)}


# --------------------------------------------------------------------------- bad rows are rejects


def test_every_bad_rl_row_class_is_a_reject_and_the_rest_converts(tmp_path, data):
    video = data.videos[0].path
    good = json.dumps(reference_rl_row(video))
    lines = [
        good,  # 1
        good[:-2] + ' "\xff"}',  # 2 non-UTF-8 byte (below)
        json.dumps(
            {
                "video": video,
                "question": "Q?",
                "data_type": "qa",
                "answer": "A",
                "options": [f"o{i}" for i in range(27)],
                "timestamps": [[1, 2]],
            }
        ),  # 3 27 options
        good.replace("Which colour?", "Which \\ud800 colour?"),  # 4 lone surrogate
        json.dumps(reference_rl_row(video + "\x00x")),  # 5 NUL byte in the path
        json.dumps(reference_rl_row(video, timestamp=[(True, 3)])),  # 6 boolean time
        json.dumps({**reference_rl_row(video), "solution": {"x": 1}}),  # 7 solution of a wrong type
        good,  # 8
    ]
    path = tmp_path / "rl.jsonl"
    raw = ("\n".join(lines) + "\n").encode("utf-8").replace("\xff".encode("utf-8"), b"\xff")
    path.write_bytes(b"\xef\xbb\xbf" + raw)  # with a BOM: the first row still counts
    assert _rl(tmp_path / "out", [path], root=data.root) == 0
    reasons = _reasons(tmp_path / "out")
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert "not UTF-8" in reasons[2] and "27 options" in reasons[3] and "lone surrogate" in reasons[4]
    assert "NUL byte" in reasons[5] and "boolean" in reasons[6] and "solution must be a string" in reasons[7]
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert [e["source"] for e in df["extra_info"]] == [f"{path}:1", f"{path}:8"]


def test_bad_sft_rows_are_rejects(tmp_path, data):
    video = data.videos[0].path
    non_string_source = {**sft_row(video, []), "data_source": 7}
    mp4_as_image = sft_row(video, [])
    mp4_as_image["messages"][1]["content"] += "<image>"
    mp4_as_image["images"] = [video]
    path = write_jsonl(tmp_path / "s.jsonl", [sft_row(video, []), non_string_source, mp4_as_image])
    assert _sft(tmp_path / "out", [path], root=data.root) == 0
    reasons = _reasons(tmp_path / "out")
    assert sorted(reasons) == [2, 3]
    assert "data_source must be a string" in reasons[2] and "not an image file" in reasons[3]
    assert len(pd.read_parquet(tmp_path / "out" / "train.parquet")) == 1


# --------------------------------------------------------------------------- argument errors come first


@pytest.mark.parametrize("case", ["val_fraction", "unwritable", "collision"])
def test_argument_errors_are_caught_before_any_probe(tmp_path, data, monkeypatch, case):
    monkeypatch.setattr(common, "_probe_one", lambda *a, **k: pytest.fail("probed before checking the arguments"))
    path = write_jsonl(tmp_path / "in" / "rl.jsonl", [reference_rl_row(data.videos[0].path)])
    out, extra = tmp_path / "out", []
    if case == "val_fraction":
        extra = ["--val-fraction", "1.5"]
    elif case == "unwritable":
        out.mkdir()
        out.chmod(stat.S_IRUSR | stat.S_IXUSR)
        if os.access(out, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: permissions are not enforced")
    else:
        path = path.rename(tmp_path / "in" / "rejects.jsonl")  # the run would overwrite its own input
        out = path.parent
    assert _rl(out, [path], *extra, root=data.root) == 2
    if case == "collision":
        assert json.loads(path.read_text())["data_type"] == "qa"  # the input is untouched


def test_an_unwritable_output_folder_is_an_argument_error(tmp_path, data, monkeypatch):
    """As root permissions are not enforced: an output path below a file is unwritable for anyone."""
    monkeypatch.setattr(common, "_probe_one", lambda *a, **k: pytest.fail("probed before checking the arguments"))
    path = write_jsonl(tmp_path / "rl.jsonl", [reference_rl_row(data.videos[0].path)])
    (tmp_path / "file").write_text("x")
    assert _rl(tmp_path / "file" / "out", [path], root=data.root) == 2


# --------------------------------------------------------------------------- probe cache


def test_a_failed_probe_is_retried_and_never_cached(tmp_path, data, monkeypatch):
    video = str(data.root / data.videos[0].path)
    real = common._probe_once
    calls: list[str] = []

    def flaky(path, kind):
        calls.append(path)
        if len(calls) == 1:
            return common.MediaInfo(path, kind, error="video not decodable: Unable to handle EOF")
        return real(path, kind)

    monkeypatch.setattr(common, "_probe_once", flaky)
    monkeypatch.setattr(common.time, "sleep", lambda s: None)
    path = write_jsonl(tmp_path / "rl.jsonl", [reference_rl_row(video)])
    assert _rl(tmp_path / "out", [path]) == 0
    assert calls == [video, video] and read_rejects(tmp_path / "out") == []

    always = lambda path, kind: common.MediaInfo(path, kind, error="video not decodable: permission denied")  # noqa: E731
    monkeypatch.setattr(common, "_probe_once", always)
    cache_file = tmp_path / "cache.json"
    assert _rl(tmp_path / "out2", [path], "--probe-cache", str(cache_file)) == 0
    assert len(read_rejects(tmp_path / "out2")) == 1
    assert not cache_file.exists() or json.loads(cache_file.read_text())["entries"] == {}
    monkeypatch.setattr(common, "_probe_once", real)  # the file is readable again: no stale reject
    assert _rl(tmp_path / "out2", [path], "--probe-cache", str(cache_file)) == 0
    assert read_rejects(tmp_path / "out2") == []
    assert list(json.loads(cache_file.read_text())["entries"]) == [video]


def test_ctrl_c_keeps_the_probes_already_done(tmp_path, data, monkeypatch):
    videos = [str(data.root / v.path) for v in data.videos]
    real = common._probe_once

    def interrupt_on_second(path, kind):
        if path == videos[1]:
            raise KeyboardInterrupt
        return real(path, kind)

    monkeypatch.setattr(common, "_probe_once", interrupt_on_second)
    path = write_jsonl(tmp_path / "rl.jsonl", [reference_rl_row(v) for v in videos])
    assert _rl(tmp_path / "out", [path], "--workers", "1") == 130
    assert list(json.loads((tmp_path / "out" / "probe_cache.json").read_text())["entries"]) == [videos[0]]
    assert not (tmp_path / "out" / "train.parquet").exists()


# --------------------------------------------------------------------------- outputs are this run's only


def test_outputs_hold_this_run_only(tmp_path, data):
    out = tmp_path / "out"
    good = write_jsonl(
        tmp_path / "good.jsonl",
        [reference_rl_row(data.videos[i % 2].path, question=f"Q{i}?\nA. x\nB. y") for i in range(8)],
    )
    assert _rl(out, [good], "--val-fraction", "0.25", root=data.root) == 0
    assert (out / "val.parquet").exists()
    assert _rl(out, [good], root=data.root) == 0
    assert not (out / "val.parquet").exists()  # a run without --val-fraction leaves no old val file
    bad = write_jsonl(tmp_path / "bad.jsonl", [reference_rl_row("videos/missing.mp4")])
    assert _rl(out, [good, bad], "--strict", root=data.root) == 1
    assert not (out / "train.parquet").exists()  # no stale train file after a --strict failure
    assert len(read_rejects(out)) == 1


def test_outputs_are_readable_by_others_and_no_temp_files_survive(tmp_path, data):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".train.parquet.someone-else.tmp"  # not named by this project: kept
    dead = out / f".train.parquet.{_host()}-999999.0123abcd.tmp"  # left by a killed run: removed
    stale.write_text("x")
    dead.write_text("x")
    path = write_jsonl(tmp_path / "rl.jsonl", [reference_rl_row(data.videos[0].path)])
    old = os.umask(0o022)
    try:
        assert _rl(out, [path], root=data.root) == 0
    finally:
        os.umask(old)
    for name in ("train.parquet", "rejects.jsonl", "probe_cache.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644
    assert not dead.exists() and stale.exists()


def _host() -> str:
    from tools import files

    return files._HOST


# --------------------------------------------------------------------------- the release's row shapes


def test_grounding_rows_need_no_solution_and_small_overshoots_are_clamped(tmp_path, data, capsys):
    video = data.videos[0]
    duration = float(video.duration)
    grounding = reference_rl_row(video.path, data_type="grounding", timestamp=[(1.0, 3.0)])
    del grounding["solution"]
    qa_no_solution = reference_rl_row(video.path)
    del qa_no_solution["solution"]
    rows = [
        grounding,  # 1
        reference_rl_row(video.path, timestamp=[(1.0, duration + 0.9)]),  # 2 rounding: clamped
        reference_rl_row(video.path, timestamp=[(1.0, duration + 3.0)]),  # 3 rejected
        qa_no_solution,  # 4 rejected
    ]
    path = write_jsonl(tmp_path / "rl.jsonl", rows)
    assert _rl(tmp_path / "out", [path], root=data.root) == 0
    assert sorted(_reasons(tmp_path / "out")) == [3, 4]
    df = pd.read_parquet(tmp_path / "out" / "train.parquet")
    truths = [r["ground_truth"] for r in df["reward_model"]]
    assert truths[0]["data_type"] == "grounding" and truths[0]["timestamps"].tolist()[0].tolist() == [1.0, 3.0]
    assert truths[1]["timestamps"][0][1] == pytest.approx(round(duration, 3))
    err = capsys.readouterr().err
    assert "1 x fixed: evidence end past the video" in err
    assert "1 x rejected: missing field" in err and "1 x rejected: timestamps […] outside the video" in err


def test_rows_keep_their_own_system_prompt_unless_replaced(tmp_path, data):
    video = data.videos[0].path
    own = reference_rl_row(video)  # system "old prompt"
    none = reference_rl_row(video)
    none["messages"] = none["messages"][1:]
    doubled = reference_rl_row(video)
    doubled["messages"] = [{"role": "user", "content": "<video>" + SYSTEM_PROMPT + "\nWhich colour?\nA. red\nB. blue"}]
    path = write_jsonl(tmp_path / "rl.jsonl", [own, none, doubled])
    assert _rl(tmp_path / "out", [path], root=data.root) == 0
    prompts = list(pd.read_parquet(tmp_path / "out" / "train.parquet")["prompt"])
    assert [p[0]["content"] for p in prompts] == ["old prompt", SYSTEM_PROMPT, SYSTEM_PROMPT]
    assert all(SYSTEM_PROMPT not in p[1]["content"] for p in prompts)  # the instructions appear once
    assert _rl(tmp_path / "out2", [path], "--replace-system-prompt", root=data.root) == 0
    prompts = list(pd.read_parquet(tmp_path / "out2" / "train.parquet")["prompt"])
    assert [p[0]["content"] for p in prompts] == [SYSTEM_PROMPT] * 3

    row = sft_row(video, [])
    row["messages"][0]["content"] = "custom system"
    path = write_jsonl(tmp_path / "s.jsonl", [row])
    assert _sft(tmp_path / "sft", [path], root=data.root) == 0
    assert pd.read_parquet(tmp_path / "sft" / "train.parquet").iloc[0]["messages"][0]["content"] == "custom system"
    assert _sft(tmp_path / "sft2", [path], "--replace-system-prompt", root=data.root) == 0
    assert pd.read_parquet(tmp_path / "sft2" / "train.parquet").iloc[0]["messages"][0]["content"] == SYSTEM_PROMPT
