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
    """Turns Tune's trial events into :class:`TrialRecord` s and hands finished trials to ``notify``, in this process.

    Tune pickles its callbacks with the experiment state; the caller's ``notify`` (which may hold a Dagster context
    with locks) and the records are process-local, so they are left out of the pickle. Under Ray Client, Tune's own
    driver runs on the cluster with that pickled copy: it then forwards every event through ``relay`` (a Ray queue),
    and this process applies them with :meth:`drain`, so records and progress are the same whichever the Ray.
    """

    def __init__(
        self, total: int, notify: Callable[[TrialRecord, int, int], None] | None, relay: Any | None = None
    ) -> None:
        self.total = total
        self.notify = notify
        self.records: dict[str, TrialRecord] = {}
        self.done = 0
        self.relay = relay
        self._forward = False  # True in the pickled copy that runs where Tune's driver runs

    def __getstate__(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "notify": None,
            "records": {},
            "done": 0,
            "relay": self.relay,
            "_forward": self.relay is not None,
        }

    def _handle(self, event: tuple[Any, ...]) -> None:
        if self._forward:
            self.relay.put(event)
        else:
            self.apply(event)

    def apply(self, event: tuple[Any, ...]) -> None:
        kind, trial_id, params, index, payload = event
        record = self.records.setdefault(trial_id, TrialRecord(trial_id, params, index=index))
        if kind == "result":
            record.history.append((payload["round"], payload[METRIC]))
            record.valid_auc = payload[METRIC]
            record.best_iteration = payload["best_iteration"]
            record.best_iterations.append(record.best_iteration)
            record.rounds = payload["round"]
            record.wall_s = payload["wall_s"]
            return
        self.done += 1
        record.status, record.error = payload["status"], payload["error"]
        if self.notify is not None:
            self.notify(record, self.done, self.total)

    def drain(self) -> None:
        """Apply what the relay holds (a no-op without one)."""
        while self.relay is not None and not self.relay.empty():
            self.apply(self.relay.get())

    @staticmethod
    def _event(kind: str, trial: Any, payload: dict[str, Any]) -> tuple[Any, ...]:
        return (kind, trial.trial_id, dict(trial.config["trial"]["params"]), _grid_index(trial), payload)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        payload = {
            "round": int(result["round"]),
            METRIC: float(result[METRIC]),
            "best_iteration": int(result["best_iteration"]),
            "wall_s": float(result.get("time_total_s", 0.0)),
        }
        self._handle(self._event("result", trial, payload))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._handle(self._event("finish", trial, {"status": "TERMINATED", "error": None}))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._handle(self._event("finish", trial, {"status": "ERROR", "error": _trial_error(trial)}))


def _trial_error(trial: Any) -> str:
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        with open(path) as handle:
            return handle.read().strip()
    return "trial failed without an error file"
