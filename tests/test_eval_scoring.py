"""Answer extraction rules and every metric breakdown of eval/scoring, plus the reference file formats."""

from __future__ import annotations

import json

import pytest

from eval.score import score_file
from eval.scoring import extract
from eval.scoring.common import tool_stats
from eval.scoring.formats import PredictionFileError, load_predictions
from eval.scoring.records import Prediction
from eval.tasks.annotations import score_grounded_qa, score_grounding
from eval.tasks.lvbench import score_lvbench
from eval.tasks.mlvu import score_mlvu
from eval.tasks.videomme import score_videomme
from eval.tasks.videommmu import score_videommmu
from eval.tasks.videotemp import score_videotemp, score_videotemp_grounding


@pytest.mark.parametrize(
    "response, letter, parsed",
    [
        ("C", "C", True),
        ("C. red", "C", True),
        ("(C)", "A", False),
        ("", "A", False),
        ("c", "A", False),
        ("F", "A", False),
        ("<think>x</think>\n<answer>C", "A", False),
        ("Answer: C", "A", True),
    ],
)
def test_reference_mcq_rule(response, letter, parsed):
    assert extract.letter_or_default(response, "ABCDE") == (letter, parsed)


@pytest.mark.parametrize(
    "response, ref, lmms",
    [
        ("C", "C", "C"),
        ("B. blue", "B", "B"),
        ("The best answer is C", None, "C"),
        ("Answer:C", "C", "C"),
        ("(C)", None, "C"),
        ("", None, None),
        ("c", None, None),
        ("this is a long answer with many words and no option letter at all here", None, None),
        ("The answer is D", None, "D"),
    ],
)
def test_videomme_extraction(response, ref, lmms):
    assert extract.videomme_reference_letter(response) == ref
    assert extract.videomme_lmms_letter(response) == lmms


@pytest.mark.parametrize(
    "response, letter",
    [
        ("(C)", "C"),
        ("The best answer is C", "C"),
        ("<think>A or B?</think><answer>C</answer>", "C"),
        ("c", None),
        ("", None),
    ],
)
def test_lenient_letter(response, letter):
    assert extract.lenient_letter(response, "ABCD") == letter


def test_reference_response_takes_first_answer_of_last_turn():
    assert (
        extract.reference_response(
            ["<think>a</think><tool_call>{}</tool_call>", "<think>b</think><answer> B </answer><answer>C</answer>"]
        )
        == "B"
    )
    assert extract.reference_response(["<think>b</think>\n<answer>C"]) == "<think>b</think>\n<answer>C"
    assert extract.reference_response([]) == ""


@pytest.mark.parametrize(
    "response, span",
    [
        ("The event happens in the 24.30 - 30.42 seconds.", (24.3, 30.42)),
        ("[30, 20]", (30.0, 20.0)),  # kept in order (issue 12 item 9): a reversed pair scores IoU 0
        ("<think>around 3 s</think> 10 - 12", (3.0, 10.0)),  # think text included
        ("at 5 seconds", None),
    ],
)
def test_reference_grounding_numbers(response, span):
    assert extract.reference_grounding_span(response) == span


def test_first_answer_span_keeps_inverted_span():
    assert extract.first_answer_span("The event happens in the 24.30 - 30.42 seconds") == (24.3, 30.42)
    assert extract.first_answer_span("[30, 20]") == (30.0, 20.0)
    assert extract.first_answer_span("1 2 3") is None


def P(i, response, **kw):
    return Prediction(id=str(i), response=response, **kw)


def test_videotemp_buckets_and_boundaries():
    preds = [
        P(0, "A", answer="A", duration=179.9),
        P(1, "B", answer="A", duration=180.0),
        P(2, "", answer="A", duration=600),
        P(3, "C", answer="C", duration=1200),
        P(4, "c", answer="A", duration=5000),
    ]
    m, notes = score_videotemp(preds)
    assert m["acc/<3min"] == 100.0 and m["acc/3-10min"] == 0.0 and m["acc/10-20min"] == 100.0  # "" -> "A"
    assert m["acc/>20min"] == 100.0  # "c" -> default "A" == "A"
    assert m["acc/overall"] == pytest.approx(80.0)
    assert notes == []
    m, notes = score_videotemp([P(0, "A", answer="A", duration=10)])
    assert "acc/>20min" not in m and m["acc/>20min/n"] == 0 and any(">20min" in n for n in notes)


