"""Old name of :mod:`eval.tasks.annotations` (kept only for ``data_prep/make_synthetic.py``'s import)."""

from eval.tasks.annotations import ANNOTATIONS, GROUNDING_PROMPT  # noqa: F401
