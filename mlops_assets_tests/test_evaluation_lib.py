"""Evaluation logic without Dagster: vectorised metrics against sklearn, seeded bootstrap CIs, the operating point,
slices, the gate rules and the rendering."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from mlops_assets.lib.evaluation_metrics import bootstrap_counts, paired_bootstrap, point_metrics
from mlops_assets.lib.evaluation_slices import slice_columns, slice_metrics, worst_slice
from mlops_assets.lib.operating_point import ThresholdRule, operating_point, threshold_sweep
from mlops_assets.lib.promotion import (
    ABSOLUTE_FLOORS,
    AUC_VS_CHAMPION,
    GATE_RULES,
    OPERATIONS_BUDGET,
    GateConfig,
    evaluate_gate,
    gate_passed,
)


def _sample(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(float)
    good = np.clip(0.25 + 0.25 * (y - 0.25) + rng.normal(0, 0.15, n), 0, 1).round(2)  # ties on purpose
    worse = np.clip(good + rng.normal(0, 0.2, n), 0, 1)
    return y, good, worse


def test_point_metrics_equal_sklearn_with_ties() -> None:
    y, p, _ = _sample()
    got = point_metrics(y, p)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert got["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert got["log_loss"] == pytest.approx(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)), abs=1e-12)
    assert got["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_weighted_metrics_equal_sklearn_on_a_resample() -> None:
    y, p, _ = _sample(800)
    counts = bootstrap_counts(y.size, 1, seed=5)[0]
    index = np.repeat(np.arange(y.size), counts.astype(int))
    from mlops_assets.lib.evaluation_metrics import WeightedScorer

    got = {k: float(v[0]) for k, v in WeightedScorer(y, p).score(counts[None, :]).items()}
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y[index], p[index]), abs=1e-12)
    assert got["pr_auc"] == pytest.approx(average_precision_score(y[index], p[index]), abs=1e-12)
    assert got["brier"] == pytest.approx(brier_score_loss(y[index], p[index]), abs=1e-9)


def test_bootstrap_is_reproducible_and_covers_the_estimate() -> None:
    y, good, worse = _sample()
    first = paired_bootstrap(y, good, worse, resamples=300, seed=7)
    second = paired_bootstrap(y, good, worse, resamples=300, seed=7)
    other = paired_bootstrap(y, good, worse, resamples=300, seed=8)
    assert first.as_dict() == second.as_dict()
    assert first.as_dict() != other.as_dict()
    assert first.delta is not None and first.champion is not None
    for block in (first.candidate, first.champion, first.delta):
        for interval in block.values():
            assert interval.low <= interval.estimate <= interval.high
    # The better model is better on the same rows, and the paired CI says so.
    assert first.delta["roc_auc"].low > 0
    # Paired: the delta's CI is narrower than the difference of two independent CIs would suggest.
    width = first.delta["roc_auc"].high - first.delta["roc_auc"].low
    assert width < (first.candidate["roc_auc"].high - first.candidate["roc_auc"].low) * 2


def test_bootstrap_without_champion() -> None:
    y, good, _ = _sample(500)
    result = paired_bootstrap(y, good, None, resamples=50, seed=1)
    assert result.champion is None and result.delta is None
    assert result.as_dict()["delta"] is None


def test_operating_point_rules() -> None:
    y, p, _ = _sample()
    sweep = threshold_sweep(y, p)
    assert np.all(sweep.tp + sweep.fn == y.sum())
    best_f1, _ = operating_point(y, p, ThresholdRule("max_f1"))
    assert best_f1.as_dict()["f1"] == pytest.approx(float(sweep.f1.max()))
    cheap_misses, _ = operating_point(y, p, ThresholdRule("cost", cost_ratio=0.2))
    costly_misses, _ = operating_point(y, p, ThresholdRule("cost", cost_ratio=10))
    assert costly_misses.threshold < cheap_misses.threshold  # costly misses flag more flights
    fixed, _ = operating_point(y, p, ThresholdRule("fixed", threshold=0.5))
    predicted = p >= 0.5
    assert (fixed.tp, fixed.fp) == (int((predicted & (y == 1)).sum()), int((predicted & (y == 0)).sum()))
    with pytest.raises(ValueError, match="unknown threshold rule"):
        ThresholdRule("accuracy")


def test_slices_respect_min_size_and_find_the_worst() -> None:
    y, good, worse = _sample(2000)
    frame = pl.DataFrame(
        {
            "carrier": ["AA"] * 1500 + ["ZZ"] * 500,
            "origin": ["EWR"] * 2000,
            "flight_date": pl.date_range(pl.date(2013, 2, 11), pl.date(2013, 2, 17), eager=True).sample(
                2000, with_replacement=True, seed=1
            ),
            "sched_dep_hour": [6] * 1000 + [19] * 1000,
            "distance": [300.0] * 1990 + [2500.0] * 10,
        }
    )
    champion = good.copy()
    candidate = good.copy()
    candidate[1500:] = worse[1500:]  # the candidate regresses on carrier ZZ only
    rows = slice_metrics(slice_columns(frame), y, candidate, champion, min_rows=100)
    by_key = {(r.dimension, r.value): r for r in rows}
    assert not by_key[("distance_bucket", ">=2000mi")].scored  # 10 rows: below the minimum
    worst = worst_slice(rows)
    assert worst is not None and (worst.dimension, worst.value) == ("carrier", "ZZ")
    assert by_key[("carrier", "AA")].delta_auc == pytest.approx(0.0)


def _report(delta_low: float, ece: float = 0.02, auc: float = 0.70, worst_delta: float = -0.01) -> dict:
    interval = {"estimate": auc, "low": auc - 0.01, "high": auc + 0.01}
    return {
        "rows": 1000,
        "positives": 250,
        "metrics": {
            "candidate": {
                "roc_auc": interval,
                "pr_auc": {"estimate": 0.45, "low": 0.4, "high": 0.5},
                "log_loss": {"estimate": 0.5, "low": 0.49, "high": 0.51},
                "brier": {"estimate": 0.17, "low": 0.16, "high": 0.18},
            },
            "delta": {"roc_auc": {"estimate": delta_low + 0.01, "low": delta_low, "high": delta_low + 0.02}},
        },
        "slices": {
            "rows": [
                {"dimension": "carrier", "value": "AA", "rows": 300, "delta_auc": worst_delta, "delta_ci_high": -0.001},
                {"dimension": "carrier", "value": "B6", "rows": 300, "delta_auc": -0.3, "delta_ci_high": 0.02},
            ]
        },
        "calibration": {"candidate": {"ece": ece}},
        "operations": {
            "candidate": {"single_row_p50_ms": 0.1, "batch_ms_per_1k_rows": 2.0, "size_bytes": 200_000},
            "champion": {"single_row_p50_ms": 0.1, "batch_ms_per_1k_rows": 2.0, "size_bytes": 200_000},
        },
        "baselines": {"prior_rate": {"log_loss": 0.56}},
    }


def test_gate_rules() -> None:
    config = GateConfig()
    passing = evaluate_gate(_report(delta_low=-0.005), config)
    assert [r.rule for r in passing] == list(GATE_RULES) and gate_passed(passing)
    # Judged on the paired CI: a point estimate just above zero with a low end beyond the tolerance fails.
    failing = {r.rule: r for r in evaluate_gate(_report(delta_low=-0.02), config)}
    assert not failing[AUC_VS_CHAMPION].passed

    def verdict(report: dict, rule: str) -> bool:
        return {r.rule: r for r in evaluate_gate(report, config)}[rule].passed

    assert not verdict(_report(-0.005, ece=0.2), "calibration_within_bound")
    assert not verdict(_report(-0.005, worst_delta=-0.2), "no_slice_regression")
    assert not verdict(_report(-0.005, auc=0.55), ABSOLUTE_FLOORS)


def test_latency_gate_judges_the_budget_and_a_slowdown_only_near_it() -> None:
    config = GateConfig()  # budgets: 5 ms single row, 50 ms per 1k rows; ratio 3x once over half the budget

    def operations_passed(candidate_batch_ms: float, champion_batch_ms: float) -> bool:
        report = _report(delta_low=-0.005)
        report["operations"]["candidate"]["batch_ms_per_1k_rows"] = candidate_batch_ms
        report["operations"]["champion"]["batch_ms_per_1k_rows"] = champion_batch_ms
        return {r.rule: r for r in evaluate_gate(report, config)}[OPERATIONS_BUDGET].passed

    # CI's case: a 20-tree first champion, a full-size successor ~10x slower but at a tenth of the budget.
    assert operations_passed(4.7, 0.48)
    # The same slowdown once the candidate uses most of the budget is a regression.
    assert not operations_passed(40.0, 4.0)
    # Over the budget fails whatever the champion did.
    assert not operations_passed(60.0, 59.0)
    # Near the budget but not much slower than the champion passes.
    assert operations_passed(40.0, 30.0)
