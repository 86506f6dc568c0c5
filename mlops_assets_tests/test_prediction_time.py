"""Only what is known at prediction time: the three leaks closed, a general leakage guard, no training/serving skew.

Every check compares what the model is trained on (the point-in-time training frame built from the lake, exactly as
``trained_model`` builds it) with an independent re-computation from the raw source files (``truth.py``), instead of
listing forbidden column names.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.features.resources import FeatureStoreResource
from mlops_assets.lib.departure_feed import replay_departures
from mlops_assets.lib.feature_contract import LABEL_COLUMN
from mlops_assets.lib.feature_paths import partition_uri
from mlops_assets.lib.feature_views import FEATURE_VIEWS, FEATURE_VIEWS_BY_NAME, read_warehouse_inputs
from mlops_assets.lib.intraday import INTRADAY_FEATURE_COLUMNS, with_intraday_keys
from mlops_assets.lib.point_in_time import (
    REQUEST_COLUMNS,
    build_training_frame,
    point_in_time_join,
    read_entity_tables,
)
from mlops_assets.lib.training import MODEL_FEATURE_COLUMNS
from mlops_assets.settings import HISTORY_WINDOWS, MAX_WEATHER_AGE_MINUTES
from mlops_assets_tests import truth
from mlops_assets_tests.conftest import FEATURES_END, FEATURES_START, Warehouse

STATS = ("flights", "delay_rate", "cancel_rate", "mean_dep_delay")


@pytest.fixture(scope="module")
def frame(feature_lake: Warehouse) -> pl.DataFrame:
    return build_training_frame(str(feature_lake.lake_root), FEATURES_START, FEATURES_END)


def _sample(frame: pl.DataFrame, size: int, seed: int = 13) -> list[dict]:
    rows = frame.to_dicts()
    return random.Random(seed).sample(rows, min(size, len(rows)))


def _mismatches(rows: list[dict], expected_of) -> list[str]:
    found = []
    for row in rows:
        for name, expected in expected_of(row).items():
            if not truth.same(row[name], expected):
                found.append(
                    f"{row['flight_id']} T={row['prediction_ts']} {name}: pipeline {row[name]!r}, truth {expected!r}"
                )
    return found


def _expected_history(row: dict) -> dict:
    expected = {}
    for entity, days in HISTORY_WINDOWS.items():
        stats = truth.delay_stats(entity, row[entity], row["prediction_ts"], days)
        expected |= {f"{entity}_{stat}_{days}d": stats[stat] for stat in STATS}
    return expected


def _expected_weather(row: dict) -> dict:
    return truth.weather(row["origin"], row["prediction_ts"], MAX_WEATHER_AGE_MINUTES)


def _temperature_an_hour_early(row: dict) -> float | None:
    """The temperature a prediction would see if the record of its own hour were usable from the hour's start."""
    moment = row["prediction_ts"] + timedelta(hours=1)
    return truth.weather(row["origin"], moment, MAX_WEATHER_AGE_MINUTES)["weather_temp"]


def _expected_intraday(row: dict) -> dict:
    return truth.intraday(row["flight_id"], row["prediction_ts"])


def _expected_plane(row: dict) -> dict:
    return truth.planes().get(
        row["tailnum"], dict.fromkeys(("plane_year", "plane_type", "plane_engines", "plane_seats"))
    )


def _expected_all(row: dict) -> dict:
    return _expected_history(row) | _expected_weather(row) | _expected_intraday(row) | _expected_plane(row)


# --- the three leaks --------------------------------------------------------------------------------------------------


def test_flights_without_a_tail_number_are_out_of_scope_and_counted(feature_lake: Warehouse, dagster_instance) -> None:
    """All flights without a tail number are cancelled: none may reach the features, each must be counted."""
    first = FEATURES_START - timedelta(days=1)
    days = [first + timedelta(days=n) for n in range((FEATURES_END - first).days + 1)]
    validated = pl.concat([pl.read_parquet(partition_uri(str(feature_lake.lake_root), "validated", d)) for d in days])
    assert validated["tailnum"].null_count() == 0
    with feature_lake.connect() as con:
        tailless, cancelled = con.execute(
            "select count(*), count(*) filter (where is_cancelled) from flights_enriched "
            "where tailnum is null and flight_date between ? and ?",
            [days[0], days[-1]],
        ).fetchone()
    assert tailless > 50 and cancelled == tailless  # the leak this closes: no tail number means cancelled
    # The feature_lake fixture's range run (other tests re-run other days later): its record of the last day.
    records = dagster_instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("validated_features"), asset_partitions=[days[-1].isoformat()]),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata
    assert metadata["partitions"].value == len(days)
    assert metadata["out_of_scope_rows"].value == tailless


