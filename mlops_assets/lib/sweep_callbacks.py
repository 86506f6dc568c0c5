"""The Tune pieces that run in the driver: the callback that turns Tune's trial events into :class:`TrialRecord` s,
and the scheduler that applies :class:`~mlops_assets.lib.halving.OrderedHalving`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from mlops_assets.lib.halving import OrderedHalving
from mlops_assets.lib.sweep import METRIC, TrialRecord


def _grid_index(trial: Any) -> int:
    """The trial's position in the sweep's grid (``run_sweep`` puts it in the config next to the parameters)."""
    return int(trial.config["trial"]["index"])


class OrderedHalvingScheduler(FIFOScheduler):
    """Trials run in grid order (FIFO); a trial is stopped once the order-independent halving rule says so."""

    def __init__(self, halving: OrderedHalving) -> None:
        super().__init__()
        self.halving = halving

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        index = _grid_index(trial)
        self.halving.observe(index, int(result["training_iteration"]), float(result[METRIC]))
        return TrialScheduler.STOP if self.halving.should_stop(index) else TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.halving.finish(_grid_index(trial))

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.halving.finish(_grid_index(trial))

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.halving.finish(_grid_index(trial))


class TrialCollector(tune.Callback):
    """Runs in the driver: gathers each trial's reported history and hands finished trials to ``notify``.

    Tune pickles its callbacks with the experiment state; the caller's ``notify`` (which may hold a Dagster context
    with locks) and the records are process-local, so they are left out of the pickle.
    """

    def __init__(self, total: int, notify: Callable[[TrialRecord, int, int], None] | None) -> None:
        self.total = total
        self.notify = notify
        self.records: dict[str, TrialRecord] = {}
        self.done = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"total": self.total, "notify": None, "records": {}, "done": 0}

    def _record(self, trial: Any) -> TrialRecord:
        return self.records.setdefault(
            trial.trial_id, TrialRecord(trial.trial_id, dict(trial.config["trial"]["params"]), index=_grid_index(trial))
        )

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        record = self._record(trial)
        record.history.append((int(result["round"]), float(result[METRIC])))
        record.valid_auc = float(result[METRIC])
        record.best_iteration = int(result["best_iteration"])
        record.best_iterations.append(record.best_iteration)
        record.rounds = int(result["round"])
        record.wall_s = float(result.get("time_total_s", 0.0))

    def _finish(self, trial: Any, status: str, error: str | None) -> None:
        self.done += 1
        record = self._record(trial)
        record.status, record.error = status, error
        if self.notify is not None:
            self.notify(record, self.done, self.total)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, "TERMINATED", None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, "ERROR", _trial_error(trial))


def _trial_error(trial: Any) -> str:
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        with open(path) as handle:
            return handle.read().strip()
    return "trial failed without an error file"
