"""A test-only delivery whose distributions have shifted: a real day's rows, changed as a ground-delay programme in a
warm storm would change them (within every raw-quality rule), so drift detection and the retrain path see a day unlike
the champion's training window.

Weather alone would not do: drift is weighted by the champion's importance, and the weather columns carry little of
it (by design, a warm spell alone must not retrain). The intraday departure state carries most, so every flight due
from ``GROUND_DELAY_FROM`` that left leaves ``GROUND_DELAY_MINUTES`` later than it did (the morning keeps both
labels, so the day's AUC stays defined)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from mlops_assets.lib.io import write_bytes_atomic
from mlops_assets.lib.landing import land_days
from mlops_assets.lib.raw_tables import landed_file_path

# Every change stays inside the raw-quality ranges (lib/raw_quality.py), so the day is not quarantined but drifts.
TEMP_SHIFT_F = 45.0
PRESSURE_MBAR = 985.0
VISIBILITY_MILES = 0.5
WIND_MPH = 35.0
GROUND_DELAY_MINUTES = 150
GROUND_DELAY_FROM = 700  # HHMM, scheduled departure


def _hhmm_plus(column: str, minutes: pl.Expr) -> pl.Expr:
    value = pl.col(column).cast(pl.Int32)
    total = (value // 100 * 60 + value % 100 + minutes) % 1440
    return (total // 60 * 100 + total % 60).cast(pl.String).alias(column)


def _plus(column: str, minutes: pl.Expr) -> pl.Expr:
    return (pl.col(column).cast(pl.Float64) + minutes).cast(pl.Int64).cast(pl.String).alias(column)


def land_shifted_day(landing_root: Path, day: date) -> None:
    """Land ``day`` from the embedded source, then replace its flights and weather files with shifted ones."""
    land_days(landing_root, day, day)
    flights_path = landed_file_path(landing_root, "flights", day)
    flights = pl.read_csv(flights_path, infer_schema_length=0, null_values="NA")
    # Null times stay null (cancelled or diverted flights); every time and delay moves together, so each
    # delay = time - scheduled time still holds (modulo a day, as the quality rule reads it).
    delay = (
        pl.when(pl.col("sched_dep_time").cast(pl.Int32) >= GROUND_DELAY_FROM).then(GROUND_DELAY_MINUTES).otherwise(0)
    )
    flights = flights.with_columns(
        _hhmm_plus("dep_time", delay),
        _plus("dep_delay", delay),
        _hhmm_plus("arr_time", delay),
        _plus("arr_delay", delay),
    )
    write_bytes_atomic(flights_path, flights.write_csv(null_value="NA").encode())
    path = landed_file_path(landing_root, "weather", day)
    weather = pl.read_csv(path, infer_schema_length=0, null_values="NA")
    as_float = {name: pl.col(name).cast(pl.Float64) for name in ("temp", "dewp")}
    shifted = weather.with_columns(
        ((as_float["temp"] + TEMP_SHIFT_F).clip(upper_bound=125.0)).round(2).cast(pl.String).alias("temp"),
        ((as_float["dewp"] + TEMP_SHIFT_F).clip(upper_bound=95.0)).round(2).cast(pl.String).alias("dewp"),
        pl.lit(str(PRESSURE_MBAR)).alias("pressure"),
        pl.lit(str(VISIBILITY_MILES)).alias("visib"),
        pl.lit(str(WIND_MPH)).alias("wind_speed"),
        pl.lit(str(WIND_MPH + 15)).alias("wind_gust"),
    )
    # dewp <= temp holds: both moved by the same amount, and the clips keep dewp below temp's cap.
    shifted = shifted.with_columns(
        pl.min_horizontal(pl.col("dewp").cast(pl.Float64), pl.col("temp").cast(pl.Float64)).cast(pl.String)
    )
    write_bytes_atomic(path, shifted.write_csv(null_value="NA").encode())
