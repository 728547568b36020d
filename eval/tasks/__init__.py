"""The benchmarks: one module of ``eval/tasks/`` per benchmark, each declaring ``TASKS = [Task(...)]``.

A benchmark module holds every fact about its benchmark: the public layout and loader, the prompt
templates, the scorer, the reader of the reference release's prediction files, the fixture writer of its
layout, and its download facts (``HUB``). Adding a benchmark = adding one module here; ``eval/run.py``,
``eval/run_all.sh`` (``python -m eval.tasks --list``), ``eval/score.py`` and the fixtures find it.
Shared code: :mod:`eval.tasks.base` (samples, readers), :mod:`eval.tasks.annotations` (the local annotation
format that the Charades-STA / ActivityNet-MR / NExT-GQA / ReXTime converters write).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from eval.tasks.base import GROUNDED_QA, GROUNDING, MCQ, BenchmarkError, EvalSample, Task, check_unique_ids
from tools.cli import ArgumentParser

_NOT_BENCHMARKS = {"base", "annotations", "fixtures"}


@lru_cache(maxsize=1)
def _registry() -> dict[str, Task]:
    tasks: list[Task] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _NOT_BENCHMARKS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        tasks.extend(getattr(module, "TASKS", []))
    tasks.sort(key=lambda t: (t.order, t.name))
    registry: dict[str, Task] = {}
    for task in tasks:
        if task.name in registry:
            raise RuntimeError(f"two benchmark modules declare the task {task.name!r}")
        registry[task.name] = task
    return registry


def all_tasks() -> dict[str, Task]:
    """Every benchmark by name, in ``run_all.sh`` order."""
    return dict(_registry())


def task_names(with_aliases: bool = False) -> list[str]:
    """Our benchmark names (plus every alias when ``with_aliases``)."""
    names = list(_registry())
    if with_aliases:
        names += [a for t in _registry().values() for a in t.aliases]
    return names


def get_task(name: str) -> Task:
    """The task called ``name`` (or one of its aliases, e.g. the reference's ``videotemp-g``)."""
    registry = _registry()
    if name in registry:
        return registry[name]
    for task in registry.values():
        if name in task.aliases:
            return task
    raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(task_names(with_aliases=True))}")


def benchmark_dir(name: str, data_root: str | Path) -> Path:
    """Default directory of a benchmark under a data root (``data_root/<dir>``)."""
    return Path(data_root) / get_task(name).directory


def load_benchmark(name: str, root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """Load benchmark ``name`` from its own directory ``root`` (sample ids checked unique)."""
    task = get_task(name)
    return check_unique_ids(task.load(Path(root), check_videos=check_videos), f"{task.name} in {root}")


def benchmark_media(name: str, root: str | Path) -> Iterator[tuple[str, str]]:
    """(sample id, path) of every video and image benchmark ``name``'s annotations in ``root`` name.

    The loader is the one source of each layout; ``data_prep/download.py`` finds this function through
    its ``BENCHMARK_MEDIA_HOOK`` to check a download (data_prep does not import eval).
    """
    for sample in load_benchmark(name, root, check_videos=False):
        yield sample.id, sample.video
        if getattr(sample, "image", None):
            yield sample.id, sample.image


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.tasks --list``: the benchmark names, one per line (``run_all.sh``'s default list)."""
    parser = ArgumentParser(description="List the benchmarks (one module of eval/tasks/ each).")
    parser.add_argument("--list", action="store_true", help="print the names, one per line")
    parser.add_argument("--describe", action="store_true", help="print name, directory, kind, aliases")
    args = parser.parse_args(argv)
    for task in _registry().values():
        if args.describe:
            print(f"{task.name}\t{task.directory}\t{task.kind}\t{','.join(task.aliases)}\t{task.description}")
        else:
            print(task.name)
    return 0


__all__ = [
    "BenchmarkError",
    "EvalSample",
    "GROUNDED_QA",
    "GROUNDING",
    "MCQ",
    "Task",
    "all_tasks",
    "benchmark_dir",
    "benchmark_media",
    "get_task",
    "load_benchmark",
    "task_names",
]

if __name__ == "__main__":
    sys.exit(main())
