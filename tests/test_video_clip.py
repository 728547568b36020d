"""tools.video_clip: run_clip_call, the verl tool wrapper and the CLI."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from video_helpers import TINY_PIXELS, decoded_indices, make_video

from data_prep.synthetic_video import write_corrupt_video, write_empty_video
from tools.frame_cache import FrameCache
from tools.protocol import (
    BAD_JSON_ERROR,
    EVAL_RULES,
    NO_TIMESTAMP_ERROR,
    NO_VALID_RANGE_ERROR,
    TOOL_FAILURE_TEXT,
    TOOL_NAME,
    TOOL_SUCCESS_TEXT,
    VIDEO_UNREADABLE_ERROR,
    WRONG_TOOL_ERROR,
    ClipRange,
    parse_tool_call,
)
from tools.video_clip import ClipSettings, VideoClipTool, main, run_clip_call, tool_call_from_parameters

SETTINGS = ClipSettings(min_pixels=TINY_PIXELS, max_pixels=TINY_PIXELS)
TOOL_CONFIG = {"type": "native", "min_pixels": TINY_PIXELS, "max_pixels": TINY_PIXELS}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """20 s at 10 fps (200 frames)."""
    return make_video(tmp_path_factory.mktemp("clipvideos"), seconds=20, fps=10)


@pytest.fixture(scope="module")
def clip_tool():
    return VideoClipTool(TOOL_CONFIG)


def call(body: str):
    return parse_tool_call(body)


def ranges_body(*ranges) -> str:
    return json.dumps({"name": TOOL_NAME, "arguments": [{"start_time": s, "end_time": e} for s, e in ranges]})


def failure(error: str) -> str:
    return f"{error}{TOOL_FAILURE_TEXT}"


def range_failure(*messages: str) -> str:
    """The reference RL scheduler's text for failed ranges: Python's list text, then the sentence."""
    return str([f"[Error] Video processing error: {m}" for m in messages]) + TOOL_FAILURE_TEXT


NO_TIMESTAMP = failure(NO_TIMESTAMP_ERROR)


# --------------------------------------------------------------------------- run_clip_call


def test_one_range_gives_frames_from_that_range(video):
    result = run_clip_call(video, call(ranges_body((4, 9))), SETTINGS)
    assert result.error is None and result.text == TOOL_SUCCESS_TEXT
    assert result.ranges == [ClipRange(4.0, 9.0)]
    (clip,) = result.clips
    assert clip.frames.shape[0] == 10
    idx = decoded_indices(clip.frames)
    assert idx == clip.frame_indices
    assert all(40 <= i <= 90 for i in idx)
    assert clip.times == sorted(clip.times)


def test_several_ranges_clamped_and_capped(video):
    body = ranges_body((0, 2), ("5", 7), (18, 100), (1, 3))  # 4th range is over the limit of 3
    result = run_clip_call(video, call(body), SETTINGS, duration=20.0)
    assert result.ranges == [ClipRange(0, 2), ClipRange(5, 7), ClipRange(18, 20)]
    assert [c.frames.shape[0] for c in result.clips] == [4, 4, 4]
    assert all(decoded_indices(c.frames) == c.frame_indices for c in result.clips)
    assert result.clips[2].frame_indices[-1] == 199


def test_caption_names_the_absolute_ranges(video):
    settings = ClipSettings(min_pixels=TINY_PIXELS, max_pixels=TINY_PIXELS, caption=True)
    result = run_clip_call(video, call(ranges_body((3, 6.5))), settings)
    assert result.text == f"The clips cover clip 1: 3.00s - 6.50s of the video. {TOOL_SUCCESS_TEXT}"


@pytest.mark.parametrize(
    "body,text",
    [
        ("{not json", NO_TIMESTAMP),
        ('{"name": "crop", "arguments": [{"start_time": 1, "end_time": 2}]}', NO_TIMESTAMP),
        (ranges_body((5, 5)), range_failure("Invalid timestamp: start=5.0, end=5.0")),
        (ranges_body((-1, 3)), range_failure("Invalid timestamp: start=-1.0, end=3.0")),
        (ranges_body((7, 2)), range_failure("Invalid timestamp: start=7.0, end=2.0")),
        # starts after the end of the 20 s video: the reference's frame count fails
        (ranges_body((25, 30)), range_failure("nframes should in interval [2, 0], but got 0.")),
        ('{"name": "get_video_clip_frame", "arguments": []}', NO_TIMESTAMP),
        ('{"name": "get_video_clip_frame", "arguments": [{"start": 1, "end": 2}]}', NO_TIMESTAMP),
        ('{"name": "get_video_clip_frame", "arguments": 5}', NO_TIMESTAMP),
        ('{"name": "get_video_clip_frame"}', NO_TIMESTAMP),  # no arguments key
        ('{"name": "get_video_clip_frame", "arguments": {"start_time": 1, "end_time": 3}}', NO_TIMESTAMP),
        ('{"name": "get_video_clip_frame", "arguments": "[{\\"start_time\\": 1, \\"end_time\\": 3}]"}', NO_TIMESTAMP),
    ],
)
def test_failures_give_the_reference_failure_text(video, body, text):
    result = run_clip_call(video, call(body), SETTINGS)
    assert result.clips == [] and result.ranges == []
    assert result.error is not None
    assert result.text == text


def test_any_invalid_range_fails_the_whole_call(video):
    """Reference: one invalid range among valid ones gives its error and the failure sentence, no clip."""
    result = run_clip_call(video, call(ranges_body((1, 3), (9, 4), (5, 8))), SETTINGS)
    assert result.clips == [] and result.ranges == []
    assert result.text == range_failure("Invalid timestamp: start=9.0, end=4.0")
    both = run_clip_call(video, call(ranges_body((-2, 3), (9, 4))), SETTINGS)
    assert both.text == range_failure("Invalid timestamp: start=-2.0, end=3.0", "Invalid timestamp: start=9.0, end=4.0")


def test_only_the_first_three_ranges_are_looked_at(video):
    """RL's timestamps[:3]: an invalid 4th range is ignored; eval rules (max_clips 0) look at all."""
    body = call(ranges_body((1, 3), (4, 6), (7, 9), (9, 4)))
    assert len(run_clip_call(video, body, SETTINGS).clips) == 3
    settings = ClipSettings(**{**SETTINGS.__dict__, "max_clips": 0})
    result = run_clip_call(video, body, settings, rules=EVAL_RULES)
    assert result.clips == []
    assert result.text == "Video processing error: Invalid timestamp: start=9.0, end=4.0" + TOOL_FAILURE_TEXT


