"""Freeze the vision tower (ViT) of a Qwen-VL model during verl training, keeping its merger trainable.

The reference trains the merger and the LLM with the ViT frozen, in SFT and in GRPO. verl 0.9.1 has no
working option for it (``actor.freeze_vision_tower`` is declared but read by no engine), so this module
wraps verl's ``FSDPEngine._build_module``: every model the FSDP engine loads gets ``requires_grad=False``
on its ViT parameters before FSDP wraps it.

Importing the module installs the hook. GRPO: ``actor_rollout_ref.model.external_lib:
recipe.videotemp_o3.vit_freeze`` (verl imports it in every worker that builds a model). SFT:
``data.freeze_vision_tower: true`` (the recipe's dataset class imports it). Needs ``strategy: fsdp2``
(or FSDP1 with ``use_orig_params: true``): FSDP1 flat parameters cannot mix frozen and trained weights.
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


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


install_vision_tower_freeze()
