"""What the service actually served on a day, read from the prediction log and joined to the day's labels.

The drift profile scores the day's flights itself (every labelled flight, whether or not anyone asked), so it says
how the model does; the log says what the callers got. Two figures only the log gives:

- **served performance**: AUC, log loss and ECE of the champion scores the service returned (and of the shadow
  challenger's logged scores), on the served flights whose labels arrived with the day;
- **training/serving skew**: for a flight served by the same model version, the gap between the served score and
  the score of the offline, point-in-time features. Zero when the online features equal the training features; a
  gap means the online store answered something training never saw (a stale view, a missing push, a changed
  definition).

A flight may be asked about several times (as its departure nears): its latest logged request counts. Pure polars
and numpy; the drift_profile asset reads the log and passes both frames in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from mlops_assets.lib import prediction_log as log_columns
from mlops_assets.lib.live_performance import day_metrics

# A served score further than this from the offline score of the same model version counts as skewed.
SKEW_TOLERANCE = 0.01
OFFLINE_SCORE = "offline_score"
LABEL = "label"


@dataclass(frozen=True)
class ServedDay:
    requests: int
    """Logged rows of the day (every request of every flight)."""
    flights: int
    """Distinct flights served."""
    labelled: int
    """Served flights whose label is in the day's data."""
    champion: dict[str, float] | None
    """``day_metrics`` of the served champion scores on the labelled flights; None when none is labelled."""
    shadow_version: str | None
    shadow: dict[str, float] | None
    """``day_metrics`` of the logged shadow scores on the labelled flights that have one."""
    compared: int
    """Labelled flights served by ``champion_version``, whose served and offline scores are compared."""
    skew_p99: float | None
    skew_max: float | None
    skewed_share: float | None
    """Share of the compared flights whose |served - offline| exceeds :data:`SKEW_TOLERANCE`."""


def latest_requests(log: pl.DataFrame) -> pl.DataFrame:
    """One row per flight: its latest logged request (ties keep the later-written row)."""
    return (
        log.filter(pl.col(log_columns.FLIGHT_ID).is_not_null())
        .with_row_index("_order")
        .sort(log_columns.LOGGED_AT, "_order")
        .unique(log_columns.FLIGHT_ID, keep="last", maintain_order=True)
        .drop("_order")
    )


def served_day(log: pl.DataFrame, offline: pl.DataFrame, champion_version: str) -> ServedDay:
    """``log``: the day's prediction log (``read_prediction_log``). ``offline``: the day's labelled flights with
    ``flight_id``, ``label`` and ``offline_score`` (the champion's score of the point-in-time features)."""
    latest = latest_requests(log)
    joined = latest.join(offline.select(log_columns.FLIGHT_ID, LABEL, OFFLINE_SCORE), on=log_columns.FLIGHT_ID)
    champion = _metrics(joined, log_columns.CHAMPION_SCORE)
    with_shadow = joined.filter(pl.col(log_columns.SHADOW_SCORE).is_not_null())
    shadow_versions = with_shadow.get_column(log_columns.SHADOW_VERSION).drop_nulls().unique().sort().to_list()
    same_version = joined.filter(
        (pl.col(log_columns.CHAMPION_VERSION) == champion_version) & pl.col(log_columns.CHAMPION_SCORE).is_not_null()
    )
    gaps = (same_version[log_columns.CHAMPION_SCORE] - same_version[OFFLINE_SCORE]).abs().to_numpy()
    return ServedDay(
        requests=log.height,
        flights=latest.height,
        labelled=joined.height,
        champion=champion,
        shadow_version=shadow_versions[-1] if shadow_versions else None,
        shadow=_metrics(with_shadow, log_columns.SHADOW_SCORE),
        compared=int(gaps.size),
        skew_p99=float(np.quantile(gaps, 0.99)) if gaps.size else None,
        skew_max=float(gaps.max()) if gaps.size else None,
        skewed_share=float((gaps > SKEW_TOLERANCE).mean()) if gaps.size else None,
    )


def _metrics(rows: pl.DataFrame, score: str) -> dict[str, float] | None:
    rows = rows.filter(pl.col(score).is_not_null())
    if rows.height == 0:
        return None
    return day_metrics(rows[LABEL].to_numpy().astype(float), rows[score].to_numpy().astype(float))