def test_eval_rules_empty_call_succeeds_without_clips(video):
    result = run_clip_call(video, call('{"name": "get_video_clip_frame", "arguments": []}'), SETTINGS, rules=EVAL_RULES)
    assert result.clips == [] and result.error is None and result.text == TOOL_SUCCESS_TEXT


def test_a_malformed_entry_fails_the_whole_call(video):
    """Reference RL: an unreadable entry after a good one makes the range reading fail (no clip)."""
    body = '{"name": "get_video_clip_frame", "arguments": [{"start_time": 1, "end_time": 3}, {"start_time": "x"}]}'
    result = run_clip_call(video, call(body), SETTINGS)
    assert result.ranges == [] and result.text == NO_TIMESTAMP


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated"])
def test_unreadable_video_gives_failure_text(tmp_path, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        write_empty_video(path)
    elif kind != "missing":
        write_corrupt_video(path, mode=kind)
    for duration in (None, 10.0):
        result = run_clip_call(path, call(ranges_body((1, 2))), SETTINGS, duration=duration)
        assert result.clips == []
        assert result.text.startswith(f"['[Error] Video processing error: Error reading video file {path}")
        assert result.text.endswith("']" + TOOL_FAILURE_TEXT)


def test_shared_cache_hits_on_overlapping_calls(video):
    cache = FrameCache(10 << 20)
    run_clip_call(video, call(ranges_body((2, 8))), SETTINGS, cache=cache)
    decoded = cache.stats["decoded_frames"]
    result = run_clip_call(video, call(ranges_body((4, 7), (2, 5))), SETTINGS, cache=cache)
    assert cache.stats["decoded_frames"] == decoded
    assert cache.stats["hits"] == sum(c.frames.shape[0] for c in result.clips)


# --------------------------------------------------------------------------- fuzzing

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-50, 50),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1", "2.5", " 3 ", "abc", "", "1e400", "nan", "-4"]),
)
entries = st.one_of(
    st.fixed_dictionaries({"start_time": json_scalars, "end_time": json_scalars}),
    st.dictionaries(st.sampled_from(["start_time", "end_time", "start", "x"]), json_scalars, max_size=3),
    json_scalars,
    st.lists(json_scalars, max_size=3),
)
parameters = st.one_of(
    st.lists(entries, max_size=5),
    entries,
    st.fixed_dictionaries({"arguments": st.one_of(st.lists(entries, max_size=5), entries)}),
    st.text(max_size=40),
)


