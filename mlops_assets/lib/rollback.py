"""When to roll a newly promoted champion back, from its live performance against ``previous_champion``'s.

Both models are scored by ``drift_profile`` on the same labelled rows of every day since the promotion, so each day
gives a paired AUC difference AUC(champion) - AUC(previous). The rule rolls back when there are at least
``min_days`` labelled days and the 95% bootstrap CI over whole days of the mean difference lies entirely below
``-tolerance``: one bad day, or a champion merely no better, is not enough; only a champion worse beyond the noise of
the days so far is demoted. Everything is a function of the days' labels and scores, never of the wall clock, so
replaying 2013 day by day takes the decisions production would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlops_assets.lib.live_performance import paired_auc_difference

# A CI needs two days at least (``paired_auc_difference`` returns None below), so the rule never fires on one.
MIN_DAYS_FLOOR = 2


@dataclass(frozen=True)
class RollbackPolicy:
    min_days: int
    tolerance: float
    resamples: int = 1000
    seed: int = 2013

    def __post_init__(self) -> None:
        if self.min_days < MIN_DAYS_FLOOR:
            raise ValueError(f"min_days must be at least {MIN_DAYS_FLOOR} (a CI over days), got {self.min_days}")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must not be negative, got {self.tolerance}")


@dataclass(frozen=True)
class RollbackDecision:
    rollback: bool
    reason: str
    days: int
    """Labelled days that count (both AUCs defined: both classes present)."""
    delta: float | None
    """Mean daily AUC(champion) - AUC(previous champion); None with fewer than two labelled days."""
    ci_low: float | None
    ci_high: float | None


def decide(days: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], policy: RollbackPolicy) -> RollbackDecision:
    """``days``: per labelled day since the promotion, (labels, champion scores, previous champion scores) on the
    same rows."""
    # paired_auc_difference measures its third element minus its second: previous first gives champion - previous.
    paired = paired_auc_difference(
        [(y, p_previous, p_champion) for y, p_champion, p_previous in days], policy.resamples, policy.seed
    )
    if paired is None:
        # Under two days with both classes: no CI, so no figures to state.
        counted = sum(1 for y, _, _ in days if 0 < np.sum(y) < len(y))
        reason = f"{counted} labelled day(s) since the promotion, {policy.min_days} needed"
        return RollbackDecision(False, reason, counted, None, None, None)
    count = int(paired["days"])
    delta, low, high = paired["estimate"], paired["low"], paired["high"]
    figures = (
        f"AUC(champion) - AUC(previous_champion) {delta:+.4f} over {count} labelled day(s), "
        f"95% CI [{low:+.4f}, {high:+.4f}]"
    )
    threshold = 0.0 - policy.tolerance  # 0.0 - 0.0 is +0.0: the reason reads "below 0", not "below -0"
    if count < policy.min_days:
        verdict, rollback = f"{count} of the {policy.min_days} days needed", False
    elif high < threshold:
        verdict, rollback = f"entirely below {threshold:g}: worse beyond the CI", True
    else:
        verdict, rollback = f"not entirely below {threshold:g}: not worse beyond the CI", False
    return RollbackDecision(rollback, f"{figures}; {verdict}", count, delta, low, high)
