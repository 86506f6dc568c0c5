"""Baselines scored on the holdout beside the model: the prior rate (the training window's base rate for every
flight) and a logistic regression fitted on the training window's matrix (one-hot categoricals, median-imputed and
standardised numerics). A model that cannot beat these is not worth serving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlops_assets.lib.boosting import ModelData

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def prior_rate(train: ModelData, rows: int) -> np.ndarray:
    return np.full(rows, float(np.mean(train.label)))


def fit_logistic(train: ModelData, max_rows: int = 60_000, seed: int = 2013) -> Pipeline:
    """Logistic regression on (a seeded sample of at most ``max_rows`` of) the training rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    names = list(train.feature_names)
    categorical = [names.index(name) for name in train.categorical_features]
    numeric = [i for i in range(len(names)) if i not in categorical]
    features, label = train.features, train.label
    if train.rows > max_rows:
        index = np.sort(np.random.default_rng(seed).choice(train.rows, max_rows, replace=False))
        features, label = features[index], label[index]
    model = make_pipeline(
        ColumnTransformer(
            [
                (
                    "categorical",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value=-1),
                        OneHotEncoder(handle_unknown="ignore", min_frequency=20),
                    ),
                    categorical,
                ),
                (
                    "numeric",
                    make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
                    numeric,
                ),
            ]
        ),
        LogisticRegression(max_iter=300, C=1.0),
    )
    model.fit(features, label)
    return model


def logistic_predictions(model: Pipeline, features: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)