def test_weather_is_used_only_from_the_end_of_its_hour(frame: pl.DataFrame) -> None:
    rows = _sample(frame, 400)
    assert _mismatches(rows, _expected_weather) == []
    # Discriminating: a flight predicted inside an hour would see that hour's record if it were stamped at H:00.
    inside = [row for row in rows if row["prediction_ts"].minute and row["weather_temp"] is not None]
    early = [row for row in inside if not truth.same(row["weather_temp"], _temperature_an_hour_early(row))]
    assert len(early) > 20


def test_daily_statistics_count_only_outcomes_known_before_the_day(frame: pl.DataFrame) -> None:
    # Flights of days that follow a day with arrivals after midnight: a daily window would count those.
    late = {f.day + timedelta(days=1) for f in truth.flights() if f.known_at.date() > f.day}
    rows = [row for row in _sample(frame, 600) if row["prediction_ts"].date() in late]
    assert len(rows) > 100
    assert _mismatches(rows, _expected_history) == []


# --- the general guard ------------------------------------------------------------------------------------------------


def test_every_feature_equals_a_recomputation_from_events_known_at_prediction_time(frame: pl.DataFrame) -> None:
    """Truncation invariance: each model feature of sampled flights across the window, recomputed from only the raw
    events known at its prediction time, equals what training sees."""
    rows = _sample(frame, 500, seed=2013)

    # The schedule and destination columns are the request itself; every other model column is recomputed.
    covered = set(_expected_all(rows[0])) | set(REQUEST_COLUMNS)
    assert set(MODEL_FEATURE_COLUMNS) <= covered
    assert _mismatches(rows, _expected_all) == []


