"""Row validation of the feature contract: a pandera ``DataFrameModel`` on polars, run lazily.

Every failed rule of every row is collected. Row-level failures (pandera reports a row index) quarantine the row with
the names of its failed rules; schema-level failures (a missing column, a wrong dtype) have no row and fail the whole
frame with :class:`~mlops_assets.lib.feature_contract.FeatureContractError`. Every row that shares a ``flight_id`` is
quarantined (pandera reports all occurrences): we cannot tell which copy is right.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl

from mlops_assets.lib.feature_contract import (
    CARRIERS,
    FEATURE_COLUMNS,
    KEY_COLUMN,
    LABEL_COLUMN,
    MAX_BLOCK_MINUTES,
    MIN_BLOCK_MINUTES,
    ORIGINS,
    PARTITION_COLUMN,
    PLANE_TYPES,
    TIMESTAMP_COLUMN,
    FeatureContractError,
)


class FeatureSchema(pa.DataFrameModel):
    """Model-ready flight rows. Field checks are per column; ``@dataframe_check`` rules are cross-field, row-wise.

    Nullable columns are the ones the source legitimately lacks: plane attributes (a tail number unknown to the
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
    tailnum: str = pa.Field(nullable=False, str_matches=r"^[A-Z0-9]{2,7}$")  # out-of-scope rows are split off first
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
