"""Every change the recipe makes to verl's own code paths, and the one place that installs them.

Install point: :func:`install`. Importing this module calls it, which is how verl's worker processes get
the hooks: the GRPO config names the module in ``actor_rollout_ref.model.external_lib:
recipe.videotemp_o3.verl_hooks`` and verl imports it in every process that builds a model config (driver,
actor/ref/rollout workers). The SFT dataset imports it when ``data.freeze_vision_tower: true``; the agent
loop calls ``install(processor)`` for the processor-level fix. Every step is idempotent.

Hooks installed here:

* **ViT freeze** (:func:`install_vision_tower_freeze`): the reference trains merger + LLM with the vision
  tower frozen, in SFT and GRPO. verl 0.9.1 declares ``actor.freeze_vision_tower`` but no engine reads it,
  so ``FSDPEngine._build_module`` is wrapped: every model the FSDP engine loads gets ``requires_grad=False``
  on its ViT parameters (:func:`is_vision_tower_param`) before FSDP wraps it. Needs ``strategy: fsdp2`` (or
  FSDP1 with ``use_orig_params: true``): FSDP1 flat parameters cannot mix frozen and trained weights.
* **MRoPE position ids** (:func:`install_position_ids_fix`): :func:`fix_mrope_position_ids` in place of
  verl's ``maybe_fix_3d_position_ids``. When every trajectory of a batch has the same total length (e.g.
  all cut at ``max_response_length``), TransferQueue packs the (4, L) MRoPE ``position_ids`` as a jagged
  nested tensor whose ragged dimension is the 4 rotary rows (values (B*4, L), offsets [0, 4, 8, ...]);
  verl then forces the ragged dimension to 2 and ``compute_log_prob`` fails with ``split_with_sizes
  expects split_sizes to sum exactly to ...``. Unequal lengths are packed along the sequence and are left
  as verl handles them. This hits GPU clusters as much as CPU runs.
* **MRoPE video times** (:func:`install_rope_time_fix`, per processor): verl 0.9.1
  ``AgentLoopWorker._compute_position_ids`` calls ``processor.get_rope_index`` without
  ``second_per_grid_ts``, so Qwen2.5-VL temporal positions would assume 1 s per temporal patch (2 fps)
  while vLLM and transformers use the real value.

The recipe's other verl extension points are loaded by verl from config paths, not installed here: the
agent loop (``config/agent_loop.yaml``), the reward (``reward_fns.videotemp``), the training-metrics replay
buffer (``reward_fns.training_metrics``) and the CPU platform (``recipe/videotemp_o3/cpu_platform.py``,
CPU runs only, selected by its own environment variables).
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import torch

logger = logging.getLogger(__name__)


def install(processor: Any = None) -> None:
    """Install every hook (idempotent); with a ``processor``, also its MRoPE video-time fix."""
    install_vision_tower_freeze()
    install_position_ids_fix()
    if processor is not None:
        install_rope_time_fix(processor)


# --------------------------------------------------------------------------------------------
# ViT freeze
# --------------------------------------------------------------------------------------------


def is_vision_tower_param(name: str) -> bool:
    """Parameters of the ViT that stay frozen: under ``visual``, except the merger(s) into the LLM."""
    parts = name.split(".")
    return "visual" in parts and not any("merger" in part for part in parts)


def freeze_vision_tower(module: torch.nn.Module) -> int:
    """Set ``requires_grad=False`` on the vision tower (merger excluded); returns the frozen parameter count."""
    frozen = 0
    for name, param in module.named_parameters():
        if is_vision_tower_param(name):
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def install_vision_tower_freeze() -> None:
    """Wrap verl's ``FSDPEngine._build_module`` so every model it loads has its vision tower frozen (idempotent)."""
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    original = FSDPEngine._build_module
    if getattr(original, "_freezes_vision_tower", False):
        return

    def _build_module(self, *args, **kwargs):
        module = original(self, *args, **kwargs)
        frozen = freeze_vision_tower(module)
        logger.warning("froze %d vision-tower parameters (merger kept trainable)", frozen)
        return module

    _build_module._freezes_vision_tower = True
    _build_module.__wrapped__ = original
    FSDPEngine._build_module = _build_module


