"""Replay of the embedded source into the landing zone, one file per table per day, as an upstream system would."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from mlops_assets.lib.io import write_bytes_atomic
from mlops_assets.lib.raw_tables import landed_file_path
from mlops_assets.lib.source import DAILY_TABLES, DIMENSION_TABLES, read_source_csv_bytes, read_source_table


@dataclass(frozen=True)
class LandedFile:
    table: str
    day: date | None
    path: str
    rows: int


def days_between(start: date, end: date) -> Iterator[date]:
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start}); swap the two dates")
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def _csv_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_csv(buffer, null_value="NA")
    return buffer.getvalue()


def land_days(landing_root: str | Path, start: date, end: date) -> list[LandedFile]:
    """Write the source rows of each day in [start, end] into the landing zone (replacing earlier landings).

    Dimensions are landed too, as upstream exports them with every delivery.
    """
    days = list(days_between(start, end))
    landed: list[LandedFile] = []
    for table in DIMENSION_TABLES:
        path = landed_file_path(landing_root, table)
        payload = read_source_csv_bytes(table)
        write_bytes_atomic(path, payload)
        landed.append(LandedFile(table, None, path, payload.count(b"\n") - 1))
    for table in DAILY_TABLES:
        source = read_source_table(table)
        by_day = source.with_columns(
            pl.date(pl.col("year").cast(pl.Int32), pl.col("month").cast(pl.Int32), pl.col("day").cast(pl.Int32)).alias(
                "_day"
            )
        ).filter(pl.col("_day").is_between(start, end))
        rows_by_day = {
            key[0]: rows for key, rows in by_day.partition_by("_day", as_dict=True, include_key=False).items()
        }
        empty = source.clear()
        for day in days:
            # A day without rows still gets a header-only file: upstream delivered, there was just nothing to say.
            rows = rows_by_day.get(day, empty)
            path = landed_file_path(landing_root, table, day)
            write_bytes_atomic(path, _csv_bytes(rows))
            landed.append(LandedFile(table, day, path, rows.height))
    return landed


def contiguous_ranges(days: list[date]) -> list[tuple[date, date]]:
    """Group days into inclusive runs of consecutive days, so a landed month becomes one backfill run."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day - ranges[-1][1] == timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


# A day's tables can land hours apart. The sensor waits this long after the newest file of an incomplete day
# before requesting it anyway, so that the missing table's raw asset fails loudly instead of the day waiting forever.
LANDING_WAIT = timedelta(hours=6)


@dataclass(frozen=True)
class DayReadiness:
    """Changed days sorted by what the landing sensor should do with them."""

    ready: list[date]
    # day -> (missing tables, seconds since the newest landed file of the day)
    overdue: dict[date, tuple[list[str], float]]
    waiting: dict[date, tuple[list[str], float]]


def classify_days(
    changed: set[date],
    landed: dict[date, dict[str, float]],
    tables: tuple[str, ...],
    now: float,
    wait: timedelta = LANDING_WAIT,
) -> DayReadiness:
    """Split changed days into ready (every table landed), overdue (one missing past ``wait``) and waiting.

    ``landed`` maps a day to the mtime (epoch seconds) of each of its landed tables.
    """
    ready: list[date] = []
    overdue: dict[date, tuple[list[str], float]] = {}
    waiting: dict[date, tuple[list[str], float]] = {}
    for day in sorted(changed):
        present = landed.get(day, {})
        missing = [table for table in tables if table not in present]
        if not missing:
            ready.append(day)
            continue
        age = now - max(present.values()) if present else 0.0
        (overdue if age >= wait.total_seconds() else waiting)[day] = (missing, age)
    return DayReadiness(ready=ready, overdue=overdue, waiting=waiting)
