"""What a LightGBM model leans on and what it costs to serve: gain importance, SHAP-style contributions
(``pred_contrib``), the importance shift against another model, model size and predict latency.

LightGBM is imported lazily by the callers' boosters; nothing here imports Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import lightgbm as lgb

# pred_contrib costs a tree walk per row and feature; a sample of the holdout is enough for mean |contribution|.
CONTRIB_SAMPLE_ROWS = 2000


def gain_importance(booster: lgb.Booster) -> dict[str, float]:
    """Each feature's share of the total split gain (sums to 1; all zero for a model without splits)."""
    gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    total = gains.sum()
    shares = gains / total if total > 0 else gains
    return {name: float(share) for name, share in zip(booster.feature_name(), shares, strict=True)}


def mean_abs_contributions(booster: lgb.Booster, features: np.ndarray, seed: int = 2013) -> dict[str, float]:
    """Mean |contribution| per feature (log-odds units) over a seeded sample of rows, from ``pred_contrib``."""
    rows = features.shape[0]
    if rows > CONTRIB_SAMPLE_ROWS:
        index = np.sort(np.random.default_rng(seed).choice(rows, CONTRIB_SAMPLE_ROWS, replace=False))
        features = features[index]
    contrib = np.asarray(booster.predict(features, pred_contrib=True))
    # The last column is the expected value (bias), not a feature.
    means = np.abs(contrib[:, :-1]).mean(axis=0)
    return {name: float(value) for name, value in zip(booster.feature_name(), means, strict=True)}


def importance_shift(candidate: dict[str, float], champion: dict[str, float]) -> list[dict[str, float | str]]:
    """Per feature, candidate share - champion share, largest absolute shift first."""
    names = sorted(set(candidate) | set(champion))
    shifts = [
        {
            "feature": name,
            "candidate": candidate.get(name, 0.0),
            "champion": champion.get(name, 0.0),
            "shift": candidate.get(name, 0.0) - champion.get(name, 0.0),
        }
        for name in names
    ]
    return sorted(shifts, key=lambda row: -abs(float(row["shift"])))


def top(values: dict[str, float], n: int = 15) -> list[dict[str, float | str]]:
    return [{"feature": k, "value": v} for k, v in sorted(values.items(), key=lambda item: -item[1])[:n]]


def model_size_bytes(booster: lgb.Booster) -> int:
    """The size of the model's text dump, what MLflow stores and serving loads."""
    return len(booster.model_to_string().encode())


def _timed(call: object, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        timings.append(time.perf_counter() - started)
    return timings


def predict_latency(
    booster: lgb.Booster, features: np.ndarray, single_repeats: int = 200, batch_repeats: int = 5
) -> dict[str, float]:
    """Single-row p50/p99 and whole-batch median latency in milliseconds, one thread (as a serving worker)."""
    row = features[:1]
    booster.predict(row, num_threads=1)  # warm-up
    single = np.asarray(_timed(lambda: booster.predict(row, num_threads=1), single_repeats)) * 1000
    batch = np.asarray(_timed(lambda: booster.predict(features, num_threads=1), batch_repeats)) * 1000
    return {
        "single_row_p50_ms": float(np.percentile(single, 50)),
        "single_row_p99_ms": float(np.percentile(single, 99)),
        "batch_ms": float(np.median(batch)),
        "batch_rows": int(features.shape[0]),
        "batch_ms_per_1k_rows": float(np.median(batch) / max(features.shape[0], 1) * 1000),
    }


def feature_names(booster: lgb.Booster) -> Sequence[str]:
    return tuple(booster.feature_name())
