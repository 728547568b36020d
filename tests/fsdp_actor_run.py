"""verl's FSDP2 actor and ref engine workers (CPU platform, one gloo rank, no Ray) on a VideoTempAgentLoop batch.

Run by ``tests/test_fsdp_actor_cpu.py`` in its own process (the CPU platform is selected before
``import verl``)::

    python tests/fsdp_actor_run.py OUT.json WORKDIR

The batch: verl's ``AgentLoopWorker`` running the real loop and clip tool on a synthetic video with scripted
turns (tool call with 2 ranges -> tool call with 1 range -> answer): 4 videos per trajectory (prompt video +
3 clips), mRoPE ``position_ids`` (4, L). The workers are verl's ``ActorRolloutRefWorker`` (roles ``actor`` and
``ref``) built from the production GRPO config with the CPU overlay, called the way verl's trainer calls them
(``to_tensordict`` -> ``left_right_2_no_padding`` -> ``compute_log_prob`` / ``compute_ref_log_prob`` /
``update_actor``). The actor computes in float32 (``mixed_precision`` fp32) so its log-probs can be held to a
float32 ``transformers`` forward of the same tokens; the ref keeps the production bf16.
Writes log-probs, the update's metrics, and which parameters changed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from vllm_helpers import select_cpu_platform  # noqa: E402

FP32 = "{param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_ROLLOUTS: dict[str, int] = {}


def _script(request) -> str:
    from loop_helpers import answer, tool_call

    k = _ROLLOUTS.setdefault(request.request_id, len(_ROLLOUTS))  # rollouts differ in their ranges
    turns = [tool_call((1 + k, 4 + k), (8, 11)), tool_call((5, 9 - k)), answer("ABCD"[k])]
    return turns[min(request.turn, 2)]


def _full_params(module) -> dict[str, "torch.Tensor"]:  # noqa: F821
    out = {}
    for name, p in module.named_parameters():
        t = p.full_tensor() if hasattr(p, "full_tensor") else p
        out[name] = t.detach().float().clone()
    return out


async def _loop_batch(config, model_dir, video):
    from loop_helpers import row
    from verl.utils.tokenizer import hf_tokenizer

    from eval.harness.local_rollout import LocalRollout
    from eval.harness.scripted_server import ScriptedServerClient

    client = ScriptedServerClient(hf_tokenizer(str(model_dir)), _script)
    rollout = LocalRollout(config, client)
    return await rollout.generate([row(video, "What happens first?", 0)], n=4)


def main(out_path: Path, work: Path) -> None:
    select_cpu_platform()
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    import asyncio

    import torch
    import torch.distributed as dist
    import verl.utils.tensordict_utils as tu
    from loop_helpers import index_video, sample_ids, tiny_model
    from transformers import AutoModelForImageTextToText
    from verl.utils.device import get_device_name  # noqa: F401  (platform selected)
    from verl.workers.engine_workers import ActorRolloutRefWorker
    from verl.workers.utils.padding import left_right_2_no_padding, no_padding_2_padding
    from vllm_rollout_run import transformers_log_probs

    from eval.harness.local_rollout import compose_config

    model_dir = tiny_model(work)
    video = index_video(work / "index.mp4")
    config = compose_config(
        model_dir,
        [
            "+platform=cpu_grpo",
            "data.max_prompt_length=1024",
            "data.max_response_length=768",
            f"+actor_rollout_ref.actor.fsdp_config.mixed_precision={FP32}",
            "actor_rollout_ref.actor.optim.lr=1e-3",  # a visible step on a tiny model (production 5e-6)
            "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0",
        ],
    )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    batch = asyncio.run(_loop_batch(config, model_dir, video))
    timings["rollout_s"] = time.perf_counter() - t0

    # the float32 transformers forward, before verl's workers patch the model class's forward
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    reference = [transformers_log_probs(model, batch, i, model.config.video_token_id)[0] for i in range(len(batch))]
    del model

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", rank=0, world_size=1)
    t0 = time.perf_counter()
    actor = ActorRolloutRefWorker(config.actor_rollout_ref, role="actor")
    actor.init_model()
    ref = ActorRolloutRefWorker(config.actor_rollout_ref, role="ref")
    ref.init_model()
    timings["init_s"] = time.perf_counter() - t0

    batch.meta_info.update(temperature=1.0, global_token_num=batch.batch["attention_mask"].sum(-1).tolist())

    def call(method, extra):
        td = left_right_2_no_padding(batch.to_tensordict())
        tu.assign_non_tensor(td, **extra)
        return td, method(td)

    t0 = time.perf_counter()
    td, out = call(actor.compute_log_prob, {"calculate_entropy": True, "compute_loss": False})
    old = no_padding_2_padding(tu.get(out, "log_probs"), td).float()
    td, out = call(ref.compute_ref_log_prob, {"calculate_entropy": False, "compute_loss": False})
    ref_lp = no_padding_2_padding(tu.get(out, "log_probs"), td).float()
    timings["log_prob_s"] = time.perf_counter() - t0

    response_mask = batch.batch["response_mask"].float()
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0])[: len(batch)]
    batch.batch["old_log_probs"] = old
    batch.batch["ref_log_prob"] = ref_lp
    batch.batch["advantages"] = signs[:, None] * response_mask
    batch.batch["returns"] = batch.batch["advantages"]

    before = _full_params(actor.actor.engine.module)
    t0 = time.perf_counter()
    td, out = call(
        actor.update_actor,
        {
            "calculate_entropy": False,
            "distillation_use_topk": False,
            "distillation_only": False,
            "global_batch_size": len(batch),
            "mini_batch_size": len(batch),
            "epochs": 1,
            "seed": 1,
            "dataloader_kwargs": {"shuffle": False},
            "compute_loss": True,
        },
    )
    timings["update_s"] = time.perf_counter() - t0
    metrics = {
        k: (v if isinstance(v, (int, float)) else (v[0] if isinstance(v, list) and v else str(v)))
        for k, v in tu.get(out, "metrics").items()
    }
    after = _full_params(actor.actor.engine.module)

    samples = []
    for i in range(len(batch)):
        prompt, response, mask = sample_ids(batch, i)
        n = len(response)
        keep = mask.bool()
        samples.append(
            {
                "n_videos": len(batch.non_tensor_batch["multi_modal_data"][i]["videos"]),
                "termination": str(batch.non_tensor_batch["termination"][i]),
                "n_generated": int(keep.sum()),
                "actor": old[i, :n][keep].tolist(),
                "ref": ref_lp[i, :n][keep].tolist(),
                "transformers": reference[i][len(prompt) :][keep].tolist(),
                "positions_shape": list(batch.batch["position_ids"][i].shape),
            }
        )
    changed = {name: float((after[name] - before[name]).abs().max()) for name in before}
    result = {
        "timings": timings,
        "metrics": metrics,
        "samples": samples,
        "param_max_change": changed,
        "trainable": {n: bool(p.requires_grad) for n, p in actor.actor.engine.module.named_parameters()},
    }
    out_path.write_text(json.dumps(result))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
