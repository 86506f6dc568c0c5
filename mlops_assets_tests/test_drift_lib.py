"""Drift statistics from whylogs sketches, checked against an exact re-computation from the rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mlops_assets.lib import drift


def _frame(rng: np.random.Generator, rows: int, shift: float = 0.0, null_share: float = 0.0) -> pl.DataFrame:
    x = rng.normal(shift, 1.0, rows)
    x[rng.random(rows) < null_share] = np.nan
    return pl.DataFrame(
        {
            "x": pl.Series(x).fill_nan(None),
            "temp": rng.normal(50 + 20 * shift, 10, rows),
            "carrier": rng.choice(["AA", "B6", "DL", "UA"], rows, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )


def _exact_psi(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """Deliberately simple: the reference's deciles as edges, numpy histograms, the same floor."""
    edges = np.unique(np.quantile(reference, [i / bins for i in range(1, bins)]))
    full = np.r_[-np.inf, edges, np.inf]
    p = np.histogram(reference, full)[0] / len(reference)
    q = np.histogram(current, full)[0] / len(current)
    p, q = np.maximum(p, drift.PROBABILITY_FLOOR), np.maximum(q, drift.PROBABILITY_FLOOR)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def test_same_distribution_is_stable_and_a_shift_is_large() -> None:
    rng = np.random.default_rng(1)
    reference = drift.profile(_frame(rng, 20_000))
    same = drift.column_drift(reference, drift.profile(_frame(rng, 900)), ["x", "carrier"])
    shifted = drift.column_drift(reference, drift.profile(_frame(rng, 900, shift=1.0)), ["x"])
    assert same["x"].psi < 0.05 and same["carrier"].psi < 0.05, same
    assert shifted["x"].psi > 0.25 and shifted["x"].js > 0.2, shifted
    assert same["x"].kind == "numeric" and same["carrier"].kind == "categorical"


def test_sketch_psi_matches_the_exact_psi_of_the_rows() -> None:
    rng = np.random.default_rng(2)
    ref_rows, cur_rows = rng.normal(0, 1, 20_000), rng.normal(0.4, 1.3, 900)
    ref = drift.profile(pl.DataFrame({"x": ref_rows}))
    cur = drift.profile(pl.DataFrame({"x": cur_rows}))
    sketched = drift.column_drift(ref, cur, ["x"])["x"].psi
    exact = _exact_psi(ref_rows, cur_rows, drift.DEFAULT_BINS)
    # KLL's rank error (~1.3% at the default k) moves bucket edges slightly; the statistic stays within a few %.
    assert sketched == pytest.approx(exact, rel=0.1, abs=0.01)


def test_a_column_turning_empty_drifts_through_its_missing_bucket() -> None:
    rng = np.random.default_rng(3)
    reference = drift.profile(_frame(rng, 5_000))
    result = drift.column_drift(reference, drift.profile(_frame(rng, 900, null_share=0.6)), ["x"])["x"]
    assert result.current_missing == pytest.approx(0.6, abs=0.05) and result.reference_missing == 0.0
    assert result.psi > 1.0


def test_categorical_drift_counts_unseen_values_as_other() -> None:
    reference = drift.profile(pl.DataFrame({"carrier": ["AA"] * 500 + ["DL"] * 500}))
    current = drift.profile(pl.DataFrame({"carrier": ["AA"] * 300 + ["WN"] * 700}))
    result = drift.column_drift(reference, current, ["carrier"])["carrier"]
    assert result.kind == "categorical" and result.psi > 1.0 and 0.5 < result.js <= 1.0


def test_merged_day_profiles_equal_the_profile_of_all_rows() -> None:
    rng = np.random.default_rng(4)
    days = [_frame(rng, 150) for _ in range(4)]
    merged = drift.merge(drift.deserialize(drift.serialize(drift.profile(day))) for day in days)
    whole = drift.profile(pl.concat(days))
    current = drift.profile(_frame(rng, 300, shift=0.5))
    a = drift.column_drift(merged, current, ["x", "temp", "carrier"])
    b = drift.column_drift(whole, current, ["x", "temp", "carrier"])
    for name in a:
        assert a[name].reference_rows == b[name].reference_rows == 600
        assert a[name].psi == pytest.approx(b[name].psi, rel=0.05, abs=0.01), name


def test_importance_weighting_discounts_a_feature_the_model_barely_uses() -> None:
    rng = np.random.default_rng(5)
    reference = drift.profile(_frame(rng, 5_000))
    # Summer: temperature moves by two standard deviations, the important feature does not.
    summer = _frame(rng, 900).with_columns(pl.col("temp") + 20)
    result = drift.column_drift(reference, drift.profile(summer), ["x", "temp", "carrier"])
    weights = drift.importance_weights({"x": 90.0, "temp": 3.0, "carrier": 7.0}, ["x", "temp", "carrier"])
    assert result["temp"].psi > 1.0 and result["temp"].js > 0.6
    assert drift.weighted_score(result, weights) < 0.08
    uniform = drift.importance_weights({}, ["x", "temp", "carrier"])
    assert drift.weighted_score(result, uniform) > 0.2
    # The same shift in the important feature does move it.
    moved = drift.column_drift(reference, drift.profile(_frame(rng, 900, shift=2.0)), ["x", "temp", "carrier"])
    assert drift.weighted_score(moved, weights) > 0.5


def test_a_missing_column_names_the_column() -> None:
    view = drift.profile(pl.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(drift.DriftError, match="'y'"):
        drift.column_drift(view, view, ["y"])
    with pytest.raises(drift.DriftError, match="no profiles"):
        drift.merge([])


def test_a_feature_the_day_fixes_is_left_out_of_the_score() -> None:
    rng = np.random.default_rng(6)
    reference = drift.profile(_frame(rng, 5_000).with_columns(weekday=pl.Series(rng.integers(0, 7, 5_000))))
    monday = drift.profile(_frame(rng, 900).with_columns(weekday=pl.lit(0)))
    columns = ["x", "temp", "carrier", "weekday"]
    assert drift.partition_constant(reference, monday, columns) == {"weekday"}
    score, per_column, weights = drift.day_score(reference, monday, columns, {"weekday": 50.0, "x": 50.0})
    assert per_column["weekday"].js > 0.5 and "weekday" not in weights and score < 0.1


def test_the_baseline_is_the_reference_days_own_spread() -> None:
    rng = np.random.default_rng(7)
    days = [drift.profile(_frame(rng, 300, shift=rng.normal(0, 0.1))) for _ in range(10)]
    reference = drift.merge(days)
    base = drift.baseline(reference, days, ["x", "temp", "carrier"], {})
    assert base.days == 10 and 0.0 < base.median <= base.p90 < 0.2
    shifted = drift.profile(_frame(rng, 300, shift=1.5))
    assert base.excess(drift.day_score(reference, shifted, ["x", "temp", "carrier"], {})[0]) > 0.2
