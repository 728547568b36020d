"""Test probe loaded into verl's SFT trainer through its own hook (``VERL_USE_EXTERNAL_MODULES``).

It records, for every batch the trainer's engine trains on, each sample's ``input_ids`` and ``loss_mask`` as
the engine received them, appending one JSON line per step to ``$SFT_PROBE_OUT``. Nothing else changes.
Used by tests/test_sft_trainer_cpu.py to check the loss mask on the real trainer path.
"""

from __future__ import annotations

import functools
import json
import os

import torch


def _rows(value: torch.Tensor) -> list[list[int]]:
    if getattr(value, "is_nested", False):
        return [t.reshape(-1).tolist() for t in value.unbind()]
    return [row.reshape(-1).tolist() for row in value]


def install() -> None:
    from verl.workers.engine.base import BaseEngine

    original = BaseEngine.train_batch
    if getattr(original, "_sft_probe", False):
        return
    out = os.environ["SFT_PROBE_OUT"]

    @functools.wraps(original)
    def train_batch(self, data, loss_function):
        record = {"input_ids": _rows(data["input_ids"]), "loss_mask": _rows(data["loss_mask"])}
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return original(self, data, loss_function)

    train_batch._sft_probe = True
    BaseEngine.train_batch = train_batch


if os.environ.get("SFT_PROBE_OUT"):
    install()
