"""End to end on CPU: fixture benchmarks -> agent loop (scripted and transformers engines) -> predictions -> scores -> report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from eval_helpers import (
    PYTHON,
    REPO,
    SMALL_RUN_ARGS,
    answer_turn,
    build_fixtures,
    build_model,
    env,
    read_jsonl,
    tool_turn,
    underscored,
    write_script,
)

SCRIPT = {
    "vt0": [tool_turn(1, 4), answer_turn("A")],
    "vt1": [answer_turn("C")],
    "nextgqa0": [tool_turn(2, 4), answer_turn("A")],
    "nextgqa1": [answer_turn("B [4, 7]")],
    "001-1": [answer_turn("A")],
    "002-1": [tool_turn(0, 8), answer_turn("The best answer is B")],
    "*": [answer_turn("A")],
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_e2e")
    build_fixtures(root / "data")
    model = build_model(root)
    script = write_script(root / "script.json", SCRIPT)
    return {"root": root, "data": root / "data", "model": model, "script": script}


def scripted_args(ws, benchmark: str, out: Path, *extra: str) -> list[str]:
    return [
        "eval/run.py",
        benchmark,
        "--data_root",
        str(ws["data"]),
        "--model",
        str(ws["model"]),
        "--engine",
        "scripted",
        "--script",
        str(ws["script"]),
        "--output_dir",
        str(out),
        *SMALL_RUN_ARGS,
        *extra,
    ]


async def run_inproc(ws, benchmark: str, out: Path, *extra: str) -> dict[str, str]:
    """eval/run.py in this process (saves the interpreter start-up of a subprocess); {benchmark: "ok" or why not}."""
    from eval.run import build_parser, run

    return await run(build_parser().parse_args(scripted_args(ws, benchmark, out, *extra)[1:]))


def test_run_all_scripted_scores_equal_hand_computed(workspace):
    out = workspace["root"] / "run_all"
    proc = subprocess.run(
        # run.py options after "--" in their underscore spelling: still accepted (the shard test below uses dashes)
        [
            "bash",
            "eval/run_all.sh",
            "nextgqa",
            "--",
            "--script",
            str(workspace["script"]),
            *underscored(SMALL_RUN_ARGS),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={
            **env(),
            "MODEL": str(workspace["model"]),
            "DATA_ROOT": str(workspace["data"]),
            "OUT_DIR": str(out),
            "ENGINE": "scripted",
            "PYTHON": PYTHON,
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    gqa = json.loads((out / "nextgqa.metrics.json").read_text())
    # nextgqa0: A correct, evidence = tool range [2, 4] vs [2, 5] -> 2/3; nextgqa1: B correct, span [4, 7] exact -> 1
    assert gqa["nextgqa/acc"] == 100.0
    assert gqa["nextgqa/grounding/miou"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert gqa["nextgqa/grounding/r@0.7"] == 50.0
    assert "| nextgqa/acc | 100 |" in proc.stdout and "settings: " in proc.stdout


async def test_scripted_videotemp_records_and_scores(workspace):
    from eval.score import score_file

    out = workspace["root"] / "videotemp"
    await run_inproc(workspace, "videotemp", out)
    vt, _, _ = score_file("videotemp", out / "videotemp.jsonl")
    # vt0: tool call then A (correct), vt1: C (wrong), vt2: A (correct)
    assert vt["videotemp/acc/overall"] == pytest.approx(200 / 3)
    assert vt["videotemp/tool/call_rate"] == pytest.approx(100 / 3)
    assert vt["videotemp/tool/iou_mean"] == pytest.approx(50.0)  # [1, 4] vs [2, 5]
    records = read_jsonl(out / "videotemp.jsonl")
    assert [r["id"] for r in records] == ["vt0", "vt1", "vt2"]
    assert (
        records[0]["tool_calls"] == [[[1.0, 4.0]]]
        and records[0]["n_clips"] == 1
        and records[0]["turns"] == SCRIPT["vt0"]
    )
    assert (
        records[0]["answer"] == "A"
        and records[0]["span"] == [2.0, 5.0]
        and "Tool execution successful" in records[0]["trajectory"]
    )
    settings = json.loads((out / "videotemp.settings.json").read_text())
    assert settings["engine"] == "scripted" and settings["max_frames"] == 16 and settings["temperature"] == 0.1
    assert settings["max_turns"] == 3 and len(settings["prompt_version"]) == 12 and settings["git_commit"]


async def test_resume_after_partial_last_line_equals_uninterrupted(workspace):
    from eval.score import score_file

    full = workspace["root"] / "full"
    await run_inproc(workspace, "videomme", full)
    reference = (full / "videomme.jsonl").read_bytes()
    assert len(read_jsonl(full / "videomme.jsonl")) == 3
    resumed = workspace["root"] / "resumed"
    resumed.mkdir()
    lines = reference.splitlines(keepends=True)
    (resumed / "videomme.jsonl").write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # killed while writing line 2
    shutil.copy(full / "videomme.settings.json", resumed / "videomme.settings.json")
    await run_inproc(workspace, "videomme", resumed)
    assert (resumed / "videomme.jsonl").read_bytes() == reference
    metrics, _, fmt = score_file("videomme", resumed / "videomme.jsonl")
    # 001-1: A correct; 002-1: "The best answer is B" unparsable for the reference (skipped), B for lmms-eval; 002-2: A vs B wrong
    assert fmt == "ours" and metrics["videomme/ref/overall"] == 50.0 and metrics["videomme/ref/unparsed"] == 1
    assert metrics["videomme/lmms/overall"] == pytest.approx(200 / 3)

    # a different setting is refused (the benchmark is reported and skipped), --force appends anyway (nothing left to do here)
    status = await run_inproc(workspace, "videomme", resumed, "--temperature", "0.7")
    assert "temperature: 0.1 -> 0.7" in status["videomme"]
    await run_inproc(workspace, "videomme", resumed, "--temperature", "0.7", "--force")
    assert (resumed / "videomme.jsonl").read_bytes() == reference
    # the settings file says the predictions mix settings: the new ones, and the ones --force appended over
    settings = json.loads((resumed / "videomme.settings.json").read_text())
    assert settings["temperature"] == 0.7
    assert [s["temperature"] for s in settings["earlier_settings"]] == [0.1]
    await run_inproc(workspace, "videomme", resumed, "--temperature", "0.7")  # a later resume keeps that record
    settings = json.loads((resumed / "videomme.settings.json").read_text())
    assert [s["temperature"] for s in settings["earlier_settings"]] == [0.1]


async def test_kill9_mid_run_then_resume_equals_uninterrupted(workspace):
    full = workspace["root"] / "full_mlvu"
    await run_inproc(workspace, "mlvu", full)
    killed = workspace["root"] / "killed_mlvu"
    target = killed / "mlvu.jsonl"
    proc = subprocess.Popen(
        [PYTHON, *scripted_args(workspace, "mlvu", killed)],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (target.exists() and target.stat().st_size > 0):
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    await run_inproc(workspace, "mlvu", killed)
    assert target.read_bytes() == (full / "mlvu.jsonl").read_bytes()


async def test_shard_and_limit(workspace):
    out = workspace["root"] / "shards"
    await run_inproc(workspace, "charades_sta", out, "--shard", "1/2")
    assert [r["id"] for r in read_jsonl(out / "charades_sta.shard-1-of-2.jsonl")] == ["charades_sta1"]
    await run_inproc(workspace, "rextime", out, "--limit", "1")
    assert [r["id"] for r in read_jsonl(out / "rextime.jsonl")] == ["rextime0"]


async def test_transformers_engine_runs_tiny_model(workspace):
    from eval.run import build_parser, run
    from eval.score import score_file

    out = workspace["root"] / "hf"
    args = [
        "activitynet_mr",
        "--data_root",
        str(workspace["data"]),
        "--model",
        str(workspace["model"]),
        "--engine",
        "transformers",
        "--output_dir",
        str(out),
        "--limit",
        "1",
        *SMALL_RUN_ARGS,
        "--max_new_tokens",
        "8",
    ]
    await run(build_parser().parse_args(args))
    (record,) = read_jsonl(out / "activitynet_mr.jsonl")
    assert record["id"] == "activitynet_mr0" and len(record["turns"]) >= 1 and record["prompt_tokens"] > 0
    assert record["generated_tokens"] >= 1 and record["termination"]
    assert json.loads((out / "activitynet_mr.settings.json").read_text())["engine"] == "transformers"
    metrics, _, _ = score_file("activitynet_mr", out / "activitynet_mr.jsonl")
    assert metrics["activitynet_mr/all/n"] == 1 and 0.0 <= metrics["activitynet_mr/all/miou"] <= 100.0


async def test_html_report_places_intervals(workspace):
    from eval.view import main as view_main
    from eval.view import render_report

    out = workspace["root"] / "view"
    await run_inproc(workspace, "nextgqa", out)
    records = read_jsonl(out / "nextgqa.jsonl")
    page = render_report(records, "nextgqa", thumbs=2)
    for r in records:
        assert f'id="sample-{r["id"]}"' in page
    # 8 s videos: evidence [2, 5] -> left 25 %, width 37.5 %; tool range [2, 4] -> width 25 %; nextgqa1's answer span [4, 7]
    assert 'class="bar gt" data-start="2" data-end="5" style="left:25.00%;width:37.50%"' in page
    assert 'class="bar tool" data-start="2" data-end="4" style="left:25.00%;width:25.00%"' in page
    assert 'class="bar pred" data-start="4" data-end="7" style="left:50.00%;width:37.50%"' in page
    assert page.count("data:image/jpeg;base64,") == 2  # thumbnails of the one tool range
    html_file = out / "report.html"
    assert view_main([str(out / "nextgqa.jsonl"), "-o", str(html_file)]) == 0
    assert html_file.read_text().count('class="sample"') == 2


async def test_videommmu_adaptation_image_in_prompt_by_default(workspace):
    from eval.score import score_file

    with_image, without = workspace["root"] / "mmmu_image", workspace["root"] / "mmmu_no_image"
    await run_inproc(workspace, "videommmu", with_image)
    await run_inproc(workspace, "videommmu", without, "--no_image")
    records = {r["id"]: r for r in read_jsonl(with_image / "videommmu.jsonl")}
    plain = {r["id"]: r for r in read_jsonl(without / "videommmu.jsonl")}
    assert (
        sorted(records)
        == sorted(plain)
        == ["Adaptation/adaptation_a", "Comprehension/comprehension_b", "Perception/perception_a"]
    )
    # The 32x32 fixture image becomes 56x56 (qwen-vl-utils' 4-patch minimum): 4 image pads + vision start/end, and it
    # replaces the "<image 1>" marker of the question (issue 11: the reference splits the text there).
    from transformers import AutoTokenizer

    from eval.engines import EvalSettings, sample_row
    from eval.tasks import benchmark_dir, load_benchmark

    sample = next(s for s in load_benchmark("videommmu", benchmark_dir("videommmu", workspace["data"])) if s.image)
    content = sample_row(sample, 0, EvalSettings())["raw_prompt"][1]["content"]
    assert [b["type"] for b in content] == ["video", "text", "image", "text"]
    assert content[1]["text"] == "Look at " and content[3]["text"].startswith(" and the video. What colour")
    n = lambda text: len(AutoTokenizer.from_pretrained(workspace["model"])(text)["input_ids"])  # noqa: E731
    before, after = content[1]["text"], content[3]["text"]
    adaptation = "Adaptation/adaptation_a"
    assert records[adaptation]["prompt_tokens"] - plain[adaptation]["prompt_tokens"] == (
        4 + 2 + n(before) + n(after) - n(before + "<image 1>" + after)
    )
    assert records[adaptation]["termination"] == "answer" and records[adaptation]["image"]
    for sample_id in ("Comprehension/comprehension_b", "Perception/perception_a"):
        assert records[sample_id]["prompt_tokens"] == plain[sample_id]["prompt_tokens"]
    assert json.loads((with_image / "videommmu.settings.json").read_text())["with_image"] is True
    assert json.loads((without / "videommmu.settings.json").read_text())["with_image"] is False
    metrics, _, _ = score_file("videommmu", with_image / "videommmu.jsonl")
    assert metrics["videommmu/acc/Adaptation"] == 100.0  # scripted "A", fixture answer A


async def test_several_benchmarks_one_engine_missing_one_skipped(workspace, tmp_path):
    from eval.run import build_parser, run

    data = tmp_path / "data"
    shutil.copytree(workspace["data"], data, symlinks=True)
    shutil.rmtree(data / "lvbench")  # its data is missing
    out = tmp_path / "out"
    args = scripted_args(workspace, "mlvu", out)[1:]
    args[args.index("--data_root") + 1] = str(data)
    args[0:1] = ["mlvu", "lvbench", "videotemp-g"]
    status = await run(build_parser().parse_args(args))
    assert status["mlvu"] == "ok" and status["videotemp_g"] == "ok" and "LVBench metadata file" in status["lvbench"]
    assert len(read_jsonl(out / "mlvu.jsonl")) == 3 and len(read_jsonl(out / "videotemp_g.jsonl")) == 3
    settings = out / "mlvu.settings.json"
    assert settings.stat().st_mode & 0o644 == 0o644  # group/world-readable
    s = json.loads(settings.read_text())
    assert (s["min_pixels"], s["n_selected"], s["seed"]) == (3136, 3, 0) and s["prompt_version"]
    assert not [p for p in out.iterdir() if ".partial-" in p.name or p.name.startswith(".")]  # no temp files left


async def test_corrupt_video_is_a_failed_sample_and_resume_goes_on(workspace, tmp_path):
    from eval.score import score_file

    data = tmp_path / "data"
    shutil.copytree(workspace["data"] / "charades_sta", data / "charades_sta")
    bad = data / "charades_sta" / "videos" / "b.mp4"
    bad.unlink()
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))  # exists, but is no video
    out = tmp_path / "out"
    args = scripted_args(workspace, "charades_sta", out)
    args[args.index("--data_root") + 1] = str(data)
    from eval.run import build_parser, run

    status = await run(build_parser().parse_args(args[1:]))
    assert status == {"charades_sta": "ok"}
    records = {r["id"]: r for r in read_jsonl(out / "charades_sta.jsonl")}
    assert records["charades_sta1"]["failed"] is True and "cannot be read" in records["charades_sta1"]["error"]
    assert records["charades_sta1"]["termination"] == "failed" and not records["charades_sta0"].get("failed")
    assert (await run(build_parser().parse_args(args[1:]))) == {"charades_sta": "ok"}  # resume: nothing re-run, no stop
    assert len(read_jsonl(out / "charades_sta.jsonl")) == 2
    metrics, notes, _ = score_file("charades_sta", out / "charades_sta.jsonl")
    assert (
        metrics["charades_sta/all/n"] == 2 and metrics["charades_sta/failed"] == 1 and any("failed" in n for n in notes)
    )


async def test_locked_output_and_repeated_ids_are_refused(workspace, tmp_path):
    from eval.predictions import PredictionWriter

    out = tmp_path / "out"
    out.mkdir()
    with PredictionWriter(out / "rextime.jsonl"):  # another run holds the file
        status = await run_inproc(workspace, "rextime", out)
    assert "being written by another eval run" in status["rextime"]
    line = json.dumps({"id": "rextime0", "benchmark": "rextime", "turns": []}) + "\n"
    (out / "rextime.jsonl").write_text(line + line)
    status = await run_inproc(workspace, "rextime", out)
    assert "rextime.jsonl:2: sample id 'rextime0' already written at line 1" in status["rextime"]


async def test_transformers_kill_and_resume_equals_uninterrupted(workspace, tmp_path):
    """Seeds come from (seed, sample id, turn): running sample 1 alone after sample 0 gives the same text."""
    from eval.run import build_parser, run

    def args(out, *extra):
        return [
            "charades_sta",
            "--data_root",
            str(workspace["data"]),
            "--model",
            str(workspace["model"]),
            "--engine",
            "transformers",
            "--output_dir",
            str(out),
            *SMALL_RUN_ARGS,
            "--max_new_tokens",
            "12",
            "--temperature",
            "1.0",
            *extra,
        ]

    await run(build_parser().parse_args(args(tmp_path / "full")))
    await run(build_parser().parse_args(args(tmp_path / "resumed", "--limit", "1")))  # "killed" after one sample
    await run(build_parser().parse_args(args(tmp_path / "resumed")))
    full = read_jsonl(tmp_path / "full" / "charades_sta.jsonl")
    resumed = read_jsonl(tmp_path / "resumed" / "charades_sta.jsonl")
    assert [r["turns"] for r in resumed] == [r["turns"] for r in full]
    # and the seed matters: another run seed gives other samples at temperature 1
    await run(build_parser().parse_args(args(tmp_path / "seed1", "--seed", "1")))
    assert [r["turns"] for r in read_jsonl(tmp_path / "seed1" / "charades_sta.jsonl")] != [r["turns"] for r in full]


def test_run_all_shards_merge_and_score(workspace, tmp_path):
    out = tmp_path / "out"
    base = {
        **env(),
        "MODEL": str(workspace["model"]),
        "DATA_ROOT": str(workspace["data"]),
        "OUT_DIR": str(out),
        "ENGINE": "scripted",
        "PYTHON": PYTHON,
    }
    for shard in ("0/2", "1/2"):
        proc = subprocess.run(
            [
                "bash",
                "eval/run_all.sh",
                "nextgqa",
                "--",
                "--script",
                str(workspace["script"]),
                *SMALL_RUN_ARGS,
                "--shard",
                shard,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=base,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "nextgqa.shard-0-of-2.metrics.json").exists()
    merged = json.loads((out / "nextgqa.metrics.json").read_text())
    assert merged["nextgqa/n"] == 2 and merged["nextgqa/acc"] == 100.0  # the same figures as the unsharded run
    assert merged["nextgqa/grounding/miou"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert json.loads((out / "nextgqa.settings.json").read_text())["merged_from"] == [
        "nextgqa.shard-0-of-2.jsonl",
        "nextgqa.shard-1-of-2.jsonl",
    ]


def test_merge_refuses_shards_with_other_settings(tmp_path):
    from eval.predictions import CorruptPredictions, merge_shards, predictions_path, settings_path, write_json_atomic

    for i, temp in ((0, 0.1), (1, 0.7)):
        path = predictions_path(tmp_path, "mlvu", (i, 2))
        path.write_text(json.dumps({"id": f"s{i}", "benchmark": "mlvu", "turns": []}) + "\n")
        write_json_atomic(
            settings_path(path), {"benchmark": "mlvu", "temperature": temp, "shard": f"{i}/2", "n_selected": 1}
        )
    with pytest.raises(CorruptPredictions, match="differs from mlvu.shard-0-of-2.jsonl in temperature"):
        merge_shards(tmp_path, "mlvu")


def test_cli_errors_are_one_line(workspace, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mlvu.jsonl").write_text('{"id": "ml0"}\n{broken\n{"id": "ml1"}\n')
    proc = subprocess.run(
        [PYTHON, *scripted_args(workspace, "mlvu", out)], cwd=REPO, env=env(), capture_output=True, text=True
    )
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert f"{out / 'mlvu.jsonl'}:2: not valid JSON and not the last line" in proc.stderr
    view = subprocess.run(
        [PYTHON, "eval/view.py", str(out / "mlvu.jsonl"), "-o", str(tmp_path / "r.html")],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert (
        view.returncode == 2
        and "Traceback" not in view.stderr
        and view.stderr.count("\n") == 1
        and ":2: not valid JSON" in view.stderr
    )
