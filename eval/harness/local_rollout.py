"""Run the VideoTemp-o3 agent loop through verl's real ``AgentLoopWorker`` in this process.

No Ray, no vLLM: the worker gets an LLM client object with verl's ``generate()`` signature
(:class:`~eval.harness.hf_server.HFServerClient` for a local ``transformers`` model,
:class:`~eval.harness.scripted_server.ScriptedServerClient` for scripted turns, or any other).
Everything else is what training runs: verl's config, dataset rows, agent-loop registry, the
post-processing that builds ``input_ids``/``position_ids``/``multi_modal_inputs``. Used by the tests
and the evaluation engines::

    config = compose_config(model_dir, ["data.max_response_length=2048"])
    rollout = LocalRollout(config, HFServerClient.from_pretrained(model_dir))
    batch = await rollout.generate([make_row(video, "What happens?")], n=4)
    for traj in rollout.trajectories(batch): print(traj["termination"], traj["final_answer"])
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import recipe.videotemp_o3
from tools import protocol
from tools.protocol import AGENT_NAME

AGENT_MODULE = "recipe.videotemp_o3.agent_loop"
CONFIG_DIR = Path(recipe.videotemp_o3.__file__).resolve().parent / "config"
GRPO_CONFIG_NAME = "videotemp_o3_grpo"
AGENT_LOOP_CONFIG = CONFIG_DIR / "agent_loop.yaml"


def _verl_config_dir() -> str:
    import verl.trainer.config as verl_config

    return str(Path(verl_config.__file__).resolve().parent)


def compose_config(
    model_path: str | os.PathLike, overrides: Sequence[str] = (), *, use_recipe_config: bool = True
) -> DictConfig:
    """The trainer config the agent-loop worker reads, composed by hydra, with CPU-friendly overrides.

    Composes ``recipe/videotemp_o3/config/videotemp_o3_grpo.yaml`` when present (else verl's
    ``ppo_trainer``), points it at ``model_path`` and at our agent-loop list, and applies
    ``overrides`` last (hydra override syntax, e.g. ``"data.max_response_length=1024"``).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    recipe_cfg = CONFIG_DIR / f"{GRPO_CONFIG_NAME}.yaml"
    if use_recipe_config and recipe_cfg.exists():
        config_dir, config_name = str(CONFIG_DIR), GRPO_CONFIG_NAME
    else:
        config_dir, config_name = _verl_config_dir(), "ppo_trainer"
    base = [
        f"actor_rollout_ref.model.path={Path(model_path).resolve()}",
        "actor_rollout_ref.rollout.name=vllm",  # never imported by the in-process worker
        f"actor_rollout_ref.rollout.agent.default_agent_loop={AGENT_NAME}",
        "actor_rollout_ref.rollout.calculate_log_probs=true",
    ]
    if AGENT_LOOP_CONFIG.exists():
        base.append(f"actor_rollout_ref.rollout.agent.agent_loop_config_path={AGENT_LOOP_CONFIG}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose(config_name=config_name, overrides=[*base, *overrides])
    return config


def make_row(
    video_path: str | os.PathLike,
    question: str,
    *,
    index: int = 0,
    duration: float | None = None,
    fps: float = protocol.VIDEO_FPS,
    max_frames: int = protocol.TRAIN_MAX_FRAMES,
    min_pixels: int = protocol.TRAIN_PIXELS,
    max_pixels: int = protocol.TRAIN_PIXELS,
    data_source: str = "local",
    ground_truth: Any = None,
    extra_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A dataset row as ``RLHFDataset`` hands it to the agent loop (``raw_prompt`` already built)."""
    path = str(Path(video_path).resolve())
    messages = protocol.build_prompt_messages(question)
    video_block = {
        "type": "video",
        "video": path,
        "fps": fps,
        "max_frames": max_frames,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
    }
    text = messages[1]["content"].replace(protocol.VIDEO_PLACEHOLDER, "", 1).lstrip("\n")
    messages[1] = {"role": "user", "content": [video_block, {"type": "text", "text": text}]}
    info = {"index": index, "video_path": path, "duration": duration, "tools_kwargs": {}, "data_type": "qa"}
    info.update(extra_info or {})
    return {
        "raw_prompt": messages,
        "data_source": data_source,
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": info,
        "index": index,
        "tools_kwargs": {},
        "interaction_kwargs": {},
        "agent_name": AGENT_NAME,
    }


def rows_from_parquet(path: str | os.PathLike, config: DictConfig, tokenizer: Any, processor: Any) -> list[dict]:
    """Rows of a parquet file exactly as verl's ``RLHFDataset`` (``config.data``) yields them."""
    from verl.utils.dataset.rl_dataset import RLHFDataset

    dataset = RLHFDataset(data_files=[str(path)], tokenizer=tokenizer, config=config.data, processor=processor)
    return [dataset[i] for i in range(len(dataset))]


def rows_to_batch(rows: Iterable[dict[str, Any]], n: int = 1) -> "DataProto":  # noqa: F821
    """A ``DataProto`` of ``rows``, each repeated ``n`` times (interleaved, like the trainer)."""
    from verl.protocol import DataProto
    from verl.utils.dataset.rl_dataset import collate_fn

    items = []
    for row in rows:
        item = dict(row)
        item.setdefault("dummy_tensor", torch.tensor([0], dtype=torch.uint8))
        item.setdefault("agent_name", AGENT_NAME)
        item.setdefault("extra_info", {})
        item.setdefault("index", (item["extra_info"] or {}).get("index", len(items)))
        item.setdefault("tools_kwargs", {})
        item.setdefault("uid", uuid.uuid4().hex)
        items.append(item)
    if not items:
        raise ValueError("no rows to roll out")
    batch = DataProto.from_single_dict(collate_fn(items))
    return batch.repeat(repeat_times=n, interleave=True) if n > 1 else batch


class LocalRollout:
    """verl's ``AgentLoopWorker`` driven in-process with any LLM client.

    Args:
        config: a composed trainer config (:func:`compose_config`).
        client: object with verl's ``LLMServerClient.generate`` signature.
        agent_kwargs: overrides of the agent-loop entry's (``AGENT_NAME``) keyword arguments (e.g.
            ``{"max_tokens_per_turn": 64}``). verl's agent-loop registry is process-wide: the entry
            is rebuilt from the config by every ``LocalRollout``, so the last one created wins.
    """

    def __init__(self, config: DictConfig, client: Any, agent_kwargs: dict[str, Any] | None = None):
        from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

        import recipe.videotemp_o3.agent_loop  # noqa: F401  (registers AGENT_NAME)

        self.config = config
        self.client = client
        _agent_loop_registry[AGENT_NAME] = {"_target_": f"{AGENT_MODULE}.VideoTempAgentLoop"}
        self.worker = _worker_class()(config, llm_client=client)  # re-reads agent_loop_config_path
        entry = _agent_loop_registry[AGENT_NAME]
        entry = OmegaConf.to_container(entry) if isinstance(entry, DictConfig) else dict(entry)
        entry.update(agent_kwargs or {})
        _agent_loop_registry[AGENT_NAME] = entry
        self.tokenizer = self.worker.tokenizer
        self.processor = self.worker.processor

    async def generate(self, rows: Sequence[dict[str, Any]], n: int = 1, *, validate: bool = False) -> "DataProto":  # noqa: F821
        """Roll out every row ``n`` times; the batch verl's trainer would receive."""
        batch = rows_to_batch(rows, n)
        batch.meta_info["validate"] = validate
        batch.meta_info.setdefault("global_steps", 0)
        return await self.worker.generate_sequences(batch)

    def trajectories(self, batch: "DataProto") -> list[dict[str, Any]]:  # noqa: F821
        """Per sample: texts, turns, tool ranges, answer, clip count, termination and token counts."""
        out = []
        nt = batch.non_tensor_batch
        prompt_width = batch.batch["prompts"].shape[1]
        for i in range(len(batch)):
            attention = batch.batch["attention_mask"][i]
            prompt_ids = batch.batch["prompts"][i][attention[:prompt_width].bool()].tolist()
            resp_valid = attention[prompt_width:].bool()
            response_ids = batch.batch["responses"][i][resp_valid].tolist()
            mask = batch.batch["response_mask"][i][resp_valid]
            media = _get(nt, "multi_modal_data", i) or {}
            videos = media.get("videos") or []
            out.append(
                {
                    "uid": _get(nt, "uid", i),
                    "index": _get(nt, "index", i),
                    "prompt_text": self.tokenizer.decode(prompt_ids, skip_special_tokens=False),
                    "response_text": self.tokenizer.decode(response_ids, skip_special_tokens=False),
                    "turn_texts": list(_get(nt, "turn_texts", i) or []),
                    "tool_ranges": list(_get(nt, "tool_ranges", i) or []),
                    "final_answer": _get(nt, "final_answer", i),
                    "answered": bool(_get(nt, "answered", i)),
                    "n_tool_calls": int(_get(nt, "n_tool_calls", i) or 0),
                    "n_clips": int(_get(nt, "n_clips", i) or 0),
                    "n_videos": len(videos),
                    "termination": _get(nt, "termination", i),
                    "num_turns": int(_get(nt, "__num_turns__", i) or 0),
                    "prompt_tokens": len(prompt_ids),
                    "response_tokens": len(response_ids),
                    "generated_tokens": int(mask.sum().item()),
                }
            )
        return out


def _worker_class() -> type:
    """``AgentLoopWorker`` that also returns each sample's ``multi_modal_data`` (the decoded videos).

    The trainer only needs ``multi_modal_inputs``; callers here (tests, eval) want the frames too.
    """
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    class _Worker(AgentLoopWorker):
        def _postprocess(self, inputs, input_non_tensor_batch=None, validate=False):
            output = super()._postprocess(inputs, input_non_tensor_batch=input_non_tensor_batch, validate=validate)
            media = np.empty(len(inputs), dtype=object)
            media[:] = [item.multi_modal_data for item in inputs]
            output.non_tensor_batch["multi_modal_data"] = media
            return output

    return _Worker


def _get(non_tensor: dict[str, np.ndarray], key: str, i: int) -> Any:
    values = non_tensor.get(key)
    if values is None:
        return None
    value = values[i]
    return value.item() if isinstance(value, np.generic) else value


def config_to_yaml(config: DictConfig) -> str:
    """The resolved config as YAML (for logging what a local run used)."""
    return OmegaConf.to_yaml(config, resolve=True)
