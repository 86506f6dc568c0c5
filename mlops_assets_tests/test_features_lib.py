"""Feature contract without Dagster: each bad-row kind is quarantined with its rule, no leakage, point-in-time joins."""

from datetime import date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_assets.lib.feature_contract import (
    CONTRACT_DTYPES,
    FEATURE_COLUMNS,
    HISTORICAL_STAT_COLUMNS,
    LABEL_COLUMN,
    OUTCOME_COLUMNS,
    OUTCOME_NAME_FRAGMENTS,
    FeatureContractError,
    prepare_model_rows,
    split_scope,
)
from mlops_assets.lib.feature_validation import validate_features
from mlops_assets.lib.feature_views import (
    FEATURE_VIEWS,
    FEATURE_VIEWS_BY_NAME,
    FeatureViewSpec,
    entity_tables,
    merge_entity_table,
)
from mlops_assets.lib.point_in_time import point_in_time_join


def _enriched(n: int = 5) -> pl.DataFrame:
    """Hand-made ``flights_enriched`` rows that pass every rule, with the outcome columns the dbt model carries."""
    day = date(2013, 3, 4)
    rows = []
    for i in range(n):
        dep = 600 + 100 * i
        rows.append(
            {
                "flight_id": f"{day}_UA{100 + i}_EWR", "flight_date": day,
                "prediction_ts": datetime(2013, 3, 4, 5 + i, 0), "sched_dep_ts": datetime(2013, 3, 4, 6 + i, 0),
                "carrier": "UA", "carrier_name": "United", "flight": 100 + i, "tailnum": "N14543",
                "origin": "EWR", "dest": "ORD", "route": "EWR-ORD", "sched_dep_time": dep, "sched_arr_time": dep + 130,
                "sched_dep_hour": dep // 100, "month": 3, "day_of_week": 1, "distance": 719.0,
                "plane_year": 2004, "plane_type": "Fixed wing multi engine", "plane_engines": 2, "plane_seats": 55,
                "dest_lat": 41.97, "dest_lon": -87.9, "dest_alt": 668, "weather_age_minutes": 10,
                "weather_temp": 35.0, "weather_dewp": 20.0, "weather_humid": 55.0, "weather_wind_dir": 270.0,
                "weather_wind_speed": 10.0, "weather_wind_gust": None, "weather_precip": 0.0,
                "weather_pressure": 1015.0, "weather_visib": 10.0,
                **{name: (30 if "_flights_" in name else 0.2) for name in HISTORICAL_STAT_COLUMNS},
                "dep_time": dep + 5, "dep_delay": 5.0, "arr_time": dep + 140, "arr_delay": 10.0, "air_time": 120.0,
                "is_cancelled": False, "is_delayed": i % 2,
            }
        )  # fmt: skip
    return pl.DataFrame(rows).with_columns(
        pl.col(c).cast(pl.Int32)
        for c in ("flight", "sched_dep_time", "sched_arr_time", "sched_dep_hour", "month", "day_of_week")
    )


def _validate(frame: pl.DataFrame):
    return validate_features(prepare_model_rows(frame))


def test_good_rows_pass_and_outcomes_are_dropped() -> None:
    outcome = _validate(_enriched())
    assert outcome.valid.height == 5 and outcome.quarantine.height == 0 and outcome.rule_counts == {}
    assert not set(outcome.valid.columns) & set(OUTCOME_COLUMNS)


# Each bad-row kind: (column, bad value, the rule the quarantine must name).
BAD_ROWS = [
    ("distance", -5.0, "distance:greater_than(0)"),
    ("sched_dep_hour", 24, "sched_dep_hour:less_than_or_equal_to(23)"),
    ("weather_temp", 180.0, "weather_temp:less_than_or_equal_to(125)"),
    ("weather_humid", -1.0, "weather_humid:greater_than_or_equal_to(0)"),
    ("route_delay_rate_28d", 1.5, "route_delay_rate_28d:less_than_or_equal_to(1)"),
    ("origin", "BOS", "origin:isin"),
    ("carrier", "ZZ", "carrier:isin"),
    ("plane_type", "Zeppelin", "plane_type:isin"),
    ("carrier", None, "carrier:not_nullable"),
    ("tailnum", None, "tailnum:not_nullable"),  # split_scope sets these apart first; validation still refuses one
    ("is_delayed", 2, "is_delayed:isin"),
    ("sched_dep_time", 675, "sched_dep_time:valid_hhmm"),
    ("sched_arr_time", 600, "sched_arr_after_dep"),  # departs 06:00, "arrives" 06:00
    ("prediction_ts", datetime(2013, 3, 4, 7, 0), "prediction_before_departure"),
    ("route", "EWR-LAX", "route_is_origin_dest"),
    ("weather_dewp", 60.0, "dewpoint_not_above_temperature"),
]


