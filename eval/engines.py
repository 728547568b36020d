"""Engines that run ``VideoTempAgentLoop`` (the training agent loop itself) over eval samples.

All three share one interface, :class:`Engine`: ``await engine.run_batch(samples)`` returns one
trajectory dict per sample (``LocalRollout.trajectories`` keys), in sample order.

* ``verl``: verl's standalone rollout: vLLM replicas on Ray (data parallel over every GPU of every
  node), ``AgentLoopManager`` workers running our loop. On a CPU machine with verl's CPU platform selected
  (``recipe/videotemp_o3/cpu_platform.py``) it runs one vLLM CPU replica.
* ``transformers``: the loop through verl's ``AgentLoopWorker`` in-process, a ``transformers`` model
  as the server (CPU or one GPU).
* ``scripted``: the same in-process loop with scripted turn texts (known answers; tests, dry runs).
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

from eval.tasks.base import EvalSample, image_prompt_content
from tools import protocol

ENGINES = ("verl", "transformers", "scripted")


@dataclass
class EvalSettings:
    """Everything that decides the predictions; written beside them and printed by the scorer.

    Defaults are the reference eval settings of the paper's numbers.
    """

    benchmark: str = ""
    model: str = ""
    engine: str = "verl"
    max_frames: int = protocol.EVAL_MAX_FRAMES
    max_pixels: int = protocol.EVAL_PIXELS
    min_pixels: int = protocol.EVAL_PIXELS  # min = max, as the reference's eval
    fps: float = protocol.VIDEO_FPS
    temperature: float = 0.1
    top_p: float = 1.0
    max_new_tokens: int = 4096  # per assistant turn
    max_turns: int = protocol.MAX_ASSISTANT_TURNS
    clip_caption: bool = False
    with_image: bool = True  # a sample's image (Video-MMMU Adaptation) shown after the video, as the reference
    prompt_length: int = 40960
    response_length: int = 40960
    max_model_len: int = 81920
    batch_size: int = 0  # samples per engine call (0: engine default)
    tensor_parallel: int = 1
    n_gpus_per_node: int = 8
    nnodes: int = 1
    gpu_memory_utilization: float = 0.8
    # vLLM's multimodal processor cache (GiB). The reference evaluated with it (and prefix caching) off; with both
    # off vLLM names media per request and re-encodes the prompt video on every turn (3x per sample,
    # benchmarks/vllm_multiturn_cache.py). The cache holds preprocessed inputs keyed by content, so outputs are the
    # same with it on; 0 restores the reference's setting exactly. Prefix caching stays off, as the reference.
    mm_processor_cache_gb: float = 4.0
    script: str | None = None  # scripted engine: JSON file of turn texts
    seed: int = 0  # each request's seed comes from (seed, sample id, turn): eval/seeding.py
    model_revision: str | None = None  # the hub commit of a hub model (resolved at start)
    prompt_version: str = ""
    git_commit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prompt_version(sample_prompts: Sequence[str] = ()) -> str:
    """Short hash of the system prompt, feedback texts and the benchmark's prompt template(s)."""
    digest = hashlib.sha256()
    for text in (protocol.SYSTEM_PROMPT, protocol.TOOL_SUCCESS_TEXT, protocol.TOOL_FAILURE_TEXT, *sample_prompts):
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def sample_row(sample: EvalSample, index: int, settings: EvalSettings) -> dict[str, Any]:
    """The agent-loop dataset row of one sample (RLHFDataset shape, eval frame budget)."""
    from eval.harness.local_rollout import make_row

    row = make_row(
        sample.video,
        sample.question,
        index=index,
        duration=sample.duration,
        fps=settings.fps,
        max_frames=settings.max_frames,
        min_pixels=settings.min_pixels,
        max_pixels=settings.max_pixels,
        data_source=sample.benchmark,
        ground_truth=sample.answer if sample.answer is not None else sample.span,
        extra_info={"sample_id": sample.id, "data_type": sample.kind},
    )
    if sample.image and settings.with_image:  # Video-MMMU Adaptation: [video, text before <image 1>, image, text after]
        # No min/max_pixels: qwen-vl-utils' image defaults (4 to 16,384 merged patches), the processor's own range.
        content = row["raw_prompt"][1]["content"]
        content[1:] = image_prompt_content(content[1]["text"], str(Path(sample.image).resolve()))
    return row


