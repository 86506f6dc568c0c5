"""The feature contract: which columns a model-ready row has, their types, and which flights are in scope.

Pure logic, no Dagster or Feast import. Decisions:

- **Rows**: one per flight of the day, read from the dbt model ``flights_enriched``. Keyed by ``flight_id``, stamped
  with ``prediction_ts`` (scheduled departure minus the configured lead), partitioned by ``flight_date``.
- **Scope**: the model answers for a flight with an assigned aircraft, which is what a serving request carries. The
  2,512 flights of 2013 without a tail number are all cancelled, so keeping them would teach the model "no plane
  data means delayed". :func:`split_scope` sets them apart before validation; they are counted, never used.
- **Timestamps** are New York wall-clock time, naive, as everywhere in the warehouse. Feast needs tz-aware instants;
  it labels naive timestamps UTC, so windows handed to Feast use the same "wall clock labelled UTC" convention. Every
  comparison (validation, point-in-time join, materialisation window) therefore happens on one clock, with no DST gap.
- **Only pre-departure information is a feature.** The outcome columns (:data:`OUTCOME_COLUMNS`) never leave the
  warehouse: :func:`prepare_model_rows` selects the contract columns only, so they are not even in the validated lake
  files. Statistics of outcomes are features only as point-in-time aggregates of outcomes known before the
  prediction time (``delay_history`` in dbt, :mod:`mlops_assets.lib.intraday`); the leakage tests recompute them.
"""

from __future__ import annotations

import polars as pl

from mlops_assets.settings import HISTORY_WINDOWS

KEY_COLUMN = "flight_id"
PARTITION_COLUMN = "flight_date"
TIMESTAMP_COLUMN = "prediction_ts"
LABEL_COLUMN = "is_delayed"
# Facts known only after departure. Never features; kept in the warehouse for labels and monitoring only.
OUTCOME_COLUMNS: tuple[str, ...] = (
    "dep_time", "dep_delay", "dep_ts", "arr_time", "arr_delay", "air_time", "outcome_known_at", "is_cancelled",
)  # fmt: skip
# Name fragments that mark a column derived from an actual departure / arrival. A feature whose name contains one is
# allowed only if it is a declared point-in-time historical statistic (earlier days only).
OUTCOME_NAME_FRAGMENTS: tuple[str, ...] = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "cancel")

ORIGINS: tuple[str, ...] = ("EWR", "JFK", "LGA")
CARRIERS: tuple[str, ...] = (
    "9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV",
)  # fmt: skip
PLANE_TYPES: tuple[str, ...] = ("Fixed wing multi engine", "Fixed wing single engine", "Rotorcraft")
# Local scheduled block time (arrival minus departure, modulo a day): NYC flights go west or stay in the time zone
# (SJU/STT/BQN are +1 h), so the 2013 range is 50..400 min; outside 15..720 min the schedule is not plausible.
MIN_BLOCK_MINUTES = 15
MAX_BLOCK_MINUTES = 720

ENTITY_KEY_COLUMNS: tuple[str, ...] = ("route", "carrier", "origin", "tailnum")
CATEGORICAL_COLUMNS: tuple[str, ...] = ("carrier", "origin", "dest", "plane_type")
SCHEDULE_FEATURES: tuple[str, ...] = (
    "sched_dep_hour",
    "sched_dep_minute_of_day",
    "sched_block_minutes",
    "month",
    "day_of_week",
    "distance",
)
PLANE_FEATURES: tuple[str, ...] = ("plane_year", "plane_engines", "plane_seats")
DEST_FEATURES: tuple[str, ...] = ("dest_lat", "dest_lon", "dest_alt")
WEATHER_FEATURES: tuple[str, ...] = (
    "weather_temp",
    "weather_dewp",
    "weather_humid",
    "weather_wind_dir",
    "weather_wind_speed",
    "weather_wind_gust",
    "weather_precip",
    "weather_pressure",
    "weather_visib",
)
HISTORICAL_STAT_COLUMNS: tuple[str, ...] = tuple(
    f"{entity}_{stat}_{days}d"
    for entity, days in HISTORY_WINDOWS.items()
    for stat in ("flights", "delay_rate", "cancel_rate", "mean_dep_delay")
)
NUMERIC_FEATURE_COLUMNS: tuple[str, ...] = (
    *SCHEDULE_FEATURES,
    *PLANE_FEATURES,
    *DEST_FEATURES,
    *WEATHER_FEATURES,
    "weather_age_minutes",
    *HISTORICAL_STAT_COLUMNS,
)
FEATURE_COLUMNS: tuple[str, ...] = (*CATEGORICAL_COLUMNS, *NUMERIC_FEATURE_COLUMNS)

