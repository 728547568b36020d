"""data_prep/make_synthetic.py: videos, events and jsonl rows agree with each other."""

from __future__ import annotations

import json

import pytest
from data_helpers import synthetic_dataset

from data_prep.make_synthetic import main, make_synthetic
from data_prep.synthetic_video import event_color_at
from tools.protocol import is_well_formed_turn
from tools.video_io import probe, sample_clip


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_are_visible_exactly_where_the_rows_say(data):
    for video in data.videos:
        path = data.root / video.path
        info = probe(path)
        assert (info.width, info.height, info.fps) == (64, 48, 4.0)
        assert info.duration == pytest.approx(video.duration)
        assert 10 <= video.duration <= 12
        event = video.events[0]
        inside = sample_clip(path, event["start"] + 0.3, event["end"] - 0.3, fps=4.0, min_pixels=3136, max_pixels=3136)
        assert {event_color_at(f) for f in inside.frames} == {event["color"]}
        before = sample_clip(path, 0.0, event["start"] - 0.3, fps=4.0, min_pixels=3136, max_pixels=3136)
        assert event["color"] not in {event_color_at(f) for f in before.frames}


def test_rl_and_sft_rows_match_the_events(data):
    qa, grounding = _lines(data.files["rl_qa"]), _lines(data.files["rl_grounding"])
    assert len(qa) == len(grounding) == len(data.videos)
    for video, q, g in zip(data.videos, qa, grounding):
        event = video.events[0]
        assert q["videos"] == [video.path] and q["data_type"] == "qa"
        assert q["timestamp"] == g["timestamp"] == [[event["start"], event["end"]]]
        letter = q["solution"][len("<answer>")]
        option = next(line for line in q["messages"][1]["content"].split("\n") if line.startswith(f"{letter}. "))
        assert option == f"{letter}. {event['color']}"
        assert event["color"] in g["messages"][1]["content"]
    for path_key in ("sft_direct", "sft_clips", "sft_ranges"):
        for row in _lines(data.files[path_key]):
            for message in row["messages"]:
                if message["role"] == "assistant":
                    assert is_well_formed_turn(message["content"]), message["content"]
    for row in _lines(data.files["sft_clips"]):
        assert all((data.root / v).is_file() for v in row["videos"])
        assert len(row["videos"]) == sum(m["content"].count("<video>") for m in row["messages"])


def test_cli_sizes_and_determinism(tmp_path):
    assert (
        main(
            [
                str(tmp_path / "a"),
                "--n-videos",
                "1",
                "--width",
                "96",
                "--height",
                "64",
                "--fps",
                "5",
                "--min-seconds",
                "8",
                "--max-seconds",
                "8",
                "--seed",
                "7",
            ]
        )
        == 0
    )
    info = probe(tmp_path / "a" / "videos" / "vid_000.mp4")
    assert (info.width, info.height, info.fps, info.num_frames) == (96, 64, 5.0, 40)
    again = make_synthetic(tmp_path / "b", n_videos=1, width=96, height=64, fps=5, min_seconds=8, max_seconds=8, seed=7)
    assert (tmp_path / "a" / "rl" / "qa.jsonl").read_text() == again.files["rl_qa"].read_text()
    assert main([str(tmp_path / "c"), "--n-videos", "0"]) == 2


def test_prompts_read_like_prepare_rl(data):
    """SFT and RL rows put the question on the line after <video>, as prepare_rl writes RL prompts."""
    from tools.protocol import user_prompt

    for key in ("rl_qa", "rl_grounding", "sft_direct", "sft_clips", "sft_ranges"):
        for row in _lines(data.files[key]):
            first_user = next(m["content"] for m in row["messages"] if m["role"] == "user")
            placeholder = "<image>" if row.get("images") else "<video>"
            assert first_user.startswith(placeholder + "\n"), (key, first_user[:40])
            if placeholder == "<video>":
                assert first_user == user_prompt(first_user[len("<video>") :])


def test_one_call_trajectories_for_teaching_the_protocol(tmp_path):
    from reward_fns.answer_parsing import answer_segments
    from tools.protocol import parse_turn

    data = make_synthetic(
        tmp_path,
        n_videos=3,
        seed=3,
        fps=4.0,
        min_seconds=8,
        max_seconds=10,
        sft_calls=[1],
        sft_tasks=["qa", "grounding"],
        sft_trajectories_per_video=2,
    )
    rows = _lines(data.files["sft_clips"])
    assert len(rows) == 6 == len(_lines(data.files["sft_ranges"]))
    for k, row in enumerate(rows):
        video = data.videos[k // 2]
        event = video.events[0]
        kinds = [parse_turn(m["content"]).kind for m in row["messages"] if m["role"] == "assistant"]
        assert kinds == ["tool_call", "answer"]
        call = parse_turn(row["messages"][2]["content"]).tool_call
        assert list(call.ranges) == [(event["start"], event["end"])]
        assert row["videos"] == [video.path, f"clips/{video.name}_call1_c0.mp4"]
        answer = parse_turn(row["messages"][-1]["content"]).answer
        if k % 2 == 0:  # qa
            assert len(answer) == 1 and answer in "ABCD"
        else:  # grounding: the event's own range
            assert [tuple(s) for s in answer_segments(answer)] == [(event["start"], event["end"])]
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == [f"{v.name}_call1_c0.mp4" for v in data.videos]
    assert main([str(tmp_path / "x"), "--n-videos", "1", "--sft-calls", "3"]) == 2
    assert main([str(tmp_path / "x"), "--n-videos", "1", "--sft-tasks", "captions"]) == 2
