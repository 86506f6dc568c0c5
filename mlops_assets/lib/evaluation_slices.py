"""Slice metrics: the candidate and the champion per carrier, origin, month, departure-hour and distance bucket.

A slice is scored only with at least ``min_rows`` rows and both classes present; smaller ones are listed as skipped,
so a regression on ten flights cannot block a promotion, and a large slice cannot hide behind the overall AUC. With a
champion, each scored slice also gets a paired bootstrap CI of its AUC delta (the same resampled rows for both
models): a slice *regressed* when its delta is below ``-max_regression`` and the CI's upper end is below zero, so a
few hundred flights' noise alone does not block a promotion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from mlops_assets.lib.evaluation_metrics import paired_bootstrap, point_metrics

# Local scheduled departure hour -> bucket; the buckets follow the day's delay build-up.
HOUR_BUCKETS: tuple[tuple[int, int, str], ...] = (
    (0, 9, "00-09"),
    (10, 13, "10-13"),
    (14, 17, "14-17"),
    (18, 20, "18-20"),
    (21, 23, "21-23"),
)
DISTANCE_BUCKETS: tuple[tuple[float, float, str], ...] = (
    (0, 500, "<500mi"),
    (500, 1000, "500-999mi"),
    (1000, 2000, "1000-1999mi"),
    (2000, float("inf"), ">=2000mi"),
)
SLICE_DIMENSIONS: tuple[str, ...] = ("carrier", "origin", "month", "dep_hour_bucket", "distance_bucket")


def _bucket(column: str, buckets: tuple[tuple[float, float, str], ...], inclusive_high: bool) -> pl.Expr:
    expr: pl.Expr | None = None
    for low, high, label in buckets:
        cond = (pl.col(column) >= low) & ((pl.col(column) <= high) if inclusive_high else (pl.col(column) < high))
        expr = pl.when(cond).then(pl.lit(label)) if expr is None else expr.when(cond).then(pl.lit(label))
    assert expr is not None
    return expr.otherwise(pl.lit("unknown"))


def slice_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The slice dimensions of each row of ``frame`` (a training frame: carrier, origin, flight_date, ...)."""
    return frame.select(
        pl.col("carrier").fill_null("unknown").cast(pl.String),
        pl.col("origin").fill_null("unknown").cast(pl.String),
        pl.col("flight_date").dt.strftime("%Y-%m").alias("month"),
        _bucket("sched_dep_hour", HOUR_BUCKETS, inclusive_high=True).alias("dep_hour_bucket"),
        _bucket("distance", DISTANCE_BUCKETS, inclusive_high=False).alias("distance_bucket"),
    )


@dataclass(frozen=True)
class SliceRow:
    dimension: str
    value: str
    rows: int
    positives: int
    candidate_auc: float | None
    champion_auc: float | None
    candidate_log_loss: float | None
    scored: bool
    delta_low: float | None = None
    delta_high: float | None = None

    @property
    def delta_auc(self) -> float | None:
        if self.candidate_auc is None or self.champion_auc is None:
            return None
        return self.candidate_auc - self.champion_auc

    def regressed(self, max_regression: float) -> bool:
        delta = self.delta_auc
        return delta is not None and delta < -max_regression and (self.delta_high is None or self.delta_high < 0)

    def as_dict(self) -> dict[str, object]:
        return {
            "dimension": self.dimension,
            "value": self.value,
            "rows": self.rows,
            "positives": self.positives,
            "candidate_auc": self.candidate_auc,
            "champion_auc": self.champion_auc,
            "delta_auc": self.delta_auc,
            "delta_ci_low": self.delta_low,
            "delta_ci_high": self.delta_high,
            "candidate_log_loss": self.candidate_log_loss,
            "scored": self.scored,
        }


def slice_metrics(
    slices: pl.DataFrame,
    y: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray | None,
    min_rows: int,
    dimensions: tuple[str, ...] = SLICE_DIMENSIONS,
    resamples: int = 200,
    seed: int = 2013,
) -> list[SliceRow]:
    """Per dimension and value, rows in the order of ``slices`` (aligned with ``y`` and the predictions)."""
    out: list[SliceRow] = []
    for dimension in dimensions:
        values = slices.get_column(dimension).to_numpy()
        for value in sorted({str(v) for v in values}):
            mask = values == value
            labels = y[mask]
            positives = int(labels.sum())
            scored = bool(mask.sum() >= min_rows and 0 < positives < mask.sum())
            cand = point_metrics(labels, candidate[mask]) if scored else None
            champ = point_metrics(labels, champion[mask]) if scored and champion is not None else None
            delta = None
            if champ is not None and champion is not None and resamples > 0:
                delta = paired_bootstrap(labels, candidate[mask], champion[mask], resamples, seed).delta
            out.append(
                SliceRow(
                    dimension=dimension,
                    value=value,
                    rows=int(mask.sum()),
                    positives=positives,
                    candidate_auc=cand["roc_auc"] if cand else None,
                    champion_auc=champ["roc_auc"] if champ else None,
                    candidate_log_loss=cand["log_loss"] if cand else None,
                    scored=scored,
                    delta_low=delta["roc_auc"].low if delta else None,
                    delta_high=delta["roc_auc"].high if delta else None,
                )
            )
    return out


def worst_slice(rows: list[SliceRow]) -> SliceRow | None:
    """The scored slice whose AUC dropped most against the champion (None without a champion)."""
    compared = [row for row in rows if row.delta_auc is not None]
    return min(compared, key=lambda row: row.delta_auc or 0.0) if compared else None
