"""The serving reader's pure parts without a store: stored values to Python, feature references, bad requests."""

from datetime import UTC, datetime

import pytest
from feast.protos.feast.types.Value_pb2 import DoubleList, Value

from mlops_assets.lib.online import OnlineLookupError, parse_feature_refs, python_value


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, None),
        (Value(), None),
        (Value(null_val=0), None),
        (Value(int64_val=42), 42),
        (Value(double_val=0.25), 0.25),
        (Value(string_val="JFK-LAX"), "JFK-LAX"),
        (Value(bool_val=False), False),
        (Value(double_list_val=DoubleList(val=[1.0, 2.5])), [1.0, 2.5]),
        (Value(unix_timestamp_val=1_357_016_400), datetime(2013, 1, 1, 5, tzinfo=UTC)),
    ],
)
def test_python_value_of_each_stored_kind(stored: Value | None, expected: object) -> None:
    assert python_value(stored) == expected


def test_feature_refs_grouped_by_view_in_request_order() -> None:
    refs = ["route_delay_stats:a", "origin_weather:t", "route_delay_stats:b"]
    assert parse_feature_refs(refs) == {"route_delay_stats": ["a", "b"], "origin_weather": ["t"]}


@pytest.mark.parametrize("ref", ["route_delay_rate_28d", ":route_delay_rate_28d", "route_delay_stats:"])
def test_malformed_feature_ref_names_the_expected_form(ref: str) -> None:
    with pytest.raises(OnlineLookupError, match="must be 'view:feature'"):
        parse_feature_refs([ref])