# The columns of a validated row, in order, with their contract dtypes. Schedule columns (HHMM) and identifiers are
# kept for the cross-field rules and the entity tables; they are not model features.
CONTRACT_DTYPES: dict[str, pl.DataType] = {
    KEY_COLUMN: pl.String(),
    PARTITION_COLUMN: pl.Date(),
    TIMESTAMP_COLUMN: pl.Datetime("us"),
    "sched_dep_ts": pl.Datetime("us"),
    "route": pl.String(),
    "carrier": pl.String(),
    "origin": pl.String(),
    "dest": pl.String(),
    "tailnum": pl.String(),
    "plane_type": pl.String(),
    "sched_dep_time": pl.Int32(),
    "sched_arr_time": pl.Int32(),
    "sched_dep_hour": pl.Int32(),
    "sched_dep_minute_of_day": pl.Int32(),
    "sched_block_minutes": pl.Int32(),
    "month": pl.Int32(),
    "day_of_week": pl.Int32(),
    "distance": pl.Float64(),
    "plane_year": pl.Int32(),
    "plane_engines": pl.Int32(),
    "plane_seats": pl.Int32(),
    "dest_lat": pl.Float64(),
    "dest_lon": pl.Float64(),
    "dest_alt": pl.Int32(),
    "weather_age_minutes": pl.Int32(),
    **{name: pl.Float64() for name in WEATHER_FEATURES},
    **{name: (pl.Int32() if "_flights_" in name else pl.Float64()) for name in HISTORICAL_STAT_COLUMNS},
    LABEL_COLUMN: pl.Int8(),
}
DERIVED_COLUMNS: tuple[str, ...] = ("sched_dep_minute_of_day", "sched_block_minutes")
SOURCE_COLUMNS: tuple[str, ...] = tuple(name for name in CONTRACT_DTYPES if name not in DERIVED_COLUMNS)


class FeatureContractError(ValueError):
    """The frame as a whole breaks the contract (missing column, wrong dtype): no row can be trusted."""


def _hhmm_minutes(column: str) -> pl.Expr:
    return (pl.col(column) // 100) * 60 + pl.col(column) % 100


def prepare_model_rows(enriched: pl.DataFrame) -> pl.DataFrame:
    """Select the contract columns of ``flights_enriched`` (outcomes dropped), cast them, add schedule features."""
    missing = [name for name in SOURCE_COLUMNS if name not in enriched.columns]
    if missing:
        raise FeatureContractError(f"flights_enriched lacks contract column(s): {', '.join(missing)}")
    try:
        frame = enriched.select(pl.col(name).cast(CONTRACT_DTYPES[name], strict=True) for name in SOURCE_COLUMNS)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise FeatureContractError(f"flights_enriched has a column of the wrong type: {exc}") from exc
    frame = frame.with_columns(
        _hhmm_minutes("sched_dep_time").cast(pl.Int32).alias("sched_dep_minute_of_day"),
        ((_hhmm_minutes("sched_arr_time") - _hhmm_minutes("sched_dep_time")) % 1440)
        .cast(pl.Int32)
        .alias("sched_block_minutes"),
    )
    return frame.select(list(CONTRACT_DTYPES))


def split_scope(enriched: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(in scope, out of scope): flights without a tail number are outside what a serving request describes."""
    out = pl.col("tailnum").is_null()
    return enriched.filter(~out), enriched.filter(out)
