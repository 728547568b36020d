"""Tiny fixture benchmarks in every layout the loaders read (synthetic 64x48 videos, a few samples each).

Used by the tests and the CPU quick start::

    python -m eval.tasks.fixtures OUT_DIR          # OUT_DIR/<benchmark dir>/... for all benchmarks

Two source videos (8 s, 4 fps): ``a`` shows a red square during [2, 5) s, ``b`` a blue one during
[4, 7) s. Every benchmark module's ``fixture`` links or copies them under its own layout's names with the
helpers here.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

from data_prep.synthetic_video import Event
from tools.cli import ArgumentParser
from tools.files import atomic_write_text

VIDEO_SECONDS = 8.0
VIDEO_FPS = 4.0
EVENTS = {"a": Event(2.0, 5.0, "red"), "b": Event(4.0, 7.0, "blue")}
COLOUR_QUESTION = "What colour is the square that appears? A. red B. blue C. green D. yellow"


def place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1))


def write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def build_fixture_benchmarks(out_dir: str | Path, names: list[str] | None = None) -> dict[str, Path]:
    """Write every fixture benchmark (or those in ``names``) under ``out_dir``; returns benchmark name -> its directory.

    Each benchmark module's ``fixture(dir, sources)`` writes its own layout.
    """
    from data_prep.synthetic_video import write_index_video
    from eval.tasks import all_tasks

    out = Path(out_dir)
    src = {}
    for key, ev in EVENTS.items():
        path = out / "_source" / f"{key}.mp4"
        src[key] = (
            path
            if path.exists()
            else write_index_video(path, num_frames=int(VIDEO_SECONDS * VIDEO_FPS), fps=VIDEO_FPS, events=[ev])
        )
    dirs = {}
    for name, task in all_tasks().items():
        if names is not None and name not in names:
            continue
        dirs[name] = out / task.directory
        if task.fixture is not None:
            task.fixture(dirs[name], src)
    return dirs


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(
        description="Write tiny fixture benchmarks (every public layout) for tests and the CPU quick start."
    )
    parser.add_argument(
        "out_dir", type=Path, help="data root to write; each benchmark goes to its default directory below it"
    )
    args = parser.parse_args(argv)
    for name, path in build_fixture_benchmarks(args.out_dir).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
