"""Benchmark loaders on the fixture layouts: prompts, ground truth, breakdown fields, clear errors."""

from __future__ import annotations

import json

import pytest
from eval_helpers import build_fixtures

from eval.run import select
from eval.tasks import BenchmarkError, all_tasks, benchmark_dir, load_benchmark
from eval.tasks.lvbench import rewrite_options
from eval.tasks.videotemp import split_inline_options


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_fixtures")
    build_fixtures(root)
    return root


def test_every_benchmark_loads(data):
    counts = {name: len(load_benchmark(name, benchmark_dir(name, data))) for name in all_tasks()}
    assert counts == {
        "videotemp": 3,
        "videotemp_g": 3,
        "videomme": 3,
        "mlvu": 3,
        "videommmu": 3,
        "lvbench": 2,
        "charades_sta": 2,
        "activitynet_mr": 2,
        "nextgqa": 2,
        "rextime": 2,
    }


def test_prompts_and_ground_truth(data):
    vt = load_benchmark("videotemp", benchmark_dir("videotemp", data))
    assert vt[0].question.endswith("D. yellow") and vt[0].answer == "A" and vt[0].fields == {"bucket": "<3min"}
    assert vt[2].span == (2.0, 5.0)  # nested [[s, e]] read
    g = load_benchmark("videotemp_g", benchmark_dir("videotemp_g", data))[1]
    assert "# Question: What colour is the square that appears?\n# Answer: blue\n" in g.question and g.span == (
        4.0,
        7.0,
    )
    mme = load_benchmark("videomme", benchmark_dir("videomme", data))
    assert mme[0].question == "What colour is the square?\nA. red\nB. blue\nC. green\nD. yellow"
    assert mme[2].fields == {
        "duration": "long",
        "domain": "Sports",
        "sub_category": "Timing",
        "task_type": "Temporal Perception",
    }
    ml = load_benchmark("mlvu", benchmark_dir("mlvu", data))
    assert (
        ml[0].answer == "B"
        and ml[0].question.startswith("Select the best answer")
        and "\nA. blue\nB. red" in ml[0].question
    )
    mm = load_benchmark("videommmu", benchmark_dir("videommmu", data))
    assert [s.fields["track"] for s in mm] == ["Perception", "Comprehension", "Adaptation"]  # open questions dropped
    assert mm[2].image and mm[2].image.endswith(".png") and mm[0].image is None
    lv = load_benchmark("lvbench", benchmark_dir("lvbench", data))
    # the reference's literal "(A) " -> "A." (issue 11: no space after the dot)
    assert "\nA.red\nB.blue\nC.green\nD.yellow" in lv[0].question and lv[1].fields["question_type"] == [
        "temporal grounding",
        "key information retrieval",
    ]
    ch = load_benchmark("charades_sta", benchmark_dir("charades_sta", data))
    assert ch[0].question.endswith("# Sentence: a red square appears") and ch[0].kind == "grounding"
    qa = load_benchmark("rextime", benchmark_dir("rextime", data))
    assert (
        [s.answer for s in qa] == ["A", "B"] and qa[1].spans == [(0.0, 1.0), (4.0, 7.0)] and qa[0].spans == [(2.0, 5.0)]
    )


def test_inline_options_and_lvbench_rewrite():
    assert split_inline_options("Q? A. x y B. z. C. Mr. K") == ("Q?", {"A": "x y", "B": "z.", "C": "Mr. K"})
    # the reference's replacement, exactly: "(A) " -> "A." for A-D only; "(E) " and "(A)x" stay
    assert rewrite_options("Q\n(A) red\n(B) blue\n(E) pink (C)x") == "Q\nA.red\nB.blue\n(E) pink (C)x"


def test_errors_name_file_and_field(data, tmp_path):
    with pytest.raises(BenchmarkError, match="data.jsonl does not exist"):
        load_benchmark("videotemp", tmp_path)
    (tmp_path / "data.jsonl").write_text(json.dumps({"videos": ["x.mp4"], "question": "q"}) + "\n")
    with pytest.raises(BenchmarkError, match=r"data.jsonl:1: missing field 'duration'"):
        load_benchmark("videotemp", tmp_path, check_videos=False)
    with pytest.raises(BenchmarkError, match="missing video"):
        (tmp_path / "annotations.jsonl").write_text(
            json.dumps({"video": "nope.mp4", "query": "q", "span": [1, 2]}) + "\n"
        )
        load_benchmark("charades_sta", tmp_path)
    with pytest.raises(BenchmarkError, match="unknown benchmark"):
        load_benchmark("nope", tmp_path)


def test_shard_and_limit_selection(data):
    samples = load_benchmark("videomme", benchmark_dir("videomme", data))
    assert [s.id for s in select(samples, (1, 2), None)] == ["002-1"]
    assert [s.id for s in select(samples, (0, 2), 1)] == ["001-1"]


def test_every_task_module_declares_its_facts(data):
    from eval.tasks import get_task, task_names

    assert task_names() == [
        "videotemp",
        "videotemp_g",
        "videomme",
        "mlvu",
        "videommmu",
        "lvbench",
        "charades_sta",
        "activitynet_mr",
        "nextgqa",
        "rextime",
    ]  # run_all.sh's default order
    assert get_task("videotemp-g").name == "videotemp_g"  # the reference's name
    for name in task_names():
        task = get_task(name)
        assert task.hub, name  # download facts as data
        assert (data / task.directory).is_dir(), name  # its fixture wrote its layout
    assert get_task("mlvu").prompts and get_task("charades_sta").prompts == get_task("activitynet_mr").prompts


def test_several_evidence_spans_and_repeated_ids(tmp_path):
    from eval.tasks.base import as_spans

    assert as_spans([[1, 2], [3, 4.5]], "x") == [(1.0, 2.0), (3.0, 4.5)] and as_spans([1, 2], "x") == [(1.0, 2.0)]
    with pytest.raises(BenchmarkError, match="pair of seconds"):
        as_spans([[True, 3]], "x")  # a boolean is not a number
    rows = [
        {"id": "q1", "video": "v.mp4", "question": "q", "options": ["a", "b"], "answer": 0, "span": [[1, 2], [5, 9]]},
        {"id": "q1", "video": "v.mp4", "question": "q", "options": ["a", "b"], "answer": 1, "span": [1, 2]},
    ]
    (tmp_path / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BenchmarkError, match="repeated: 'q1'"):
        load_benchmark("nextgqa", tmp_path, check_videos=False)
