"""Per-component reward curves during GRPO training (verl 0.9.1, V1 trainer).

Why this is needed: verl logs each trajectory's ``reward_extra_info`` (acc, iou, format, ...) only at
validation. At training time it logs ``critic/score/*`` (the summed reward) but not its components.

Mechanism (no monkeypatching): the V1 trainer draws every training batch from its replay buffer,
``batch, metrics = self.replay_buffer.sample(...)`` in ``PPOTrainer._step_once``, and merges the
returned ``metrics`` into the step's metrics dict (through ``MetricsAggregator``), which ``fit`` hands
to ``Tracking.log`` (console / TensorBoard / W&B). verl lets a recipe replace the replay buffer with a
subclass through ``trainer.v1.sampler.custom_sampler.{path,name}``. The samplers here call verl's own
``sample`` unchanged and then read the sampled trajectories' ``extra_fields`` from TransferQueue, where
the agent-loop worker stored ``reward_extra_info`` (= the dict ``compute_score`` returned), and add
their means to those metrics.

Config (sync trainer, the default ``trainer.v1.trainer_mode=sync``)::

    trainer.v1.sampler.custom_sampler.path=pkg://reward_fns.training_metrics
    trainer.v1.sampler.custom_sampler.name=RewardMetricsReplayBuffer

For ``trainer.v1.trainer_mode=colocate_async|separate_async`` use ``RewardMetricsReplayBufferAsync``.
verl gives a custom sampler only the base constructor arguments; the DAPO options
(``filter_groups_metric``, ``train_batch_size``, ``gen_batch_size``, ``max_inflight_gen_batches``,
``sync_refill_failed_groups``) may be passed through ``trainer.v1.sampler.sampler_kwargs``.

Logged per training step (``G`` in ``qa``, ``grounding``, from the ``is_qa``/``is_grounding`` flags)::

    training/reward/<key>/mean        every numeric reward_extra_info key: score, acc, iou, format,
    training/reward/G/<key>/mean      tool_iou, penalised, n_tool_calls, n_clips, answered, n_turns,
                                      called_tool (= tool-call rate), is_qa, is_grounding
    training/reward/clips_per_call/mean, training/reward/G/clips_per_call/mean
                                      (clips over all tool calls of the batch)
    training/reward/reward_error/count
                                      trajectories scored by the reward's all-zero fallback (an internal
                                      error, logged once by the reward)

Rollout diagnostics, from the agent loop's own ``extra_fields`` (not routed through the reward; absent
when the rollouts come from another loop)::

    training/rollout/n_tool_calls/mean, n_clips/mean, clips_per_call/mean, called_tool/mean,
    answered/mean, clip_errors_per_call/mean (tool calls whose clips could not be cut),
    budget_exhausted/mean (ended by the response or context budget),
    ended_by/<reason>/mean            one rate per termination reason seen: answer, turn_limit
                                      (the loop's "max_turns"), response_budget, context_budget,
                                      turn_length, malformed, vision_token, aborted

Metric names avoid "min"/"max"/"sum"/"total" (hence "ended_by", not "termination", and "turn_limit"), which
``MetricsAggregator`` would reduce by another rule than the sample-weighted mean.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

import transfer_queue as tq
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

from reward_fns.videotemp import is_fallback_result

logger = logging.getLogger(__name__)

METRIC_PREFIX = "training/reward"
ROLLOUT_PREFIX = "training/rollout"
# Metric names of the loop's termination reasons where its own name would mislead the aggregator.
ENDED_BY_NAMES = {"max_turns": "turn_limit"}
BUDGET_TERMINATIONS = ("response_budget", "context_budget")
# (group name, reward_extra_info flag that selects its rows)
DATA_TYPE_GROUPS: tuple[tuple[str, str], ...] = (("qa", "is_qa"), ("grounding", "is_grounding"))
_GROUP_FLAGS = {flag for _, flag in DATA_TYPE_GROUPS}

# Replay-buffer arguments verl passes only to its built-in sampler; ours read them from sampler_kwargs.
_FORWARDED_SAMPLER_KWARGS = (
    "filter_groups_metric",
    "train_batch_size",
    "gen_batch_size",
    "max_inflight_gen_batches",
    "sync_refill_failed_groups",
)


def _numeric_items(info: Mapping[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in info.items()
        if isinstance(value, Real) and not isinstance(value, bool) and value == value  # drop NaN
    }


def _means(rows: Sequence[Mapping[str, float]], prefix: str, skip: Iterable[str] = ()) -> dict[str, float]:
    skipped = set(skip)
    keys = sorted({key for row in rows for key in row} - skipped)
    metrics: dict[str, float] = {}
    for key in keys:
        values = [row[key] for row in rows if key in row]
        metrics[f"{prefix}/{key}/mean"] = sum(values) / len(values)
    calls = sum(row.get("n_tool_calls", 0.0) for row in rows)
    if any("n_clips" in row for row in rows):
        clips = sum(row.get("n_clips", 0.0) for row in rows)
        metrics[f"{prefix}/clips_per_call/mean"] = clips / calls if calls > 0 else 0.0
    return metrics


def summarise_reward_infos(infos: Sequence[Mapping[str, Any]], prefix: str = METRIC_PREFIX) -> dict[str, float]:
    """Batch means of every numeric reward_extra_info key, overall and per data type.

    Rows without a numeric value for a key do not count in that key's mean; a data type with no rows
    in the batch gives no metrics (rather than a misleading 0).
    """
    rows = [_numeric_items(info) for info in infos if isinstance(info, Mapping)]
    rows = [row for row in rows if row]
    if not rows:
        return {}
    metrics = _means(rows, prefix)
    scored = [row for row in rows if "is_qa" in row and "is_grounding" in row]
    if scored:
        metrics[f"{prefix}/reward_error/count"] = float(sum(is_fallback_result(row) for row in scored))
    for group, flag in DATA_TYPE_GROUPS:
        group_rows = [row for row in rows if row.get(flag) == 1.0]
        if group_rows:
            metrics.update(_means(group_rows, f"{prefix}/{group}", skip=_GROUP_FLAGS))
    return metrics


def _plain(value: Any) -> Any:
    """numpy arrays / scalars (as stored batches hold them) to Python lists / scalars."""
    return value.tolist() if hasattr(value, "tolist") else value


def summarise_rollouts(extra_fields: Sequence[Mapping[str, Any]], prefix: str = ROLLOUT_PREFIX) -> dict[str, float]:
    """Batch rates and means of the agent loop's own per-trajectory fields (rows without a
    ``termination`` did not come from the loop and do not count; none: no metrics)."""
    rows = [fields for fields in extra_fields if isinstance(fields, Mapping) and fields.get("termination") is not None]
    if not rows:
        return {}
    n = float(len(rows))
    calls = [float(_plain(row.get("n_tool_calls")) or 0) for row in rows]
    clips = [float(_plain(row.get("n_clips")) or 0) for row in rows]
    clip_errors = [error for row in rows for error in (_plain(row.get("clip_errors")) or [])]
    ended = [str(_plain(row["termination"])) for row in rows]
    metrics = {
        f"{prefix}/n_tool_calls/mean": sum(calls) / n,
        f"{prefix}/n_clips/mean": sum(clips) / n,
        f"{prefix}/clips_per_call/mean": sum(clips) / sum(calls) if sum(calls) > 0 else 0.0,
        f"{prefix}/called_tool/mean": sum(c > 0 for c in calls) / n,
        f"{prefix}/answered/mean": sum(bool(_plain(row.get("answered"))) for row in rows) / n,
        f"{prefix}/clip_errors_per_call/mean": sum(e is not None for e in clip_errors) / sum(calls)
        if sum(calls) > 0
        else 0.0,
        f"{prefix}/budget_exhausted/mean": sum(reason in BUDGET_TERMINATIONS for reason in ended) / n,
    }
    for reason in sorted(set(ended)):
        metrics[f"{prefix}/ended_by/{ENDED_BY_NAMES.get(reason, reason)}/mean"] = ended.count(reason) / n
    return metrics


def _unwrap(extra_fields: Any) -> Any:
    return getattr(extra_fields, "data", extra_fields)  # NonTensorData from some TQ backends


def reward_extra_info_of(extra_fields: Any) -> dict[str, Any]:
    """The ``reward_extra_info`` dict inside one trajectory's stored ``extra_fields`` ({} if absent)."""
    extra_fields = _unwrap(extra_fields)
    if not isinstance(extra_fields, Mapping):
        return {}
    info = extra_fields.get("reward_extra_info") or {}
    return dict(info) if isinstance(info, Mapping) else {}


