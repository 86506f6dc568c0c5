"""The feature contract: which columns are model-ready, how each row is validated, and the per-entity feature tables.

Pure logic, no Dagster or Feast import. Decisions:

- **Rows**: one per flight of the day, read from the dbt model ``flights_enriched``. Keyed by ``flight_id``, stamped
  with ``prediction_ts`` (scheduled departure minus the configured lead), partitioned by ``flight_date``.
- **Timestamps** are New York wall-clock time, naive, as everywhere in the warehouse. Feast needs tz-aware instants;
  it labels naive timestamps UTC, so windows handed to Feast use the same "wall clock labelled UTC" convention. Every
  comparison (validation, point-in-time join, materialisation window) therefore happens on one clock, with no DST gap.
- **Only pre-departure information is a feature.** The outcome columns (:data:`OUTCOME_COLUMNS`) never leave the
  warehouse: :func:`prepare_model_rows` selects the contract columns only, so they are not even in the validated lake
  files. The historical statistics (:data:`HISTORICAL_STAT_COLUMNS`) are aggregates of *earlier days'* outcomes,
  computed point-in-time by dbt (``trailing_delay_stats``), which is allowed; the leakage test pins both facts.
- **Validation** is a pandera ``DataFrameModel`` on polars, run lazily so every failed rule of every row is collected.
  Row-level failures (pandera reports a row index) quarantine the row with the names of its failed rules; schema-level
  failures (a missing column, a wrong dtype) have no row and fail the whole frame with :class:`FeatureContractError`.
- **Duplicated keys**: every row that shares a ``flight_id`` is quarantined (pandera reports all occurrences); we
  cannot tell which copy is right.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandera.polars as pa
import polars as pl

KEY_COLUMN = "flight_id"
PARTITION_COLUMN = "flight_date"
TIMESTAMP_COLUMN = "prediction_ts"
LABEL_COLUMN = "is_delayed"
# Facts known only after departure. Never features; kept in the warehouse for labels and monitoring only.
OUTCOME_COLUMNS: tuple[str, ...] = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "is_cancelled")
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
HISTORY_WINDOWS: dict[str, int] = {"route": 28, "carrier": 28, "origin": 7}
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


class FeatureSchema(pa.DataFrameModel):
    """Model-ready flight rows. Field checks are per column; ``@dataframe_check`` rules are cross-field, row-wise.

    Nullable columns are the ones the source legitimately lacks: plane attributes (tail number unknown to the
    planes table), destination coordinates (4 airports missing from ``airports``), weather (no observation within
    180 minutes of prediction time), and delay statistics (no earlier flights of that entity in the window).
    Checks on a nullable column pass its nulls.
    """

    flight_id: str = pa.Field(nullable=False, unique=True, str_matches=r"^\d{4}-\d{2}-\d{2}_\w+_[A-Z]{3}$")
    flight_date: pl.Date = pa.Field(nullable=False)
    prediction_ts: pl.Datetime = pa.Field(nullable=False)
    sched_dep_ts: pl.Datetime = pa.Field(nullable=False)
    route: str = pa.Field(nullable=False)
    carrier: str = pa.Field(nullable=False, isin=list(CARRIERS))
    origin: str = pa.Field(nullable=False, isin=list(ORIGINS))
    dest: str = pa.Field(nullable=False, str_matches=r"^[A-Z]{3}$")
    tailnum: str = pa.Field(nullable=True, str_matches=r"^[A-Z0-9]{2,7}$")
    plane_type: str = pa.Field(nullable=True, isin=list(PLANE_TYPES))
    sched_dep_time: pl.Int32 = pa.Field(nullable=False, ge=0, le=2359)
    sched_arr_time: pl.Int32 = pa.Field(nullable=False, ge=0, le=2359)
    sched_dep_hour: pl.Int32 = pa.Field(nullable=False, ge=0, le=23)
    sched_dep_minute_of_day: pl.Int32 = pa.Field(nullable=False, ge=0, lt=1440)
    sched_block_minutes: pl.Int32 = pa.Field(nullable=False)
    month: pl.Int32 = pa.Field(nullable=False, ge=1, le=12)
    day_of_week: pl.Int32 = pa.Field(nullable=False, ge=1, le=7)
    distance: float = pa.Field(nullable=False, gt=0, le=6000)
    plane_year: pl.Int32 = pa.Field(nullable=True, ge=1900, le=2014)
    plane_engines: pl.Int32 = pa.Field(nullable=True, ge=1, le=8)
    plane_seats: pl.Int32 = pa.Field(nullable=True, ge=1, le=1000)
    dest_lat: float = pa.Field(nullable=True, ge=-90, le=90)
    dest_lon: float = pa.Field(nullable=True, ge=-180, le=180)
    dest_alt: pl.Int32 = pa.Field(nullable=True, ge=-1500, le=15000)
    weather_age_minutes: pl.Int32 = pa.Field(nullable=True, ge=0, le=180)
    # Fahrenheit, percent, degrees, mph, inches, millibar, miles: plausible bounds for New York.
    weather_temp: float = pa.Field(nullable=True, ge=-40, le=125)
    weather_dewp: float = pa.Field(nullable=True, ge=-60, le=100)
    weather_humid: float = pa.Field(nullable=True, ge=0, le=100)
    weather_wind_dir: float = pa.Field(nullable=True, ge=0, le=360)
    weather_wind_speed: float = pa.Field(nullable=True, ge=0, le=150)
    weather_wind_gust: float = pa.Field(nullable=True, ge=0, le=200)
    weather_precip: float = pa.Field(nullable=True, ge=0, le=10)
    weather_pressure: float = pa.Field(nullable=True, ge=900, le=1100)
    weather_visib: float = pa.Field(nullable=True, ge=0, le=10)
    route_flights_28d: pl.Int32 = pa.Field(nullable=False, ge=0)
    route_delay_rate_28d: float = pa.Field(nullable=True, ge=0, le=1)
    route_cancel_rate_28d: float = pa.Field(nullable=True, ge=0, le=1)
    route_mean_dep_delay_28d: float = pa.Field(nullable=True, ge=-120, le=1440)
    carrier_flights_28d: pl.Int32 = pa.Field(nullable=False, ge=0)
    carrier_delay_rate_28d: float = pa.Field(nullable=True, ge=0, le=1)
    carrier_cancel_rate_28d: float = pa.Field(nullable=True, ge=0, le=1)
    carrier_mean_dep_delay_28d: float = pa.Field(nullable=True, ge=-120, le=1440)
    origin_flights_7d: pl.Int32 = pa.Field(nullable=False, ge=0)
    origin_delay_rate_7d: float = pa.Field(nullable=True, ge=0, le=1)
    origin_cancel_rate_7d: float = pa.Field(nullable=True, ge=0, le=1)
    origin_mean_dep_delay_7d: float = pa.Field(nullable=True, ge=-120, le=1440)
    is_delayed: pl.Int8 = pa.Field(nullable=False, isin=[0, 1])

    class Config:
        strict = True  # exactly the contract columns: an outcome column here is a contract breach
        ordered = False
        coerce = False

    @pa.check("sched_dep_time", "sched_arr_time", name="valid_hhmm")
    def valid_hhmm(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key) % 100 < 60)

    @pa.dataframe_check(name="sched_arr_after_dep")
    def sched_arr_after_dep(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """Scheduled arrival after departure, crossing midnight allowed: the local block time (arrival minus departure
        modulo 24 h) is a plausible flight length."""
        block = pl.col("sched_block_minutes")
        return data.lazyframe.select(block.is_between(MIN_BLOCK_MINUTES, MAX_BLOCK_MINUTES).fill_null(False))

    @pa.dataframe_check(name="prediction_before_departure")
    def prediction_before_departure(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col(TIMESTAMP_COLUMN) < pl.col("sched_dep_ts")).fill_null(False))

    @pa.dataframe_check(name="departure_on_flight_date")
    def departure_on_flight_date(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("sched_dep_ts").dt.date() == pl.col(PARTITION_COLUMN)).fill_null(False))

    @pa.dataframe_check(name="dep_hour_matches_schedule")
    def dep_hour_matches_schedule(cls, data: pa.PolarsData) -> pl.LazyFrame:
        expected = pl.col("sched_dep_time") // 100
        same = (pl.col("sched_dep_hour") == expected) & (pl.col("sched_dep_ts").dt.hour() == expected)
        return data.lazyframe.select(same.fill_null(False))

    @pa.dataframe_check(name="route_is_origin_dest")
    def route_is_origin_dest(cls, data: pa.PolarsData) -> pl.LazyFrame:
        route = pl.concat_str(pl.col("origin"), pl.lit("-"), pl.col("dest"))
        ok = (pl.col("route") == route) & (pl.col("origin") != pl.col("dest"))
        return data.lazyframe.select(ok.fill_null(False))

    @pa.dataframe_check(name="dewpoint_not_above_temperature")
    def dewpoint_not_above_temperature(cls, data: pa.PolarsData) -> pl.LazyFrame:
        ok = pl.col("weather_dewp") <= pl.col("weather_temp") + 0.5
        return data.lazyframe.select(ok.fill_null(True))


def column_schema() -> list[tuple[str, str, str]]:
    """(name, dtype, description) per contract column, from the pandera model: feeds ``dagster/column_schema``."""
    schema = FeatureSchema.to_schema()
    rows = []
    for name, column in schema.columns.items():
        checks = ", ".join(str(check.name if check.name else check) for check in column.checks)
        role = (
            "key"
            if name == KEY_COLUMN
            else "label"
            if name == LABEL_COLUMN
            else "timestamp"
            if name == TIMESTAMP_COLUMN
            else "feature"
            if name in FEATURE_COLUMNS
            else "context"
        )
        nullable = "nullable" if column.nullable else "not null"
        unique = ", unique" if column.unique else ""
        rows.append((name, str(column.dtype), f"{role}; {nullable}{unique}" + (f"; {checks}" if checks else "")))
    return rows


@dataclass(frozen=True)
class ValidationOutcome:
    """Valid rows, quarantined rows (with ``failed_rules``), and the number of rows that failed each rule."""

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    rule_counts: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return self.valid.height + self.quarantine.height

    @property
    def invalid_fraction(self) -> float:
        return self.quarantine.height / self.total_rows if self.total_rows else 1.0

    def summary(self) -> str:
        if not self.rule_counts:
            return "no rule failed"
        return ", ".join(f"{rule}: {count} row(s)" for rule, count in sorted(self.rule_counts.items()))


def _rule_name(schema_context: str, column: str | None, check: str) -> str:
    """``column:check`` for column rules (a category set is named ``isin``, not its members), the check's name for
    cross-field rules."""
    if schema_context == "DataFrameSchema":
        return check
    return f"{column}:{'isin' if check.startswith('isin(') else check}"


def validate_features(frame: pl.DataFrame) -> ValidationOutcome:
    """Validate prepared rows (see :func:`prepare_model_rows`) and split them into valid and quarantined rows."""
    try:
        FeatureSchema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases: pl.DataFrame = exc.failure_cases
    else:
        empty = frame.clear().with_columns(pl.lit(None, dtype=pl.String).alias("failed_rules"))
        return ValidationOutcome(valid=frame, quarantine=empty, rule_counts={})
    frame_level = cases.filter(pl.col("index").is_null())
    if frame_level.height:
        described = "; ".join(
            f"{row['column']}: {row['check']} ({row['failure_case']})"
            for row in frame_level.head(10).iter_rows(named=True)
        )
        raise FeatureContractError(f"the frame breaks the feature contract: {described}")
    per_row = (
        cases.select(
            pl.col("index").cast(pl.UInt32),
            pl.struct("schema_context", "column", "check")
            .map_elements(lambda s: _rule_name(s["schema_context"], s["column"], s["check"]), return_dtype=pl.String)
            .alias("rule"),
        )
        .unique()
        .group_by("index")
        .agg(pl.col("rule").sort().str.join("; ").alias("failed_rules"))
    )
    counts = Counter(rule for rules in per_row["failed_rules"] for rule in rules.split("; "))
    indexed = frame.with_row_index("__row")
    bad = indexed.join(per_row, left_on="__row", right_on="index", how="inner").sort("__row").drop("__row")
    good = indexed.join(per_row, left_on="__row", right_on="index", how="anti").drop("__row")
    return ValidationOutcome(valid=good, quarantine=bad, rule_counts=dict(counts))


# --- Entity feature tables: what Feast serves online and the point-in-time join uses offline -------------------------


@dataclass(frozen=True)
class FeatureViewSpec:
    """One entity-keyed feature table: shared by the Feast views (serving) and the ASOF join (training)."""

    name: str
    entity: str
    join_key: str
    features: Mapping[str, pl.DataType]
    ttl: timedelta
    description: str
    timestamp_column: str = "event_ts"


def _stats_spec(entity: str) -> FeatureViewSpec:
    days = HISTORY_WINDOWS[entity]
    names = [name for name in HISTORICAL_STAT_COLUMNS if name.startswith(f"{entity}_")]
    return FeatureViewSpec(
        name=f"{entity}_delay_stats",
        entity=entity,
        join_key=entity,
        features={name: CONTRACT_DTYPES[name] for name in names},
        # Statistics are stamped at the start of the day they serve; an entity that stops flying keeps serving its
        # last statistics for a week, then is treated as unknown.
        ttl=timedelta(days=7),
        description=f"{entity} delay statistics of the {days} days strictly before the stamped day",
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
        ttl=timedelta(minutes=180),  # the dbt model's max_weather_age_minutes: older weather counts as missing
        description="hourly weather observed at the origin airport, stamped at observation time",
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
)
FEATURE_VIEWS_BY_NAME: dict[str, FeatureViewSpec] = {spec.name: spec for spec in FEATURE_VIEWS}


def entity_tables(valid: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Derive each view's rows from validated rows: one row per (entity, event timestamp), latest value wins.

    Statistics and plane attributes are stamped at midnight of the flight day (they are known from the start of the
    day). Weather is stamped at its observation time: prediction time minus the weather's age.
    """
    day_start = pl.col(PARTITION_COLUMN).cast(pl.Datetime("us")).alias("event_ts")
    tables: dict[str, pl.DataFrame] = {}
    for spec in FEATURE_VIEWS:
        if spec.name == "origin_weather":
            source = valid.filter(pl.col("weather_age_minutes").is_not_null()).with_columns(
                (pl.col(TIMESTAMP_COLUMN) - pl.duration(minutes=pl.col("weather_age_minutes"))).alias("event_ts")
            )
        else:
            source = valid.filter(pl.col(spec.join_key).is_not_null()).with_columns(day_start)
        if spec.name == "plane_attributes":
            source = source.filter(pl.col("plane_type").is_not_null())
        table = (
            source.select(spec.join_key, "event_ts", *spec.features, pl.col(PARTITION_COLUMN).alias("source_date"))
            .unique(subset=[spec.join_key, "event_ts"], keep="last", maintain_order=True)
            .sort("event_ts", spec.join_key)
        )
        tables[spec.name] = table.with_columns(pl.col(spec.join_key).cast(pl.String))
    return tables


