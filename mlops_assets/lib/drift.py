"""Drift statistics from whylogs profiles: per-column PSI and Jensen-Shannon distance, and an importance-weighted score.

A day is profiled once (whylogs: a KLL quantile sketch per numeric column, a frequent-items sketch per string column,
null counts for both) and the profile is what is kept, so statistics never need the rows again, and a reference over
a model's whole training window is the merge of its days' profiles.

Both statistics compare two discrete distributions over the same buckets:
- numeric columns: ``bins`` buckets between the reference's quantiles (so each holds ~1/bins of the reference), plus
  one bucket for missing values, so a feature that starts arriving empty drifts too;
- string columns: the reference's frequent values, one bucket for every other value, one for missing.

PSI (population stability index, ``sum (q - p) ln(q / p)``; rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25
large) and the JS distance (base 2, in [0, 1], symmetric) are both reported per column. They are effect sizes, not
p-values: with thousands of rows a test rejects on any difference, while the question is whether it matters.

The overall score is the JS distance weighted by the champion's gain importance (weights sum to 1). JS rather than
PSI because it is bounded: a feature with weight w moves the score by at most w, so a large shift in a feature the
model barely uses (seasonal temperature: PSI > 3 for a two-sigma move, where PSI saturates only at the probability
floor) cannot dominate it. On 900 rows of an unchanged distribution the score's sampling noise is ~0.04.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from whylogs.core import DatasetProfileView
    from whylogs.core.view.column_profile_view import ColumnProfileView

DEFAULT_BINS = 10
# A bucket empty on one side would make PSI infinite; this floor (well under one row in a day) keeps it finite.
PROBABILITY_FLOOR = 1e-4
OTHER_VALUES = "__other__"


class DriftError(ValueError):
    """A comparison that cannot be made; the message names the column and the fix."""


def profile(frame: pl.DataFrame) -> DatasetProfileView:
    """The whylogs profile of ``frame`` (numeric columns as float64, strings as strings)."""
    import whylogs as why

    numeric = [name for name, dtype in frame.schema.items() if dtype.is_numeric() or dtype == pl.Boolean]
    prepared = frame.with_columns(pl.col(numeric).cast(pl.Float64))
    return why.log(pandas=prepared.to_pandas()).profile().view()


def serialize(view: DatasetProfileView) -> bytes:
    return view.serialize()


def deserialize(payload: bytes) -> DatasetProfileView:
    from whylogs.core import DatasetProfileView

    return DatasetProfileView.deserialize(payload)


def merge(views: Iterable[DatasetProfileView]) -> DatasetProfileView:
    """One profile of all the rows the given profiles saw."""
    merged = None
    for view in views:
        merged = view if merged is None else merged.merge(view)
    if merged is None:
        raise DriftError("no profiles to merge: profile at least one day first")
    return merged


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    psi: float
    js: float
    reference_rows: int
    current_rows: int
    reference_missing: float
    current_missing: float


def _counts(column: ColumnProfileView) -> tuple[int, int]:
    counts = column.get_metric("counts")
    if counts is None:
        return 0, 0
    summary = counts.to_summary_dict()
    return int(summary["n"]), int(summary["null"])


def _kll(column: ColumnProfileView):  # whylogs_sketching's KLL sketch has no type stubs
    distribution = column.get_metric("distribution")
    sketch = distribution.kll.value if distribution is not None else None
    return None if sketch is None or sketch.is_empty() else sketch


def _with_missing(masses: np.ndarray, rows: int, missing: int) -> np.ndarray:
    present = (rows - missing) / rows if rows else 0.0
    return np.r_[masses * present, missing / rows if rows else 0.0]


def _numeric_buckets(
    reference: ColumnProfileView, current: ColumnProfileView, bins: int
) -> tuple[np.ndarray, np.ndarray] | None:
    ref_sketch, cur_sketch = _kll(reference), _kll(current)
    if ref_sketch is None:
        return None
    edges = sorted(set(ref_sketch.get_quantiles([i / bins for i in range(1, bins)])))
    ref_masses = np.asarray(ref_sketch.get_pmf(edges))
    cur_masses = np.asarray(cur_sketch.get_pmf(edges)) if cur_sketch is not None else np.zeros(len(edges) + 1)
    return _with_missing(ref_masses, *_counts(reference)), _with_missing(cur_masses, *_counts(current))


def _frequent(column: ColumnProfileView) -> dict[str, float]:
    metric = column.get_metric("frequent_items")
    if metric is None:
        return {}
    return {str(item.value): float(item.est) for item in metric.to_summary_dict()["frequent_strings"]}


def _categorical_buckets(reference: ColumnProfileView, current: ColumnProfileView) -> tuple[np.ndarray, np.ndarray]:
    ref_items, cur_items = _frequent(reference), _frequent(current)
    values = sorted(ref_items)

    def masses(items: Mapping[str, float], column: ColumnProfileView) -> np.ndarray:
        rows, missing = _counts(column)
        present = max(rows - missing, 0)
        known = np.array([items.get(value, 0.0) for value in values])
        other = max(present - known.sum(), 0.0)
        return np.r_[known, other, missing] / rows if rows else np.zeros(len(values) + 2)

    return masses(ref_items, reference), masses(cur_items, current)


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index of ``q`` (current) against ``p`` (reference)."""
    p, q = np.maximum(p, PROBABILITY_FLOOR), np.maximum(q, PROBABILITY_FLOOR)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2): 0 for equal distributions, 1 for disjoint ones."""
    p, q = p / max(p.sum(), 1e-12), q / max(q.sum(), 1e-12)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))


def column_drift(
    reference: DatasetProfileView, current: DatasetProfileView, columns: Sequence[str], bins: int = DEFAULT_BINS
) -> dict[str, ColumnDrift]:
    """PSI and JS distance of each column of ``current`` against ``reference``."""
    ref_columns, cur_columns = reference.get_columns(), current.get_columns()
    result = {}
    for name in columns:
        if name not in ref_columns or name not in cur_columns:
            side = "reference" if name not in ref_columns else "current"
            raise DriftError(f"column {name!r} is not in the {side} profile; profile both with the same columns")
        ref, cur = ref_columns[name], cur_columns[name]
        numeric = _numeric_buckets(ref, cur, bins)
        kind = "numeric" if numeric is not None else "categorical"
        p, q = numeric if numeric is not None else _categorical_buckets(ref, cur)
        (ref_rows, ref_missing), (cur_rows, cur_missing) = _counts(ref), _counts(cur)
        result[name] = ColumnDrift(
            column=name,
            kind=kind,
            psi=psi(p, q),
            js=js_distance(p, q),
            reference_rows=ref_rows,
            current_rows=cur_rows,
            reference_missing=ref_missing / ref_rows if ref_rows else 0.0,
            current_missing=cur_missing / cur_rows if cur_rows else 0.0,
        )
    return result


def _cardinality(column: ColumnProfileView) -> float:
    metric = column.get_metric("cardinality")
    return float(metric.to_summary_dict()["est"]) if metric is not None else 0.0


def partition_constant(reference: DatasetProfileView, current: DatasetProfileView, columns: Sequence[str]) -> set[str]:
    """Columns with one value in ``current`` but several in the reference: calendar features such as the day of the
    week, which a day's partition fixes by construction. Their shift is the calendar, not drift, so the score leaves
    them out (they are still reported per column)."""
    ref_columns, cur_columns = reference.get_columns(), current.get_columns()
    return {
        name
        for name in columns
        if name in ref_columns
        and name in cur_columns
        and round(_cardinality(cur_columns[name])) <= 1
        and _cardinality(ref_columns[name]) > 1.5
    }


@dataclass(frozen=True)
class Baseline:
    """The reference's own day-to-day variation: each training day's score against the merged reference.

    One day is a narrow slice of a multi-week reference (a day has one weather, one mix of routes), so even an
    unchanged process scores above zero; the retrain rule reads a day's *excess* over this baseline's 90th percentile.
    """

    median: float
    p90: float
    days: int

    def excess(self, score: float) -> float:
        return score - self.p90


def baseline(
    reference: DatasetProfileView,
    days: Sequence[DatasetProfileView],
    columns: Sequence[str],
    importance: Mapping[str, float],
) -> Baseline:
    scores = [day_score(reference, day, columns, importance)[0] for day in days]
    if not scores:
        raise DriftError("no reference days to measure the baseline on; profile the training window first")
    return Baseline(float(np.median(scores)), float(np.percentile(scores, 90)), len(scores))


def day_score(
    reference: DatasetProfileView, current: DatasetProfileView, columns: Sequence[str], importance: Mapping[str, float]
) -> tuple[float, dict[str, ColumnDrift], dict[str, float]]:
    """The importance-weighted score of ``current`` over the columns that are not partition-constant, the per-column
    drift of every column, and the weights used."""
    per_column = column_drift(reference, current, columns)
    scored = [name for name in columns if name not in partition_constant(reference, current, columns)]
    weights = importance_weights(importance, scored)
    return weighted_score(per_column, weights), per_column, weights


def importance_weights(importance: Mapping[str, float], columns: Sequence[str]) -> dict[str, float]:
    """Gain importance over ``columns`` normalised to sum to 1 (uniform when the model reports none)."""
    values = {name: max(float(importance.get(name, 0.0)), 0.0) for name in columns}
    total = sum(values.values())
    if total <= 0:
        return {name: 1.0 / len(columns) for name in columns} if columns else {}
    return {name: value / total for name, value in values.items()}


def weighted_score(drift: Mapping[str, ColumnDrift], weights: Mapping[str, float]) -> float:
    """The importance-weighted mean JS distance over the weighted columns, in [0, 1]."""
    return float(sum(weights[name] * drift[name].js for name in weights if name in drift))