def check_result_shape(text: str, clips) -> None:
    if clips:
        assert text == TOOL_SUCCESS_TEXT
        assert 1 <= len(clips) <= 3
        for clip in clips:
            frames, meta = clip if isinstance(clip, tuple) else clip.as_verl_video()
            assert frames.shape[0] % 2 == 0 and 2 <= frames.shape[0] <= 64
            assert decoded_indices(frames) == meta["frames_indices"]
            assert all(0 <= i < 200 for i in meta["frames_indices"])
    else:
        assert text.endswith(TOOL_FAILURE_TEXT)
        assert text.startswith(("[Error] ", "['[Error] Video processing error: ", '["[Error] Video processing error: '))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.text(max_size=60), parameters.map(lambda p: json.dumps({"name": TOOL_NAME, "arguments": p}))))
def test_fuzz_run_clip_call_never_raises(video, body):
    result = run_clip_call(video, parse_tool_call(body), SETTINGS, duration=20.0)
    check_result_shape(result.text, result.clips)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=parameters)
async def test_fuzz_execute_never_raises(video, clip_tool, params):
    tool = clip_tool
    instance, _ = await tool.create(create_kwargs={"video": str(video), "duration": 20.0})
    response, reward, metrics = await tool.execute(instance, params)
    assert reward == 0.0
    check_result_shape(response.text, response.video or [])
    assert metrics["num_clips"] == len(response.video or [])


# --------------------------------------------------------------------------- verl tool


@pytest.mark.parametrize(
    "params",
    [
        {"arguments": [{"start_time": 6, "end_time": 11}]},
        [{"start_time": 6, "end_time": 11}],
        {"start_time": "6", "end_time": "11.0"},
        {"arguments": '[{"start_time": 6.0, "end_time": 11}]'},
        {"name": TOOL_NAME, "arguments": {"start_time": 6, "end_time": 11}},
        '{"arguments": [{"start_time": 6, "end_time": 11}]}',
    ],
)
async def test_execute_accepts_every_reference_shape(video, params):
    tool = VideoClipTool(TOOL_CONFIG)
    instance, created = await tool.create(create_kwargs={"video": str(video), "duration": 20.0})
    assert created.is_empty()
    response, _, metrics = await tool.execute(instance, params)
    assert response.text == TOOL_SUCCESS_TEXT
    ((frames, meta),) = response.video
    assert frames.shape[0] == 10 and metrics["num_frames"] == 10
    assert decoded_indices(frames) == meta["frames_indices"]
    assert all(60 <= i <= 110 for i in meta["frames_indices"])
    await tool.release(instance)


async def test_execute_failures(video):
    tool = VideoClipTool(TOOL_CONFIG)
    response, _, metrics = await tool.execute("unknown-instance", [{"start_time": 1, "end_time": 2}])
    assert response.text == failure(VIDEO_UNREADABLE_ERROR) and response.video is None and metrics["failed"]
    instance, _ = await tool.create(create_kwargs={"video": {"video": str(video)}})  # a dataset video dict
    response, _, _ = await tool.execute(instance, {"arguments": [{"start_time": 9, "end_time": 3}]})
    assert response.text == range_failure("Invalid timestamp: start=9.0, end=3.0")
    response, _, _ = await tool.execute(instance, {"arguments": [{"start_time": 1, "end_time": 3}]})
    assert response.text == TOOL_SUCCESS_TEXT


def test_schema_and_settings_from_config():
    tool = VideoClipTool({"type": "native", "fps": 1, "max_frames": "32", "caption": True, "max_clips": 2})
    schema = tool.get_openai_tool_schema()
    assert schema.function.name == TOOL_NAME == tool.name
    assert "start_time" in schema.function.description and "end_time" in schema.function.description
    assert schema.function.parameters.properties["arguments"].type == "array"
    s = tool.settings
    assert (s.fps, s.max_frames, s.caption, s.max_clips, s.min_frames) == (1.0, 32, True, 2, 4)


