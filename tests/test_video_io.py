"""tools.video_io and data_prep.synthetic_video: sampling rules, pixels, caches, errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from video_helpers import TINY_PIXELS, Event, decoded_indices, make_video

from data_prep.synthetic_video import event_color_at, read_frame_index, write_corrupt_video, write_empty_video
from tools import video_io
from tools.frame_cache import FrameCache
from tools.video_io import pooled_reader, probe, sample_clip, sample_video
from tools.video_sampling import grid_indices, resized_hw
from tools.video_types import VideoError

TINY = {"min_pixels": TINY_PIXELS, "max_pixels": TINY_PIXELS}


@pytest.fixture(scope="module")
def vdir(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def v10(vdir):
    """30 s at 10 fps (300 frames): grid of 60 points, spacing 299/59 frames."""
    return make_video(vdir, seconds=30, fps=10)


# --------------------------------------------------------------------------- synthetic videos


@pytest.mark.parametrize(
    "fps,width,height,codec,keyint",
    [
        (25, 64, 48, "libx264", None),
        (12, 64, 48, "mpeg4", 5),
        (29.97, 96, 64, "libx264", 30),
        (8, 160, 120, "libx264", 4),
    ],
)
def test_every_frame_reads_back_its_index(vdir, fps, width, height, codec, keyint):
    path = make_video(vdir, seconds=4, fps=fps, width=width, height=height, codec=codec, keyint=keyint)
    info = probe(path)
    assert info.num_frames == round(4 * fps)
    assert (info.width, info.height) == (width, height)
    assert info.fps == pytest.approx(fps, rel=1e-3)
    # fps=1000 on a whole-range clip falls back to evenly spaced source frames: every frame.
    clip = sample_clip(path, 0, info.duration, fps=1000, max_frames=10_000, **TINY)
    assert clip.frame_indices == list(range(info.num_frames - info.num_frames % 2))
    assert decoded_indices(clip.frames) == clip.frame_indices
    if keyint is not None:
        import decord

        keys = decord.VideoReader(str(path)).get_key_indices()
        assert keys[:3] == [0, keyint, 2 * keyint]


def test_index_survives_downscale_and_events_are_visible(vdir):
    path = make_video(vdir, seconds=3, fps=10, events=[Event(1.0, 2.0, "red"), Event(2.0, 2.5, "blue")])
    clip = sample_clip(path, 0, 3, fps=1000, max_frames=100, min_pixels=24 * 32, max_pixels=24 * 32, image_factor=8)
    assert tuple(clip.frames.shape[2:]) == (24, 32)
    assert decoded_indices(clip.frames) == clip.frame_indices
    colors = [event_color_at(f) for f in clip.frames]
    expected = ["red" if 10 <= i < 20 else "blue" if 20 <= i < 25 else None for i in clip.frame_indices]
    assert colors == expected
    hwc = clip.frames[0].permute(1, 2, 0).numpy()
    assert read_frame_index(hwc) == 0


# --------------------------------------------------------------------------- probe and errors


def test_probe_reports_duration_and_size(v10):
    info = probe(v10)
    assert (info.num_frames, info.fps, info.duration, info.width, info.height) == (300, 10.0, 30.0, 64, 48)
    assert info.path == str(v10)


def test_probe_errors_name_path_and_reason(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(VideoError, match=r"missing\.mp4: no such video file"):
        probe(missing)
    empty = write_empty_video(tmp_path / "empty.mp4")
    with pytest.raises(VideoError, match=r"empty\.mp4: empty file \(0 bytes\)"):
        probe(empty)
    for mode in ("garbage", "truncated"):
        bad = write_corrupt_video(tmp_path / f"{mode}.mp4", mode=mode)
        with pytest.raises(VideoError, match=rf"{mode}\.mp4: cannot open as a video"):
            probe(bad)
        with pytest.raises(VideoError):
            sample_clip(bad, 0, 1)
    with pytest.raises(ValueError, match="pixel budget"):  # qwen's smart_resize would give height 0
        sample_video(make_video(tmp_path, seconds=1, fps=10), min_pixels=28 * 28, max_pixels=28 * 28)
    with pytest.raises(VideoError, match="not a regular file"):
        probe(tmp_path)


def test_hung_decode_times_out_and_reader_is_replaced(vdir, monkeypatch):
    path = make_video(vdir, seconds=2, fps=10)
    info = probe(path)
    reader = pooled_reader(info, 10)
    slow_decode = reader.decode

    def decode(*args):
        time.sleep(1.0)
        return slow_decode(*args)

    monkeypatch.setattr(reader, "decode", decode)
    with pytest.raises(VideoError, match="decoding took longer than 0.2 s"):
        sample_clip(path, 0, 2, timeout_s=0.2, **TINY)
    clip = sample_clip(path, 0, 2, timeout_s=10, **TINY)  # a fresh reader
    assert decoded_indices(clip.frames) == clip.frame_indices
    assert pooled_reader(info, 10) is not reader


# --------------------------------------------------------------------------- prompt video = qwen-vl-utils


@pytest.mark.parametrize(
    "seconds,video_fps,fps,max_frames,pixels,patch",
    [
        (30, 10, 2.0, 512, TINY_PIXELS, 14),  # uncapped: 60 grid frames
        (30, 10, 2.0, 16, TINY_PIXELS, 14),  # capped: the real rate drops to 16/30 fps
        (7.3, 25, 1.0, 512, TINY_PIXELS, 14),
        (1.0, 6, 2.0, 512, TINY_PIXELS, 14),  # min_frames 4 > 2 fps * 1 s
        (12, 10, 2.0, 20, 32 * 32 * 6, 16),  # Qwen3-VL patch size
        (9, 10, 2.0, 512, 50_176, 14),  # the training budget (upscales a 64x48 source)
    ],
)
def test_main_video_matches_qwen_vl_utils(vdir, seconds, video_fps, fps, max_frames, pixels, patch):
    from qwen_vl_utils import fetch_video

    path = make_video(vdir, seconds=seconds, fps=video_fps)
    ours = sample_video(
        path, fps=fps, max_frames=max_frames, min_pixels=pixels, max_pixels=pixels, image_factor=2 * patch
    )
    ref, meta = fetch_video(
        {"video": str(path), "fps": fps, "max_frames": max_frames, "min_pixels": pixels, "max_pixels": pixels},
        image_patch_size=patch,
        return_video_metadata=True,
    )
    assert ours.metadata["frames_indices"] == meta["frames_indices"]
    assert ours.metadata["total_num_frames"] == meta["total_num_frames"]
    assert ours.metadata["fps"] == pytest.approx(meta["fps"])
    assert ours.frames.shape == ref.shape
    assert ours.frames.dtype == torch.uint8
    assert decoded_indices(ours.frames) == ours.frame_indices
    assert ours.times == pytest.approx([i / video_fps for i in ours.frame_indices])
    n = len(ours.frame_indices)
    assert ours.sample_fps == pytest.approx(n / meta["total_num_frames"] * video_fps)


def test_uncapped_prompt_frames_are_the_grid_and_metadata_fits_transformers(v10):
    from transformers.video_utils import VideoMetadata

    video = sample_video(v10, **TINY)
    assert video.frame_indices == grid_indices(300, 10.0)
    assert len(video.frame_indices) == 60
    frames, meta = video.as_verl_video()
    assert frames is video.frames
    assert VideoMetadata(**meta).sampled_fps == pytest.approx(video.sample_fps)
    assert video.sample_fps == pytest.approx(2.0)


def test_resized_hw_is_smart_resize():
    from qwen_vl_utils.vision_process import smart_resize

    for (h, w), (lo, hi), f in [
        ((720, 1280), (50_176, 50_176), 28),
        ((48, 64), (3136, 3136), 28),
        ((1080, 1920), (4096, 200_704), 32),
        ((333, 500), (1000, 20_000), 28),
    ]:
        assert resized_hw(h, w, min_pixels=lo, max_pixels=hi, factor=f) == smart_resize(h, w, f, lo, hi)
    assert resized_hw(720, 1280, min_pixels=50_176, max_pixels=50_176) == (
        168,
        280,
    )  # floor to multiples of 28 under the cap


# --------------------------------------------------------------------------- clips


@pytest.mark.parametrize(
    "start,end,expected",
    [
        (10, 15, [101, 106, 111, 117, 122, 127, 132, 137, 142, 147]),  # 10 grid points at ~0.5 s
        (3, 4, [30, 33, 37, 40]),  # 2 grid points < 4: evenly spaced source frames
        (0, 0.25, [0, 2]),  # 3 source frames -> 2
        (1.01, 1.05, [10, 10]),  # no frame inside: the nearest, repeated to 2
        (29.5, 30.0, [295, 296, 298, 299]),  # linspace(295, 299, 4).round()
    ],
)
def test_clip_indices_follow_the_protocol(v10, start, end, expected):
    clip = sample_clip(v10, start, end, **TINY)
    assert clip.frame_indices == expected
    assert decoded_indices(clip.frames) == expected
    assert clip.frames.shape[0] % 2 == 0


def test_clip_count_rule_over_many_ranges(v10):
    grid = set(grid_indices(300, 10.0))
    rng = np.random.default_rng(1)
    for _ in range(40):
        start = float(rng.uniform(0, 29))
        end = float(min(30.0, start + rng.choice([0.3, 1.7, 2.2, 4.9, 8.0, 20.0])))
        clip = sample_clip(v10, start, end, **TINY)
        n = clip.frames.shape[0]
        available = int(np.floor(end * 10 + 1e-6)) - int(np.ceil(start * 10 - 1e-6)) + 1
        nominal = max(2, int(min(max((end - start) * 2, 4), 64, available)) // 2 * 2)
        assert n % 2 == 0 and 2 <= n <= 64
        assert nominal - 2 <= n <= nominal  # the grid may hold up to two points fewer
        idx = clip.frame_indices
        assert decoded_indices(clip.frames) == idx
        assert all(start * 10 - 1 <= i <= end * 10 + 1 for i in idx)
        assert idx == sorted(idx)
        if set(idx) <= grid and n >= 4:
            gaps = np.diff(clip.times)
            assert gaps.max() - gaps.min() <= 0.1 + 1e-9  # one source frame
            assert clip.sample_fps == pytest.approx(2.0, rel=0.03)


def test_long_clip_is_capped_and_uniform(vdir):
    path = make_video(vdir, seconds=60, fps=5)
    clip = sample_clip(path, 0, 60, **TINY)
    assert clip.frames.shape[0] == 64
    assert set(clip.frame_indices) <= set(grid_indices(300, 5.0))
    assert clip.times[0] == 0.0 and clip.times[-1] == pytest.approx(59.8)
    assert decoded_indices(clip.frames) == clip.frame_indices
    assert clip.sample_fps == pytest.approx(64 / 60, rel=0.02)


def test_clip_range_is_clamped_and_empty_range_refused(v10):
    clip = sample_clip(v10, 25, 99, **TINY)
    assert clip.frame_indices[-1] <= 299 and clip.frame_indices[0] >= 250
    with pytest.raises(ValueError):
        sample_clip(v10, 31, 40, **TINY)


# --------------------------------------------------------------------------- caches and threads


def test_overlapping_clips_and_prompt_video_share_decoded_frames(v10):
    cache = FrameCache(50 << 20)
    sample_video(v10, cache=cache, **TINY)
    first = cache.stats
    assert first["decoded_frames"] == 60 and first["hits"] == 0
    clip = sample_clip(v10, 4, 12, cache=cache, **TINY)  # grid frames: all already decoded
    assert cache.stats["decoded_frames"] == 60
    assert cache.stats["hits"] == 16
    again = sample_clip(v10, 4, 12, cache=cache, **TINY)
    assert torch.equal(again.frames, clip.frames)
    assert cache.stats["decoded_frames"] == 60
    sample_clip(v10, 3, 4, cache=cache, **TINY)  # off-grid fallback decodes only its misses
    assert cache.stats["decoded_frames"] == 60 + 3  # frame 30 is a grid point


def test_frame_cache_stays_within_budget(v10):
    frame_bytes = 3 * 56 * 56
    cache = FrameCache(10 * frame_bytes)
    video = sample_video(v10, cache=cache, **TINY)
    assert tuple(video.frames.shape[1:]) == (3, 56, 56)
    stats = cache.stats
    assert stats["bytes"] <= 10 * frame_bytes and stats["frames"] == 10
    assert stats["evictions"] == 50
    tiny = FrameCache(100)  # smaller than one frame: nothing is kept, results still right
    clip = sample_clip(v10, 0, 5, cache=tiny, **TINY)
    assert decoded_indices(clip.frames) == clip.frame_indices
    assert tiny.stats["bytes"] == 0


def test_reader_pool_is_bounded(vdir):
    paths = [make_video(vdir, seconds=1 + k, fps=10) for k in range(4)]
    video_io.set_max_open_readers(2)
    try:
        for path in paths:
            sample_clip(path, 0, 1, **TINY)
            sample_clip(path, 0, 1, min_pixels=28 * 28 * 2, max_pixels=28 * 28 * 2)  # another size: the same reader
            assert video_io.reader_pool_size() <= 2
        assert video_io.reader_pool_size() == 2
    finally:
        video_io.set_max_open_readers(video_io.DEFAULT_MAX_READERS)


def test_concurrent_clips_from_threads_are_correct(vdir, v10):
    other = make_video(vdir, seconds=12, fps=25, codec="mpeg4", keyint=10)
    cache = FrameCache(20 << 20)
    rng = np.random.default_rng(7)
    jobs = []
    for _ in range(24):
        path = [v10, other][int(rng.integers(2))]
        start = float(rng.uniform(0, 10))
        jobs.append((path, start, start + float(rng.uniform(0.5, 6))))
    errors: list[str] = []
    lock = threading.Lock()

    def run(job):
        path, start, end = job
        clip = sample_clip(path, start, end, cache=cache, **TINY)
        got = decoded_indices(clip.frames)
        if got != clip.frame_indices:
            with lock:
                errors.append(f"{path.name} [{start:.2f}, {end:.2f}]: {got} != {clip.frame_indices}")
        return len(got)

    with ThreadPoolExecutor(6) as pool:
        counts = list(pool.map(run, jobs))
    assert errors == []
    assert all(c % 2 == 0 and c >= 2 for c in counts)
    assert cache.stats["hits"] > 0


# --------------------------------------------------------------------------- PyAV decoding and its decord fallback


def test_pixels_equal_a_decord_reader_at_the_target_size(v10):
    import decord

    video = sample_video(v10, **TINY)
    height, width = video.frames.shape[2:]
    vr = decord.VideoReader(str(v10), width=width, height=height)
    expected = torch.from_numpy(vr.get_batch(video.frame_indices).asnumpy()).permute(0, 3, 1, 2)
    vr.seek(0)
    assert torch.equal(video.frames, expected)


def test_forward_requests_continue_decoding_without_seeking(vdir, monkeypatch):
    path = make_video(vdir, seconds=10, fps=10, keyint=50)  # keyframes at 0 and 50
    reader = pooled_reader(probe(path), 10)
    assert reader.indexed and reader.keyframes == [0, 50]
    seeks: list[int] = []
    real_seek = reader.seek
    monkeypatch.setattr(reader, "seek", lambda index: (seeks.append(index), real_seek(index)))
    for start, end in [(0.0, 1.5), (2.0, 3.5), (3.5, 4.5), (5.5, 7.0)]:
        clip = sample_clip(path, start, end, **TINY)
        assert decoded_indices(clip.frames) == clip.frame_indices
    assert seeks == [0, 50]  # the first call and the jump over keyframe 50
    sample_clip(path, 1.0, 2.0, **TINY)  # backwards: seeks to the keyframe before
    assert seeks == [0, 50, 0]


def test_seek_landing_past_the_frame_retries_from_earlier_keyframes(vdir, monkeypatch):
    path = make_video(vdir, seconds=6, fps=10, keyint=10)
    reader = pooled_reader(probe(path), 10)
    reader.reset()
    seeks: list[int] = []
    real_seek = reader.seek

    def late_seek(index):
        seeks.append(index)
        real_seek(index + 10 if len(seeks) == 1 else index)  # the first seek lands one GOP late

    monkeypatch.setattr(reader, "seek", late_seek)
    clip = sample_clip(path, 2.5, 3.0, fps=1000, **TINY)
    assert clip.frame_indices == list(range(25, 31))
    assert decoded_indices(clip.frames) == clip.frame_indices
    assert seeks[:2] == [20, 10]


def test_unindexable_video_is_decoded_by_decord(vdir, monkeypatch):
    path = make_video(vdir, seconds=3, fps=10, keyint=7)

    def refuse(self):
        raise video_io.Unindexable("test")

    video_io.close_all_readers()
    monkeypatch.setattr(video_io.PyAVReader, "open", refuse)
    clip = sample_clip(path, 0.3, 2.8, fps=1000, **TINY)
    assert not pooled_reader(probe(path), 10).indexed
    assert clip.frame_indices == list(range(3, 29))
    assert decoded_indices(clip.frames) == clip.frame_indices
    video_io.close_all_readers()


def test_frames_the_decoder_never_gives_come_from_decord(vdir, monkeypatch):
    path = make_video(vdir, seconds=3, fps=10)
    reader = pooled_reader(probe(path), 10)
    real_frame_at = reader.frame_at
    monkeypatch.setattr(reader, "frame_at", lambda index: None if index % 3 == 0 else real_frame_at(index))
    cache = FrameCache(10 << 20)
    clip = sample_clip(path, 0, 3, fps=1000, max_frames=100, cache=cache, **TINY)
    assert clip.frame_indices == list(range(30))
    assert decoded_indices(clip.frames) == clip.frame_indices
    assert cache.stats["decoded_frames"] == 30


@pytest.mark.parametrize("suffix,codec", [(".mkv", "libx264"), (".avi", "mpeg4"), (".webm", "libvpx-vp9")])
def test_other_containers_read_back_every_index(tmp_path, suffix, codec):
    from data_prep.synthetic_video import write_index_video

    path = tmp_path / f"v{suffix}"
    try:
        write_index_video(path, num_frames=40, fps=10, width=64, height=48, codec=codec, keyint=8)
    except Exception as err:  # an encoder missing from this PyAV build
        pytest.skip(f"cannot write {suffix} with {codec}: {err}")
    info = probe(path)
    clip = sample_clip(path, 0, info.duration, fps=1000, max_frames=100, **TINY)
    assert decoded_indices(clip.frames) == clip.frame_indices
    video = sample_video(path, **TINY)
    assert decoded_indices(video.frames) == video.frame_indices


# --------------------------------------------------------------------------- rotated and variable-rate videos


def test_rotated_video_is_decoded_upright_like_decord(vdir):
    """A phone-style video stored 96x64 with a 90-degree display rotation is 64 wide and 96 high, and
    its pixels are decord's (qwen-vl-utils' reader), which turns the frame upright before scaling."""
    import decord

    from data_prep.synthetic_video import write_index_video

    path = write_index_video(vdir / "rot90.mp4", num_frames=40, fps=10, width=96, height=64, rotate=90)
    info = probe(path)
    assert (info.width, info.height) == (64, 96)
    clip = sample_clip(path, 0.0, 4.0, min_pixels=28 * 28 * 6, max_pixels=28 * 28 * 6)
    frames = clip.frames.permute(0, 2, 3, 1).numpy().astype(np.int32)
    height, width = frames.shape[1:3]
    assert height > width  # portrait, as displayed
    reference = decord.VideoReader(str(path), width=width, height=height).get_batch(clip.frame_indices).asnumpy()
    assert float(np.abs(frames - reference).mean()) < 3.0  # sideways pixels differ by ~100
    # Turned back by a quarter turn clockwise, each frame carries its own index again.
    assert [read_frame_index(np.rot90(f, -1)) for f in frames] == clip.frame_indices


def _vfr_times() -> list[float]:
    """10 s at 25 fps, then 29 s at 5 fps: 395 frames over 39 s."""
    return [i / 25 for i in range(250)] + [10 + i / 5 for i in range(145)]


def test_variable_frame_rate_frames_are_chosen_by_presentation_time(vdir):
    from data_prep.synthetic_video import write_index_video

    times = _vfr_times()
    path = write_index_video(vdir / "vfr.mp4", num_frames=len(times), fps=25, times=times)
    info = probe(path)
    assert info.variable_rate and info.num_frames == 395
    assert info.duration == pytest.approx(39.0, abs=1e-3)  # index-based: 395 / avg fps = 38.5
    clip = sample_clip(path, 25.0, 30.0, **TINY)
    real = [times[i] for i in decoded_indices(clip.frames)]
    assert clip.times == pytest.approx(real, abs=1e-3)  # reported times are the frames' real times
    assert all(25.0 <= t <= 30.0 for t in real) and real[-1] - real[0] >= 4.0
    assert clip.sample_fps == pytest.approx((len(real) - 1) / (real[-1] - real[0]), rel=0.1)
    whole = sample_video(path, **TINY)
    real = [times[i] for i in decoded_indices(whole.frames)]
    assert whole.times == pytest.approx(real, abs=1e-3)
    assert real[0] == 0.0 and real[-1] == pytest.approx(38.8) and max(np.diff(real)) < 0.8  # even in time


def test_constant_rate_video_is_not_treated_as_variable(v10):
    info = probe(v10)
    assert not info.variable_rate and info.frame_times is None and info.duration == 30.0
