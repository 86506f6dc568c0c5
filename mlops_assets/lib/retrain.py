"""When to retrain, in data time: the schedule of weekly models, and the drift/decay rule between scheduled models.

Everything here is a function of partition dates and of what the monitoring recorded for each day, never of the wall
clock, so replaying 2013 day by day takes exactly the decisions production would.

- **Schedule**: a model every ``every_weeks`` weeks, counted from the first trainable week.
- **Drift/decay rule**: a day *signals* when it has enough rows, passed its data-quality checks, and its
  importance-weighted drift or its relative AUC decay exceeds its threshold. A retrain is requested when the latest
  day signals **and** at least ``min_days`` of the last ``window_days`` days do, and no model was trained within
  ``cooldown_days``. Requiring persistence (k of n) and the latest day keeps one odd day from retraining; weighting
  drift by the champion's importance keeps a shift in a feature the model barely uses (seasonal temperature) from
  retraining every day. A day whose data-quality checks failed never counts: bad data alerts and blocks, it does
  not retrain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta


def is_scheduled_week(week_start: date, first_week: date, every_weeks: int) -> bool:
    """Whether the weekly partition starting ``week_start`` is on the retraining schedule."""
    if every_weeks < 1:
        raise ValueError(f"every_weeks must be at least 1, got {every_weeks}")
    offset = (week_start - first_week).days
    return offset >= 0 and (offset // 7) % every_weeks == 0


def week_of(day: date) -> date:
    """The Monday of ``day``'s Monday-to-Sunday week: the weekly partition whose holdout ``day`` falls in."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class RetrainPolicy:
    drift_threshold: float
    decay_threshold: float
    window_days: int
    min_days: int
    min_rows: int
    cooldown_days: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_days <= self.window_days:
            raise ValueError(f"min_days ({self.min_days}) must be between 1 and window_days ({self.window_days})")


@dataclass(frozen=True)
class DayMonitor:
    """What the monitoring recorded for one day (one ``drift_profile`` partition)."""

    day: date
    rows: int
    drift_score: float | None
    """Importance-weighted JS distance of the day's features to the champion's reference, in excess of the reference
    days' own 90th percentile (``lib/drift.py`` ``Baseline``; None: no champion)."""
    auc_decay: float | None
    """(holdout AUC - day AUC) / holdout AUC of the champion (None: no champion or one class only)."""
    quality_passed: bool


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reason: str
    signalling_days: tuple[date, ...]

    @property
    def week(self) -> date | None:
        """The weekly partition to train: the week of the latest signalling day (training ends the Sunday before)."""
        return week_of(max(self.signalling_days)) if self.retrain else None


def _signal(day: DayMonitor, policy: RetrainPolicy) -> str | None:
    if not day.quality_passed or day.rows < policy.min_rows:
        return None
    if day.drift_score is not None and day.drift_score > policy.drift_threshold:
        return f"drift {day.drift_score:.3f} > {policy.drift_threshold}"
    if day.auc_decay is not None and day.auc_decay > policy.decay_threshold:
        return f"AUC decay {day.auc_decay:.1%} > {policy.decay_threshold:.0%}"
    return None


def decide(days: Sequence[DayMonitor], policy: RetrainPolicy, last_trained_week: date | None) -> RetrainDecision:
    """Apply the rule to the monitored days (any order; the newest day is the latest one)."""
    if not days:
        return RetrainDecision(False, "no monitored day yet", ())
    latest = max(days, key=lambda d: d.day)
    if not latest.quality_passed:
        return RetrainDecision(False, f"{latest.day}: data-quality checks failed (alert, never retrain)", ())
    window_start = latest.day - timedelta(days=policy.window_days - 1)
    window = [d for d in days if window_start <= d.day <= latest.day]
    signalling = tuple(sorted(d.day for d in window if _signal(d, policy)))
    latest_signal = _signal(latest, policy)
    if latest_signal is None:
        why = "too few rows" if latest.rows < policy.min_rows else "within thresholds"
        return RetrainDecision(False, f"{latest.day}: {why}", signalling)
    if len(signalling) < policy.min_days:
        return RetrainDecision(
            False,
            f"{latest.day}: {latest_signal}, but only {len(signalling)} of the last {policy.window_days} days signal "
            f"(need {policy.min_days})",
            signalling,
        )
    week = week_of(latest.day)
    if last_trained_week is not None and (week - last_trained_week).days < policy.cooldown_days:
        return RetrainDecision(
            False,
            f"{latest.day}: {latest_signal} on {len(signalling)} days, but the model of week {last_trained_week} is "
            f"within the {policy.cooldown_days}-day cooldown",
            signalling,
        )
    return RetrainDecision(
        True,
        f"{latest.day}: {latest_signal}; {len(signalling)} of the last {policy.window_days} days signal",
        signalling,
    )
