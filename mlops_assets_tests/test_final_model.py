"""The registered model's final fit: early-stopped or refit, deterministic, calibrated on validation predictions."""

import numpy as np
import pytest

from mlops_assets.lib.boosting import ModelData, model_sha256, training_params
from mlops_assets.lib.calibration import expected_calibration_error
from mlops_assets.lib.final_model import fit_final_model

PARAMS = training_params({"num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20}, num_threads=1)


def _data(rows: int, base_shift: float, seed: int) -> ModelData:
    """A learnable signal whose base rate moves with ``base_shift``, as the season moves the delay rate."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4)).astype(np.float32)
    logit = 1.5 * features[:, 0] - features[:, 1] + base_shift
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return ModelData(features, label, ("a", "b", "c", "d"), ())


@pytest.mark.parametrize("final_fit", ["early", "refit"])
def test_final_model_is_deterministic_and_has_the_early_stopped_rounds(final_fit: str) -> None:
    train, valid = _data(4000, -1.0, 1), _data(1500, 0.0, 2)
    first = fit_final_model(PARAMS, train, valid, 300, 20, calibration="platt", final_fit=final_fit)
    again = fit_final_model(PARAMS, train, valid, 300, 20, calibration="platt", final_fit=final_fit)
    assert model_sha256(first.booster) == model_sha256(again.booster)
    assert first.calibrator == again.calibrator
    assert first.booster.num_trees() == first.rounds < 300
    assert first.fit == final_fit


def test_calibration_on_validation_corrects_a_base_rate_shift_on_later_data() -> None:
    # Training at a low base rate, validation and the later week at a higher one: the raw model under-predicts.
    train, valid, later = _data(6000, -1.5, 3), _data(3000, 0.0, 4), _data(3000, 0.0, 5)
    model = fit_final_model(PARAMS, train, valid, 300, 20, calibration="platt")
    raw = expected_calibration_error(later.label, model.booster.predict(later.features))
    calibrated = expected_calibration_error(later.label, model.predict(later))
    assert model.valid_ece_calibrated < model.valid_ece_raw
    assert raw > 0.08 and calibrated < raw / 2
    identity = fit_final_model(PARAMS, train, valid, 300, 20, calibration="identity")
    assert identity.valid_ece_calibrated == identity.valid_ece_raw
