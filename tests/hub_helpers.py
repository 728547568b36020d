"""A stand-in for the Hugging Face hub, laid out file for file the way the real repositories publish
(``/work/shared/design/REAL_DATA.md`` in the project notes; summarised in ``data_prep/download.py``):

* ``lmms-eval/Video-MME``: ``videomme/test-00000-of-00001.parquet``, ``videos_chunked_01.zip`` holding ``data/<id>.mp4``;
* ``MLVU/MLVU_Test``: ``test-ground-truth/test_mcq_gt.json`` and a split gzip tar in a subfolder,
  ``MLVU_Test/test_video.tar.gz.part-aa..ac`` whose members are ``video/<name>.mp4``;
* ``lmms-lab/VideoMMMU`` (the former id; the hub redirects it to ``lmms-eval/VideoMMMU``): track parquets and
  domain zips ``Art.zip``/``Science.zip`` holding ``<Domain>/<id>.mp4`` plus ``__MACOSX/`` junk;
* ``zai-org/LVBench`` (metadata only) and ``lmms-lab/LVBench`` (``video_chunks/videos_chunk_001.zip``, flat ``<key>.mp4``);
* ``Kwai-Keye/VideoTemp-Bench``: an annotation jsonl under a name of its own, ``videos/videos_part_0000.tar.gz``
  with ``LongVILA/<id>.mp4``;
* ``Kwai-Keye/VideoTemp-o3``: ``sft/*.jsonl``, ``sft_tool_call/*.jsonl``, ``rl/qa-1k.jsonl``, ``rl/grounding.jsonl``
  and webdataset shards ``sft_videos/videos_part_NNNN.tar.gz``, ``rl_videos/videos_part_NNNN.tar.gz`` that unpack
  at the dataset root (``ActivityNet/``, ``cropped_video/``, ``qa/``...).

The benchmark contents are the fixture benchmarks of ``eval.tasks.fixtures`` (two 8 s videos).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

from data_helpers import reference_rl_row, sft_row, write_jsonl

from eval.tasks.fixtures import build_fixture_benchmarks


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def _zip(archive: Path, files: dict[str, Path | bytes]) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for name, src in files.items():
            if isinstance(src, bytes):
                zf.writestr(name, src)
            else:
                zf.write(src, name)


def tar_gz_bytes(files: dict[str, Path | bytes]) -> bytes:
    """A gzip tar holding ``files`` (member name -> source file or bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, src in files.items():
            data = src if isinstance(src, bytes) else Path(src).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def split_parts(folder: Path, base: str, data: bytes, n: int) -> list[Path]:
    """``data`` cut into ``n`` files ``base.part-aa``, ``-ab``, ... (what ``split`` writes)."""
    size = -(-len(data) // n)
    return [_write(folder / f"{base}.part-a{chr(ord('a') + i)}", data[i * size : (i + 1) * size]) for i in range(n)]


def build_benchmark_hub(mirror: Path, bench: Path) -> None:
    """The public benchmarks and VideoTemp-Bench, in the hubs' layouts, from the fixture benchmarks in ``bench``."""
    vm = mirror / "lmms-eval/Video-MME"
    _copy(bench / "videomme/videomme/test-00000-of-00001.parquet", vm / "videomme/test-00000-of-00001.parquet")
    _zip(vm / "videos_chunked_01.zip", {f"data/{p.name}": p for p in sorted((bench / "videomme/data").glob("*.mp4"))})
    _zip(vm / "subtitle.zip", {"subtitle/a.srt": b"1\n00:00:00,000 --> 00:00:01,000\nhi\n"})  # not fetched

    ml = mirror / "MLVU/MLVU_Test"
    _copy(bench / "mlvu/test-ground-truth/test_mcq_gt.json", ml / "test-ground-truth/test_mcq_gt.json")
    videos = tar_gz_bytes({f"video/{p.name}": p for p in sorted((bench / "mlvu/video").glob("*.mp4"))})
    split_parts(ml / "MLVU_Test", "test_video.tar.gz", videos, 3)

    mm = mirror / "lmms-lab/VideoMMMU"  # the former id: download.py finds it as an alias of lmms-eval/VideoMMMU
    for track in ("Perception", "Comprehension", "Adaptation"):
        _copy(bench / f"videommmu/{track}/test-00000-of-00001.parquet", mm / f"{track}/test-00000-of-00001.parquet")
    clips = {p.stem: p for p in (bench / "videommmu").rglob("*.mp4")}
    _zip(
        mm / "Art.zip",
        {
            "Art/perception_a.mp4": clips["perception_a"],
            "__MACOSX/Art/._perception_a.mp4": b"\0junk",
            "Art/adaptation_a.mp4": clips["adaptation_a"],
        },
    )
    _zip(
        mm / "Science.zip",
        {"Science/comprehension_b.mp4": clips["comprehension_b"], "__MACOSX/Science/._comprehension_b.mp4": b"\0junk"},
    )

    _copy(bench / "lvbench/video_info.meta.jsonl", mirror / "zai-org/LVBench/video_info.meta.jsonl")
    (mirror / "zai-org/LVBench/README.md").write_text("metadata only\n")
    _zip(mirror / "lmms-lab/LVBench/video_chunks/videos_chunk_001.zip", {"a.mp4": bench / "lvbench/a.mp4"})

    vt = mirror / "Kwai-Keye/VideoTemp-Bench"
    rows = [json.loads(line) for line in (bench / "videotemp_bench/data.jsonl").read_text().splitlines() if line]
    for i, row in enumerate(rows):
        name = Path(row["videos"][0]).name
        # the release names videos relative to the data root; one row keeps a prefix from the authors' machine
        row["videos"] = [f"/mnt/data/videotemp/LongVILA/{name}" if i == 2 else f"LongVILA/{name}"]
    write_jsonl(vt / "annotations/videotemp_bench_test.jsonl", rows)
    _write(
        vt / "videos/videos_part_0000.tar.gz", tar_gz_bytes({"LongVILA/a.mp4": bench / "videotemp_bench/videos/a.mp4"})
    )
    _write(
        vt / "videos/videos_part_0001.tar.gz", tar_gz_bytes({"LongVILA/b.mp4": bench / "videotemp_bench/videos/b.mp4"})
    )


TRAINING_SFT = {"sft": ("activitynet", "charades", "video_r1_video"), "sft_tool_call": ("activitynet", "qvhighlight")}


def build_training_hub(mirror: Path, video_a: Path, video_b: Path) -> dict[str, int]:
    """``Kwai-Keye/VideoTemp-o3`` in its hub layout from two 8 s videos; returns the row count of each file."""
    repo = mirror / "Kwai-Keye/VideoTemp-o3"
    counts: dict[str, int] = {}
    sft_members: dict[str, Path | bytes] = {
        "ActivityNet/v_a.mp4": video_a,
        "Charades_v1/B.mp4": video_b,
        "Video-R1-data/r1_a.mp4": video_a,
        "QVhilights/q_b.mp4": video_b,
        "cropped_video/v_a_2_5.mp4": video_a,
    }
    for folder, names in TRAINING_SFT.items():
        for name in names:
            video = {
                "activitynet": "ActivityNet/v_a.mp4",
                "charades": "Charades_v1/B.mp4",
                "video_r1_video": "Video-R1-data/r1_a.mp4",
                "qvhighlight": "QVhilights/q_b.mp4",
            }[name]
            if folder == "sft":
                rows = [sft_row(video, [], answer="A"), sft_row(video, [], answer="B")]
            else:
                rows = [
                    sft_row(video, [(2.0, 5.0)], clips="files:cropped_video/v_a_2_5.mp4"),
                    sft_row(video, [(1.0, 4.0)], clips="range"),
                ]
            write_jsonl(repo / folder / f"{name}.jsonl", rows)
            counts[f"{folder}/{name}.jsonl"] = len(rows)
    qa = [
        reference_rl_row("qa/longvideo/a.mp4"),
        reference_rl_row("qa/longvideo/b.mp4", timestamp=((4.0, 7.0),), solution="A"),
    ]
    grounding = [
        reference_rl_row(
            "ActivityNet/v_a.mp4",
            data_type="grounding",
            solution="<answer>2.0 - 5.0</answer>",
            question="Find the red square.",
        ),
        reference_rl_row(
            "Charades_v1/B.mp4",
            data_type="grounding",
            timestamp=((4.0, 7.0),),
            solution="<answer>4.0 - 7.0</answer>",
            question="Find the blue square.",
        ),
    ]
    write_jsonl(repo / "rl/qa-1k.jsonl", qa)
    write_jsonl(repo / "rl/grounding.jsonl", grounding)
    counts["rl/qa-1k.jsonl"], counts["rl/grounding.jsonl"] = len(qa), len(grounding)
    members = list(sft_members.items())
    _write(repo / "sft_videos/videos_part_0000.tar.gz", tar_gz_bytes(dict(members[:3])))
    _write(repo / "sft_videos/videos_part_0001.tar.gz", tar_gz_bytes(dict(members[3:])))
    _write(
        repo / "rl_videos/videos_part_0000.tar.gz",
        tar_gz_bytes(
            {
                "qa/longvideo/a.mp4": video_a,
                "qa/longvideo/b.mp4": video_b,
                "ActivityNet/v_a.mp4": video_a,
                "Charades_v1/B.mp4": video_b,
            }
        ),
    )
    (repo / "README.md").write_text("VideoTemp-o3 training data\n")
    return counts


def build_hub(mirror: Path, bench: Path) -> dict[str, int]:
    """Fixture benchmarks in ``bench`` and the whole stand-in hub in ``mirror``; returns the training row counts."""
    build_fixture_benchmarks(bench)
    build_benchmark_hub(mirror, bench)
    return build_training_hub(mirror, bench / "_source/a.mp4", bench / "_source/b.mp4")