def test_videotemp_grounding_metrics():
    preds = [
        P(0, "2 - 5", span=(2.0, 5.0), duration=100),
        P(1, "0 - 2", span=(0.0, 4.0), duration=100),
        P(2, "no numbers", span=(0.0, 4.0), duration=700),
    ]
    m, _ = score_videotemp_grounding(preds)
    assert m["overall/miou"] == pytest.approx(100 * (1 + 0.5 + 0) / 3)
    assert m["overall/r@0.5"] == pytest.approx(100 / 3)  # strict: IoU 0.5 is not > 0.5
    assert m["overall/r@0.3"] == pytest.approx(200 / 3)
    assert m["<3min/avg"] == pytest.approx((75 + 100 + 50 + 50) / 4)
    assert m["parse_errors"] == 1


def test_videomme_breakdowns_skip_and_count_wrong():
    f = lambda d, dom, sub, task: {"duration": d, "domain": dom, "sub_category": sub, "task_type": task}
    preds = [
        P(0, "A", answer="A", fields=f("short", "K", "s1", "t1")),
        P(1, "The best answer is B", answer="B", fields=f("medium", "K", "s1", "t2")),
        P(2, "C", answer="D", fields=f("long", "S", "s2", "t1")),
        P(3, "D", answer="D", fields=f("long", "S", "s2", "t1")),
    ]
    m, _ = score_videomme(preds)
    assert m["ref/unparsed"] == 1 and m["ref/overall"] == pytest.approx(200 / 3)  # skipped
    assert m["lmms/overall"] == 75.0  # the phrase answer parses in lmms-eval style
    assert m["ref/duration/short"] == 100.0 and "ref/duration/medium" not in m and m["ref/duration/long"] == 50.0
    assert (
        m["ref/domain/K"] == 100.0
        and m["ref/sub_category/s2"] == 50.0
        and m["ref/task_type/t1"] == pytest.approx(200 / 3)
    )
    m, notes = score_videomme([P(0, "A", answer="A", fields=f("weird", "K", "s", "t"))])
    assert m["ref/overall"] == 100.0 and any("weird" in n for n in notes)


def test_mlvu_overall_and_m_avg():
    preds = [
        P(0, "B", answer="B", fields={"task": "plot"}),
        P(1, "b", answer="B", fields={"task": "plot"}),
        P(2, "", answer="A", fields={"task": "count"}),
        P(3, "A", answer=None, fields={"task": "count"}),
        P(4, "C", answer="C", fields={"task": "count"}),
    ]
    m, _ = score_mlvu(preds)
    assert m["acc/overall"] == 40.0
    assert m["m_avg"] == pytest.approx((50.0 + 100 / 3) / 2)


def test_videommmu_tracks_and_average():
    preds = [
        P(0, "N", answer="N", fields={"track": "Perception"}),
        P(1, "x", answer="A", fields={"track": "Comprehension"}),
        P(2, "B", answer="C", fields={"track": "Adaptation"}),
        P(3, "C", answer="C", fields={"track": "Adaptation"}),
    ]
    m, _ = score_videommmu(preds)
    assert (m["acc/Perception"], m["acc/Comprehension"], m["acc/Adaptation"]) == (100.0, 100.0, 50.0)
    assert m["avg"] == pytest.approx(250 / 3)


