"""Fixtures shared by the agent-loop tests: the tiny Qwen2.5-VL model dir, its processor, an index video."""

from __future__ import annotations

import pytest
from loop_helpers import index_video, tiny_model


@pytest.fixture(scope="module")
def model25(tmp_path_factory):
    return tiny_model(tmp_path_factory.getbasetemp(), "qwen2_5_vl")


@pytest.fixture(scope="module")
def processor25(model25):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model25)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A synthetic video whose frames encode their own index (loop_helpers.index_video)."""
    return index_video(tmp_path_factory.getbasetemp() / "index.mp4")