def entity_table_uri(lake_root: str, view: str) -> str:
    """One Parquet file per view: Feast's file source and the point-in-time join both read it whole."""
    return f"{lake_root.rstrip('/')}/features/entity/{view}.parquet"


def partition_uri(lake_root: str, table: str, day: date) -> str:
    """``<lake_root>/features/<table>/date=YYYY-MM-DD/data.parquet`` for ``validated`` and ``quarantine``."""
    return f"{lake_root.rstrip('/')}/features/{table}/date={day.isoformat()}/data.parquet"


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
            [existing.filter(~pl.col("source_date").is_in(days)), fresh.select(existing.columns)],
            how="vertical_relaxed",
        )
    )
    merged = merged.sort("event_ts", "source_date").unique(
        subset=[spec.join_key, "event_ts"], keep="last", maintain_order=True
    )
    if spec.name == "plane_attributes":
        values = [pl.col(name) for name in spec.features]
        changed = (
            pl.any_horizontal(v.ne_missing(v.shift(1).over(spec.join_key)) for v in values)
            | pl.col("event_ts").shift(1).over(spec.join_key).is_null()
        )
        merged = merged.filter(changed)
    return merged.sort("event_ts", spec.join_key)


def latest_per_key(spec: FeatureViewSpec, table: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """What Feast's ``materialize(start, end)`` writes online for one view: each key's latest row stamped in
    [start, end), with the key, the timestamp and the features only (naive timestamps, as the tables hold them)."""
    stamp = pl.col(spec.timestamp_column)
    return (
        table.filter((stamp >= start) & (stamp < end))
        .sort(spec.timestamp_column)
        .unique(subset=[spec.join_key], keep="last", maintain_order=True)
        .select(spec.join_key, spec.timestamp_column, *spec.features)
    )
