"""verl's FSDP2 actor/ref engine workers on CPU (gloo, one rank, no Ray) on a VideoTempAgentLoop batch.

Runs ``tests/fsdp_actor_run.py`` in its own process (CPU platform selected before ``import verl``; ~20-60 s,
~1.5 GB). The batch: the real loop and clip tool with scripted turns, 4 videos per trajectory (prompt + 3
clips), mRoPE position ids (4, L).
"""

from __future__ import annotations

import numpy as np
import pytest
from vllm_helpers import run_script_for_json

pytestmark = pytest.mark.e2e

# actor in float32 vs a float32 transformers forward of the same ids: only the order of float ops differs
# (measured <= 1e-6); anything misaligned (a video, a position, a mask shifted by one) moves log-probs by
# far more than this
ACTOR_TOL = 1e-4
# ref in the production bf16 (8-bit significand: ~0.4% relative rounding of every activation; measured
# <= 0.032 on |log p| ~ 7)
REF_TOL = 0.1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_script_for_json("fsdp_actor_run.py", tmp_path_factory.mktemp("fsdp_actor"), timeout=600)


@pytest.mark.timeout(700)
def test_batch_has_several_videos_per_trajectory(run):
    assert len(run["samples"]) == 4
    for s in run["samples"]:
        assert s["n_videos"] == 4 and s["termination"] == "answer" and s["n_generated"] > 0
        assert s["positions_shape"][0] == 4  # text row + 3 mRoPE rows


@pytest.mark.timeout(700)
def test_actor_and_ref_log_probs_match_transformers(run):
    for s in run["samples"]:
        actor, ref, hf = (np.array(s[k]) for k in ("actor", "ref", "transformers"))
        assert len(actor) == len(hf) == s["n_generated"]
        assert np.abs(actor - hf).max() < ACTOR_TOL
        assert np.abs(ref - hf).max() < REF_TOL
        assert np.abs(ref - hf).max() > 0  # the ref really ran in bf16 (another engine than the actor)


@pytest.mark.timeout(700)
def test_update_actor_keeps_vit_frozen_and_trains_the_rest(run):
    grad_norm = run["metrics"]["grad_norm"]
    assert np.isfinite(grad_norm) and grad_norm > 0
    change, trainable = run["param_max_change"], run["trainable"]
    vit = [n for n in change if ".visual." in f".{n}" and ".merger." not in n]
    rest = [n for n in change if n not in vit]
    assert len(vit) > 10 and rest
    for name in vit:  # the recipe's ViT freeze: patch embedding and blocks untouched
        assert not trainable[name] and change[name] == 0.0, name
    for name in rest:  # merger + LLM: every tensor moved
        assert trainable[name] and change[name] > 0.0, name
