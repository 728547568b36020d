"""The reward block of the recipe config: verl composes it, loads the function and passes the kwargs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from reward_helpers import answer_turn, decoded_response, qa_truth

from reward_fns.videotemp import RewardSettings, compute_score

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "recipe" / "videotemp_o3" / "config"
CONFIG_NAME = "videotemp_o3_grpo"
AGREED_KWARGS = {
    "acc_weight": 1.0,
    "iou_weight": 1.0,
    "format_weight": 1.0,
    "sigma": 0.1,
    "penalty": 0.1,
    "iou_low": 0.2,
    "iou_high": 0.8,
}


def test_agreed_kwargs_are_the_reward_defaults():
    assert RewardSettings.from_kwargs(AGREED_KWARGS) == RewardSettings()


def test_verl_loads_the_reward_function_from_pkg_path_with_kwargs():
    from verl.trainer.ppo.reward import get_custom_reward_fn

    overrides = [
        "actor_rollout_ref.rollout.name=vllm",
        "reward.custom_reward_function.path=pkg://reward_fns.videotemp",
        "reward.custom_reward_function.name=compute_score",
        "+reward.custom_reward_function.reward_kwargs={penalty: 0.5, format_weight: 2.0}",
    ]
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(config_name="ppo_trainer", overrides=overrides)
    reward_fn = get_custom_reward_fn(config)
    assert reward_fn.func.__name__ == "_call_with_kwargs" and reward_fn.args[0] is compute_score
    result = reward_fn(
        data_source="videotemp",
        solution_str=decoded_response([answer_turn("C")]),
        ground_truth=qa_truth("C"),
        extra_info={},
        penalty=0.0,
    )  # config kwargs win
    assert result["iou"] == pytest.approx(-0.5)
    assert result["score"] == pytest.approx(1.0 - 0.5 + 2.0)


def composed_recipe_config() -> dict:
    assert (CONFIG_DIR / f"{CONFIG_NAME}.yaml").exists()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "verl.trainer.main_ppo",
            f"--config-path={CONFIG_DIR}",
            f"--config-name={CONFIG_NAME}",
            "--cfg",
            "job",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return yaml.safe_load(proc.stdout)


@pytest.fixture(scope="module")
def recipe_config() -> dict:
    return composed_recipe_config()


def test_recipe_config_names_the_reward_function_and_kwargs(recipe_config):
    reward_fn = recipe_config["reward"]["custom_reward_function"]
    assert reward_fn["path"] == "pkg://reward_fns.videotemp"
    assert reward_fn["name"] == "compute_score"
    assert {k: float(v) for k, v in reward_fn["reward_kwargs"].items()} == AGREED_KWARGS
    assert recipe_config["reward"]["reward_manager"]["name"] == "naive"
    assert "custom_reward_function" not in recipe_config or not recipe_config["custom_reward_function"].get("path")


def test_recipe_config_enables_training_reward_curves(recipe_config):
    sampler = recipe_config["trainer"]["v1"]["sampler"]["custom_sampler"]
    assert sampler.get("path"), "trainer.v1.sampler.custom_sampler must be set (per-step reward curves)"
    mode = recipe_config["trainer"]["v1"]["trainer_mode"]
    assert sampler["path"] == "pkg://reward_fns.training_metrics"
    assert sampler["name"] == ("RewardMetricsReplayBuffer" if mode == "sync" else "RewardMetricsReplayBufferAsync")
