"""The serving logic without BentoML, the store or MLflow: request validation, the point-in-time rules applied to
online values, unknown-entity flags, row order and the threshold fallback."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from mlops_assets.lib.training import MODEL_FEATURE_COLUMNS, CategoryVocabulary
from mlops_assets.service.scoring import (
    DEFAULT_THRESHOLD,
    SERVING_VIEWS,
    FlightRequest,
    OnlineValues,
    RouteReference,
    assemble,
    build_inputs,
    entity_rows,
    report_threshold,
    request_frame,
)

REFERENCE = RouteReference(distance={"EWR-IAH": 1400.0}, dest={"IAH": (29.98, -95.34, 97)})
VOCABULARY = CategoryVocabulary(
    {
        "carrier": ("AA", "UA"),
        "origin": ("EWR", "JFK"),
        "dest": ("IAH", "ORD"),
        "plane_type": ("Fixed wing multi engine",),
    }
)


def _request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "carrier": "UA",
        "flight": 1545,
        "tailnum": "N14228",
        "origin": "EWR",
        "dest": "IAH",
        "sched_dep": "2013-02-14T05:15:00",
        "sched_arr": "2013-02-14T08:19:00",
    }
    return body | overrides


def _online(rows: int, stamps: dict[str, list[datetime | None]], values: dict[str, list[Any]]) -> OnlineValues:
    names = [name for spec in SERVING_VIEWS for name in spec.features]
    return OnlineValues(
        values={name: values.get(name, [None] * rows) for name in names},
        event_times={spec.name: stamps.get(spec.name, [None] * rows) for spec in SERVING_VIEWS},
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"carrier": "UNITED"}, "carrier"),
        ({"flight": 0}, "flight"),
        ({"sched_dep": "yesterday"}, "sched_dep"),
        ({"tailnum": None}, "tailnum"),
        ({"sched_arr": "2013-02-14T05:20:00"}, "sched_arr"),  # a 5-minute block time is not a schedule
        ({"sched_dep": "2013-02-14T05:15:00+00:00"}, "sched_dep"),
    ],
)
def test_a_bad_request_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FlightRequest.model_validate(_request(**overrides))
    # The field is in the error's location, which the HTTP answer carries.
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_request_columns_match_the_warehouse_derivation() -> None:
    request = FlightRequest.model_validate(_request(carrier="ua"))
    frame = request_frame([request], REFERENCE, lead_minutes=60)
    row = frame.row(0, named=True)
    assert row["flight_id"] == "2013-02-14_UA1545_EWR"  # stg_flights' key
    assert row["carrier"] == "UA" and row["route"] == "EWR-IAH"
    assert row["sched_dep_minute_of_day"] == 315 and row["sched_block_minutes"] == 184
    assert row["day_of_week"] == 4 and row["month"] == 2 and row["distance"] == 1400.0
    assert row["prediction_ts"] == datetime(2013, 2, 14, 4, 15)
    assert row["tail_day"] == "N14228|2013-02-14" and row["carrier_origin_day"] == "UA|EWR|2013-02-14"
    assert set(entity_rows(frame)[0]) == {spec.join_key for spec in SERVING_VIEWS}


def test_online_values_follow_the_point_in_time_rules_and_unknowns_are_flagged() -> None:
    known = FlightRequest.model_validate(_request())
    new_route = FlightRequest.model_validate(_request(dest="XNA", tailnum="N0NEW", carrier="ZZ"))
    frame = request_frame([known, new_route], REFERENCE, lead_minutes=60)
    at = datetime(2013, 2, 14, 4, 15)
    online = _online(
        2,
        stamps={
            "plane_attributes": [datetime(2013, 2, 14), None],
            # One weather row is from after the prediction time (a replayed past flight), one is older than 3 h.
            "origin_weather": [at + timedelta(minutes=5), at - timedelta(hours=4)],
        },
        values={
            "plane_year": [2004, None],
            "plane_type": ["Fixed wing multi engine", None],
            "weather_temp": [30.0, 31.0],
        },
    )
    inputs = build_inputs(frame, online, VOCABULARY)
    assert inputs.matrix.shape == (2, len(MODEL_FEATURE_COLUMNS))
    temp = MODEL_FEATURE_COLUMNS.index("weather_temp")
    assert np.isnan(inputs.matrix[:, temp]).all()  # neither weather row may be used
    assert inputs.matrix[0, MODEL_FEATURE_COLUMNS.index("plane_year")] == 2004
    assert inputs.matrix[0, MODEL_FEATURE_COLUMNS.index("carrier")] == 1  # "UA" in the sorted vocabulary
    assert np.isnan(inputs.matrix[1, MODEL_FEATURE_COLUMNS.index("carrier")])
    assert inputs.ages[0]["plane_attributes"] == 4.25 * 3600 and inputs.ages[0]["origin_weather"] is None
    assert inputs.unknown == [[], ["tailnum", "route", "dest", "carrier"]]
    assert any("after the prediction time" in note for note in inputs.notes[0])
    assert any("TTL" in note for note in inputs.notes[1])

    answers = assemble(frame, np.array([0.7, 0.2]), inputs, 0.4, "evaluation_report", "flight_delay", "3")
    assert [a.flight_id for a in answers] == ["2013-02-14_UA1545_EWR", "2013-02-14_ZZ1545_EWR"]
    assert [a.delayed for a in answers] == [True, False]
    assert [a.defaulted for a in answers] == [False, True]


def test_an_unavailable_view_degrades_to_missing_values() -> None:
    frame = request_frame([FlightRequest.model_validate(_request())], REFERENCE, lead_minutes=60)
    online = OnlineValues(
        values=_online(1, {}, {}).values,
        event_times=_online(1, {}, {}).event_times,
        unavailable={"tail_today": "feature view 'tail_today' has no online table"},
    )
    inputs = build_inputs(frame, online, VOCABULARY)
    assert inputs.ages[0]["tail_today"] is None
    assert inputs.notes[0] == ["tail_today unavailable: feature view 'tail_today' has no online table"]


def test_rows_keep_the_request_order() -> None:
    # model_data sorts rows; the service must still answer in request order.
    requests = [
        FlightRequest.model_validate(
            _request(flight=n, sched_dep=f"2013-02-14T{h:02d}:00:00", sched_arr=f"2013-02-14T{h + 2:02d}:00:00")
        )
        for n, h in [(9, 20), (1, 6), (5, 12)]
    ]
    frame = request_frame(requests, REFERENCE, lead_minutes=60)
    plane_year = [2010, 1990, 2000]
    online = _online(3, {"plane_attributes": [datetime(2013, 2, 14)] * 3}, {"plane_year": plane_year})
    inputs = build_inputs(frame, online, VOCABULARY)
    assert inputs.matrix[:, MODEL_FEATURE_COLUMNS.index("plane_year")].tolist() == plane_year


def test_threshold_falls_back_to_the_default_without_a_report() -> None:
    assert report_threshold({"operating_point": {"threshold": 0.31}}) == (0.31, "evaluation_report")
    assert report_threshold(None) == (DEFAULT_THRESHOLD, "default")
    assert report_threshold({"operating_point": {}}) == (DEFAULT_THRESHOLD, "default")


def test_route_reference_from_rows() -> None:
    rows = pl.DataFrame(
        {"route": ["EWR-IAH"], "distance": [1400.0], "dest": ["IAH"], "dest_lat": [29.9], "dest_lon": [-95.3],
         "dest_alt": [97]}
    )  # fmt: skip
    reference = RouteReference.from_frame(rows)
    assert reference.distance == {"EWR-IAH": 1400.0} and reference.dest == {"IAH": (29.9, -95.3, 97)}
