"""data_prep/download.py against a stand-in hub laid out as the real repositories are (tests/hub_helpers.py)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hub_helpers import build_hub, split_parts, tar_gz_bytes

from data_prep import archives, download
from data_prep.release_layout import alternative_names, resolve_inputs
from eval.tasks import benchmark_media, get_task, load_benchmark

REPO = Path(__file__).resolve().parent.parent


def fetch(name, root, **kw):
    """``download.fetch`` with the eval loaders as the benchmarks' media lister (as the command line finds them)."""
    return download.fetch(name, root, list_media=benchmark_media, **kw)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """(fixture benchmarks dir, mirror dir, training row counts)."""
    bench = tmp_path_factory.mktemp("bench")
    mirror = tmp_path_factory.mktemp("mirror")
    counts = build_hub(mirror, bench)
    return bench, mirror, counts


def _ids(name: str, root: Path) -> list[tuple[str, str, str]]:
    return [
        (s.id, Path(s.video).name, s.answer if isinstance(s.answer, str) else str(s.answer))
        for s in load_benchmark(name, root)
    ]


@pytest.mark.parametrize(
    "dataset,benchmarks,unpacked",
    [
        ("videomme", ["videomme"], ["videos_chunked_01.zip"]),
        ("mlvu", ["mlvu"], ["MLVU_Test/test_video.tar.gz"]),
        ("videommmu", ["videommmu"], ["Art.zip", "Science.zip"]),
        ("lvbench", ["lvbench"], ["video_chunks/videos_chunk_001.zip"]),
        (
            "videotemp_bench",
            ["videotemp", "videotemp_g"],
            ["videos/videos_part_0000.tar.gz", "videos/videos_part_0001.tar.gz"],
        ),
    ],
)
def test_hub_layouts_reach_the_loaders(hub, tmp_path, dataset, benchmarks, unpacked):
    bench, mirror, _ = hub
    report = fetch(dataset, tmp_path, mirror=mirror, progress=False)
    assert report.directory == tmp_path / dataset
    assert sorted(report.unpacked) == unpacked
    assert report.videos is not None and report.videos.missing == [] and report.videos.total >= 1
    for name in benchmarks:
        assert get_task(name).directory == dataset  # the loader's default directory is the dataset's name
        fetched = _ids(name, tmp_path / dataset)
        assert fetched and fetched == _ids(name, bench / dataset)


def test_mlvu_split_tar_joined_and_unpacked_at_root(hub, tmp_path):
    _, mirror, _ = hub
    fetch("mlvu", tmp_path, mirror=mirror, progress=False)
    root = tmp_path / "mlvu"
    assert sorted(p.name for p in (root / "video").glob("*.mp4")) == ["a.mp4", "b.mp4"]
    assert (root / "MLVU_Test/.test_video.tar.gz.unpacked").exists()
    assert not list(root.rglob(".unpacking-*"))  # no staging left behind


def test_videommmu_macosx_junk_skipped_and_alias_used(hub, tmp_path):
    _, mirror, _ = hub
    report = fetch("videommmu", tmp_path, mirror=mirror, progress=False)
    assert report.repos == ["lmms-lab/VideoMMMU"]  # the mirror holds the former id only
    root = tmp_path / "videommmu"
    assert not (root / "__MACOSX").exists() and not list(root.rglob("._*"))
    assert sorted(p.name for p in (root / "Art").glob("*.mp4")) == ["adaptation_a.mp4", "perception_a.mp4"]


def test_lvbench_metadata_and_videos_from_two_repos(hub, tmp_path):
    _, mirror, _ = hub
    report = fetch("lvbench", tmp_path, mirror=mirror, progress=False)
    assert report.repos == ["zai-org/LVBench", "lmms-lab/LVBench"]
    assert (tmp_path / "lvbench/a.mp4").exists() and (tmp_path / "lvbench/video_info.meta.jsonl").exists()


def test_videotemp_bench_annotation_found_by_content(hub, tmp_path):
    _, mirror, _ = hub
    report = fetch("videotemp_bench", tmp_path, mirror=mirror, progress=False)
    assert report.repos == ["Kwai-Keye/VideoTemp-Bench"]
    assert any(
        "annotations/videotemp_bench_test.jsonl (3 questions, 1 video paths rewritten" in n for n in report.notes
    )
    videos = [
        Path(s.video).relative_to(tmp_path / "videotemp_bench").as_posix()
        for s in load_benchmark("videotemp", tmp_path / "videotemp_bench")
    ]
    assert videos == ["LongVILA/a.mp4", "LongVILA/b.mp4", "LongVILA/a.mp4"]


