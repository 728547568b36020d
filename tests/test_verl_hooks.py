"""The recipe's verl hooks: MRoPE position ids packed by TransferQueue for equal-length batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from tensordict import TensorDict
from transfer_queue.storage.managers.simple_storage_manager import AsyncSimpleStorageManager

from recipe.videotemp_o3 import verl_hooks

CONFIG = Path(__file__).resolve().parents[1] / "recipe/videotemp_o3/config/videotemp_o3_grpo.yaml"


def _position_ids(lengths: list[int]) -> list[torch.Tensor]:
    """(4, L) MRoPE position ids per sequence, each value distinct so that a mix-up shows."""
    return [torch.arange(4 * n).reshape(4, n) + 1000 * i for i, n in enumerate(lengths)]


def _tq_batch(lengths: list[int]) -> TensorDict:
    """A batch as TransferQueue hands it to verl's workers: per-sample tensors packed by TQ's own packer."""
    pack = AsyncSimpleStorageManager._pack_field_values
    return TensorDict({"position_ids": pack(_position_ids(lengths))}, batch_size=[len(lengths)])


def _verl_original():
    import verl.utils.tensordict_utils as tensordict_utils

    fn = tensordict_utils.maybe_fix_3d_position_ids
    return getattr(fn, "__wrapped__", fn)


def test_equal_lengths_crash_with_verl_alone():
    """All trajectories cut at the same length: TQ packs jagged along the 4 rows and verl's fix breaks unbind."""
    data = _tq_batch([7, 7, 7])
    assert verl_hooks.is_row_jagged(data["position_ids"])
    _verl_original()(data)
    with pytest.raises(RuntimeError):
        data["position_ids"].unbind()


@pytest.mark.parametrize("lengths", [[7, 7, 7], [5], [4, 4], [7, 9, 3]])
def test_fixed_position_ids_unbind_to_the_inputs(lengths):
    data = _tq_batch(lengths)
    verl_hooks.fix_mrope_position_ids(data, _verl_original())
    out = data["position_ids"]
    assert out.is_nested and out._ragged_idx == 2
    assert not verl_hooks.is_row_jagged(out)
    parts = out.unbind()
    assert [tuple(p.shape) for p in parts] == [(4, n) for n in lengths]
    for got, want in zip(parts, _position_ids(lengths)):
        assert torch.equal(got, want)


def test_unequal_lengths_are_left_to_verl():
    data = _tq_batch([7, 9])
    before = data["position_ids"]
    assert not verl_hooks.is_row_jagged(before)
    verl_hooks.fix_mrope_position_ids(data, _verl_original())
    assert data["position_ids"] is before


def test_hook_bound_where_verl_workers_call_it():
    import verl.utils.tensordict_utils as tensordict_utils
    import verl.workers.engine.base as engine_base
    import verl.workers.engine_workers as engine_workers

    verl_hooks.install_position_ids_fix()
    for module in (tensordict_utils, engine_base, engine_workers):
        assert getattr(module.maybe_fix_3d_position_ids, "_videotemp", False), module.__name__
    data = _tq_batch([6, 6])
    engine_workers.maybe_fix_3d_position_ids(data)
    assert [tuple(p.shape) for p in data["position_ids"].unbind()] == [(4, 6), (4, 6)]


def test_production_config_loads_the_hooks():
    """GPU clusters hit the equal-length case too: the production GRPO config must install the fix."""
    config = yaml.safe_load(CONFIG.read_text())
    assert config["actor_rollout_ref"]["model"]["external_lib"] == "recipe.videotemp_o3.verl_hooks"


def test_one_install_point_installs_every_hook():
    """``install`` (run on import) wraps the FSDP engine and the position-ids helper; with a processor it
    also adds the MRoPE video-time kwargs, leaving a processor that already has them alone."""
    import types

    import verl.utils.tensordict_utils as tensordict_utils
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    processor = types.SimpleNamespace()
    verl_hooks.install(processor)
    assert FSDPEngine._build_module._freezes_vision_tower
    assert tensordict_utils.maybe_fix_3d_position_ids._videotemp
    assert processor.get_rope_index_kwargs({"second_per_grid_ts": [0.5]}) == {"second_per_grid_ts": [0.5]}
    assert processor.get_rope_index_kwargs({}) == {}
    own = types.SimpleNamespace(get_rope_index_kwargs=lambda inputs: {"own": 1})
    verl_hooks.install(own)
    assert own.get_rope_index_kwargs({}) == {"own": 1}
