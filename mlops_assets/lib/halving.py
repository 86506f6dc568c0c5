"""Successive halving whose outcome does not depend on which trial reports first: the sweep's early stopping.

Ray Tune's ASHA judges a trial at a rung against whichever trials happened to reach that rung before it, so with two
trials running at once the same seed, data and code chose different models (the CI's week 2013-02-18: holdout AUC
0.6700 in one run, 0.7050 in the next, and the gate refused one and promoted the other). Here a trial is judged at
rung ``m`` against the trials *earlier in grid order* that reached ``m``, with ASHA's rule (kept when its metric is at
least the ``1 - 1/reduction_factor`` quantile of those metrics and its own). The grid order and every trial's metrics
are deterministic (LightGBM runs deterministic), so the outcome is too.

Online, a decision can wait: while an earlier trial has not yet reached the rung, the later one keeps training, and
it is stopped at a later report once its decision is known to be "stop". A trial is never stopped before its
decision, so after the sweep :meth:`OrderedHalving.stop_report` says, for every trial, the rung report at which the
rule stops it (or None), and the sweep reads that trial's result as of that report: wall-clock order changes only
how much compute is spent, never the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class _Unknown:
    """Not decidable yet: an earlier trial has not reached the rung (or not been judged at an earlier one)."""


UNKNOWN = _Unknown()


@dataclass
class OrderedHalving:
    """Trials ``0..n-1`` in grid order report a metric (higher is better) at reports ``1, 2, ...``."""

    trials: int
    grace_period: int
    reduction_factor: int
    max_reports: int
    reports: list[dict[int, float]] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    # Decisions already known, by (trial, rung): reports only grow and finished trials stay finished, so a known
    # decision never changes. Without it, each report re-judges every earlier trial at every rung (n^rungs calls).
    _decided: dict[tuple[int, int], bool] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.grace_period < 1 or self.reduction_factor < 2:
            raise ValueError("grace_period must be >= 1 and reduction_factor >= 2")
        self.reports = [{} for _ in range(self.trials)]
        self.finished = [False] * self.trials

    @property
    def rungs(self) -> list[int]:
        """The reports at which a trial is judged: grace, grace*rf, grace*rf^2, ... below the last report."""
        rungs, rung = [], self.grace_period
        while rung < self.max_reports:
            rungs.append(rung)
            rung *= self.reduction_factor
        return rungs

    def observe(self, trial: int, report: int, metric: float) -> None:
        self.reports[trial][report] = metric

    def finish(self, trial: int) -> None:
        self.finished[trial] = True

    def _alive_at(self, trial: int, rung: int) -> bool | _Unknown:
        """Whether ``trial`` reached ``rung`` without being stopped at an earlier one."""
        for earlier in self.rungs:
            if earlier >= rung:
                break
            stopped = self._stopped_at(trial, earlier)
            if stopped is UNKNOWN:
                return UNKNOWN
            if stopped:
                return False
        if rung in self.reports[trial]:
            return True
        return False if self.finished[trial] else UNKNOWN

    def _stopped_at(self, trial: int, rung: int) -> bool | _Unknown:
        """Whether the rule stops ``trial`` at ``rung`` (False when it never reached the rung alive)."""
        if (trial, rung) not in self._decided:
            decision = self._judge(trial, rung)
            if decision is UNKNOWN:
                return UNKNOWN
            self._decided[trial, rung] = bool(decision)
        return self._decided[trial, rung]

    def _judge(self, trial: int, rung: int) -> bool | _Unknown:
        alive = self._alive_at(trial, rung)
        if alive is not True:
            return alive if alive is UNKNOWN else False
        recorded = [self.reports[trial][rung]]
        for earlier in range(trial):
            earlier_alive = self._alive_at(earlier, rung)
            if earlier_alive is UNKNOWN:
                return UNKNOWN
            if earlier_alive:
                recorded.append(self.reports[earlier][rung])
        cutoff = float(np.percentile(recorded, (1 - 1 / self.reduction_factor) * 100))
        return self.reports[trial][rung] < cutoff

    def stop_report(self, trial: int) -> int | _Unknown | None:
        """The rung report at which the rule stops ``trial``; None when it never does; UNKNOWN while undecided."""
        for rung in self.rungs:
            stopped = self._stopped_at(trial, rung)
            if stopped is UNKNOWN:
                return UNKNOWN
            if stopped:
                return rung
            if rung not in self.reports[trial]:
                return None  # finished before this rung: nothing later can stop it
        return None

    def should_stop(self, trial: int) -> bool:
        """Online: stop ``trial`` now? Only once its decision is known to be "stop"."""
        decision = self.stop_report(trial)
        return isinstance(decision, int)

    def outcomes(self) -> Sequence[int | None]:
        """After every trial finished: each trial's stop report (None: ran to its own end)."""
        decisions = [self.stop_report(trial) for trial in range(self.trials)]
        if any(d is UNKNOWN for d in decisions):
            raise RuntimeError("outcomes() before every trial finished")
        return decisions  # type: ignore[return-value]
