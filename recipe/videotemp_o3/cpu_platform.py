"""A CPU platform for verl 0.9.1, so that its real trainer, vLLM rollout and FSDP2 engine run without a GPU.

Loaded only through verl's own hooks, in every process that imports verl (driver, Ray workers, the vLLM
engine process, torchrun ranks)::

    VERL_USE_EXTERNAL_MODULES=recipe.videotemp_o3.cpu_platform   # verl/__init__.py imports it
    VERL_PLATFORM=cpu                                            # verl's platform manager picks it
    VERL_ENGINE_DEVICE=cuda                                      # verl's engine registry: the FSDP engine

(:func:`env_vars` returns exactly these; ``eval "$(python -m recipe.videotemp_o3.cpu_platform)"`` exports
them in a shell; the CPU config passes them to every Ray worker.)
Importing the module does nothing on a GPU run: every change below is made only when ``VERL_PLATFORM`` is
``cpu``. What it does there, and why:

* registers :class:`PlatformCPU` with verl's ``PlatformRegistry``: device ``cpu``, backend ``gloo``, Ray
  resource ``GPU`` (logical GPUs, because verl's resource pools count Ray "GPU" slots), no CUDA IPC (verl's
  vLLM weight sync then takes its shared-memory path), and a device module whose memory queries answer 0;
* makes verl's process-group helpers use plain ``gloo``: they build ``"cpu:gloo,{device}:{backend}"``, which
  with device ``cpu`` names the CPU twice (``Duplicate device type cpu``);
* FSDP2 offload (verl's ref model) without pinned host memory, which needs a CUDA driver;
* in the vLLM engine process, keeps each linear layer's weight after vLLM's CPU GEMM packs it
  (``remove_weight=False``): vLLM CPU otherwise replaces every linear weight by an empty tensor, the first
  weight sync from the trainer then fails inside the engine and the trainer waits forever. verl re-runs
  ``process_weights_after_loading`` after every sync, which re-packs the GEMMs from the new weights.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import sys
from contextlib import contextmanager
from types import ModuleType, SimpleNamespace
from typing import Any, Optional

import torch

logger = logging.getLogger(__name__)

MODULE = "recipe.videotemp_o3.cpu_platform"
PLATFORM_NAME = "cpu"


def env_vars() -> dict[str, str]:
    """The environment that selects this platform in every verl process (set it before ``import verl``)."""
    return {
        "VERL_USE_EXTERNAL_MODULES": MODULE,
        "VERL_PLATFORM": PLATFORM_NAME,
        "VERL_ENGINE_DEVICE": "cuda",  # verl registers its FSDP engine for cuda/npu only; it runs on this platform
    }


def active() -> bool:
    """Whether this process runs verl on the CPU platform."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


