"""A registered model is scored by its own columns, whatever the current code's column list is."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from mlops_assets.lib.calibration import identity
from mlops_assets.lib.model_artifacts import LoadedModel
from mlops_assets.lib.training import CategoryVocabulary


def _model(names: list[str]) -> LoadedModel:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(400, len(names)))
    label = (features[:, 0] + 0.5 * features[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lgb.Dataset(features, label, feature_name=names),
        num_boost_round=20,
    )
    return LoadedModel(
        name="flight_delay", version="3", run_id="r", booster=booster, vocabulary=CategoryVocabulary({}),
        calibrator=identity(), calibrated=False, tags={}, params={},
    )  # fmt: skip


def test_an_older_model_reads_its_own_columns_out_of_a_wider_matrix() -> None:
    model = _model(["a", "b"])
    rows = np.random.default_rng(8).normal(size=(50, 2))
    # Today's matrix: a column the model never saw, and its own columns in another order.
    wider = np.column_stack([rows[:, 1], np.full(50, 9.0), rows[:, 0]])
    expected = model.booster.predict(rows, num_threads=1)
    assert np.allclose(model.predict(wider, names=["b", "new_feature", "a"]), expected)
    assert np.allclose(model.predict(rows, names=["a", "b"]), expected)
    # Not a no-op: read in the matrix's own order, the answer differs.
    assert not np.allclose(model.booster.predict(wider[:, :2], num_threads=1), expected)


def test_a_model_needing_a_column_the_code_does_not_build_is_named() -> None:
    model = _model(["a", "gone"])
    with pytest.raises(ValueError, match=r"flight_delay/3 needs columns \['gone'\]"):
        model.predict(np.zeros((3, 2)), names=["a", "b"])
