"""Old name of :mod:`eval.tasks`, kept for the importers outside eval/ not yet moved (``data_prep/make_synthetic.py``,
``tests/test_download.py``); new code imports :mod:`eval.tasks`. ``BENCHMARKS``: name -> (loader, directory)."""

from eval.tasks import BenchmarkError, EvalSample, all_tasks, benchmark_dir, load_benchmark  # noqa: F401

BENCHMARKS = {name: (task.load, task.directory) for name, task in all_tasks().items()}
