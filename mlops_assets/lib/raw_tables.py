"""Contracts of the raw tables and the parsing of landed files against them.

A landed file is CSV, as an upstream system would drop it. Every column is read as text first and then cast
column by column, so a bad value is reported with its file, column, row and expected type instead of becoming a
silent null.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

NULL_TOKENS: tuple[str, ...] = ("", "NA")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
UTC_TIMESTAMP = pl.Datetime("us", "UTC")

RAW_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "flights": {
        "year": pl.Int32(),
        "month": pl.Int32(),
        "day": pl.Int32(),
        "dep_time": pl.Int32(),
        "sched_dep_time": pl.Int32(),
        "dep_delay": pl.Float64(),
        "arr_time": pl.Int32(),
        "sched_arr_time": pl.Int32(),
        "arr_delay": pl.Float64(),
        "carrier": pl.String(),
        "flight": pl.Int32(),
        "tailnum": pl.String(),
        "origin": pl.String(),
        "dest": pl.String(),
        "air_time": pl.Float64(),
        "distance": pl.Float64(),
        "hour": pl.Int32(),
        "minute": pl.Int32(),
        "time_hour": UTC_TIMESTAMP,
    },
    "weather": {
        "origin": pl.String(),
        "year": pl.Int32(),
        "month": pl.Int32(),
        "day": pl.Int32(),
        "hour": pl.Int32(),
        "temp": pl.Float64(),
        "dewp": pl.Float64(),
        "humid": pl.Float64(),
        "wind_dir": pl.Float64(),
        "wind_speed": pl.Float64(),
        "wind_gust": pl.Float64(),
        "precip": pl.Float64(),
        "pressure": pl.Float64(),
        "visib": pl.Float64(),
        "time_hour": UTC_TIMESTAMP,
    },
    "planes": {
        "tailnum": pl.String(),
        "year": pl.Int32(),
        "type": pl.String(),
        "manufacturer": pl.String(),
        "model": pl.String(),
        "engines": pl.Int32(),
        "seats": pl.Int32(),
        "speed": pl.Float64(),
        "engine": pl.String(),
    },
    "airports": {
        "faa": pl.String(),
        "name": pl.String(),
        "lat": pl.Float64(),
        "lon": pl.Float64(),
        "alt": pl.Int32(),
        "tz": pl.Float64(),
        "dst": pl.String(),
        "tzone": pl.String(),
    },
    "airlines": {"carrier": pl.String(), "name": pl.String()},
}

# Columns that must be present on every row; everything else may be missing (cancelled flights, gaps in weather).
REQUIRED_VALUES: dict[str, tuple[str, ...]] = {
    "flights": (
        "year",
        "month",
        "day",
        "sched_dep_time",
        "sched_arr_time",
        "carrier",
        "flight",
        "origin",
        "dest",
    ),
    "weather": ("origin", "year", "month", "day", "hour", "time_hour"),
    "planes": ("tailnum",),
    "airports": ("faa",),
    "airlines": ("carrier",),
}


# Weather stations can deliver a header-only file for a day with no observations (2013-12-31 in the source);
# a flights export without rows means the export failed.
TABLES_WITH_QUIET_DAYS: frozenset[str] = frozenset({"weather"})


class LandedFileError(ValueError):
    """A landed file does not match its table contract; the message names file, column and fix."""


@dataclass(frozen=True)
class ParsedFile:
    frame: pl.DataFrame
    ignored_columns: tuple[str, ...]


def _cast_column(raw: pl.Series, dtype: pl.DataType) -> pl.Series:
    if dtype == UTC_TIMESTAMP:
        return raw.str.to_datetime(format=TIMESTAMP_FORMAT, time_zone="UTC", time_unit="us", strict=False)
    if dtype.is_integer():
        # Integers are accepted when written as whole floats too ("517.0"): some upstream exporters do that.
        as_float = raw.cast(pl.Float64, strict=False)
        whole = as_float.filter(as_float.is_not_null())
        if (whole != whole.round(0)).any():
            return pl.Series(raw.name, [None] * len(raw), dtype=dtype)
        return as_float.cast(dtype, strict=False)
    return raw.cast(dtype, strict=False)


def parse_landed_csv(content: bytes, table: str, source: str) -> ParsedFile:
    """Parse one landed CSV of ``table``; raise ``LandedFileError`` on any contract violation."""
    schema = RAW_SCHEMAS[table]
    if not content.strip():
        raise LandedFileError(f"{source}: the file is empty; re-land it from the upstream system")
    try:
        text = pl.read_csv(io.BytesIO(content), infer_schema=False, null_values=list(NULL_TOKENS))
    except pl.exceptions.PolarsError as exc:
        raise LandedFileError(f"{source}: not a readable CSV ({exc}); re-land it as comma-separated text") from exc
    if text.height == 0 and table not in TABLES_WITH_QUIET_DAYS:
        raise LandedFileError(f"{source}: the file has a header but no rows; re-land it from the upstream system")

    missing = [name for name in schema if name not in text.columns]
    if missing:
        raise LandedFileError(
            f"{source}: missing column(s) {', '.join(missing)}; the {table} contract needs "
            f"{', '.join(schema)} (extra columns are ignored)"
        )

    columns: list[pl.Series] = []
    for name, dtype in schema.items():
        raw = text.get_column(name)
        typed = _cast_column(raw, dtype)
        bad = raw.is_not_null() & typed.is_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise LandedFileError(
                f"{source}: column {name!r} expects {_describe(dtype)}, but row {row + 2} holds {raw[row]!r} "
                f"({int(bad.sum())} bad value(s)); fix the upstream export or re-land the file"
            )
        columns.append(typed.alias(name))
    frame = pl.DataFrame(columns)

    for name in REQUIRED_VALUES[table]:
        nulls = frame.get_column(name).null_count()
        if nulls:
            raise LandedFileError(
                f"{source}: column {name!r} must not be empty, but {nulls} row(s) have no value; "
                "fix the upstream export or re-land the file"
            )
    ignored = tuple(name for name in text.columns if name not in schema)
    return ParsedFile(frame=frame, ignored_columns=ignored)


def _describe(dtype: pl.DataType) -> str:
    if dtype == UTC_TIMESTAMP:
        return f"a UTC timestamp like 2013-01-01T05:00:00Z (format {TIMESTAMP_FORMAT})"
    if dtype.is_integer():
        return "a whole number"
    if dtype.is_float():
        return "a number"
    return str(dtype)


def check_partition_date(frame: pl.DataFrame, partition: date, source: str) -> None:
    """Every row of a daily file must belong to its partition day (New York local date)."""
    off_day = frame.filter(
        (pl.col("year") != partition.year) | (pl.col("month") != partition.month) | (pl.col("day") != partition.day)
    )
    if off_day.height:
        first = off_day.row(0, named=True)
        raise LandedFileError(
            f"{source}: {off_day.height} row(s) are not dated {partition.isoformat()} (first: "
            f"{first['year']}-{first['month']:02d}-{first['day']:02d}); land each day in its own file"
        )


def landed_file_path(landing_root: str | Path, table: str, partition: date | None = None) -> str:
    """Daily tables land as ``<table>/<YYYY-MM-DD>.csv``; dimensions as ``<table>/<table>.csv``, under a folder or an
    fsspec URL (the path or URL of the file is returned)."""
    name = f"{partition.isoformat()}.csv" if partition is not None else f"{table}.csv"
    return f"{str(landing_root).rstrip('/')}/{table}/{name}"