def test_lvbench_multilabel_types():
    preds = [
        P(0, "A", answer="A", fields={"question_type": ["t1", "t2"]}),
        P(1, "(B)", answer="B", fields={"question_type": ["t2"]}),
    ]
    m, _ = score_lvbench(preds)
    assert m["acc/overall"] == 50.0 and m["acc/type/t1"] == 100.0 and m["acc/type/t2"] == 50.0
    m, notes = score_lvbench([])
    assert m["acc/overall/n"] == 0 and notes


def test_grounding_sets_and_grounded_qa():
    m, _ = score_grounding(
        [P(0, "2 - 5", span=(2.0, 5.0)), P(1, "[5, 2]", span=(2.0, 5.0)), P(2, "none", span=(2.0, 5.0))]
    )
    assert m["all/miou"] == pytest.approx(100 / 3) and m["all/r@0.7"] == pytest.approx(100 / 3)
    preds = [
        P(0, "A", answer="A", span=(2.0, 6.0), tool_calls=[[(0.0, 1.0)], [(2.0, 4.0), (7.0, 8.0)]]),
        P(1, "B [4, 7]", answer="A", span=(4.0, 7.0), tool_calls=[]),
        P(2, "C", answer="C", span=(0.0, 1.0), tool_calls=[]),
    ]
    m, _ = score_grounded_qa(preds)
    assert m["acc"] == pytest.approx(200 / 3)
    assert m["grounding/miou"] == pytest.approx(100 * (0.5 + 1 + 0) / 3)  # last call's first range; span in the answer


def test_tool_stats():
    preds = [
        P(0, "A", span=(2.0, 6.0), tool_calls=[[(0.0, 1.0)], [(2.0, 4.0), (3.0, 6.0)]]),
        P(1, "A", span=(0.0, 1.0), tool_calls=[]),
        P(2, "A", tool_calls=None),
    ]
    m = tool_stats(preds)
    assert m["tool/n"] == 2 and m["tool/call_rate"] == 50.0 and m["tool/calls_per_sample"] == 1.0
    assert m["tool/clips_per_call"] == 1.5 and m["tool/iou_n"] == 1 and m["tool/iou_mean"] == 75.0


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_reference_videotemp_files(tmp_path):
    calls = [
        '<think>x</think><tool_call>{"name": "get_video_clip_frame", "arguments": [{"start_time": 1, "end_time": 3}]}</tool_call>'
    ]
    f = _jsonl(
        tmp_path / "vt.jsonl",
        [
            {
                "videos": ["a.mp4"],
                "question": "q",
                "answer": "B",
                "duration": 100,
                "timestamp": [[1, 3]],
                "response": "B",
                "conv_history": calls + ["<answer>B</answer>"],
            },
            {
                "videos": ["a.mp4"],
                "question": "q",
                "answer": "C",
                "duration": 700,
                "timestamp": [2, 4],
                "response": "",
                "conv_history": [],
            },
        ],
    )
    metrics, _, fmt = score_file("videotemp", f)
    assert (
        fmt == "reference" and metrics["videotemp/acc/overall"] == 50.0 and metrics["videotemp/tool/call_rate"] == 50.0
    )
    metrics, _, _ = score_file("videotemp_g", f)  # nested timestamp handled; "B" has no numbers
    assert metrics["videotemp_g/overall/miou"] == 0.0 and metrics["videotemp_g/parse_errors"] == 2


def test_reference_videomme_array_and_flat(tmp_path):
    video = {
        "video_id": "001",
        "duration": "short",
        "domain": "K",
        "sub_category": "s",
        "questions": [
            {
                "question_id": "001-1",
                "task_type": "t",
                "question": "q",
                "options": [],
                "answer": "A",
                "response": "A",
                "conv_history": [],
            },
            {
                "question_id": "001-2",
                "task_type": "t",
                "question": "q",
                "options": [],
                "answer": "B",
                "response": "C",
                "conv_history": [],
            },
        ],
    }
    f = tmp_path / "mme.json"
    f.write_text(json.dumps([video]))
    assert score_file("videomme", f)[0]["videomme/ref/overall"] == 50.0
    flat = _jsonl(
        tmp_path / "mme.jsonl",
        [{**{k: v for k, v in video.items() if k != "questions"}, **q} for q in video["questions"]],
    )
    assert score_file("videomme", flat)[0]["videomme/ref/duration/short"] == 50.0


