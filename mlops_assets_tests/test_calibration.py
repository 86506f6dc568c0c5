"""Calibration: the ECE and reliability curve on known cases, and calibrators that must fix a base-rate shift."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlops_assets.lib.calibration import (
    METHODS,
    Calibrator,
    expected_calibration_error,
    fit,
    fit_intercept,
    fit_isotonic,
    fit_platt,
    logit,
    reliability_curve,
    sigmoid,
)


def _calibrated_sample(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from the predicted probabilities themselves: calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = sigmoid(rng.normal(-1.2, 1.0, rows))
    y = (rng.random(rows) < p).astype(np.float64)
    return y, p


def _shifted(p: np.ndarray, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels whose true log-odds are the prediction's plus ``shift`` (a base-rate change the model missed)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(p.size) < sigmoid(logit(p) + shift)).astype(np.float64)
    return y, p


def test_ece_of_a_calibrated_sample_is_near_zero() -> None:
    y, p = _calibrated_sample(200_000, seed=1)
    assert expected_calibration_error(y, p) < 0.005


def test_ece_of_a_shifted_sample_is_large() -> None:
    _, p = _calibrated_sample(200_000, seed=2)
    y, p = _shifted(p, shift=0.8, seed=3)
    assert expected_calibration_error(y, p) > 0.08


def test_ece_by_hand() -> None:
    # Bin [0.1, 0.2): predictions 0.1, 0.1, labels 0, 1 -> |0.5 - 0.1| = 0.4 with weight 2/4.
    # Bin [0.9, 1.0]: predictions 0.9, 1.0, labels 1, 1 -> |1 - 0.95| = 0.05 with weight 2/4 (p = 1 is counted).
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 1.0])
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.4 + 0.5 * 0.05)
    curve = reliability_curve(y, p)
    assert curve.counts.tolist() == [0, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert [row["count"] for row in curve.rows()] == [2, 2]
    assert np.isnan(curve.mean_predicted[0])


def test_ece_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        expected_calibration_error([0, 1], [0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError, match="0 or 1"):
        expected_calibration_error([0, 2], [0.5, 0.5])


@pytest.mark.parametrize("method", ["intercept", "platt", "isotonic"])
def test_calibrator_fitted_on_validation_fixes_the_shift_on_later_data(method: str) -> None:
    """Fit on one shifted sample (the validation window), score another drawn with the same shift (the holdout)."""
    _, p_valid = _calibrated_sample(50_000, seed=4)
    y_valid, _ = _shifted(p_valid, shift=-0.7, seed=5)
    _, p_holdout = _calibrated_sample(50_000, seed=6)
    y_holdout, _ = _shifted(p_holdout, shift=-0.7, seed=7)
    calibrator = fit(method, y_valid, p_valid)
    before = expected_calibration_error(y_holdout, p_holdout)
    after = expected_calibration_error(y_holdout, calibrator.apply(p_holdout))
    assert before > 0.05
    assert after < 0.015
    assert after < before / 4


def test_intercept_matches_the_base_rate_and_keeps_the_order() -> None:
    _, p = _calibrated_sample(20_000, seed=8)
    y, _ = _shifted(p, shift=1.0, seed=9)
    calibrator = fit_intercept(y, p)
    calibrated = calibrator.apply(p)
    assert calibrated.mean() == pytest.approx(y.mean(), abs=1e-6)
    assert calibrator.params["intercept"] > 0.5
    assert np.array_equal(np.argsort(calibrated, kind="stable"), np.argsort(p, kind="stable"))


def test_platt_recovers_a_known_slope_and_intercept() -> None:
    rng = np.random.default_rng(10)
    p = sigmoid(rng.normal(-1.0, 1.2, 100_000))
    y = (rng.random(p.size) < sigmoid(0.6 * logit(p) - 0.4)).astype(np.float64)
    calibrator = fit_platt(y, p)
    assert calibrator.params["slope"] == pytest.approx(0.6, abs=0.03)
    assert calibrator.params["intercept"] == pytest.approx(-0.4, abs=0.03)


def test_isotonic_is_monotone_and_bounded() -> None:
    _, p = _calibrated_sample(5_000, seed=11)
    y, _ = _shifted(p, shift=0.5, seed=12)
    calibrator = fit_isotonic(y, p)
    grid = np.linspace(0, 1, 1001)
    out = calibrator.apply(grid)
    assert np.all(np.diff(out) >= -1e-12)
    assert out.min() >= 0.0 and out.max() <= 1.0
    # Far fewer breakpoints than rows: flat runs are stored by their two ends.
    assert len(calibrator.params["x"]) < 1_000


@pytest.mark.parametrize("method", METHODS)
def test_json_round_trip_gives_the_same_probabilities(method: str) -> None:
    _, p = _calibrated_sample(3_000, seed=13)
    y, _ = _shifted(p, shift=0.3, seed=14)
    calibrator = fit(method, y, p)
    text = calibrator.to_json()
    json.loads(text)  # plain JSON, storable as an MLflow artefact or tag
    restored = Calibrator.from_json(text)
    assert restored == calibrator
    assert np.array_equal(restored.apply(p), calibrator.apply(p))


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown calibration method"):
        Calibrator("temperature")
    with pytest.raises(ValueError, match="unknown calibration method"):
        fit("beta", [0, 1], [0.2, 0.8])
