"""The automated rollback rule (lib/rollback.py) on synthetic labelled days, and its two settings; no Dagster."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_assets.lib.evaluation_metrics import point_metrics
from mlops_assets.lib.rollback import RollbackPolicy, decide
from mlops_assets.settings import SettingsError, load_settings

POLICY = RollbackPolicy(min_days=3, tolerance=0.0)
ROWS = 600


def _day(seed: int, champion_skill: float, previous_skill: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, champion scores, previous scores) on the same rows; skill 0 is noise, higher ranks positives higher."""
    rng = np.random.default_rng(seed)
    y = (rng.random(ROWS) < 0.25).astype(float)

    def scores(skill: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(skill * (y - 0.25) + rng.normal(0, 1, ROWS))))

    return y, scores(champion_skill), scores(previous_skill)


def test_a_champion_worse_beyond_the_ci_is_rolled_back_with_its_figures_stated() -> None:
    days = [_day(seed, champion_skill=0.0, previous_skill=1.5) for seed in range(3)]
    decision = decide(days, POLICY)
    expected = np.mean([point_metrics(y, c)["roc_auc"] - point_metrics(y, p)["roc_auc"] for y, c, p in days])
    assert decision.rollback and decision.days == 3
    assert decision.delta is not None and decision.ci_low is not None and decision.ci_high is not None
    assert decision.delta == pytest.approx(expected) and decision.delta < -0.1
    assert decision.ci_low <= decision.delta <= decision.ci_high < 0
    assert f"{decision.delta:+.4f}" in decision.reason and f"{decision.ci_high:+.4f}" in decision.reason
    assert "3 labelled day(s)" in decision.reason


def test_below_the_minimum_days_nothing_is_decided() -> None:
    days = [_day(seed, champion_skill=0.0, previous_skill=1.5) for seed in range(3)]
    one, two = decide(days[:1], POLICY), decide(days[:2], POLICY)
    assert not one.rollback and one.delta is None and "1 labelled day(s)" in one.reason
    assert not two.rollback and two.delta is not None and two.delta < 0 and "2 of the 3 days needed" in two.reason
    # A day with one class only has no AUC: it does not count towards the minimum.
    y, c, p = days[2]
    assert not decide([*days[:2], (np.zeros_like(y), c, p)], POLICY).rollback


def test_a_better_or_equal_champion_is_kept() -> None:
    better = decide([_day(seed, champion_skill=1.5, previous_skill=0.0) for seed in range(5)], POLICY)
    assert not better.rollback and better.delta is not None and better.delta > 0
    assert "not worse beyond the CI" in better.reason
    same = decide([(y, p, p) for y, _, p in (_day(seed, 1.0, 1.0) for seed in range(5))], POLICY)
    assert not same.rollback and same.delta == 0.0


def test_worse_on_some_days_only_is_within_the_ci() -> None:
    # Two bad days and one clearly good one: the mean is negative, the CI over days is not entirely below 0.
    days = [_day(0, 0.0, 1.5), _day(1, 0.0, 1.5), _day(2, 3.0, 0.0)]
    decision = decide(days, POLICY)
    assert decision.ci_high is not None and decision.ci_high > 0 and not decision.rollback


def test_the_tolerance_forgives_a_small_loss() -> None:
    days = [_day(seed, champion_skill=1.3, previous_skill=1.5) for seed in range(8)]
    strict = decide(days, POLICY)
    assert strict.rollback and strict.delta is not None and -0.05 < strict.delta < 0
    assert "entirely below 0:" in strict.reason
    assert strict.ci_high is not None and -0.05 < strict.ci_high < -0.01
    assert decide(days, RollbackPolicy(min_days=3, tolerance=0.01)).rollback
    tolerant = decide(days, RollbackPolicy(min_days=3, tolerance=0.05))
    assert not tolerant.rollback and "not entirely below -0.05" in tolerant.reason


def test_policy_and_settings_validation() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        RollbackPolicy(min_days=1, tolerance=0.0)
    with pytest.raises(ValueError, match="negative"):
        RollbackPolicy(min_days=3, tolerance=-0.01)
    defaults = load_settings({})
    assert (defaults.rollback_min_days, defaults.rollback_tolerance) == (3, 0.0)
    tuned = load_settings({"MLOPS_ROLLBACK_MIN_DAYS": "5", "MLOPS_ROLLBACK_TOLERANCE": "0.01"})
    assert (tuned.rollback_min_days, tuned.rollback_tolerance) == (5, 0.01)
    for name, value in (
        ("MLOPS_ROLLBACK_MIN_DAYS", "1"),
        ("MLOPS_ROLLBACK_MIN_DAYS", "three"),
        ("MLOPS_ROLLBACK_TOLERANCE", "-0.1"),
        ("MLOPS_ROLLBACK_TOLERANCE", "1.5"),
        ("MLOPS_ROLLBACK_TOLERANCE", "nan"),
    ):
        with pytest.raises(SettingsError, match=name):
            load_settings({name: value})
