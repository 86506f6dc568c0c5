"""The entity feature views: what Feast serves online and the point-in-time join reads offline, from one spec.

Each view is a table of (join key, ``event_ts``, features, ``source_date``) rows in the lake. ``event_ts`` is the
moment the values became known, on the New York wall clock; ``source_date`` is the daily partition that produced the
row, so a re-run replaces exactly its own rows. Where each view's rows come from, and when they are known:

- ``<entity>_delay_stats`` (route, carrier, origin): the dbt model ``delay_history`` built at the end of day D from
  outcomes known by then, stamped D + 1 00:00 (``stats_date``). They serve D + 1 from its first prediction. TTL one
  day: an entity with no known outcome in its window has no statistics, as in dbt.
- ``origin_weather``: the weather record each flight used, stamped at the end of its hour (``available_at``).
- ``plane_attributes``: the aircraft registry values, stamped at the start of each day the plane was predicted on.
- ``origin_today``, ``carrier_origin_today``, ``carrier_today``, ``dest_today``, ``tail_today``: the intraday state
  after each departure and outcome event (:mod:`mlops_assets.lib.intraday`). Live views: online, they are fed by the
  departure feed's push sources, not by the daily ``feature_store`` write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from mlops_assets.lib.feature_contract import (
    CONTRACT_DTYPES,
    HISTORICAL_STAT_COLUMNS,
    PARTITION_COLUMN,
    TIMESTAMP_COLUMN,
    WEATHER_FEATURES,
)
from mlops_assets.lib.intraday import (
    EVENT_SOURCE_COLUMNS,
    EVENT_TS,
    INTRADAY_FEATURES,
    INTRADAY_JOIN_KEYS,
    SOURCE_DATE,
    intraday_timelines,
)
from mlops_assets.lib.warehouse import WarehouseLocation
from mlops_assets.settings import HISTORY_WINDOWS, MAX_WEATHER_AGE_MINUTES

STATS_STATISTICS: tuple[str, ...] = ("flights", "delay_rate", "cancel_rate", "mean_dep_delay")


@dataclass(frozen=True)
class FeatureViewSpec:
    """One entity-keyed feature table: shared by the Feast views (serving) and the ASOF join (training)."""

    name: str
    entity: str
    join_key: str
    features: Mapping[str, pl.DataType]
    ttl: timedelta
    description: str
    timestamp_column: str = EVENT_TS
    live: bool = False
    """Fed online by a Feast push source (departure events) rather than by the daily online write."""

    @property
    def push_source(self) -> str:
        return f"{self.name}_push"


def _stats_spec(entity: str) -> FeatureViewSpec:
    days = HISTORY_WINDOWS[entity]
    names = [name for name in HISTORICAL_STAT_COLUMNS if name.startswith(f"{entity}_")]
    return FeatureViewSpec(
        name=f"{entity}_delay_stats",
        entity=entity,
        join_key=entity,
        features={name: CONTRACT_DTYPES[name] for name in names},
        ttl=timedelta(days=1),
        description=f"{entity} delay statistics of the {days} days before the stamped day, outcomes known by then",
    )


def _intraday_spec(view: str, entity: str, description: str) -> FeatureViewSpec:
    return FeatureViewSpec(
        name=view,
        entity=entity,
        join_key=INTRADAY_JOIN_KEYS[view],
        features=INTRADAY_FEATURES[view],
        # A key names one operating day; its last departures can happen after midnight.
        ttl=timedelta(days=2),
        description=description,
        live=True,
    )


FEATURE_VIEWS: tuple[FeatureViewSpec, ...] = (
    _stats_spec("route"),
    _stats_spec("carrier"),
    _stats_spec("origin"),
    FeatureViewSpec(
        name="origin_weather",
        entity="origin",
        join_key="origin",
        features={name: CONTRACT_DTYPES[name] for name in WEATHER_FEATURES},
        ttl=timedelta(minutes=MAX_WEATHER_AGE_MINUTES),  # older weather counts as missing, as in dbt
        description="hourly weather at the origin airport, stamped at the end of its hour (when it is known)",
    ),
    FeatureViewSpec(
        name="plane_attributes",
        entity="plane",
        join_key="tailnum",
        features={
            "plane_year": pl.Int32(),
            "plane_type": pl.String(),
            "plane_engines": pl.Int32(),
            "plane_seats": pl.Int32(),
        },
        ttl=timedelta(days=366),
        description="plane attributes, stamped at the start of each day the plane flew",
    ),
    _intraday_spec("origin_today", "origin_day", "departures from the origin so far on the operating day"),
    _intraday_spec(
        "carrier_origin_today", "carrier_origin_day", "the carrier's departures from the origin so far that day"
    ),
    _intraday_spec("carrier_today", "carrier_day", "the carrier's departures from every origin so far that day"),
    _intraday_spec("dest_today", "dest_day", "outcomes known so far that day of the flights to the destination"),
    _intraday_spec(
        "tail_today", "tail_day", "the aircraft's departures, schedule and latest known outcome so far that day"
    ),
)
FEATURE_VIEWS_BY_NAME: dict[str, FeatureViewSpec] = {spec.name: spec for spec in FEATURE_VIEWS}
STATS_VIEWS: tuple[FeatureViewSpec, ...] = tuple(spec for spec in FEATURE_VIEWS if spec.name.endswith("_delay_stats"))


def stats_tables(delay_history: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The delay-statistics views from ``delay_history`` rows (partition_date, stats_date, entity_type, entity, ...):
    stamped at the start of ``stats_date``, the day they serve."""
    tables: dict[str, pl.DataFrame] = {}
    for spec in STATS_VIEWS:
        entity = spec.entity
        days = HISTORY_WINDOWS[entity]
        rows = delay_history.filter(pl.col("entity_type") == entity)
        tables[spec.name] = rows.select(
            pl.col("entity").cast(pl.String).alias(spec.join_key),
            pl.col("stats_date").cast(pl.Datetime("us")).alias(EVENT_TS),
            *(
                pl.col(stat).cast(spec.features[f"{entity}_{stat}_{days}d"]).alias(f"{entity}_{stat}_{days}d")
                for stat in STATS_STATISTICS
            ),
            pl.col("partition_date").cast(pl.Date).alias(SOURCE_DATE),
        ).sort(EVENT_TS, spec.join_key)
    return tables