def agent_loop_yaml(settings: EvalSettings, out_dir: Path) -> Path:
    """An agent-loop list (verl ``agent_loop_config_path``) with this run's per-turn budget and turn limit."""
    entry = {
        "name": protocol.AGENT_NAME,
        "_target_": "eval.seeding.EvalAgentLoop",  # the training loop + per-sample seeds
        "eval_seed": settings.seed,
        "max_tokens_per_turn": settings.max_new_tokens,
        "max_assistant_turns": settings.max_turns,
        "loop_rules": "eval",  # the reference's eval loop (no clip cap; a malformed turn ends it)
        "clip_caption": settings.clip_caption,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"agent_loop.yaml.partial-{os.getpid()}"  # removed at close, or at the next start after a kill
    path.write_text(json.dumps([entry]), encoding="utf-8")  # JSON is YAML
    return path


def config_overrides(settings: EvalSettings, agent_yaml: Path) -> list[str]:
    """Hydra overrides shared by every engine: budgets, sampling, our agent loop."""
    return [
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_yaml}",
        f"actor_rollout_ref.rollout.agent.default_agent_loop={protocol.AGENT_NAME}",
        f"data.max_prompt_length={settings.prompt_length}",
        f"data.max_response_length={settings.response_length}",
        f"actor_rollout_ref.rollout.prompt_length={settings.prompt_length}",
        f"actor_rollout_ref.rollout.response_length={settings.response_length}",
        f"actor_rollout_ref.rollout.max_model_len={settings.max_model_len}",
        f"actor_rollout_ref.rollout.temperature={settings.temperature}",
        f"actor_rollout_ref.rollout.top_p={settings.top_p}",
        "actor_rollout_ref.rollout.calculate_log_probs=false",
        "actor_rollout_ref.rollout.n=1",
    ]


class Engine(ABC):
    """Runs the agent loop over a batch of samples."""

    name: str = ""
    default_batch_size: int = 1

    async def start(self) -> None:
        """Start servers and workers (inside the event loop that will run the batches)."""

    @abstractmethod
    async def run_batch(self, samples: Sequence[EvalSample], start_index: int = 0) -> list[dict[str, Any]]:
        """One trajectory dict per sample, in order."""

    def close(self) -> None:
        """Release servers and workers."""


class LocalEngine(Engine):
    """The in-process ``AgentLoopWorker`` (``LocalRollout``) with a given LLM client."""

    def __init__(self, settings: EvalSettings, out_dir: Path, client_factory):
        from eval.harness.local_rollout import LocalRollout, compose_config

        self.settings = settings
        self._yaml = agent_loop_yaml(settings, out_dir)
        overrides = config_overrides(settings, self._yaml)
        config = compose_config(settings.model, overrides)
        self.rollout = LocalRollout(config, client_factory(config))

    async def run_batch(self, samples: Sequence[EvalSample], start_index: int = 0) -> list[dict[str, Any]]:
        rows = [sample_row(s, start_index + i, self.settings) for i, s in enumerate(samples)]
        batch = await self.rollout.generate(rows, n=1)
        return self.rollout.trajectories(batch)

    def close(self) -> None:
        self._yaml.unlink(missing_ok=True)


class TransformersEngine(LocalEngine):
    """A ``transformers`` model as the LLM server (``eval.harness.hf_server.HFServerClient``)."""

    name = "transformers"
    default_batch_size = 1

    def __init__(self, settings: EvalSettings, out_dir: Path):
        from eval.harness.hf_server import HFServerClient

        super().__init__(
            settings,
            out_dir,
            lambda config: HFServerClient.from_pretrained(
                settings.model, default_max_tokens=settings.max_new_tokens, seed=settings.seed
            ),
        )


