"""Reward components reach the metrics the V1 trainer logs at every training step (CPU, real verl path).

Path driven here, all verl 0.9.1 code except the LLM and the GPU workers:
trajectory text -> ``AgentLoopWorkerTQ._agent_loop_postprocess`` -> ``AgentLoopWorker._compute_score`` ->
reward manager from ``load_reward_manager`` (our ``compute_score`` via ``pkg://``) -> TransferQueue
(real, on a local Ray) -> ``PPOTrainer.step`` of the sync trainer with the replay buffer built by
``PPOTrainer._build_replay_buffer`` from ``trainer.v1.sampler.custom_sampler`` -> the step's metrics
dict, which ``fit`` passes to ``Tracking.log``.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from reward_helpers import answer_turn, decoded_response, grounding_truth, qa_truth, tool_turn
from verl.trainer.ppo.v1.utils import MetricsAggregator

from reward_fns.training_metrics import (
    RewardMetricsReplayBuffer,
    RewardMetricsReplayBufferAsync,
    reward_extra_info_of,
    summarise_reward_infos,
)

REWARD_KWARGS = (
    "{acc_weight: 1.0, iou_weight: 1.0, format_weight: 1.0, sigma: 0.1, penalty: 0.1, iou_low: 0.2, iou_high: 0.8}"
)


def trainer_config(trainer_mode: str = "sync", sampler: str = "RewardMetricsReplayBuffer"):
    overrides = [
        "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.n=2",
        "data.train_batch_size=2",
        f"trainer.v1.trainer_mode={trainer_mode}",
        "trainer.v1.sampler.custom_sampler.path=pkg://reward_fns.training_metrics",
        f"trainer.v1.sampler.custom_sampler.name={sampler}",
        "reward.custom_reward_function.path=pkg://reward_fns.videotemp",
        "reward.custom_reward_function.name=compute_score",
        f"+reward.custom_reward_function.reward_kwargs={REWARD_KWARGS}",
    ]
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


# ---------------------------------------------------------------- pure aggregation


def test_summary_means_per_key_and_per_data_type():
    infos = [
        {
            "score": 3.0,
            "acc": 1.0,
            "n_tool_calls": 1.0,
            "n_clips": 2.0,
            "called_tool": 1.0,
            "is_qa": 1.0,
            "is_grounding": 0.0,
        },
        {
            "score": 1.0,
            "acc": 0.0,
            "n_tool_calls": 0.0,
            "n_clips": 0.0,
            "called_tool": 0.0,
            "is_qa": 1.0,
            "is_grounding": 0.0,
        },
        {
            "score": 2.0,
            "acc": 0.5,
            "n_tool_calls": 2.0,
            "n_clips": 1.0,
            "called_tool": 1.0,
            "is_qa": 0.0,
            "is_grounding": 1.0,
        },
    ]
    metrics = summarise_reward_infos(infos)
    assert metrics["training/reward/score/mean"] == pytest.approx(2.0)
    assert metrics["training/reward/called_tool/mean"] == pytest.approx(2 / 3)
    assert metrics["training/reward/clips_per_call/mean"] == pytest.approx(3 / 3)
    assert metrics["training/reward/qa/acc/mean"] == pytest.approx(0.5)
    assert metrics["training/reward/qa/clips_per_call/mean"] == pytest.approx(2.0)
    assert metrics["training/reward/grounding/acc/mean"] == pytest.approx(0.5)
    assert metrics["training/reward/grounding/clips_per_call/mean"] == pytest.approx(0.5)
    assert "training/reward/qa/is_qa/mean" not in metrics
    assert summarise_reward_infos([]) == {}
    only_qa = summarise_reward_infos(infos[:2])
    assert not any(key.startswith("training/reward/grounding/") for key in only_qa)


def test_summary_skips_non_numeric_and_reads_stored_extra_fields():
    stored = types.SimpleNamespace(data={"reward_extra_info": {"acc": np.float32(1.0), "pred": "C", "ok": True}})
    info = reward_extra_info_of(stored)
    assert summarise_reward_infos([info]) == {"training/reward/acc/mean": 1.0}
    assert reward_extra_info_of(None) == {} and reward_extra_info_of({"turn_scores": []}) == {}


def test_metric_names_are_averaged_by_the_trainer_aggregator():
    metrics = summarise_reward_infos(
        [
            {
                key: 1.0
                for key in (
                    "score",
                    "acc",
                    "iou",
                    "format",
                    "tool_iou",
                    "penalised",
                    "n_tool_calls",
                    "n_clips",
                    "answered",
                    "n_turns",
                    "called_tool",
                    "is_qa",
                    "is_grounding",
                )
            }
        ]
    )
    aggregator = MetricsAggregator()
    assert {aggregator._get_aggregation_type(name) for name in metrics} == {"weighted_avg"}


def test_sampler_class_must_match_trainer_mode():
    common = dict(max_off_policy_threshold=None, max_off_policy_strategy="drop", sampler_kwargs={})
    with pytest.raises(ValueError, match="RewardMetricsReplayBufferAsync"):
        RewardMetricsReplayBuffer(trainer_mode="colocate_async", trainer_config={}, **common)
    with pytest.raises(ValueError, match="name=RewardMetricsReplayBuffer,"):
        RewardMetricsReplayBufferAsync(trainer_mode="sync", trainer_config={}, **common)
    forwarded = RewardMetricsReplayBuffer(
        trainer_mode="sync",
        trainer_config={},
        max_off_policy_threshold=None,
        max_off_policy_strategy="drop",
        sampler_kwargs={"train_batch_size": 4, "gen_batch_size": 2},
        refill_fn=lambda n: None,
    )
    assert (forwarded.train_batch_size, forwarded.gen_batch_size) == (4, 2)


# ---------------------------------------------------------------- real verl path on TransferQueue


@pytest.fixture(scope="module")
def transfer_queue():
    ray = pytest.importorskip("ray")
    tq = pytest.importorskip("transfer_queue")
    from omegaconf import OmegaConf

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    yield tq
    tq.close()
    if started_ray:
        ray.shutdown()


class CharTokenizer:
    """One token per character; decoding joins them (the text is already special-token free)."""

    pad_token_id = 0

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(int(i)) for i in ids)


def fake_worker(config):
    """The state ``AgentLoopWorkerTQ._agent_loop_postprocess`` reads, with the real reward path."""
    from verl.experimental.agent_loop import AgentLoopWorker
    from verl.trainer.ppo.reward import load_reward_manager

    reward_manager = load_reward_manager(config, CharTokenizer())
    handle = types.SimpleNamespace(compute_score=types.SimpleNamespace(remote=reward_manager.run_single))
    worker = types.SimpleNamespace(
        reward_loop_worker_handles=[handle],
        _compute_multi_modal_inputs=lambda output, input_ids: {},
        _compute_position_ids=lambda input_ids, *args: torch.arange(input_ids.shape[-1]).unsqueeze(0),
        _get_mm_processor_kwargs=lambda audios: {},
    )

    async def no_teacher(*args, **kwargs):
        return None

    worker._compute_teacher_logprobs = no_teacher
    worker._compute_score = types.MethodType(AgentLoopWorker._compute_score, worker)
    return worker


# (uid, session, assistant turns, ground truth)
ROLLOUTS = [
    ("q1", 0, [tool_turn((10, 20), (30, 40)), answer_turn("C")], qa_truth("C", [[10, 20]])),
    ("q1", 1, [answer_turn("C")], qa_truth("C", [[10, 20]])),
    ("g1", 0, [answer_turn("10 - 20")], grounding_truth([[10, 20]])),
    ("g1", 1, [tool_turn((0, 5)), "<think>t</think><answer>5-25</answer> x"], grounding_truth([[10, 20]])),
]


async def put_rollouts(worker, tq):
    from verl.experimental.agent_loop import AgentLoopOutput
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

    postprocess = AgentLoopWorkerTQ.__ray_metadata__.modified_class._agent_loop_postprocess
    for uid in sorted({r[0] for r in ROLLOUTS}):
        await tq.async_kv_put(
            key=uid, partition_id="train", tag={"is_prompt": True, "status": "finished", "global_steps": 1}
        )
    for uid, session, turns, truth in ROLLOUTS:
        text = decoded_response(turns)
        output = AgentLoopOutput(
            prompt_ids=[1, 2, 3],
            response_ids=[ord(c) for c in text],
            response_mask=[1] * len(text),
            num_turns=2 * len(turns),
            metrics={},
            extra_fields={"min_global_steps": 1, "max_global_steps": 1},
        )
        kwargs = {
            "uid": uid,
            "session_id": session,
            "global_steps": 1,
            "data_source": "videotemp",
            "reward_model": {"style": "rule", "ground_truth": truth},
            "extra_info": {"index": 0},
            "raw_prompt": [{"role": "user", "content": "q"}],
        }
        await postprocess(worker, output, False, **kwargs)


def expected_metrics():
    from reward_fns.videotemp import compute_score

    results = [compute_score("videotemp", decoded_response(turns), truth) for _, _, turns, truth in ROLLOUTS]
    return summarise_reward_infos(results), results


def stub_trainer(config):
    """A sync V1 trainer whose GPU stages pass the batch through; sampling and metrics stay verl's."""
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    trainer = object.__new__(PPOTrainerSync)
    trainer.config = config
    trainer.trainer_mode = config.trainer.v1.trainer_mode
    trainer.parameter_sync_step = 1
    trainer.local_trigger_step = 0
    trainer.global_steps = 1
    trainer.curr_step_profile = False
    trainer.use_reference_policy = False
    trainer.use_critic = False
    trainer.replay_buffer = trainer._build_replay_buffer()  # verl loads trainer.v1.sampler.custom_sampler
    trainer.reward_loop_manager = types.SimpleNamespace(reward_loop_worker_handles=["reward-worker"])
    trainer.checkpoint_manager = types.SimpleNamespace(sleep_replicas=lambda: None)
    trainer.prepare_step = lambda: {}

    def passthrough(batch, metrics=None):
        return batch

    def update_actor(batch, metrics=None):
        metrics["actor/pg_loss"] = 0.5
        return batch

    trainer._balance_batch = trainer._compute_old_log_prob = trainer._compute_advantage = passthrough
    trainer._update_actor = update_actor
    return trainer


