"""Old name of :mod:`eval.tasks.fixtures` (see :mod:`eval.benchmarks`)."""

from eval.tasks.fixtures import build_fixture_benchmarks  # noqa: F401