def load_script(path: str | None) -> dict[str, list[str]]:
    """Scripted turns: ``{sample id: [turn text, ...]}`` (``"*"``: every other sample)."""
    if not path:
        return {"*": ["<think>No clip needed.</think><answer>A</answer>"]}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(t, str) for t in v) for v in data.values()
    ):
        raise ValueError(f"{path}: expected a JSON object mapping sample id to a list of turn texts")
    return data


class ScriptedEngine(LocalEngine):
    """Scripted turn texts as the LLM server (``eval.harness.scripted_server``); the loop runs for real.

    Samples run one at a time, so every request belongs to the current sample.
    """

    name = "scripted"
    default_batch_size = 1

    def __init__(self, settings: EvalSettings, out_dir: Path):
        from eval.harness.scripted_server import ScriptedServerClient

        script = load_script(settings.script)
        self._current: str | None = None

        def turn_text(request) -> str:
            turns = script.get(str(self._current)) or script.get("*")
            if not turns:
                raise KeyError(
                    f"scripted engine: no turns for sample {self._current!r} and no '*' entry in {settings.script}"
                )
            return turns[min(request.turn, len(turns) - 1)]

        def factory(config):
            from verl.utils.tokenizer import hf_tokenizer

            return ScriptedServerClient(hf_tokenizer(settings.model), turn_text)

        super().__init__(settings, out_dir, factory)

    async def run_batch(self, samples: Sequence[EvalSample], start_index: int = 0) -> list[dict[str, Any]]:
        out = []
        for i, sample in enumerate(samples):
            self._current = sample.id
            out.extend(await super().run_batch([sample], start_index + i))
        return out


# the caller's settings that every Ray worker needs too
_WORKER_ENV = (
    "FORCE_QWENVL_VIDEO_READER",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "PYTHONPATH",
    "VERL_USE_EXTERNAL_MODULES",
    "VERL_PLATFORM",
    "VERL_ENGINE_DEVICE",
    "VLLM_CPU_KVCACHE_SPACE",
    "PYTHONWARNINGS",  # tools.cli.quiet_verl_warnings: the filter of verl's optional-engine warnings
)


def ray_init_from_config(config, extra_env: Sequence[str] = (), **kwargs: Any) -> None:
    """``ray.init`` (unless Ray is up) with the config's ``ray_kwargs.ray_init`` (on CPU: logical GPU slots and the
    platform's env vars) plus the caller's :data:`_WORKER_ENV` (and ``extra_env``) variables in every worker."""
    import ray
    from omegaconf import OmegaConf

    if ray.is_initialized():
        return
    init = OmegaConf.to_container(config.ray_kwargs.ray_init, resolve=True)
    init = {k: v for k, v in init.items() if v is not None}
    env = dict((init.pop("runtime_env", None) or {}).get("env_vars") or {})
    env.update({k: v for k, v in os.environ.items() if k in (*_WORKER_ENV, *extra_env)})
    env.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
    ray.init(runtime_env={"env_vars": env}, **init, **kwargs)


def platform_settings(settings: EvalSettings) -> EvalSettings:
    """``settings`` as the verl engine runs them here: on verl's CPU platform one vLLM replica on one logical GPU
    (``recipe/videotemp_o3/config/platform/cpu_grpo.yaml``), so that the settings file says what ran."""
    from recipe.videotemp_o3 import cpu_platform

    if settings.engine == "verl" and cpu_platform.active():
        settings.n_gpus_per_node, settings.nnodes, settings.tensor_parallel = 1, 1, 1
    return settings


def _require_gpu() -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(
            "error: the verl engine found no GPU. On a CPU machine, select verl's CPU platform first:\n"
            '  eval "$(python -m recipe.videotemp_o3.cpu_platform)"   (then vLLM runs on the CPU)'
        )


