"""The GRPO recipe config composes with verl 0.9.1 and holds the protocol's settings and token budget."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from tools import protocol

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "recipe" / "videotemp_o3" / "config"
TEMPLATE = CONFIG_DIR / "qwen2_5_vl_chat_template.jinja"
SCRIPT = REPO / "examples" / "run_videotemp_o3_grpo.sh"

REWARD_BLOCK = {
    "custom_reward_function": {
        "path": "pkg://reward_fns.videotemp",
        "name": "compute_score",
        "reward_kwargs": {
            "acc_weight": 1.0,
            "iou_weight": 1.0,
            "format_weight": 1.0,
            "sigma": 0.1,
            "penalty": 0.1,
            "iou_low": 0.2,
            "iou_high": 0.8,
        },
    }
}


def _cfg_job(cwd: Path, *overrides: str) -> dict:
    """`main_ppo --cfg job` in a subprocess (no training starts), parsed."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "verl.trainer.main_ppo",
            f"--config-path={CONFIG_DIR}",
            "--config-name=videotemp_o3_grpo",
            "--cfg",
            "job",
            *overrides,
        ],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return yaml.safe_load(res.stdout)


@pytest.fixture(scope="module")
def job() -> dict:
    return _cfg_job(REPO)


@pytest.fixture(scope="module")
def composed():
    """The same config composed in-process (resolvable, for verl's own validation)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="videotemp_o3_grpo")


def test_key_settings(job):
    arr = job["actor_rollout_ref"]
    rollout, actor = arr["rollout"], arr["actor"]
    assert job["algorithm"]["adv_estimator"] == "grpo"
    assert rollout["name"] == "vllm" and rollout["mode"] == "async"
    assert rollout["n"] == 8 and rollout["temperature"] == 1.0
    assert rollout["agent"]["default_agent_loop"] == "videotemp_agent"
    assert rollout["multi_turn"]["max_assistant_turns"] == protocol.MAX_ASSISTANT_TURNS
    assert rollout["engine_kwargs"]["vllm"]["limit_mm_per_prompt"]["video"] == 1 + 2 * protocol.MAX_CLIPS_PER_CALL
    assert rollout["enable_prefix_caching"] is True
    assert actor["optim"]["lr"] == 5e-6 and actor["optim"]["lr_warmup_steps_ratio"] == 0.05
    assert actor["use_kl_loss"] is True and actor["kl_loss_coef"] == 0.04 and actor["kl_loss_type"] == "low_var_kl"
    # ms-swift 3.10.0 GRPO defaults of the reference run (loss_type grpo, epsilon 0.2, scale_rewards group)
    assert actor["loss_agg_mode"] == "seq-mean-token-mean"
    assert actor["clip_ratio"] == actor["clip_ratio_low"] == actor["clip_ratio_high"] == 0.2
    assert job["algorithm"]["norm_adv_by_std_in_grpo"] is True and job["algorithm"]["use_kl_in_reward"] is False
    assert actor["freeze_vision_tower"] is True
    assert job["data"]["train_batch_size"] * rollout["n"] == 72  # 9 prompts x 8 per step (reference)
    assert actor["ppo_mini_batch_size"] == job["data"]["train_batch_size"]  # on-policy: one update per batch
    assert job["data"]["video_key"] == "videos" and job["data"]["return_raw_chat"] is True
    assert job["trainer"]["total_epochs"] == 1 and job["trainer"]["n_gpus_per_node"] == 8
    assert arr["model"]["path"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert job["ray_kwargs"]["ray_init"]["runtime_env"]["env_vars"]["FORCE_QWENVL_VIDEO_READER"] == "decord"


def test_reward_block_is_exact(job):
    assert job["reward"]["custom_reward_function"] == REWARD_BLOCK["custom_reward_function"]
    raw = yaml.safe_load((CONFIG_DIR / "videotemp_o3_grpo.yaml").read_text())
    assert raw["reward"] == REWARD_BLOCK


def test_token_budget_arithmetic(job):
    data, rollout = job["data"], job["actor_rollout_ref"]["rollout"]
    tokens_per_patch = protocol.TRAIN_PIXELS // (28 * 28)  # one token = 2 frames x 28 x 28 px
    assert tokens_per_patch == 64
    main_video = protocol.TRAIN_MAX_FRAMES // 2 * tokens_per_patch
    assert main_video == 16_384
    assert data["max_prompt_length"] == main_video + 2048
    clips_round = protocol.MAX_CLIPS_PER_CALL * (protocol.CLIP_MAX_FRAMES // 2) * tokens_per_patch
    assert clips_round == 6_144
    agent = yaml.safe_load((CONFIG_DIR / "agent_loop.yaml").read_text())[0]
    generated = protocol.MAX_ASSISTANT_TURNS * agent["max_tokens_per_turn"]
    rounds = protocol.MAX_ASSISTANT_TURNS - 1
    assert data["max_response_length"] == rounds * (clips_round + 128) + generated
    assert rollout["max_model_len"] == data["max_prompt_length"] + data["max_response_length"]
    assert job["actor_rollout_ref"]["actor"]["ppo_max_token_len_per_gpu"] >= rollout["max_model_len"]
    assert rollout["max_num_batched_tokens"] >= main_video


def test_tokens_per_frame_pair_match_the_processor():
    """A 224x224 (50,176 px) frame pair is 64 video tokens for the Qwen2.5-VL processor."""
    from model_helpers import tiny_model_dir, video_frames, video_metadata
    from verl.utils.tokenizer import build_multimodal_processor_inputs, hf_processor

    processor = hf_processor(str(tiny_model_dir("qwen2_5_vl")))
    frames = 8
    out = build_multimodal_processor_inputs(
        processor,
        text=["<|vision_start|><|video_pad|><|vision_end|>"],
        videos=[(video_frames(frames, 224, 224), video_metadata(frames))],
    )
    grid = out["video_grid_thw"][0]
    assert int(grid.prod()) // processor.video_processor.merge_size**2 == frames // 2 * 64


def test_verl_validates_the_composed_config(composed):
    import warnings

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config
    from verl.workers.config import RolloutConfig

    cfg = composed
    OmegaConf.resolve(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Disabled critic as adv_estimator != gae": intended
        assert need_reference_policy(cfg) and not need_critic(cfg)
    validate_config(cfg, use_reference_policy=True, use_critic=False)
    rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout, RolloutConfig)
    assert rollout.prompt_length == cfg.data.max_prompt_length
    assert rollout.response_length == cfg.data.max_response_length
    assert rollout.agent.default_agent_loop == "videotemp_agent"


def test_agent_loop_yaml_resolves_and_target_imports(monkeypatch):
    from verl.utils.import_utils import resolve_config_path

    monkeypatch.chdir(REPO)
    path = resolve_config_path("recipe/videotemp_o3/config/agent_loop.yaml")
    assert Path(path) == CONFIG_DIR / "agent_loop.yaml"
    entries = OmegaConf.load(path)
    (entry,) = [e for e in entries if e.name == "videotemp_agent"]
    assert entry._target_ == "recipe.videotemp_o3.agent_loop.VideoTempAgentLoop"
    assert entry.clip_fps == protocol.CLIP_FPS and entry.clip_min_frames == protocol.CLIP_MIN_FRAMES
    assert entry.clip_max_frames == protocol.CLIP_MAX_FRAMES
    # the RL rules' cap (the reference's timestamps[:3]) unless set here
    assert entry.loop_rules == "rl" and entry.max_clips_per_call is None
    assert protocol.loop_rules(entry.loop_rules).max_clips_per_call == protocol.MAX_CLIPS_PER_CALL == 3
    assert entry.max_assistant_turns == protocol.MAX_ASSISTANT_TURNS
    assert entry.clip_caption is False and entry.frame_cache_gb == 8
    module_name, class_name = entry._target_.rsplit(".", 1)
    if importlib.util.find_spec(module_name) is not None:
        assert isinstance(getattr(importlib.import_module(module_name), class_name), type)


def test_tool_config_loads_with_verl():
    from verl.tools.tool_registry import initialize_tools_from_config

    pytest.importorskip("tools.video_clip")
    tools = initialize_tools_from_config(str(CONFIG_DIR / "tool_config.yaml"))
    assert [t.name for t in tools] == [protocol.TOOL_NAME]
    assert tools[0].settings.max_clips == protocol.MAX_CLIPS_PER_CALL
    assert tools[0].settings.max_frames == protocol.CLIP_MAX_FRAMES


def test_launch_overrides_from_another_cwd(tmp_path):
    """What the launch script passes works from any CWD: absolute agent-loop path and the template text."""
    template = TEMPLATE.read_text().rstrip("\n")
    assert "'" not in template and "${" not in template  # it travels as a single-quoted hydra value
    job = _cfg_job(
        tmp_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={CONFIG_DIR / 'agent_loop.yaml'}",
        f"actor_rollout_ref.model.custom_chat_template='{template}'",
    )
    model = job["actor_rollout_ref"]["model"]
    assert model["custom_chat_template"] == template
    assert Path(job["actor_rollout_ref"]["rollout"]["agent"]["agent_loop_config_path"]).is_file()


def test_launch_script_dry_run_prints_command(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "MODEL": "/ckpt/sft", "TRAIN_FILES": "/d/train.parquet"}
    res = subprocess.run(
        ["bash", str(SCRIPT), "trainer.total_epochs=2"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "verl.trainer.main_ppo" in out and f"--config-path={CONFIG_DIR}" in out
    assert "actor_rollout_ref.model.path=/ckpt/sft" in out and "data.train_files=/d/train.parquet" in out
    assert f"agent_loop_config_path={CONFIG_DIR}/agent_loop.yaml" in out
    assert "custom_chat_template" in out and "trainer.total_epochs=2" in out


def test_multinode_script_dry_run(tmp_path):
    script = REPO / "examples" / "run_videotemp_o3_grpo_multinode.sh"
    env = {**os.environ, "DRY_RUN": "1", "ROLE": "head", "NNODES": "3"}
    res = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "ray start --head" in res.stdout and "NNODES=3" in res.stdout
    env.update(ROLE="worker", HEAD_ADDR="10.1.2.3")
    res = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "--address=10.1.2.3:6379" in res.stdout


def test_agent_name_in_yaml_configs_is_the_protocol_constant():
    """The yaml configs spell the agent name out; it must be ``tools.protocol.AGENT_NAME``, the loop's registry key."""

    assert protocol.AGENT_NAME == "videotemp_agent"
    grpo = yaml.safe_load((CONFIG_DIR / "videotemp_o3_grpo.yaml").read_text())
    assert grpo["actor_rollout_ref"]["rollout"]["agent"]["default_agent_loop"] == protocol.AGENT_NAME
    entries = yaml.safe_load((CONFIG_DIR / "agent_loop.yaml").read_text())
    assert [e["name"] for e in entries] == [protocol.AGENT_NAME]


def test_importing_the_loop_keeps_the_yaml_entry():
    """verl registers the yaml entries at worker start and imports the loop at the first trajectory: the import must
    not replace the entry (and its settings) for every later trajectory, as a ``@register`` decorator would."""
    import importlib

    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    import recipe.videotemp_o3.agent_loop as agent_loop

    entry = {"_target_": "eval.harness.steered_loop.ProtocolSteeredAgentLoop", "max_tokens_per_turn": 7}
    saved = _agent_loop_registry.get(protocol.AGENT_NAME)
    _agent_loop_registry[protocol.AGENT_NAME] = entry
    try:
        importlib.reload(agent_loop)
        assert _agent_loop_registry[protocol.AGENT_NAME] is entry
    finally:
        if saved is None:
            _agent_loop_registry.pop(protocol.AGENT_NAME, None)
        else:
            _agent_loop_registry[protocol.AGENT_NAME] = saved