def test_unpacking_is_idempotent_and_resumes(hub, tmp_path):
    _, mirror, _ = hub
    first = fetch("videotemp_bench", tmp_path, mirror=mirror, progress=False)
    assert len(first.unpacked) == 2
    root = tmp_path / "videotemp_bench"
    # an interrupted run: one marker lost, a half-written staging dir left behind
    (root / "videos/.videos_part_0001.tar.gz.unpacked").unlink()
    (root / ".unpacking-videos_part_0001.tar.gz/LongVILA").mkdir(parents=True)
    (root / ".unpacking-videos_part_0001.tar.gz/LongVILA/b.mp4").write_bytes(b"half")
    again = fetch("videotemp_bench", tmp_path, mirror=mirror, progress=False)
    assert again.unpacked == ["videos/videos_part_0001.tar.gz"]
    assert not (root / ".unpacking-videos_part_0001.tar.gz").exists()
    assert fetch("videotemp_bench", tmp_path, mirror=mirror, progress=False).unpacked == []
    assert (root / "LongVILA/b.mp4").stat().st_size > 100


def test_training_data_both_halves_into_one_root(hub, tmp_path):
    _, mirror, counts = hub
    report = fetch("videotemp_o3", tmp_path, mirror=mirror, progress=False)
    root = tmp_path / "videotemp_o3"
    assert sorted(report.unpacked) == [
        "rl_videos/videos_part_0000.tar.gz",
        "sft_videos/videos_part_0000.tar.gz",
        "sft_videos/videos_part_0001.tar.gz",
    ]
    for folder in ("ActivityNet", "Charades_v1", "cropped_video", "QVhilights", "Video-R1-data", "qa"):
        assert (root / folder).is_dir(), folder
    for rel in counts:
        assert (root / rel).exists(), rel
    # every video and clip the jsonl files name exists: 3 + 4 distinct sft files, 4 rl videos
    assert report.videos is not None and report.videos.missing == []
    assert report.videos.total == 7
    # the halves fetch into the same directory
    half = fetch("videotemp_rl", tmp_path / "other", mirror=mirror, progress=False)
    assert half.directory == tmp_path / "other/videotemp_o3"
    assert sorted(p.name for p in (half.directory / "rl").iterdir()) == ["grounding.jsonl", "qa-1k.jsonl"]
    assert not (half.directory / "sft").exists() and half.videos.missing == []


def test_missing_videos_are_counted_with_reasons(hub, tmp_path):
    bench, mirror, _ = hub
    # a mirror of MLVU whose video parts never arrived
    partial = tmp_path / "partial"
    gt = bench / "mlvu/test-ground-truth/test_mcq_gt.json"
    (partial / "MLVU/MLVU_Test/test-ground-truth").mkdir(parents=True)
    (partial / "MLVU/MLVU_Test/test-ground-truth/test_mcq_gt.json").write_bytes(gt.read_bytes())
    report = fetch("mlvu", tmp_path / "data", mirror=partial, progress=False)
    assert report.videos.total == 2 and len(report.videos.missing) == 2
    assert report.videos.reasons() == {"not in any downloaded file": 2}
    # a video in the wrong folder is named as such
    (tmp_path / "data/mlvu/elsewhere").mkdir()
    (tmp_path / "data/mlvu/elsewhere/a.mp4").write_bytes(b"x")
    report = fetch("mlvu", tmp_path / "data", mirror=partial, progress=False)
    assert sorted(report.videos.reasons().items()) == [("in another folder", 1), ("not in any downloaded file", 1)]
    # the command exits 1 and says how many are missing; --allow-missing-videos makes it a warning
    proc = _cli("mlvu", "--root", str(tmp_path / "data"), "--mirror", str(partial), "--no-progress")
    assert proc.returncode == 1
    assert "ERROR: 2 of 2 videos named by the annotations are missing" in proc.stderr
    proc = _cli("mlvu", "--root", str(tmp_path / "data"), "--mirror", str(partial), "--allow-missing-videos")
    assert proc.returncode == 0 and "WARNING: 2 of 2 videos" in proc.stderr