def test_reference_mlvu_videommmu_lvbench(tmp_path):
    f = _jsonl(
        tmp_path / "mlvu.jsonl",
        [
            {"question_type": "plot", "response": "B", "gt_answer": "B"},
            {"question_type": "count", "response": "A", "gt_answer": None},
        ],
    )
    m = score_file("mlvu", f)[0]
    assert m["mlvu/acc/overall"] == 50.0 and m["mlvu/m_avg"] == 50.0
    f = _jsonl(
        tmp_path / "mmmu.jsonl",
        [
            {"task": t, "gt_answer": "A", "response": r, "question": "q"}
            for t, r in (("Perception", "A"), ("Comprehension", ""), ("Adaptation", "B"))
        ],
    )
    m = score_file("videommmu", f)[0]
    assert m["videommmu/avg"] == pytest.approx(200 / 3)
    meta = _jsonl(
        tmp_path / "video_info.meta.jsonl",
        [
            {
                "key": "v",
                "qa": [
                    {"uid": 1, "question": "q", "answer": "A", "question_type": ["x"]},
                    {"uid": 2, "question": "q", "answer": "B", "question_type": ["x", "y"]},
                ],
            }
        ],
    )
    answers = tmp_path / "lv.json"
    answers.write_text(json.dumps({"1": "A"}))
    m = score_file("lvbench", answers, meta)[0]
    assert m["lvbench/n"] == 1 and m["lvbench/acc/overall"] == 100.0 and "lvbench/acc/type/y" not in m
    with pytest.raises(PredictionFileError, match="missing field 'gt_answer'"):
        load_predictions(_jsonl(tmp_path / "bad.jsonl", [{"task": "Perception", "response": "A"}]), "videommmu")


# ---------------------------------------------------------------- reference-format golden files (issue 12 items 8-11)
# Expected figures are computed by hand from the reference scorer's rules (eval/score.py of the release):
# response read as stored (no strip), first char in the option set else "A"; grounding numbers in order.


def test_golden_videotemp_response_read_as_stored(tmp_path):
    rows = [
        {"answer": "C", "duration": 100, "timestamp": [1, 3], "response": " C"},  # " " is not an option -> "A" -> wrong
        {"answer": "A", "duration": 100, "timestamp": [1, 3], "response": " C"},  # -> "A" -> right
        {"answer": "B", "duration": 400, "timestamp": [1, 3], "response": "B"},  # right
        {"answer": "D", "duration": 900, "timestamp": [1, 3], "response": "\nD"},  # -> "A" -> wrong
        {"answer": "E", "duration": 1500, "timestamp": [1, 3], "response": "E."},  # right
    ]
    m, _, fmt = score_file("videotemp", _jsonl(tmp_path / "test.jsonl", rows))
    assert fmt == "reference"
    got = {k: v for k, v in m.items() if k.startswith("videotemp/acc/") and not k.endswith("/n")}
    assert got == {
        "videotemp/acc/<3min": 50.0,
        "videotemp/acc/3-10min": 100.0,
        "videotemp/acc/10-20min": 0.0,
        "videotemp/acc/>20min": 100.0,
        "videotemp/acc/overall": 60.0,
    }