async def test_reward_components_reach_the_training_step_metrics(transfer_queue):
    config = trainer_config()
    await put_rollouts(fake_worker(config), transfer_queue)

    trainer = stub_trainer(config)
    assert type(trainer.replay_buffer) is RewardMetricsReplayBuffer
    metrics: dict = {}
    batch = trainer.step(metrics, timing_raw={})

    assert sorted(batch.keys) == sorted(f"{u}_{s}_0" for u, s, _, _ in ROLLOUTS)
    assert metrics["actor/pg_loss"] == 0.5  # the usual trainer metrics are still there
    expected, results = expected_metrics()
    reward_metrics = {k: v for k, v in metrics.items() if k.startswith("training/reward/")}
    assert reward_metrics == pytest.approx(expected)
    # hand-checked values of this batch
    assert [r["score"] for r in results] == pytest.approx([2.5, 1.9, 2.0, (0.5 - 0.2) / 0.6])  # last: IoU 0.5, format 0
    assert metrics["training/reward/score/mean"] == pytest.approx(np.mean([r["score"] for r in results]))
    assert metrics["training/reward/called_tool/mean"] == 0.5
    assert metrics["training/reward/clips_per_call/mean"] == pytest.approx(3 / 2)
    assert metrics["training/reward/qa/iou/mean"] == pytest.approx((0.5 - 0.1) / 2)
    assert metrics["training/reward/qa/acc/mean"] == 1.0
    assert metrics["training/reward/grounding/format/mean"] == 0.5
    assert metrics["training/reward/grounding/answered/mean"] == 1.0
    assert metrics["training/reward/n_turns/mean"] == pytest.approx(6 / 4)

    # the stored trajectories carry the reward dict the metrics were computed from
    stored = transfer_queue.kv_batch_get(keys=batch.keys, partition_id="train", select_fields=["extra_fields"])
    assert all(set(reward_extra_info_of(v)) >= {"score", "acc", "iou", "format"} for v in stored["extra_fields"])
    transfer_queue.kv_clear(keys=[*batch.keys, "q1", "g1"], partition_id="train")


