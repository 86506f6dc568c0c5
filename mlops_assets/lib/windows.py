"""Train / validation / holdout date windows for a model trained as of one partition.

Scheme (all dates inclusive, ``last_day = partition_end - 1 day``; the partition is ``[partition_start,
partition_end)``)::

    |<-- train_days -->|<-- valid_days -->|<-- holdout_days -->|
    train_start        valid_start        holdout_start        holdout_end == last_day

- The holdout is the newest data: the ``holdout_days`` days ending on the partition's last day. With a weekly
  partition and ``holdout_days=7`` the holdout *is* the partition's week, so every weekly model is scored on the week it
  is named after, data the sweep never saw.
- Validation (early stopping, hyper-parameter selection) is the ``valid_days`` days just before the holdout, and
  training the ``train_days`` days just before validation.
- The windows are contiguous and disjoint, strictly ordered ``train < valid < holdout``, and nothing is later than the
  partition's last day, so a backfill of an old partition never sees data from after it.

Why the holdout sits last rather than validation: model selection is biased towards the validation window, so the
unbiased estimate must come from data that is both untouched and the most recent, the closest to what the model will
serve next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class TrainingWindows:
    """Inclusive date ranges; see the module docstring for the scheme."""

    train_start: date
    train_end: date
    valid_start: date
    valid_end: date
    holdout_start: date
    holdout_end: date

    def as_metadata(self) -> dict[str, str]:
        """ISO dates plus ``start..end`` summaries, ready for asset metadata or MLflow params."""
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "valid_start": self.valid_start.isoformat(),
            "valid_end": self.valid_end.isoformat(),
            "holdout_start": self.holdout_start.isoformat(),
            "holdout_end": self.holdout_end.isoformat(),
            "train_window": f"{self.train_start.isoformat()}..{self.train_end.isoformat()}",
            "valid_window": f"{self.valid_start.isoformat()}..{self.valid_end.isoformat()}",
            "holdout_window": f"{self.holdout_start.isoformat()}..{self.holdout_end.isoformat()}",
        }


def _check_days(name: str, value: object) -> int:
    # bool is an int subclass; ``train_days=True`` is a bug, not one day.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int number of days, got {value!r}; pass a positive integer such as 7")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 day, got {value}; pass a positive number of days")
    return value


def training_windows(
    partition_start: date,
    partition_end: date,
    train_days: int,
    valid_days: int,
    holdout_days: int,
) -> TrainingWindows:
    """The windows for the partition ``[partition_start, partition_end)`` (end exclusive, as Dagster's time windows).

    Raises ``ValueError`` naming the offending parameter when a day count is not a positive int, when the partition
    is empty or reversed, or when the dates are datetimes (a time of day would shift the windows silently).
    """
    for name, value in (("partition_start", partition_start), ("partition_end", partition_end)):
        # datetime is a date subclass; reject it so "2013-01-07 23:00" is not silently treated as 2013-01-07.
        if not isinstance(value, date) or type(value) is not date:
            raise ValueError(
                f"{name} must be a datetime.date, got {type(value).__name__}; pass e.g. "
                f"context.partition_time_window.start.date()"
            )
    if partition_end <= partition_start:
        raise ValueError(
            f"partition_end ({partition_end}) must be after partition_start ({partition_start}); partition_end is "
            "exclusive, so a one-day partition is [d, d + 1 day)"
        )
    train = _check_days("train_days", train_days)
    valid = _check_days("valid_days", valid_days)
    holdout = _check_days("holdout_days", holdout_days)

    holdout_end = partition_end - timedelta(days=1)
    holdout_start = holdout_end - timedelta(days=holdout - 1)
    valid_end = holdout_start - timedelta(days=1)
    valid_start = valid_end - timedelta(days=valid - 1)
    train_end = valid_start - timedelta(days=1)
    train_start = train_end - timedelta(days=train - 1)
    return TrainingWindows(
        train_start=train_start,
        train_end=train_end,
        valid_start=valid_start,
        valid_end=valid_end,
        holdout_start=holdout_start,
        holdout_end=holdout_end,
    )


def last_complete_week(day: date) -> date:
    """The Monday of the latest Monday-to-Sunday week that ends on or before ``day`` (a weekly partition key)."""
    sunday = day - timedelta(days=(day.weekday() + 1) % 7)
    return sunday - timedelta(days=6)
