"""The hyper-parameter sweep: seeded random search over LightGBM parameters, run by Ray Tune with successive halving.

Why it is shaped this way (Tune's defaults cost 13-15x a plain loop on 2 cores, see the sweep benchmark):

- Early stopping across trials is :mod:`mlops_assets.lib.halving`'s order-independent successive halving, not Tune's
  ASHA, whose choice of model depended on which of two concurrent trials reported first; the same seed, data and
  code now give the same best trial and the same model.
- Configurations are sampled with a seeded generator (:mod:`mlops_assets.lib.search_space`) and handed to Tune as one
  grid, so a sweep is reproducible and the benchmark's plain loop can run exactly the same trials.
- Ray's lifecycle lives in :mod:`mlops_assets.lib.ray_runtime`, the driver-side callback in
  :mod:`mlops_assets.lib.sweep_callbacks` (it subclasses a Tune class, so Ray is imported only when a sweep runs).
- ``reuse_actors=True``: trials run in long-lived actors instead of a new process each.
- Trial-level threading: each trial gets ``cpus_per_trial`` cores and LightGBM that many threads, so concurrent trials
  fill the machine without oversubscribing it.
- The training data go to the object store once (``tune.with_parameters``) as float32 arrays (zero-copy reads).
- Metrics are reported every ``report_every`` rounds, not every round: each report is a round trip to the driver.
- Tracking happens in the driver (a Tune callback hands each finished trial to ``on_trial_complete``), so trial
  workers on a cluster need no access to MLflow, and a SQLite tracking store sees one writer.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_assets.lib.boosting import ModelData, train_booster, training_params
from mlops_assets.lib.halving import OrderedHalving
from mlops_assets.lib.ray_runtime import ray_session
from mlops_assets.lib.search_space import sample_configs

METRIC = "valid_auc"


class SweepFailedError(RuntimeError):
    """Every trial of the sweep failed; nothing may be registered."""


@dataclass(frozen=True)
class SweepSettings:
    num_samples: int = 8
    max_concurrent_trials: int = 2
    cpus_per_trial: int = 1
    use_gpu: bool = False
    gpus_per_trial: float = 1.0
    max_rounds: int = 400
    early_stopping_rounds: int = 30
    report_every: int = 10
    # Successive halving: a trial is first judged after this many reports; each rung keeps 1/reduction_factor.
    grace_period_reports: int = 4
    reduction_factor: int = 3
    # Ray re-runs a crashed trial this many times before it counts as failed.
    max_failures: int = 1
    seed: int = 2013

    def __post_init__(self) -> None:
        for name in ("num_samples", "max_concurrent_trials", "cpus_per_trial", "max_rounds", "report_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"sweep setting {name} must be at least 1, got {getattr(self, name)}")
        if self.use_gpu and self.gpus_per_trial <= 0:
            raise ValueError("gpus_per_trial must be positive when use_gpu is set")


@dataclass
class TrialRecord:
    trial_id: str
    params: dict[str, Any]
    index: int = 0
    status: str = "RUNNING"
    valid_auc: float | None = None
    best_iteration: int | None = None
    rounds: int = 0
    wall_s: float = 0.0
    history: list[tuple[int, float]] = field(default_factory=list)
    best_iterations: list[int] = field(default_factory=list)
    stopped_at_report: int | None = None
    error: str | None = None

    def as_of_report(self, report: int) -> None:
        """Read the trial as of report ``report`` (1-based): where the halving rule stopped it."""
        self.history, self.best_iterations = self.history[:report], self.best_iterations[:report]
        self.rounds, self.valid_auc = self.history[-1]
        self.best_iteration = self.best_iterations[-1]
        self.stopped_at_report = report

    @property
    def succeeded(self) -> bool:
        return self.status == "TERMINATED" and self.valid_auc is not None

    @property
    def error_summary(self) -> str:
        """The last line of the trial's traceback (the exception itself)."""
        lines = [line for line in (self.error or "").splitlines() if line.strip()]
        return lines[-1][:300] if lines else "no result reported"


@dataclass(frozen=True)
class SweepResult:
    trials: list[TrialRecord]
    best: TrialRecord
    wall_s: float
    cpu_seconds: float
    gpu_seconds: float
    ray_start_s: float

    def ranked(self) -> list[TrialRecord]:
        return sorted((t for t in self.trials if t.succeeded), key=lambda t: -(t.valid_auc or 0.0))


def _run_trial(
    config: dict[str, Any],
    train: ModelData,
    valid: ModelData,
    settings: SweepSettings,
) -> None:
    """One Tune trial; reports the best validation AUC so far every ``report_every`` rounds."""
    from ray import tune

    params = training_params(config["trial"]["params"], num_threads=settings.cpus_per_trial, use_gpu=settings.use_gpu)
    state = {"best_auc": -1.0, "best_iteration": 0, "reported": 0}

    def report(env: Any) -> None:
        iteration = env.iteration + 1
        current = env.evaluation_result_list[0][2]
        if current > state["best_auc"]:
            state["best_auc"], state["best_iteration"] = current, iteration
        if iteration % settings.report_every == 0:
            state["reported"] = iteration
            tune.report({METRIC: state["best_auc"], "round": iteration, "best_iteration": state["best_iteration"]})

    booster = train_booster(
        params,
        train,
        valid,
        num_boost_round=settings.max_rounds,
        early_stopping_rounds=settings.early_stopping_rounds,
        callbacks=[report],
    )
    if booster.current_iteration() != state["reported"]:
        tune.report(
            {METRIC: state["best_auc"], "round": booster.current_iteration(), "best_iteration": state["best_iteration"]}
        )