# ---------------------------------------------------------------- rollout diagnostics and reward errors


def loop_fields(termination, n_tool_calls=0, n_clips=0, answered=False, clip_errors=()):
    """The agent loop's own extra_fields of one trajectory (the keys summarise_rollouts reads)."""
    return {
        "termination": termination,
        "n_tool_calls": n_tool_calls,
        "n_clips": n_clips,
        "answered": answered,
        "clip_errors": list(clip_errors),
        "turn_texts": ["..."],
    }


def test_rollout_diagnostics_come_from_the_loop_fields():
    from reward_fns.training_metrics import summarise_rollouts

    rows = [
        loop_fields("answer", 1, 2, True, [None]),
        loop_fields("max_turns", 2, 3, False, [None, "Error reading video file"]),
        loop_fields("response_budget", 1, 0, False, ["bad range"]),
        loop_fields("context_budget"),
        {"min_global_steps": 1},  # not from the loop: ignored
    ]
    metrics = summarise_rollouts(rows)
    p = "training/rollout"
    assert metrics[f"{p}/budget_exhausted/mean"] == pytest.approx(2 / 4)
    assert metrics[f"{p}/ended_by/answer/mean"] == pytest.approx(1 / 4)
    assert metrics[f"{p}/ended_by/turn_limit/mean"] == pytest.approx(1 / 4)
    assert metrics[f"{p}/ended_by/response_budget/mean"] == pytest.approx(1 / 4)
    assert f"{p}/ended_by/max_turns/mean" not in metrics
    assert metrics[f"{p}/n_tool_calls/mean"] == pytest.approx(4 / 4)
    assert metrics[f"{p}/n_clips/mean"] == pytest.approx(5 / 4)
    assert metrics[f"{p}/clips_per_call/mean"] == pytest.approx(5 / 4)
    assert metrics[f"{p}/called_tool/mean"] == pytest.approx(3 / 4)
    assert metrics[f"{p}/answered/mean"] == pytest.approx(1 / 4)
    assert metrics[f"{p}/clip_errors_per_call/mean"] == pytest.approx(2 / 4)
    assert summarise_rollouts([{"reward_extra_info": {"acc": 1.0}}]) == {}
    aggregator = MetricsAggregator()
    assert {aggregator._get_aggregation_type(name) for name in metrics} == {"weighted_avg"}


