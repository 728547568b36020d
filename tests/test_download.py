"""data_prep/download.py against a local directory standing in for the hub: the layouts the loaders read."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from data_prep import download
from eval.benchmarks import BENCHMARKS, load_benchmark
from eval.benchmarks.fixtures import build_fixture_benchmarks

REPO = Path(__file__).resolve().parent.parent


def _zip(archive: Path, files: dict[str, Path]) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for name, path in files.items():
            zf.write(path, name)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


@pytest.fixture(scope="module")
def hub_mirror(tmp_path_factory):
    """Fixture benchmarks, and a mirror holding them the way the hub repositories ship them."""
    bench = tmp_path_factory.mktemp("bench")
    build_fixture_benchmarks(bench)
    mirror = tmp_path_factory.mktemp("mirror")
    # Video-MME: parquet + chunked video zips holding data/<id>.mp4
    vm = mirror / "lmms-lab/Video-MME"
    _copy(bench / "videomme/videomme/test-00000-of-00001.parquet", vm / "videomme/test-00000-of-00001.parquet")
    _zip(vm / "videos_chunked_01.zip", {f"data/{p.name}": p for p in sorted((bench / "videomme/data").glob("*.mp4"))})
    # MLVU: ground truth json + video/ folder
    ml = mirror / "MLVU/MLVU_Test"
    _copy(bench / "mlvu/test-ground-truth/test_mcq_gt.json", ml / "test-ground-truth/test_mcq_gt.json")
    for p in (bench / "mlvu/video").glob("*.mp4"):
        _copy(p, ml / "video" / p.name)
    # Video-MMMU: one folder per track
    for p in (bench / "videommmu").rglob("*"):
        if p.is_file():
            _copy(p, mirror / "lmms-lab/VideoMMMU" / p.relative_to(bench / "videommmu"))
    # LVBench: metadata + videos
    for p in (bench / "lvbench").iterdir():
        _copy(p, mirror / "zai-org/LVBench" / p.name)
    # VideoTemp-Bench (no hub id of its own): data.jsonl + a tar of the videos
    vt = mirror / "someorg/VideoTemp-Bench"
    _copy(bench / "videotemp_bench/data.jsonl", vt / "data.jsonl")
    vt.mkdir(parents=True, exist_ok=True)
    with tarfile.open(vt / "videos.tar.gz", "w:gz") as tf:
        tf.add(bench / "videotemp_bench/videos", arcname="videos")
    return bench, mirror


def _ids(name: str, root: Path) -> list[tuple[str, str, str]]:
    return [(s.id, Path(s.video).name, s.answer if isinstance(s.answer, str) else str(s.answer)) for s in load_benchmark(name, root)]


@pytest.mark.parametrize(
    "dataset,benchmarks",
    [("videomme", ["videomme"]), ("mlvu", ["mlvu"]), ("videommmu", ["videommmu"]), ("lvbench", ["lvbench"])],
)
def test_fetch_from_mirror_gives_the_loaders_layout(hub_mirror, tmp_path, dataset, benchmarks):
    bench, mirror = hub_mirror
    report = download.fetch(dataset, tmp_path, mirror=mirror)
    assert report.directory == tmp_path / dataset
    for name in benchmarks:
        assert BENCHMARKS[name][1] == dataset  # the loader's default directory is the dataset's name
        fetched = _ids(name, tmp_path / dataset)
        assert fetched and fetched == _ids(name, bench / dataset)


def test_videomme_archives_unpacked_once(hub_mirror, tmp_path):
    _, mirror = hub_mirror
    first = download.fetch("videomme", tmp_path, mirror=mirror)
    assert first.unpacked == ["videos_chunked_01.zip"]
    assert sorted(p.name for p in (tmp_path / "videomme/data").glob("*.mp4")) == ["a.mp4", "b.mp4"]
    again = download.fetch("videomme", tmp_path, mirror=mirror)  # resumed run: nothing to unpack again
    assert again.unpacked == []


def test_videotemp_bench_needs_a_repo_id_and_unpacks_tar(hub_mirror, tmp_path):
    bench, mirror = hub_mirror
    with pytest.raises(download.DownloadError, match="--repo-id videotemp_bench=ORG/NAME"):
        download.fetch("videotemp_bench", tmp_path, mirror=mirror)
    report = download.fetch("videotemp_bench", tmp_path, repo_id="someorg/VideoTemp-Bench", mirror=mirror)
    assert report.unpacked == ["videos.tar.gz"]
    for name in ("videotemp", "videotemp_g"):
        assert _ids(name, tmp_path / "videotemp_bench") == _ids(name, bench / "videotemp_bench")


def test_errors_are_clear(hub_mirror, tmp_path):
    _, mirror = hub_mirror
    with pytest.raises(download.DownloadError, match="unknown dataset 'nope'"):
        download.fetch("nope", tmp_path, mirror=mirror)
    with pytest.raises(download.DownloadError, match="not found in the mirror"):
        download.fetch("videomme", tmp_path, repo_id="other/Missing", mirror=mirror)
    (mirror / "broken/Data").mkdir(parents=True)
    with pytest.raises(download.DownloadError, match="missing: qa.jsonl, grounding.jsonl"):
        download.fetch("videotemp_rl", tmp_path, repo_id="broken/Data", mirror=mirror)


def test_cli_reports_unreachable_hub(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "data_prep/download.py"), "videomme", "--root", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 1
    assert "videomme: FAILED" in proc.stderr and "--mirror DIR" in proc.stderr