def test_golden_videotemp_g_reversed_pair_and_reference_name(tmp_path):
    rows = [
        {
            "duration": 100,
            "timestamp": [70, 100],
            "response": "The event happens in the 100 - 70 seconds.",
        },  # reversed: IoU 0
        {"duration": 100, "timestamp": [70, 100], "response": "The event happens in the 70 - 100 seconds."},  # IoU 1
        {"duration": 100, "timestamp": [0, 40], "response": "<think>from 10</think> to 30"},  # (10, 30): IoU 0.5
        {"duration": 700, "timestamp": [0, 10], "response": "no numbers"},  # parse error, IoU 0
    ]
    f = _jsonl(tmp_path / "test-g.jsonl", rows)
    m, _, _ = score_file("videotemp-g", f)  # the reference's benchmark name
    assert m["videotemp_g/<3min/miou"] == pytest.approx(100 * 1.5 / 3)
    assert m["videotemp_g/<3min/r@0.3"] == pytest.approx(200 / 3) and m["videotemp_g/<3min/r@0.5"] == pytest.approx(
        100 / 3
    )
    assert m["videotemp_g/<3min/r@0.7"] == pytest.approx(100 / 3)
    assert m["videotemp_g/<3min/avg"] == pytest.approx((50 + 200 / 3 + 100 / 3 + 100 / 3) / 4)
    assert m["videotemp_g/10-20min/miou"] == 0.0 and m["videotemp_g/overall/miou"] == pytest.approx(100 * 1.5 / 4)
    assert m["videotemp_g/parse_errors"] == 1
    from eval.score import main

    assert main(["videotemp-g", "--input_file", str(f), "--output_json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["videotemp_g/overall/miou"] == pytest.approx(37.5)
    assert (tmp_path / "m.json").stat().st_mode & 0o044 == 0o044  # group/world-readable


def test_golden_videomme_categories_within_each_duration(tmp_path):
    def q(qid, task, answer, response):
        return {
            "question_id": qid,
            "task_type": task,
            "question": "q",
            "options": [],
            "answer": answer,
            "response": response,
        }

    videos = [
        {
            "video_id": "1",
            "duration": "short",
            "domain": "Knowledge",
            "sub_category": "Astronomy",
            "questions": [
                q("1-1", "OCR Problems", "A", "A"),
                q("1-2", "Counting Problem", "B", " B"),
                q("1-3", "OCR Problems", "C", "D"),
            ],
        },
        {
            "video_id": "2",
            "duration": "long",
            "domain": "Knowledge",
            "sub_category": "Law",
            "questions": [q("2-1", "OCR Problems", "B", "The answer is B"), q("2-2", "Counting Problem", "A", "xyz")],
        },
        {
            "video_id": "3",
            "duration": "long",
            "domain": "Sports Competition",
            "sub_category": "Football",
            "questions": [q("3-1", "OCR Problems", "D", "D")],
        },
    ]
    f = tmp_path / "test.json"
    f.write_text(json.dumps(videos))
    m, _, _ = score_file("videomme", f)
    # reference extraction: strip, drop phrases (no second strip), first char must be A-D; unparsable skipped.
    # short: "A" right, " B" -> "B" right (Video-MME strips first), "D" wrong -> 2/3; long: "The answer is B" -> " B",
    # first char " " -> unanswered (skipped), "xyz" skipped, "D" right -> 1/1.
    assert m["videomme/ref/duration/short"] == pytest.approx(200 / 3) and m["videomme/ref/duration/long"] == 100.0
    assert m["videomme/ref/duration/short/domain/Knowledge"] == pytest.approx(200 / 3)
    assert m["videomme/ref/duration/short/task_type/OCR Problems"] == 50.0
    assert m["videomme/ref/duration/short/task_type/Counting Problem"] == 100.0
    assert m["videomme/ref/duration/long/domain/Sports Competition"] == 100.0
    assert "videomme/ref/duration/long/domain/Knowledge" not in m  # both long Knowledge answers unanswered: "N/A"
    assert m["videomme/ref/duration/short/sub_category/Astronomy"] == pytest.approx(200 / 3)
    assert m["videomme/ref/domain/Knowledge"] == pytest.approx(200 / 3) and m["videomme/ref/overall"] == 75.0
    assert m["videomme/ref/unparsed"] == 2
    from eval.score import main

    assert (
        main(["videomme", "--input_file", str(f), "--return_categories_accuracy", "--return_task_types_accuracy"]) == 0
    )


def test_golden_mlvu_videommmu_lvbench_read_as_stored(tmp_path):
    f = _jsonl(
        tmp_path / "mlvu.jsonl",
        [
            {"question_type": "plot", "response": " B", "gt_answer": "B"},  # " " != "B"
            {"question_type": "plot", "response": "B", "gt_answer": "B"},
            {"question_type": "count", "response": "", "gt_answer": "A"},
        ],
    )  # empty: wrong, no default
    m = score_file("mlvu", f)[0]
    assert (
        m["mlvu/acc/overall"] == pytest.approx(100 / 3)
        and m["mlvu/acc/task/plot"] == 50.0
        and m["mlvu/acc/task/count"] == 0.0
    )
    f = _jsonl(
        tmp_path / "mmmu.jsonl",
        [
            {"task": "Perception", "gt_answer": "A", "response": " N"},  # -> "A": right
            {"task": "Comprehension", "gt_answer": "N", "response": " N"},  # -> "A": wrong
            {"task": "Adaptation", "gt_answer": "N", "response": "N"},
        ],
    )
    m = score_file("videommmu", f)[0]
    assert (m["videommmu/acc/Perception"], m["videommmu/acc/Comprehension"], m["videommmu/acc/Adaptation"]) == (
        100.0,
        0.0,
        100.0,
    )
    assert m["videommmu/avg"] == pytest.approx(200 / 3)
    meta = _jsonl(
        tmp_path / "video_info.meta.jsonl",
        [
            {
                "key": "v",
                "qa": [
                    {"uid": 1, "question": "q", "answer": "B", "question_type": ["x"]},
                    {"uid": 2, "question": "q", "answer": "A", "question_type": ["x", "y"]},
                    {"uid": 3, "question": "q", "answer": "C", "question_type": ["y"]},
                ],
            }
        ],
    )
    answers = tmp_path / "test.json"
    answers.write_text(json.dumps({"1": " B", "2": " B", "3": "C"}))  # " B" -> "A": uid 1 wrong, uid 2 right
    m = score_file("lvbench", answers, meta)[0]
    assert (
        m["lvbench/acc/overall"] == pytest.approx(200 / 3)
        and m["lvbench/acc/type/x"] == 50.0
        and m["lvbench/acc/type/y"] == 100.0
    )


def test_grounded_qa_best_iou_over_several_spans_and_failed_samples():
    preds = [
        P(0, "A [4, 7]", answer="A", span=(0.0, 1.0), spans=[(0.0, 1.0), (4.0, 7.0)]),  # best span: IoU 1
        P(1, "A", answer="A", span=(2.0, 5.0), failed=True, tool_calls=[[(2.0, 5.0)]]),
    ]  # failed: wrong, IoU 0
    m, notes = score_grounded_qa(preds)
    assert m["acc"] == 50.0 and m["grounding/miou"] == 50.0 and m["failed"] == 1 and any("failed" in n for n in notes)
    m, _ = score_videotemp([P(0, "", answer="A", duration=10, failed=True)])
    assert m["acc/overall"] == 0.0  # a failed sample is unanswered, not the default "A"


def test_scorer_drops_repeated_ids_and_says_so(tmp_path):
    rec = {
        "id": "s1",
        "benchmark": "mlvu",
        "turns": ["<answer>B</answer>"],
        "response": "B",
        "answer": "B",
        "fields": {"task": "t"},
    }
    f = _jsonl(tmp_path / "mlvu.jsonl", [rec, {**rec, "response": "C"}, {**rec, "id": "s2", "answer": "A"}])
    m, notes, _ = score_file("mlvu", f)
    assert m["mlvu/n"] == 2 and m["mlvu/acc/overall"] == 50.0
    assert any("1 record(s) repeat an earlier sample id" in n for n in notes)


def test_score_cli_one_line_errors(tmp_path, capsys):
    from eval.score import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"response": "A", "task": "Perception", "gt_answer": "A"}\n{not json\n')
    assert main(["videommmu", "--input_file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2: not valid JSON" in err and "Traceback" not in err
