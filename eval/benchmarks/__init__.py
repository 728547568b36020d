"""Benchmark loaders: ``BENCHMARKS[name](root) -> list[EvalSample]`` reading each public layout from a local directory."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from eval.benchmarks.base import GROUNDED_QA, GROUNDING, MCQ, BenchmarkError, EvalSample
from eval.benchmarks.local_sets import load_activitynet_mr, load_charades_sta, load_nextgqa, load_rextime
from eval.benchmarks.lvbench import load_lvbench
from eval.benchmarks.mlvu import load_mlvu
from eval.benchmarks.videomme import load_videomme
from eval.benchmarks.videommmu import load_videommmu
from eval.benchmarks.videotemp import load_videotemp, load_videotemp_grounding

Loader = Callable[..., list[EvalSample]]

# name -> (loader, default directory under the data root: the names data_prep/download.py writes)
BENCHMARKS: dict[str, tuple[Loader, str]] = {
    "videotemp": (load_videotemp, "videotemp_bench"),
    "videotemp_g": (load_videotemp_grounding, "videotemp_bench"),
    "videomme": (load_videomme, "videomme"),
    "mlvu": (load_mlvu, "mlvu"),
    "videommmu": (load_videommmu, "videommmu"),
    "lvbench": (load_lvbench, "lvbench"),
    "charades_sta": (load_charades_sta, "charades_sta"),
    "activitynet_mr": (load_activitynet_mr, "activitynet_mr"),
    "nextgqa": (load_nextgqa, "nextgqa"),
    "rextime": (load_rextime, "rextime"),
}


def benchmark_dir(name: str, data_root: str | Path) -> Path:
    """Default directory of a benchmark under a data root (``data_root/<dir>``)."""
    return Path(data_root) / BENCHMARKS[name][1]


def load_benchmark(name: str, root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """Load benchmark ``name`` from its own directory ``root``."""
    if name not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name][0](root, check_videos=check_videos)


__all__ = ["BENCHMARKS", "BenchmarkError", "EvalSample", "GROUNDED_QA", "GROUNDING", "MCQ", "benchmark_dir", "load_benchmark"]
