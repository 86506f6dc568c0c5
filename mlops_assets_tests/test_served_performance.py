"""Served performance and training/serving skew from the prediction log (lib/served_performance.py), recomputed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from mlops_assets.lib import prediction_log as log
from mlops_assets.lib.served_performance import LABEL, OFFLINE_SCORE, latest_requests, served_day

DAY = date(2013, 3, 1)
T0 = datetime(2013, 3, 1, 10, tzinfo=UTC)


def _offline(rows: int, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    label = (rng.random(rows) < 0.3).astype(float)
    score = np.clip(0.3 + 0.3 * (label - 0.3) + rng.normal(0, 0.15, rows), 0.01, 0.99)
    return pl.DataFrame({log.FLIGHT_ID: [f"f{i}" for i in range(rows)], LABEL: label, OFFLINE_SCORE: score})


def _log(records: list[dict[str, object]]) -> pl.DataFrame:
    return log.records_frame([(T0, record) for record in records])


def _record(flight: str, score: float, minutes: int = 0, version: str = "3", shadow: float | None = None) -> dict:
    return {
        log.LOGGED_AT: T0 + timedelta(minutes=minutes),
        log.FLIGHT_ID: flight,
        log.DAY_COLUMN: DAY,
        log.CHAMPION_VERSION: version,
        log.CHAMPION_SCORE: score,
        log.SHADOW_VERSION: "4" if shadow is not None else None,
        log.SHADOW_SCORE: shadow,
    }


def test_served_scores_equal_to_offline_show_no_skew_and_the_offline_auc() -> None:
    offline = _offline(400)
    served = _log([_record(r[log.FLIGHT_ID], r[OFFLINE_SCORE]) for r in offline.head(300).iter_rows(named=True)])
    day = served_day(served, offline, "3")
    assert (day.requests, day.flights, day.labelled, day.compared) == (300, 300, 300, 300)
    assert day.skew_max == pytest.approx(0.0) and day.skewed_share == 0.0
    head = offline.head(300)
    assert day.champion is not None
    assert day.champion["roc_auc"] == pytest.approx(roc_auc_score(head[LABEL], head[OFFLINE_SCORE]))
    assert day.shadow is None and day.shadow_version is None


def test_the_latest_request_counts_other_versions_are_not_compared_and_unlabelled_flights_drop() -> None:
    offline = _offline(100)
    rows = list(offline.iter_rows(named=True))
    records = [_record(r[log.FLIGHT_ID], 0.99, minutes=0) for r in rows[:50]]  # early requests, superseded
    records += [_record(r[log.FLIGHT_ID], r[OFFLINE_SCORE], minutes=30, shadow=0.5) for r in rows[:40]]
    # Ten flights served with skewed online features: their served score is 0.2 above the offline one.
    records += [_record(r[log.FLIGHT_ID], r[OFFLINE_SCORE] + 0.2, minutes=30) for r in rows[40:50]]
    records += [_record(r[log.FLIGHT_ID], 0.1, minutes=30, version="2") for r in rows[50:60]]  # the old champion
    records += [_record("not-a-flight-of-the-day", 0.4, minutes=30)]
    day = served_day(_log(records), offline, "3")
    assert latest_requests(_log(records)).height == 61
    assert (day.requests, day.flights, day.labelled, day.compared) == (111, 61, 60, 50)
    assert day.skewed_share == pytest.approx(10 / 50) and day.skew_max == pytest.approx(0.2)
    assert day.skew_p99 == pytest.approx(0.2)
    assert day.shadow_version == "4"
    assert day.shadow is not None and np.isfinite(day.shadow["log_loss"])
    served = pl.concat(
        [
            offline.slice(0, 40).select(LABEL, pl.col(OFFLINE_SCORE).alias("s")),
            offline.slice(40, 10).select(LABEL, (pl.col(OFFLINE_SCORE) + 0.2).alias("s")),
            offline.slice(50, 10).select(LABEL, pl.lit(0.1).alias("s")),
        ]
    )
    assert day.champion is not None
    assert day.champion["roc_auc"] == pytest.approx(roc_auc_score(served[LABEL], served["s"]))


def test_a_log_of_flights_without_labels_gives_no_figures() -> None:
    day = served_day(_log([_record("elsewhere", 0.3)]), _offline(10), "3")
    assert (day.flights, day.labelled, day.compared) == (1, 0, 0)
    assert day.champion is None and day.skew_p99 is None