def entity_tables(valid: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The weather and plane views from validated rows: one row per (entity, event timestamp), latest value wins.

    Plane attributes are stamped at the midnight before the prediction (they are known from the start of the day).
    Weather is stamped when it became known: prediction time minus the weather's age (the end of the record's hour).
    """
    tables: dict[str, pl.DataFrame] = {}
    for name in ("origin_weather", "plane_attributes"):
        spec = FEATURE_VIEWS_BY_NAME[name]
        if name == "origin_weather":
            source = valid.filter(pl.col("weather_age_minutes").is_not_null()).with_columns(
                (pl.col(TIMESTAMP_COLUMN) - pl.duration(minutes=pl.col("weather_age_minutes"))).alias(EVENT_TS)
            )
        else:
            # Registry values are known before the day's first prediction, which for a flight just after midnight
            # falls on the day before: stamp each row at the start of its prediction's day.
            source = valid.filter(pl.col("plane_type").is_not_null()).with_columns(
                pl.col(TIMESTAMP_COLUMN).dt.truncate("1d").alias(EVENT_TS)
            )
        table = (
            source.select(spec.join_key, EVENT_TS, *spec.features, pl.col(PARTITION_COLUMN).alias(SOURCE_DATE))
            .unique(subset=[spec.join_key, EVENT_TS], keep="last", maintain_order=True)
            .sort(EVENT_TS, spec.join_key)
        )
        tables[name] = table.with_columns(pl.col(spec.join_key).cast(pl.String))
    return tables


@dataclass(frozen=True)
class WarehouseInputs:
    """What the views need from the dbt warehouse for some days, besides the validated rows."""

    delay_history: pl.DataFrame
    schedule: pl.DataFrame
    """Every scheduled flight, in scope or not (a flight that never left still holds its origin's queue), with its
    actual departure: the intraday departure events."""


def read_warehouse_inputs(warehouse: WarehouseLocation, first_day: date, last_day: date) -> WarehouseInputs:
    with warehouse.connect() as con:
        history = con.sql(
            "select * from delay_history where partition_date between ? and ?", params=[first_day, last_day]
        ).pl()
        schedule = con.sql(
            f"select {', '.join(EVENT_SOURCE_COLUMNS)} from flights_enriched where flight_date between ? and ?",
            params=[first_day, last_day],
        ).pl()
    return WarehouseInputs(delay_history=history, schedule=schedule)


def feature_tables(valid: pl.DataFrame, inputs: WarehouseInputs) -> dict[str, pl.DataFrame]:
    """Every view's rows produced by some days: statistics, weather and planes, intraday timelines."""
    return {**stats_tables(inputs.delay_history), **entity_tables(valid), **intraday_timelines(inputs.schedule)}


def merge_entity_table(
    spec: FeatureViewSpec, existing: pl.DataFrame | None, fresh: pl.DataFrame, days: list[date]
) -> pl.DataFrame:
    """Replace the rows that ``days`` contributed (column ``source_date``) with ``fresh``: re-runs are idempotent.

    Rows are unique per (key, event timestamp), sorted by time. Slowly changing views (plane attributes) keep only
    the rows where a key's values change, so the table stays the size of the fleet, not fleet x days.
    """
    merged = (
        fresh
        if existing is None
        else pl.concat(
            [existing.filter(~pl.col(SOURCE_DATE).is_in(days)), fresh.select(existing.columns)],
            how="vertical_relaxed",
        )
    )
    merged = merged.sort(EVENT_TS, SOURCE_DATE).unique(
        subset=[spec.join_key, EVENT_TS], keep="last", maintain_order=True
    )
    if spec.name == "plane_attributes":
        values = [pl.col(name) for name in spec.features]
        changed = (
            pl.any_horizontal(v.ne_missing(v.shift(1).over(spec.join_key)) for v in values)
            | pl.col(EVENT_TS).shift(1).over(spec.join_key).is_null()
        )
        merged = merged.filter(changed)
    return merged.sort(EVENT_TS, spec.join_key)


def latest_per_key(spec: FeatureViewSpec, table: pl.DataFrame, first_day: date, last_day: date) -> pl.DataFrame:
    """What the online store must hold for one view after the days ``first_day..last_day``: each key's latest row
    produced by those days (``source_date``), with the key, the timestamp and the features only.

    Keyed by the producing day rather than by the stamp: statistics a day produces are stamped the next midnight,
    and they belong online as soon as their day is built."""
    days = pl.col(SOURCE_DATE)
    return (
        table.filter((days >= first_day) & (days <= last_day))
        .sort(spec.timestamp_column)
        .unique(subset=[spec.join_key], keep="last", maintain_order=True)
        .select(spec.join_key, spec.timestamp_column, *spec.features)
    )