@pytest.mark.parametrize(("column", "value", "rule"), BAD_ROWS, ids=[rule for _, _, rule in BAD_ROWS])
def test_each_bad_row_kind_is_quarantined_with_its_rule(column: str, value: object, rule: str) -> None:
    frame = _enriched()
    dtype = frame.schema[column]
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(column)).alias(column)
    )
    outcome = _validate(frame)
    assert outcome.valid.height == 4
    assert outcome.quarantine.height == 1
    assert outcome.quarantine["flight_id"][0] == frame["flight_id"][0]
    assert rule in outcome.quarantine["failed_rules"][0].split("; ")
    assert outcome.rule_counts.get(rule) == 1


def test_midnight_crossing_is_valid() -> None:
    frame = _enriched(1).with_columns(
        pl.lit(2330, dtype=pl.Int32).alias("sched_dep_time"),
        pl.lit(45, dtype=pl.Int32).alias("sched_arr_time"),
        pl.lit(23, dtype=pl.Int32).alias("sched_dep_hour"),
        pl.lit(datetime(2013, 3, 4, 22, 30)).alias("prediction_ts"),
        pl.lit(datetime(2013, 3, 4, 23, 30)).alias("sched_dep_ts"),
    )
    outcome = _validate(frame)
    assert outcome.quarantine.height == 0, outcome.quarantine["failed_rules"].to_list()
    assert outcome.valid["sched_block_minutes"][0] == 75


def test_duplicated_keys_quarantine_every_copy() -> None:
    frame = _enriched(3)
    outcome = _validate(pl.concat([frame, frame.head(1)]))
    assert outcome.valid.height == 2
    assert outcome.quarantine["failed_rules"].to_list() == ["flight_id:field_uniqueness"] * 2


def test_several_rules_on_one_row_are_all_named() -> None:
    frame = _enriched(2).with_columns(pl.lit(-1.0).alias("distance"), pl.lit("ZZ").alias("carrier"))
    reasons = _validate(frame).quarantine["failed_rules"].to_list()
    assert reasons == ["carrier:isin; distance:greater_than(0)"] * 2


def test_missing_or_mistyped_column_fails_the_whole_frame() -> None:
    with pytest.raises(FeatureContractError, match="distance"):
        prepare_model_rows(_enriched().drop("distance"))
    with pytest.raises(FeatureContractError, match="wrong type"):
        prepare_model_rows(_enriched().with_columns(pl.lit("far").alias("distance")))


