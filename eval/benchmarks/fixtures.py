"""Tiny fixture benchmarks in every layout the loaders read (synthetic 64x48 videos, a few samples each).

Used by the tests and the CPU quick start::

    python -m eval.benchmarks.fixtures OUT_DIR          # OUT_DIR/<benchmark dir>/... for all benchmarks

Two source videos (8 s, 4 fps): ``a`` shows a red square during [2, 5) s, ``b`` a blue one during
[4, 7) s. Every layout links or copies them under its own names.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
from pathlib import Path

from data_prep.synthetic_video import Event, write_index_video

VIDEO_SECONDS = 8.0
VIDEO_FPS = 4.0
EVENTS = {"a": Event(2.0, 5.0, "red"), "b": Event(4.0, 7.0, "blue")}
COLOUR_QUESTION = "What colour is the square that appears? A. red B. blue C. green D. yellow"


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def build_fixture_benchmarks(out_dir: str | Path) -> dict[str, Path]:
    """Write every fixture benchmark under ``out_dir``; returns benchmark name -> its directory."""
    from eval.benchmarks import BENCHMARKS

    out = Path(out_dir)
    src = {
        key: write_index_video(out / "_source" / f"{key}.mp4", num_frames=int(VIDEO_SECONDS * VIDEO_FPS), fps=VIDEO_FPS, events=[ev])
        if not (out / "_source" / f"{key}.mp4").exists() else out / "_source" / f"{key}.mp4"
        for key, ev in EVENTS.items()
    }
    dirs = {name: out / sub for name, (_, sub) in BENCHMARKS.items()}

    vt = dirs["videotemp"]
    for key in src:
        _place(src[key], vt / "videos" / f"{key}.mp4")
    _write_jsonl(vt / "data.jsonl", [
        {"id": "vt0", "videos": ["videos/a.mp4"], "question": COLOUR_QUESTION, "answer": "A", "duration": 8.0, "timestamp": [2.0, 5.0]},
        {"id": "vt1", "videos": ["videos/b.mp4"], "question": COLOUR_QUESTION, "answer": "B", "duration": 8.0, "timestamp": [4.0, 7.0]},
        {"id": "vt2", "videos": ["videos/a.mp4"], "question": "When does the square appear? A. early B. late", "answer": "A", "duration": 8.0, "timestamp": [[2.0, 5.0]]},
    ])

    mme = dirs["videomme"]
    for key in src:
        _place(src[key], mme / "data" / f"{key}.mp4")
    opts = ["A. red", "B. blue", "C. green", "D. yellow"]
    _write_parquet(mme / "videomme" / "test-00000-of-00001.parquet", [
        {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Colours", "url": "", "videoID": "a",
         "question_id": "001-1", "task_type": "Object Recognition", "question": "What colour is the square?", "options": opts, "answer": "A"},
        {"video_id": "002", "duration": "medium", "domain": "Knowledge", "sub_category": "Colours", "url": "", "videoID": "b",
         "question_id": "002-1", "task_type": "Object Recognition", "question": "What colour is the square?", "options": opts, "answer": "B"},
        {"video_id": "002", "duration": "long", "domain": "Sports", "sub_category": "Timing", "url": "", "videoID": "b",
         "question_id": "002-2", "task_type": "Temporal Perception", "question": "Is the square there at the start?",
         "options": ["A. yes", "B. no", "C. partly", "D. unknown"], "answer": "B"},
    ])

    ml = dirs["mlvu"]
    for key in src:
        _place(src[key], ml / "video" / f"{key}.mp4")
    _write_json(ml / "test-ground-truth" / "test_mcq_gt.json", [
        {"video": "a.mp4", "duration": 8.0, "question": "What colour is the square?", "candidates": ["blue", "red", "green", "yellow"],
         "answer": "red", "question_type": "plotQA", "question_id": "ml0"},
        {"video": "b.mp4", "duration": 8.0, "question": "What colour is the square?", "candidates": ["blue", "red", "green", "yellow"],
         "answer": "blue", "question_type": "plotQA", "question_id": "ml1"},
        {"video": "b.mp4", "duration": 8.0, "question": "How many squares appear?", "candidates": ["none", "one", "two", "three"],
         "answer": "one", "question_type": "count", "question_id": "ml2"},
    ])

    mm = dirs["videommmu"]
    tracks = {"Perception": "a", "Comprehension": "b", "Adaptation": "a"}
    for track, key in tracks.items():
        _place(src[key], mm / track / f"{track.lower()}_{key}.mp4")
        rows = [{"id": f"{track.lower()}_{key}", "question": f"{track}: what colour is the square?", "options": ["red", "blue", "green"],
                 "answer": "A" if key == "a" else "B", "question_type": "multiple-choice", "image": None}]
        rows.append({"id": f"{track.lower()}_{key}", "question": "Describe the video.", "options": [], "answer": "a square",
                     "question_type": "open", "image": None})
        if track == "Adaptation":
            for row in rows:
                row["image"] = {"bytes": _png_bytes(), "path": "adaptation.png"}
        _write_parquet(mm / track / "test-00000-of-00001.parquet", rows)

    lv = dirs["lvbench"]
    _place(src["a"], lv / "a.mp4")
    _write_jsonl(lv / "video_info.meta.jsonl", [
        {"key": "a", "type": "cartoon", "qa": [
            {"uid": "101", "question": "What colour is the square?\n(A) red\n(B) blue\n(C) green\n(D) yellow", "answer": "A",
             "question_type": ["entity recognition"], "time_reference": "00:02-00:05"},
            {"uid": "102", "question": "When does it appear?\n(A) 0-2 s\n(B) 2-5 s\n(C) 5-8 s\n(D) never", "answer": "B",
             "question_type": ["temporal grounding", "key information retrieval"], "time_reference": "00:02-00:05"},
        ]},
    ])

    for name, query_a, query_b in (("charades_sta", "a red square appears", "a blue square appears"),
                                   ("activitynet_mr", "the red square is visible", "the blue square is visible")):
        d = dirs[name]
        for key in src:
            _place(src[key], d / "videos" / f"{key}.mp4")
        _write_jsonl(d / "annotations.jsonl", [
            {"id": f"{name}0", "video": "videos/a.mp4", "duration": 8.0, "query": query_a, "span": [2.0, 5.0]},
            {"id": f"{name}1", "video": "videos/b.mp4", "duration": 8.0, "query": query_b, "span": [4.0, 7.0]},
        ])
    for name in ("nextgqa", "rextime"):
        d = dirs[name]
        for key in src:
            _place(src[key], d / "videos" / f"{key}.mp4")
        _write_jsonl(d / "annotations.jsonl", [
            {"id": f"{name}0", "video": "videos/a.mp4", "duration": 8.0, "question": "What colour is the square?",
             "options": ["red", "blue", "green"], "answer": "A", "span": [2.0, 5.0]},
            {"id": f"{name}1", "video": "videos/b.mp4", "duration": 8.0, "question": "What colour is the square?",
             "options": ["red", "blue", "green"], "answer": 1, "span": [4.0, 7.0]},
        ])
    return dirs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write tiny fixture benchmarks (every public layout) for tests and the CPU quick start.")
    parser.add_argument("out_dir", type=Path, help="data root to write; each benchmark goes to its default directory below it")
    args = parser.parse_args(argv)
    for name, path in build_fixture_benchmarks(args.out_dir).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