def _halving(trials: int, settings: SweepSettings, max_reports: int) -> OrderedHalving:
    grace = min(settings.grace_period_reports, max_reports)
    return OrderedHalving(trials, grace, settings.reduction_factor, max_reports)


def _halving_outcomes(trials: list[TrialRecord], settings: SweepSettings, max_reports: int) -> list[int | None]:
    """Each finished trial's stop report under the halving rule, recomputed from the recorded reports (the driver's
    records, so it does not matter whether Tune kept the scheduler object or a copy)."""
    halving = _halving(max((t.index for t in trials), default=-1) + 1, settings, max_reports)
    for trial in trials:
        for report, (_, metric) in enumerate(trial.history, start=1):
            halving.observe(trial.index, report, metric)
    for index in range(halving.trials):
        halving.finish(index)
    decisions = halving.outcomes()
    return [decisions[trial.index] for trial in trials]


def _client_relay() -> Any | None:
    """A queue for the trial events when this process is a Ray Client (the sweep then runs on the cluster)."""
    import ray
    from ray.util.queue import Queue

    return Queue() if ray.util.client.ray.is_connected() else None


def _tune(
    train: ModelData,
    valid: ModelData,
    settings: SweepSettings,
    trial_configs: list[dict[str, Any]],
    scheduler: Any,
    collector: Any,
) -> None:
    """Build the Tuner and fit it, in the process that drives the sweep: this one, or a task on the cluster."""
    from ray import tune

    resources: dict[str, float] = {"cpu": settings.cpus_per_trial}
    if settings.use_gpu:
        resources["gpu"] = settings.gpus_per_trial
    trainable = tune.with_resources(
        tune.with_parameters(_run_trial, train=train, valid=valid, settings=settings), resources
    )
    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([{"index": i, "params": c} for i, c in enumerate(trial_configs)])},
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode="max",
                scheduler=scheduler,
                max_concurrent_trials=settings.max_concurrent_trials,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="sweep",
                storage_path=storage,
                failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                callbacks=[collector],
                verbose=0,
            ),
        )
        tuner.fit()


def _drive(collector: Any, *tune_args: Any) -> None:
    """Run :func:`_tune` (with ``tune_args`` then ``collector``) here; as a Ray Client, as one task on the cluster (a
    client's ``tune.with_parameters`` puts the data where the cluster's Tune cannot find it), applying the relayed
    trial events here while it runs, so progress is logged and MLflow child runs written by this process as with a
    local Ray."""
    if collector.relay is None:
        _tune(*tune_args, collector)
        return
    import ray

    # No CPU of its own: the trials' resources are the sweep's; the task only waits for Tune.
    pending = ray.remote(num_cpus=0, max_retries=0)(_tune).remote(*tune_args, collector)
    while True:
        ready, _ = ray.wait([pending], timeout=0.5)
        collector.drain()
        if ready:
            ray.get(pending)  # raises the task's error here
            collector.drain()
            return


def run_sweep(
    train: ModelData,
    valid: ModelData,
    settings: SweepSettings,
    ray_address: str = "local",
    configs: Sequence[Mapping[str, Any]] | None = None,
    on_trial_complete: Callable[[TrialRecord, int, int], None] | None = None,
) -> SweepResult:
    """Run the sweep and return every trial; raises :class:`SweepFailedError` when no trial succeeded.

    ``configs`` overrides the sampled configurations (``settings.num_samples`` of them by default).
    ``on_trial_complete(record, done, total)`` is called in this process as each trial ends, failed ones included.
    """
    from mlops_assets.lib.sweep_callbacks import OrderedHalvingScheduler, TrialCollector

    trial_configs = (
        [dict(c) for c in configs] if configs is not None else sample_configs(settings.num_samples, settings.seed)
    )
    total = len(trial_configs)

    max_reports = max(1, math.ceil(settings.max_rounds / settings.report_every))
    scheduler = OrderedHalvingScheduler(_halving(total, settings, max_reports))
    num_cpus = settings.cpus_per_trial * settings.max_concurrent_trials
    started = time.perf_counter()
    with ray_session(ray_address, num_cpus=num_cpus) as ray_start_s:
        collector = TrialCollector(total, on_trial_complete, relay=_client_relay())
        _drive(collector, train, valid, settings, trial_configs, scheduler)
    wall_s = time.perf_counter() - started
    trials = sorted(collector.records.values(), key=lambda t: t.index)
    # The result as the halving rule defines it: a trial that kept training while its decision waited on an earlier
    # trial is read as of the report where the rule stops it, so the best trial does not depend on timing.
    for trial, stop in zip(trials, _halving_outcomes(trials, settings, max_reports), strict=True):
        if stop is not None and len(trial.history) >= stop:
            trial.as_of_report(stop)
    succeeded = [t for t in trials if t.succeeded]
    if not succeeded:
        errors = "; ".join(sorted({t.error_summary for t in trials})) or "no trials ran"
        raise SweepFailedError(f"all {total} trials of the sweep failed ({errors})")
    # Ties go to the earlier trial in grid order (max keeps the first maximum).
    best = max(succeeded, key=lambda t: t.valid_auc or 0.0)
    trial_seconds = sum(t.wall_s for t in trials)
    return SweepResult(
        trials=trials,
        best=best,
        wall_s=wall_s,
        cpu_seconds=trial_seconds * settings.cpus_per_trial,
        gpu_seconds=trial_seconds * settings.gpus_per_trial if settings.use_gpu else 0.0,
        ray_start_s=ray_start_s,
    )