@pytest.fixture(scope="module")
def year_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole of 2013 through raw, dbt and features, built in a subprocess with its own data dir and instance."""
    root = tmp_path_factory.mktemp("year")
    (root / "dagster_home").mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    env = {**os.environ, "MLOPS_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "dagster_home")}
    build = subprocess.run(
        [sys.executable, "-m", "mlops_assets_tests.year_build"], env=env, capture_output=True, text=True, timeout=1200
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-4000:]
    return root / "data" / "lake"


def test_every_feature_equals_the_recomputation_at_prediction_times_across_the_year(year_lake: Path) -> None:
    """Truncation invariance over the whole year: three days drawn from every month, 15 flights each."""
    rng = random.Random(2013)
    year = [date(2013, 1, 8) + timedelta(days=n) for n in range(357)]
    days = sorted(day for month in range(1, 13) for day in rng.sample([d for d in year if d.month == month], 3))
    rows = [
        row for day in days for row in _sample(build_training_frame(str(year_lake), day, day), 15, seed=day.toordinal())
    ]

    assert len({row["prediction_ts"].month for row in rows}) == 12
    assert _mismatches(rows, _expected_all) == []


# Features whose missingness is itself information known at T; each is named with the reason.
MISSINGNESS_EXCEPTIONS: dict[str, str] = {
    # The hourly record itself lacks sea-level pressure (observed with the record, at the end of its hour); the
    # reports without it cluster in rain and low visibility, which delays flights. Measured here: indicator AUC
    # 0.556 on the fixture's five weeks. It is a property of the observation known at T, not of the outcome.
    "weather_pressure": "pressure missing from the observation itself",
    # Missing means the aircraft has not left yet today at T: its first departure of the day, which delay has not
    # propagated to yet. Known at T by definition (no departure by T), and the reason the feature exists. Measured
    # over the year: indicator AUC 0.450 (flights on an aircraft's first leg are less often delayed).
    "tail_last_dep_delay_today": "the aircraft's first departure of the day",
    # Missing means no earlier departure of the aircraft was scheduled by T: again its first leg of the day, known
    # from the schedule alone. Measured over the year: indicator AUC 0.446 for both.
    "tail_last_sched_dep_minute_today": "the aircraft's first scheduled departure of the day",
    "tail_sched_gap_minutes": "the aircraft's first scheduled departure of the day",
    # Missing means no flight to the destination has an outcome yet that day at T: the early-morning departures,
    # before any of the day's flights there has landed. Known at T by definition (no arrival by T); early flights are
    # less often delayed. Measured over the year: indicator AUC 0.422.
    "dest_late_share_today": "no flight to the destination has landed yet that day",
}


def _separating_missingness(frame: pl.DataFrame) -> dict[str, float]:
    label = frame[LABEL_COLUMN].to_numpy()
    separating = {}
    for name in MODEL_FEATURE_COLUMNS:
        missing = frame[name].is_null().to_numpy()
        if 0 < missing.sum() < len(missing):
            auc = float(roc_auc_score(label, missing))
            if max(auc, 1 - auc) > 0.55 and name not in MISSINGNESS_EXCEPTIONS:
                separating[name] = round(auc, 3)
    return separating


def test_no_missing_indicator_separates_the_label(frame: pl.DataFrame) -> None:
    assert _separating_missingness(frame) == {}


def test_no_missing_indicator_separates_the_label_over_the_year(year_lake: Path) -> None:
    assert _separating_missingness(build_training_frame(str(year_lake), date(2013, 1, 8), date(2013, 12, 30))) == {}


# --- training/serving skew --------------------------------------------------------------------------------------------


def test_replayed_departures_online_equal_the_training_values(feature_lake: Warehouse, tmp_path: Path) -> None:
    """Replay a day's departures up to T through Feast's push sources; for every key of the day (all origins, every
    carrier at each, every aircraft) Feast's online answer equals the point-in-time value training joins at T."""
    day = FEATURES_END - timedelta(days=2)
    lake = str(feature_lake.lake_root)
    store = FeatureStoreResource(
        repo_dir=str(SETTINGS.feast_repo_dir),
        registry_path=str(tmp_path / "registry.db"),
        online_store=f"sqlite:///{tmp_path / 'online.db'}",
        lake_root=lake,
    )
    store.ensure_applied()
    schedule = read_warehouse_inputs(feature_lake.location, day, day).schedule
    live = [spec for spec in FEATURE_VIEWS if spec.live]
    live_keys = [spec.join_key for spec in live]
    keys = with_intraday_keys(schedule.select("flight_date", "carrier", "origin", "dest", "tailnum")).unique(live_keys)
    tables = read_entity_tables(lake, live)
    day_frame = build_training_frame(lake, day, day)
    moments = sorted(set(day_frame["prediction_ts"].to_list()))
    checked = 0
    for moment in (moments[len(moments) // 10], moments[len(moments) // 2], moments[-len(moments) // 5], moments[-1]):
        replay_departures(
            schedule, lambda view, rows: store.push_online(FEATURE_VIEWS_BY_NAME[view].push_source, rows), until=moment
        )
        for spec in live:
            spine = (
                keys.select(spec.join_key)
                .drop_nulls()
                .unique()
                .sort(spec.join_key)
                .with_columns(pl.lit(moment).alias("prediction_ts"))
            )
            offline = point_in_time_join(spine, tables, specs=[spec])
            refs = [f"{spec.name}:{name}" for name in spec.features]
            online = (
                store.get_store()
                .get_online_features(features=refs, entity_rows=[{spec.join_key: key} for key in spine[spec.join_key]])
                .to_dict()
            )
            for name in spec.features:
                assert [truth.same(a, b) for a, b in zip(online[name], offline[name], strict=True)] == [
                    True
                ] * spine.height, f"{spec.name}.{name} at {moment}"
            checked += spine.height
        # The flights predicted exactly at T were trained on these very values.
        predicted = with_intraday_keys(day_frame.filter(pl.col("prediction_ts") == moment))
        refs = [f"{spec.name}:{name}" for spec in live for name in spec.features]
        rows = predicted.select(live_keys).to_dicts()
        online = store.get_store().get_online_features(features=refs, entity_rows=rows).to_dict()
        for name in INTRADAY_FEATURE_COLUMNS:
            assert all(truth.same(a, b) for a, b in zip(online[name], predicted[name], strict=True)), name
    assert checked > 1000


def test_daily_statistics_for_a_day_are_online_before_its_first_prediction(feature_lake: Warehouse) -> None:
    """feature_store of D-1 publishes the statistics every flight of D is trained on, stamped D 00:00."""
    day = FEATURES_END
    lake = str(feature_lake.lake_root)
    stats = read_entity_tables(lake, [FEATURE_VIEWS_BY_NAME["route_delay_stats"]])["route_delay_stats"]
    produced_by_eve = stats.filter(pl.col("source_date") == day - timedelta(days=1))
    assert produced_by_eve["event_ts"].unique().to_list() == [datetime(day.year, day.month, day.day)]
    frame = build_training_frame(lake, day, day).filter(pl.col("prediction_ts").dt.date() == day)
    joined = frame.join(produced_by_eve, on="route", suffix="_eve")
    assert joined.height > 0.9 * frame.height
    assert (joined["route_delay_rate_28d"] == joined["route_delay_rate_28d_eve"]).all()