# --------------------------------------------------------------------------------------------
# MRoPE position ids packed by TransferQueue
# --------------------------------------------------------------------------------------------

# modules that bind verl's helper by name (``from verl.utils.tensordict_utils import maybe_fix_3d_position_ids``)
_POSITION_IDS_USERS = (
    "verl.utils.tensordict_utils",
    "verl.workers.engine_workers",
    "verl.workers.engine.base",
    "verl.workers.engine_workers_tinker",
)


def is_row_jagged(position_ids: torch.Tensor) -> bool:
    """Whether a nested (B, 4, L) tensor is jagged along the 4 rotary rows instead of the sequence."""
    if not position_ids.is_nested or position_ids.dim() != 3:
        return False
    values, offsets = position_ids.values(), position_ids.offsets()
    total = int(offsets[-1])
    return values.dim() == 2 and total == values.shape[0] and total != values.shape[1]


def sequence_jagged(components: list[torch.Tensor]) -> torch.Tensor:
    """(4, L_i) tensors as one nested (B, 4, j) tensor jagged along the sequence, as verl expects."""
    rows_last = [c.transpose(0, 1) for c in components]  # (L_i, 4): jagged along dim 1 of the nested tensor
    return torch.nested.as_nested_tensor(rows_last, layout=torch.jagged).transpose(1, 2)


def fix_mrope_position_ids(data, original=None) -> None:
    """verl's ``maybe_fix_3d_position_ids``, first re-packing row-jagged MRoPE position ids along the sequence."""
    if "position_ids" in data.keys():
        position_ids = data["position_ids"]
        if is_row_jagged(position_ids):
            sizes = position_ids.offsets().diff().tolist()
            data["position_ids"] = sequence_jagged(list(position_ids.values().split(sizes)))
    if original is not None:
        original(data)


def install_position_ids_fix() -> None:
    """Put :func:`fix_mrope_position_ids` wherever verl's helper is bound (idempotent)."""
    import verl.utils.tensordict_utils as tensordict_utils

    original = tensordict_utils.maybe_fix_3d_position_ids
    if getattr(original, "_videotemp", False):
        return
    fixed = functools.wraps(original)(functools.partial(fix_mrope_position_ids, original=original))
    fixed._videotemp = True
    for name in _POSITION_IDS_USERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "maybe_fix_3d_position_ids", None) is original:
            module.maybe_fix_3d_position_ids = fixed


# --------------------------------------------------------------------------------------------
# MRoPE video times in the trainer's position ids
# --------------------------------------------------------------------------------------------


def _rope_index_kwargs(multi_modal_inputs: dict[str, Any]) -> dict[str, Any]:
    spgt = multi_modal_inputs.get("second_per_grid_ts")
    return {} if spgt is None else {"second_per_grid_ts": spgt}


def install_rope_time_fix(processor: Any) -> None:
    """Make verl's trainer-side MRoPE positions use each video's true ``second_per_grid_ts``.

    verl 0.9.1 ``AgentLoopWorker._compute_position_ids`` calls ``processor.get_rope_index`` without
    ``second_per_grid_ts``, so Qwen2.5-VL temporal positions assume 1 s per temporal patch (2 fps)
    while vLLM and transformers use the real value: any video sampled below 2 fps (a long prompt
    video capped at ``max_frames``) would be trained on other positions than it was generated with.
    verl merges ``processor.get_rope_index_kwargs(multi_modal_inputs)`` into that call; this hook
    supplies the missing key (Qwen3-VL has none: its times are text).
    """
    if getattr(processor, "get_rope_index_kwargs", None) is None:
        processor.get_rope_index_kwargs = _rope_index_kwargs


install()