class _Stream:
    """Stand-in for a device stream: CPU work is synchronous."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def synchronize(self) -> None:
        pass

    def wait_stream(self, other: Any) -> None:
        pass

    def wait_event(self, event: Any) -> None:
        pass

    def record_event(self, event: Any = None) -> "_Event":
        return _Event()

    def __enter__(self) -> "_Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class _Event(_Stream):
    def record(self, stream: Any = None) -> None:
        pass

    def query(self) -> bool:
        return True

    def elapsed_time(self, other: Any) -> float:
        return 0.0


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _none(*args: Any, **kwargs: Any) -> None:
    return None


def _mem_get_info(*args: Any, **kwargs: Any) -> tuple[int, int]:
    import psutil

    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


@contextmanager
def _stream_context(stream: Any = None):
    yield


def _device_module() -> ModuleType:
    """``torch.cpu`` completed with the ``torch.cuda`` calls verl makes (streams, memory stats, RNG)."""
    module = ModuleType("verl_cpu_device")
    for name in dir(torch.cpu):
        if not name.startswith("__"):
            setattr(module, name, getattr(torch.cpu, name))
    module.__dict__.update(
        is_available=lambda: True,
        device_count=lambda: 1,
        current_device=lambda: PLATFORM_NAME,
        set_device=_none,
        synchronize=_none,
        empty_cache=_none,
        ipc_collect=_none,
        set_per_process_memory_fraction=_none,
        reset_peak_memory_stats=_none,
        memory_allocated=_zero,
        memory_reserved=_zero,
        max_memory_allocated=_zero,
        max_memory_reserved=_zero,
        mem_get_info=_mem_get_info,
        get_device_name=lambda *a, **k: "cpu",
        get_rng_state=lambda *a, **k: torch.get_rng_state(),
        set_rng_state=lambda state, *a, **k: torch.set_rng_state(state),
        manual_seed=lambda seed: torch.manual_seed(seed),
        manual_seed_all=lambda seed: torch.manual_seed(seed),
        Stream=_Stream,
        Event=_Event,
        current_stream=lambda *a, **k: _Stream(),
        stream=_stream_context,
        memory=SimpleNamespace(_set_allocator_settings=_none),
    )
    return module


def _register_platform() -> None:
    from verl.plugin.platform.platform_base import PlatformBase
    from verl.plugin.platform.platform_manager import PlatformRegistry

    device_module = _device_module()

    @PlatformRegistry.register(platform=PLATFORM_NAME)
    class PlatformCPU(PlatformBase):
        """verl on the CPU: gloo collectives, logical Ray GPUs, shared-memory weight sync."""

        device_name = "cpu"
        vendor_name = "cpu"

        @property
        def device_module(self) -> ModuleType:
            return device_module

        def is_available(self) -> bool:
            return True

        def is_platform_available(self, use_smi_check: bool = False) -> bool:
            return active()  # never auto-detected: only VERL_PLATFORM=cpu selects it

        def current_device(self) -> str:  # verl passes it to tensor.to(): "cpu", not an index
            return "cpu"

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            pass

        def synchronize(self, device_index: Optional[int] = None) -> None:
            pass

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            pass

        def empty_cache(self) -> None:
            pass

        def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            return "CUDA_VISIBLE_DEVICES"  # what verl and vLLM read; Ray sets it for its logical GPUs

        @contextmanager
        def nvtx_range(self, msg: str):
            yield

        def profiler_start(self) -> None:
            pass

        def profiler_stop(self) -> None:
            pass

        def ray_resource_name(self) -> str:
            return "GPU"  # logical: ray.init(num_gpus=N) on a machine without GPUs

        def ray_noset_envvars(self) -> list[str]:
            return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

        def is_ipc_supported(self) -> bool:
            return False  # verl's vLLM weight sync then goes through /dev/shm buckets

        def cudart(self) -> Any:
            return None

    globals()["PlatformCPU"] = PlatformCPU


def _install_gloo_process_groups() -> None:
    """verl's two process-group initialisers with plain ``gloo`` (they build ``cpu:gloo,cpu:gloo`` here)."""
    import torch.distributed as dist
    import verl.utils.distributed as distributed

    ray_init = distributed.initialize_global_process_group_ray
    if getattr(ray_init, "_videotemp_cpu", False):
        return

    @functools.wraps(ray_init)
    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return ray_init(timeout_second=timeout_second, backend=backend or "gloo")

    @functools.wraps(distributed.initialize_global_process_group)
    def initialize_global_process_group(timeout_second=36000):
        # verl's torchrun entry (sft_trainer): the same steps with a gloo group
        dist.init_process_group(
            backend="gloo",
            timeout=datetime.timedelta(seconds=timeout_second),
            init_method=os.environ.get("DIST_INIT_METHOD", None),
        )
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    initialize_global_process_group_ray._videotemp_cpu = True
    distributed.initialize_global_process_group_ray = initialize_global_process_group_ray
    distributed.initialize_global_process_group = initialize_global_process_group


def _install_unpinned_offload() -> None:
    """FSDP2 offload without pinned memory: verl offloads the ref model with ``CPUOffloadPolicy(pin_memory=True)``,
    and pinning host memory needs a CUDA driver (``Found no NVIDIA driver``)."""
    import verl.utils.fsdp_utils as fsdp_utils

    policy = fsdp_utils.CPUOffloadPolicy
    if policy is None or getattr(policy, "_videotemp_cpu", False):
        return

    class UnpinnedCPUOffloadPolicy(policy):
        _videotemp_cpu = True

        def __init__(self, pin_memory: bool = False):
            super().__init__(pin_memory=False)

    for name in ("verl.utils.fsdp_utils", "verl.workers.engine.fsdp.transformer_impl"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "CPUOffloadPolicy", None) is policy:
            module.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy


def keep_vllm_linear_weights() -> bool:
    """In a process that runs vLLM on the CPU: pack linear GEMMs without dropping ``layer.weight``.

    Returns whether the change was made (only when vLLM is already imported in this process).
    """
    if "vllm" not in sys.modules:
        return False
    from vllm.model_executor.layers import utils as layer_utils

    dispatch = layer_utils.dispatch_cpu_unquantized_gemm
    if getattr(dispatch, "_videotemp_cpu", False):
        return True

    @functools.wraps(dispatch)
    def dispatch_keeping_weight(layer: torch.nn.Module, remove_weight: bool) -> None:
        return dispatch(layer, remove_weight=False)

    dispatch_keeping_weight._videotemp_cpu = True
    layer_utils.dispatch_cpu_unquantized_gemm = dispatch_keeping_weight
    return True


def install() -> None:
    """Everything above, when ``VERL_PLATFORM=cpu`` (idempotent)."""
    if not active():
        return
    _register_platform()
    _install_gloo_process_groups()
    _install_unpinned_offload()
    if keep_vllm_linear_weights():
        logger.info("vLLM CPU: linear weights kept after GEMM packing (weight sync reloads them)")


if __name__ == "__main__":
    import shlex

    for key, value in env_vars().items():
        print(f"export {key}={shlex.quote(value)}")
else:
    install()