class VerlEngine(Engine):
    """verl's standalone rollout: ``LLMServerManager`` (vLLM replicas on Ray, no trainer) + ``AgentLoopManager``.

    Replicas = ``n_gpus_per_node * nnodes / tensor_parallel``; the batch is split over
    ``rollout.agent.num_workers`` agent-loop workers, which route requests across replicas.
    """

    name = "verl"
    default_batch_size = 256

    def __init__(self, settings: EvalSettings, out_dir: Path):
        from eval.harness.local_rollout import compose_config
        from recipe.videotemp_o3 import cpu_platform

        self.settings = settings
        self.on_cpu = cpu_platform.active()
        if self.on_cpu:
            platform_settings(settings)
        else:
            _require_gpu()
        self._yaml = agent_loop_yaml(settings, out_dir)
        overrides = (
            (["+platform=cpu_grpo"] if self.on_cpu else [])
            + config_overrides(settings, self._yaml)
            + [
                f"trainer.n_gpus_per_node={settings.n_gpus_per_node}",
                f"trainer.nnodes={settings.nnodes}",
                f"actor_rollout_ref.rollout.nnodes={settings.nnodes}",
                f"actor_rollout_ref.rollout.tensor_model_parallel_size={settings.tensor_parallel}",
                f"actor_rollout_ref.rollout.gpu_memory_utilization={settings.gpu_memory_utilization}",
                "actor_rollout_ref.rollout.load_format=auto",  # no trainer syncs weights: load from disk
                "actor_rollout_ref.rollout.skip_tokenizer_init=false",
                "actor_rollout_ref.rollout.enable_prefix_caching=false",  # as the reference eval
                "+actor_rollout_ref.rollout.engine_kwargs.vllm.limit_mm_per_prompt={video:10,image:1}",
                f"actor_rollout_ref.rollout.engine_kwargs.vllm.mm_processor_cache_gb={settings.mm_processor_cache_gb}",
            ]
        )
        self.config = compose_config(settings.model, overrides)
        from verl.utils.tokenizer import hf_tokenizer

        self._reader = SimpleNamespace(tokenizer=hf_tokenizer(settings.model))

    async def start(self) -> None:
        from verl.experimental.agent_loop.agent_loop import AgentLoopManager
        from verl.workers.rollout.llm_server import LLMServerManager

        ray_init_from_config(self.config, address=os.environ.get("RAY_ADDRESS"))
        self.servers = await LLMServerManager.create(config=self.config, worker_group=None)
        self.manager = await AgentLoopManager.create(
            config=self.config, llm_client=self.servers.get_client(), reward_loop_worker_handles=None
        )

    async def run_batch(self, samples: Sequence[EvalSample], start_index: int = 0) -> list[dict[str, Any]]:
        from verl.protocol import pad_dataproto_to_divisor, unpad_dataproto

        from eval.harness.local_rollout import LocalRollout, rows_to_batch

        rows = [sample_row(s, start_index + i, self.settings) for i, s in enumerate(samples)]
        batch = rows_to_batch(rows)
        batch.meta_info.update(validate=False, global_steps=0)
        padded, pad = pad_dataproto_to_divisor(batch, len(self.manager.agent_loop_workers))
        output = await self.manager.generate_sequences(padded)
        output = unpad_dataproto(output, pad)
        return LocalRollout.trajectories(self._reader, output)

    def close(self) -> None:
        self._yaml.unlink(missing_ok=True)


def make_engine(settings: EvalSettings, out_dir: Path) -> Engine:
    """The engine named by ``settings.engine``."""
    classes = {"verl": VerlEngine, "transformers": TransformersEngine, "scripted": ScriptedEngine}
    if settings.engine not in classes:
        raise ValueError(f"unknown engine {settings.engine!r}; choose one of {', '.join(ENGINES)}")
    return classes[settings.engine](settings, out_dir)