@settings(max_examples=40, deadline=None)
@given(distance=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_distance_rule_matches_its_range(distance: float) -> None:
    outcome = _validate(_enriched(1).with_columns(pl.lit(distance).alias("distance")))
    assert (outcome.valid.height == 1) == (0 < distance <= 6000)


@settings(max_examples=40, deadline=None)
@given(temp=st.floats(allow_nan=False, allow_infinity=False, min_value=-500, max_value=500))
def test_temperature_rule_matches_its_range(temp: float) -> None:
    frame = _enriched(1).with_columns(
        pl.lit(temp).alias("weather_temp"), pl.lit(None, pl.Float64).alias("weather_dewp")
    )
    outcome = _validate(frame)
    assert (outcome.valid.height == 1) == (-40 <= temp <= 125)


# --- leakage ----------------------------------------------------------------------------------------------------------


def test_no_outcome_derived_column_is_a_feature() -> None:
    assert LABEL_COLUMN not in FEATURE_COLUMNS
    assert not set(FEATURE_COLUMNS) & set(OUTCOME_COLUMNS)
    # Any feature named after an actual departure/arrival/cancellation must be a declared point-in-time history
    # statistic (earlier days only, tested against the warehouse in test_transform).
    outcome_named = {name for name in FEATURE_COLUMNS if any(part in name for part in OUTCOME_NAME_FRAGMENTS)}
    assert outcome_named <= set(HISTORICAL_STAT_COLUMNS)
    for spec in FEATURE_VIEWS:  # what Feast serves
        assert not set(spec.features) & {*OUTCOME_COLUMNS, LABEL_COLUMN}
    assert set(FEATURE_COLUMNS) <= set(CONTRACT_DTYPES)


def test_features_do_not_depend_on_outcome_values() -> None:
    frame = _enriched()
    scrambled = frame.with_columns(
        pl.lit(999.0).alias("dep_delay"),
        pl.lit(999.0).alias("arr_delay"),
        pl.lit(1, dtype=pl.Int32).alias("dep_time"),
        pl.lit(2359, dtype=pl.Int32).alias("arr_time"),
        pl.lit(1.0).alias("air_time"),
        pl.lit(True).alias("is_cancelled"),
    )
    a = prepare_model_rows(frame).select(FEATURE_COLUMNS)
    b = prepare_model_rows(scrambled).select(FEATURE_COLUMNS)
    assert a.equals(b)


# --- point in time ----------------------------------------------------------------------------------------------------

SPEC = FeatureViewSpec(
    name="route_stats", entity="route", join_key="route", features={"rate": pl.Float64()}, ttl=timedelta(days=2),
    description="test",
)  # fmt: skip


def test_point_in_time_join_never_looks_ahead() -> None:
    t = datetime(2013, 5, 1, 12, 0)
    table = pl.DataFrame(
        {
            "route": ["A", "A", "A", "B", "C"],
            "event_ts": [
                t - timedelta(hours=5),
                t,
                t + timedelta(seconds=1),
                t + timedelta(hours=1),
                t - timedelta(days=3),
            ],
            "rate": [0.1, 0.2, 99.0, 98.0, 0.5],
        }
    )
    spine = pl.DataFrame(
        {
            "flight_id": ["a_before", "a_at", "a_later", "b", "c_stale", "a_first"],
            "prediction_ts": [t - timedelta(hours=1), t, t + timedelta(hours=3), t, t, t - timedelta(hours=6)],
            "route": ["A", "A", "A", "B", "C", "A"],
        }
    )
    out = point_in_time_join(spine, {"route_stats": table}, specs=[SPEC])
    assert out["flight_id"].to_list() == spine["flight_id"].to_list()
    got = dict(zip(out["flight_id"], out["rate"], strict=True))
    assert got == {"a_before": 0.1, "a_at": 0.2, "a_later": 99.0, "b": None, "c_stale": None, "a_first": None}
    # No row ever sees a value stamped after its own timestamp.
    joined = out.join(table.rename({"event_ts": "stamped"}), on=["route", "rate"], how="inner")
    assert (joined["stamped"] <= joined["prediction_ts"]).all()


def test_entity_tables_round_trip_through_the_join() -> None:
    valid = _validate(_enriched()).valid
    fresh = entity_tables(valid)
    tables = {name: merge_entity_table(FEATURE_VIEWS_BY_NAME[name], None, t, []) for name, t in fresh.items()}
    specs = [FEATURE_VIEWS_BY_NAME[name] for name in fresh]
    out = point_in_time_join(
        valid.select("flight_id", "prediction_ts", "route", "carrier", "origin", "tailnum"), tables, specs=specs
    )
    for name in ("weather_temp", "plane_year"):
        assert out[name].to_list() == valid[name].to_list()
    # Re-merging the same day replaces its rows instead of duplicating them.
    spec = FEATURE_VIEWS_BY_NAME["origin_weather"]
    again = merge_entity_table(spec, tables[spec.name], fresh[spec.name], [date(2013, 3, 4)])
    assert again.equals(tables[spec.name])


def test_flights_without_a_tail_number_are_out_of_scope() -> None:
    frame = _enriched(4).with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise(pl.col("tailnum")).alias("tailnum")
    )
    in_scope, out_of_scope = split_scope(frame)
    assert in_scope.height == 3 and out_of_scope["flight_id"].to_list() == [frame["flight_id"][1]]