def test_parameters_go_through_the_protocol_parser():
    assert tool_call_from_parameters([{"start_time": 1, "end_time": "2"}]).ranges == ((1.0, 2.0),)
    assert tool_call_from_parameters("{oops").error == BAD_JSON_ERROR
    assert tool_call_from_parameters({"name": "other", "arguments": []}).error == WRONG_TOOL_ERROR
    assert tool_call_from_parameters({"arguments": [{"start_time": object(), "end_time": 1}]}).error == (
        NO_VALID_RANGE_ERROR
    )


# --------------------------------------------------------------------------- CLI


def test_cli_json_and_contact_sheet(video, tmp_path, capsys):
    from PIL import Image

    sheet = tmp_path / "sheet.png"
    code = main(
        [
            str(video),
            "--start",
            "2",
            "--end",
            "6",
            "--max-pixels",
            str(TINY_PIXELS),
            "--json",
            "--contact-sheet",
            str(sheet),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape"] == [8, 3, 56, 56]
    assert len(out["times"]) == 8 and 2 <= out["times"][0] < out["times"][-1] <= 6
    assert out["sample_fps"] == pytest.approx(2.0, rel=0.03)
    with Image.open(sheet) as image:
        assert image.size == (8 * 56, 56 + 14)
    assert main([str(tmp_path / "none.mp4"), "--start", "0", "--end", "1"]) == 1
    assert "none.mp4: no such video file" in capsys.readouterr().err


def test_cli_frames_dir_holds_the_exact_frames_with_index_and_time(video, tmp_path, capsys):
    import os
    import re

    import numpy as np
    from PIL import Image

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    (frames_dir / "000_f000999_0099.000s.png").write_bytes(b"old frame of another clip")
    code = main(
        [
            str(video),
            "--start",
            "2",
            "--end",
            "6",
            "--max-pixels",
            str(TINY_PIXELS),
            "--json",
            "--frames-dir",
            str(frames_dir),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    names = sorted(os.listdir(frames_dir))
    assert len(names) == len(out["times"]) == 8  # the stale frame is gone
    parsed = [re.fullmatch(r"(\d{3})_f(\d+)_(\d+\.\d{3})s\.png", n).groups() for n in names]
    assert [int(p[1]) for p in parsed] == out["frames_indices"]
    assert [float(p[2]) for p in parsed] == pytest.approx(out["times"], abs=1e-3)
    from tools.protocol import ToolCall

    call = ToolCall(((2.0, 6.0),), True, True, True)
    clip = run_clip_call(video, call, ClipSettings(min_pixels=TINY_PIXELS, max_pixels=TINY_PIXELS)).clips[0]
    for k, name in enumerate(names):
        with Image.open(frames_dir / name) as image:
            assert np.array_equal(np.asarray(image.convert("RGB")), clip.frames[k].permute(1, 2, 0).numpy())
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temp files left
    (frames_dir / "notes.txt").write_text("mine")
    assert main([str(video), "--start", "2", "--end", "6", "--frames-dir", str(frames_dir)]) == 2
    assert "holds other files" in capsys.readouterr().err
    assert (frames_dir / "notes.txt").exists()


def test_cli_help_loads_neither_torch_nor_verl():
    import subprocess
    import sys

    from data_helpers import REPO_ROOT

    code = (
        "import runpy, sys\nsys.argv = ['video_clip.py', '--help']\n"
        "try:\n    runpy.run_path('tools/video_clip.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'verl', 'av') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--frames-dir" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_caught_clip_error_is_logged_once_with_the_exception(tmp_path, caplog):
    path = tmp_path / "missing.mp4"
    with caplog.at_level(logging.WARNING, logger="tools.video_clip"):
        result = run_clip_call(path, call(ranges_body((1, 2))), SETTINGS, duration=10.0)
    assert result.clips == []
    (record,) = [r for r in caplog.records if r.name == "tools.video_clip"]
    assert str(path) in record.getMessage() and "failed" in record.getMessage()
    assert "VideoError(" in record.getMessage() and "no such video file" in record.getMessage()