def fetch_extra_fields(keys: Sequence[str], partition_id: str) -> list[Any]:
    """Read the stored ``extra_fields`` of the given trajectory keys from TransferQueue."""
    if not keys:
        return []
    data = tq.kv_batch_get(keys=list(keys), partition_id=partition_id, select_fields=["extra_fields"])
    return [_unwrap(value) for value in data["extra_fields"]]


def fetch_reward_infos(keys: Sequence[str], partition_id: str) -> list[dict[str, Any]]:
    """Read the reward_extra_info of the given trajectory keys from TransferQueue."""
    return [reward_extra_info_of(value) for value in fetch_extra_fields(keys, partition_id)]


def training_step_metrics(extra_fields: Sequence[Any]) -> dict[str, float]:
    """``training/reward/*`` and ``training/rollout/*`` metrics of one training batch's stored ``extra_fields``."""
    fields = [_unwrap(value) for value in extra_fields]
    return {
        **summarise_reward_infos([reward_extra_info_of(value) for value in fields]),
        **summarise_rollouts([value for value in fields if isinstance(value, Mapping)]),
    }


class _RewardMetricsMixin:
    """Adds reward-component means to the metrics that verl's ``sample`` returns for training batches."""

    _expected_async: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        sampler_kwargs = kwargs.get("sampler_kwargs") or {}
        for name in _FORWARDED_SAMPLER_KWARGS:
            if name not in kwargs and name in sampler_kwargs:
                kwargs[name] = sampler_kwargs[name]
        super().__init__(*args, **kwargs)
        is_async = self.trainer_mode != "sync"
        if is_async != self._expected_async:
            wanted = "RewardMetricsReplayBufferAsync" if is_async else "RewardMetricsReplayBuffer"
            raise ValueError(
                f"trainer.v1.trainer_mode={self.trainer_mode!r} needs "
                f"trainer.v1.sampler.custom_sampler.name={wanted}, not {type(self).__name__}"
            )
        self._metrics_error_logged = False

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        """verl's sampling, plus ``training/reward/*`` and ``training/rollout/*`` metrics of the sampled
        training trajectories."""
        batch, metrics = super().sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)
        if partition_id == "train":
            metrics = {**metrics, **self._reward_metrics(batch.keys, batch.partition_id)}
        return batch, metrics

    def _reward_metrics(self, keys: Sequence[str], partition_id: str) -> dict[str, float]:
        try:
            return training_step_metrics(fetch_extra_fields(keys, partition_id))
        except Exception:  # metrics must never stop training
            if not self._metrics_error_logged:
                logger.exception("Could not compute reward-component training metrics; skipping them.")
                self._metrics_error_logged = True
            return {}


class RewardMetricsReplayBuffer(_RewardMetricsMixin, ReplayBuffer):
    """verl's sync ``ReplayBuffer`` that also reports reward-component means per training step."""

    _expected_async = False


class RewardMetricsReplayBufferAsync(_RewardMetricsMixin, ReplayBufferAsync):
    """verl's ``ReplayBufferAsync`` (colocate/separate async trainers) with reward-component means."""

    _expected_async = True