def test_split_parts_with_a_gap_are_refused(tmp_path):
    data = tar_gz_bytes({"video/a.mp4": b"a" * 5000})
    parts = split_parts(tmp_path, "v.tar.gz", data, 3)
    parts[1].unlink()
    with pytest.raises(archives.ArchiveError, match="not contiguous.*missing part number"):
        archives.find_archives(tmp_path, ["*"])


def test_truncated_archive_reported_and_nothing_marked_done(tmp_path):
    data = tar_gz_bytes({"video/a.mp4": bytes(range(256)) * 400})
    split_parts(tmp_path, "v.tar.gz", data[: len(data) // 2], 1)
    (archive,) = archives.find_archives(tmp_path, ["*"])
    with pytest.raises(archives.ArchiveError, match="broken or truncated"):
        archives.unpack(archive, tmp_path / "out", progress=False)
    assert not archive.is_done() and not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("member", ["../evil.mp4", "/abs/evil.mp4", "a/../../evil.mp4"])
def test_path_traversal_refused(tmp_path, member):
    zpath = tmp_path / "bad.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ok.mp4", b"x")
        zf.writestr(member, b"evil")
    (archive,) = archives.find_archives(tmp_path, ["*.zip"])
    with pytest.raises(archives.ArchiveError, match="refusing member"):
        archives.unpack(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "evil.mp4").exists() and not archive.is_done()
    tpath = tmp_path / "t" / "bad.tar"
    tpath.parent.mkdir()
    with tarfile.open(tpath, "w") as tf:
        info = tarfile.TarInfo(member)
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    (archive,) = archives.find_archives(tpath.parent, ["*.tar"])
    with pytest.raises(archives.ArchiveError, match="refusing member"):
        archives.unpack(archive, tmp_path / "out2", progress=False)


def test_tar_symlink_refused(tmp_path):
    tpath = tmp_path / "link.tar"
    with tarfile.open(tpath, "w") as tf:
        info = tarfile.TarInfo("video/link.mp4")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    (archive,) = archives.find_archives(tmp_path, ["*.tar"])
    with pytest.raises(archives.ArchiveError, match="refusing link member"):
        archives.unpack(archive, tmp_path / "out", progress=False)


def test_release_names_resolve_both_ways(tmp_path):
    assert alternative_names("d/sft/data/wo_tool_call/*.jsonl") == ["d/sft/*.jsonl"]
    assert alternative_names("d/sft/data/wi_tool_call/a.jsonl") == ["d/sft_tool_call/a.jsonl"]
    assert alternative_names("d/rl/data/qa.jsonl") == ["d/rl/qa-1k.jsonl"]
    assert alternative_names("d/rl/qa-1k.jsonl") == ["d/rl/data/qa.jsonl"]
    assert alternative_names("d/sft_tool_call/x.jsonl") == ["d/sft/data/wi_tool_call/x.jsonl"]
    assert alternative_names("d/other/x.jsonl") == []
    for rel in ("sft/a.jsonl", "sft/b.jsonl", "sft_tool_call/c.jsonl", "rl/qa-1k.jsonl"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}\n")
    log = io.StringIO()
    got = resolve_inputs(
        [
            f"{tmp_path}/sft/data/wo_tool_call/*.jsonl",
            f"{tmp_path}/sft/data/wi_tool_call/c.jsonl",
            f"{tmp_path}/rl/data/qa.jsonl",
            f"{tmp_path}/rl/data/grounding.jsonl",
        ],
        log=log,
    )
    assert got == [
        f"{tmp_path}/sft/a.jsonl",
        f"{tmp_path}/sft/b.jsonl",
        f"{tmp_path}/sft_tool_call/c.jsonl",
        f"{tmp_path}/rl/qa-1k.jsonl",
        f"{tmp_path}/rl/data/grounding.jsonl",
    ]  # the last exists nowhere
    assert log.getvalue().count("using the release's other name") == 3


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "data_prep/download.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )


def _prepare(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / f"data_prep/{script}"), *args, "--no-progress", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


@pytest.mark.parametrize("naming", ["hub", "readme"])
def test_release_download_then_prepare_reaches_parquet(hub, tmp_path, naming):
    """download.py --mirror, then prepare_sft / prepare_rl with the hub's or the README's file names."""
    _, mirror, counts = hub
    data = tmp_path / "data"
    proc = _cli("videotemp_o3", "--root", str(data), "--mirror", str(mirror), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "videotemp_o3: all 7 videos named by the annotations exist" in proc.stdout
    root = data / "videotemp_o3"
    if naming == "hub":
        sft_inputs = [
            str(p) for p in sorted((root / "sft").glob("*.jsonl")) + sorted((root / "sft_tool_call").glob("*.jsonl"))
        ]
        rl_inputs = [str(root / "rl/qa-1k.jsonl"), str(root / "rl/grounding.jsonl")]
    else:  # the release README's names, globs left for the program to expand
        sft_inputs = [f"{root}/sft/data/wo_tool_call/*.jsonl", f"{root}/sft/data/wi_tool_call/*.jsonl"]
        rl_inputs = [f"{root}/rl/data/qa.jsonl", f"{root}/rl/data/grounding.jsonl"]
    proc = _prepare("prepare_sft.py", *sft_inputs, "--video-root", str(root), "--output-dir", str(tmp_path / "sft"))
    assert proc.returncode == 0, proc.stderr
    sft_rows = sum(n for rel, n in counts.items() if rel.startswith("sft"))
    assert pq.read_table(tmp_path / "sft/train.parquet").num_rows == sft_rows
    proc = _prepare("prepare_rl.py", *rl_inputs, "--video-root", str(root), "--output-dir", str(tmp_path / "rl"))
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(tmp_path / "rl/train.parquet").to_pylist()
    assert sorted(r["extra_info"]["data_type"] for r in table) == ["grounding", "grounding", "qa", "qa"]
    assert all(Path(r["videos"][0]["video"]).is_file() for r in table)


def test_errors_are_clear(hub, tmp_path):
    _, mirror, _ = hub
    with pytest.raises(download.DownloadError, match="unknown dataset 'nope'"):
        fetch("nope", tmp_path, mirror=mirror)
    with pytest.raises(download.DownloadError, match="not found in the mirror"):
        fetch("videomme", tmp_path, repo_id="other/Missing", mirror=mirror)
    (mirror / "broken/Data").mkdir(parents=True, exist_ok=True)
    with pytest.raises(download.DownloadError, match="missing: rl/qa-1k.jsonl, rl/grounding.jsonl"):
        fetch("videotemp_rl", tmp_path, repo_id="broken/Data", mirror=mirror)


def test_cli_lists_real_ids_and_reports_unreachable_hub(tmp_path):
    listing = _cli("--list").stdout
    for repo in (
        "Kwai-Keye/VideoTemp-o3",
        "Kwai-Keye/VideoTemp-Bench",
        "lmms-eval/Video-MME",
        "MLVU/MLVU_Test",
        "lmms-eval/VideoMMMU",
        "zai-org/LVBench + lmms-eval/LVBench",
    ):
        assert repo in listing
    # a bare environment; PYTHONPATH stands in for the project's editable install (the script has no sys.path bootstrap)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    proc = _cli("videomme", "--root", str(tmp_path), env=env)
    assert proc.returncode == 1
    assert "videomme: FAILED" in proc.stderr and "--mirror DIR" in proc.stderr


def test_data_prep_never_imports_eval():
    import ast

    for path in sorted((REPO / "data_prep").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [n for n in names if n == "eval" or n.startswith("eval.")], f"{path.name}:{node.lineno}"


def test_benchmark_videos_are_checked_through_the_hook_only(hub, tmp_path):
    _, mirror, _ = hub
    assert download.installed_media_lister() is benchmark_media
    assert download.installed_media_lister("no_such_package_xyz.tasks:media") is None
    report = download.fetch("lvbench", tmp_path, mirror=mirror, progress=False)  # no lister given
    assert report.videos is None
    assert any(n.startswith("videos not checked") for n in report.notes)
    training = download.fetch("videotemp_rl", tmp_path, mirror=mirror, progress=False)  # read from its jsonl files
    assert training.videos is not None and training.videos.missing == [] and training.videos.total >= 1
