"""Every change the recipe makes to verl's training workers, installed by importing this module.

verl imports it in every process that builds a model config (driver, actor/ref/rollout workers) through
``actor_rollout_ref.model.external_lib: recipe.videotemp_o3.verl_hooks`` in the GRPO config. It installs:

* the frozen vision tower (:mod:`recipe.videotemp_o3.vit_freeze`): the reference trains merger + LLM only;
* :func:`fix_mrope_position_ids` in place of verl's ``maybe_fix_3d_position_ids``. When every trajectory of a
  batch has the same total length (e.g. all cut at ``max_response_length``), TransferQueue packs the (4, L)
  MRoPE ``position_ids`` as a jagged nested tensor whose ragged dimension is the 4 rotary rows (values
  (B*4, L), offsets [0, 4, 8, ...]); verl then forces the ragged dimension to 2 and ``compute_log_prob``
  fails with ``split_with_sizes expects split_sizes to sum exactly to ...``. Unequal lengths are packed
  along the sequence and are left as verl handles them. This hits GPU clusters as much as CPU runs.
"""

from __future__ import annotations

import functools
import sys

import torch

from recipe.videotemp_o3 import vit_freeze  # noqa: F401  (importing it installs the ViT freeze)

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


install_position_ids_fix()
