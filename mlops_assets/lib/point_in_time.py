"""Point-in-time correct training frames: each row gets every entity feature as of its own timestamp.

Decision: a DuckDB ``ASOF LEFT JOIN`` over the same per-entity feature tables that Feast materialises online, not
Feast's ``get_historical_features``. Our Feast offline store is the file (dask) store, which on this data ran out of
memory (22.5 GB on one month of weather) and silently drops rows that share a join key and timestamp (Feast issue
6787); Feast's DuckDB offline store needs ibis, which breaks with the sqlglot that dagster-dbt pulls in. The ASOF join
handles the full year in a fraction of a second and keeps Feast's semantics:

- a feature row is eligible when its ``event_ts <= `` the row's timestamp (never later: no look-ahead);
- of the eligible rows the latest wins;
- a value older than the view's TTL counts as missing (null), as Feast's TTL does.

The view list, keys, features and TTLs are :data:`mlops_assets.lib.feature_views.FEATURE_VIEWS`, shared with the
Feast repo, so training sees what serving sees; the intraday views join on day keys built from the request columns
(:func:`mlops_assets.lib.intraday.with_intraday_keys`), as the serving request builds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from mlops_assets.lib.feature_contract import KEY_COLUMN, LABEL_COLUMN, TIMESTAMP_COLUMN
from mlops_assets.lib.feature_paths import entity_table_uri, partition_uri
from mlops_assets.lib.feature_views import FEATURE_VIEWS, FeatureViewSpec
from mlops_assets.lib.intraday import with_derived_features, with_intraday_keys

# Known at request time from the schedule itself (the serving request carries them); everything else comes from
# the entity views as of the row's timestamp.
REQUEST_COLUMNS: tuple[str, ...] = (
    "flight_date",
    "route",
    "carrier",
    "origin",
    "dest",
    "tailnum",
    "sched_dep_hour",
    "sched_dep_minute_of_day",
    "sched_block_minutes",
    "month",
    "day_of_week",
    "distance",
    "dest_lat",
    "dest_lon",
    "dest_alt",
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_in(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    con.register("_incoming", frame)
    try:
        con.execute(f"create table {_quote(name)} as select * from _incoming")
    finally:
        con.unregister("_incoming")


def point_in_time_join(
    spine: pl.DataFrame,
    tables: Mapping[str, pl.DataFrame],
    specs: Sequence[FeatureViewSpec] = FEATURE_VIEWS,
    timestamp_column: str = TIMESTAMP_COLUMN,
) -> pl.DataFrame:
    """Left-join each view's features onto ``spine`` as of ``spine[timestamp_column]``; spine order is kept."""
    con = duckdb.connect()
    try:
        # Copied into DuckDB tables first: an ASOF join straight over registered Arrow frames re-scans them and took
        # 13 s for one view and a month of flights, against 0.3 s from a table (benchmarks/features.py times it).
        _copy_in(con, "spine_in", spine.with_row_index("__row"))
        selects = ["s.*"]
        joins = []
        for index, spec in enumerate(specs):
            table = tables.get(spec.name)
            if table is None:
                continue
            alias = f"v{index}"
            _copy_in(con, f"view_{index}", table.select(spec.join_key, spec.timestamp_column, *spec.features))
            ttl_seconds = int(spec.ttl.total_seconds())
            fresh = (
                f"{alias}.{_quote(spec.timestamp_column)} >= "
                f"s.{_quote(timestamp_column)} - to_seconds({ttl_seconds}::bigint)"
            )
            selects += [
                f"case when {fresh} then {alias}.{_quote(name)} end as {_quote(name)}" for name in spec.features
            ]
            joins.append(
                f"asof left join view_{index} as {alias} on s.{_quote(spec.join_key)} = {alias}.{_quote(spec.join_key)}"
                f" and s.{_quote(timestamp_column)} >= {alias}.{_quote(spec.timestamp_column)}"
            )
        query = f"select {', '.join(selects)} from spine_in as s {' '.join(joins)} order by s.__row"
        return con.sql(query).pl().drop("__row")
    finally:
        con.close()


def read_entity_tables(lake_root: str, specs: Sequence[FeatureViewSpec] = FEATURE_VIEWS) -> dict[str, pl.DataFrame]:
    tables = {}
    for spec in specs:
        uri = entity_table_uri(lake_root, spec.name)
        if "://" in uri or Path(uri).exists():
            tables[spec.name] = pl.read_parquet(uri)
    return tables


def read_validated(lake_root: str, start: date, end: date) -> pl.DataFrame:
    """Validated rows of the days ``start..end`` (inclusive) that exist in the lake."""
    frames = []
    day = start
    while day <= end:
        uri = partition_uri(lake_root, "validated", day)
        if "://" in uri or Path(uri).exists():
            frames.append(pl.read_parquet(uri))
        day += timedelta(days=1)
    if not frames:
        raise FileNotFoundError(f"no validated feature partitions between {start} and {end} under {lake_root}")
    return pl.concat(frames, how="vertical_relaxed")


def build_training_frame(lake_root: str, start: date, end: date) -> pl.DataFrame:
    """The training frame for flights of ``start..end``: key, timestamp, request columns, view features, label."""
    validated = read_validated(lake_root, start, end)
    spine = with_intraday_keys(validated.select(KEY_COLUMN, TIMESTAMP_COLUMN, *REQUEST_COLUMNS, LABEL_COLUMN))
    return with_derived_features(point_in_time_join(spine, read_entity_tables(lake_root)))