def test_every_loop_termination_gets_a_mean_aggregated_name():
    from recipe.videotemp_o3.agent_loop import Termination
    from reward_fns.training_metrics import BUDGET_TERMINATIONS, summarise_rollouts

    reasons = [t.value for t in Termination]
    assert set(BUDGET_TERMINATIONS) <= set(reasons)
    metrics = summarise_rollouts([loop_fields(reason) for reason in reasons])
    assert len([name for name in metrics if "/ended_by/" in name]) == len(reasons)
    aggregator = MetricsAggregator()
    assert {aggregator._get_aggregation_type(name) for name in metrics} == {"weighted_avg"}


def test_reward_fallback_is_counted_and_training_step_metrics_read_both():
    from reward_fns.training_metrics import training_step_metrics
    from reward_fns.videotemp import compute_score, is_fallback_result

    good = compute_score("videotemp", decoded_response([answer_turn("C")]), qa_truth("C", [[1, 2]]))
    bad = compute_score("videotemp", decoded_response([answer_turn("C")]), {"data_type": "ocr", "answer": "C"})
    assert not is_fallback_result(good) and is_fallback_result(bad)
    stored = [
        {**loop_fields("answer", answered=True), "reward_extra_info": good},
        types.SimpleNamespace(data={**loop_fields("response_budget"), "reward_extra_info": bad}),
        {**loop_fields("response_budget"), "reward_extra_info": bad},
    ]
    metrics = training_step_metrics(stored)
    assert metrics["training/reward/reward_error/count"] == 2.0
    assert metrics["training/reward/acc/mean"] == pytest.approx(1 / 3)
    assert metrics["training/rollout/budget_exhausted/mean"] == pytest.approx(2 / 3)
    assert summarise_reward_infos([good])["training/reward/reward_error/count"] == 0.0
    assert MetricsAggregator()._get_aggregation_type("training/reward/reward_error/count") == "weighted_avg"
