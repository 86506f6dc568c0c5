"""The quality gate's rules on the whole real 2013 year, without Dagster."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from mlops_assets.lib.landing import days_between, land_days
from mlops_assets.lib.raw_quality import DeliveryError, check_redelivery, enforce_bad_share, inspect_delivery
from mlops_assets.lib.raw_tables import landed_file_path
from mlops_assets.lib.source import DAILY_TABLES

YEAR_START, YEAR_END = date(2013, 1, 1), date(2013, 12, 31)


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    landing = tmp_path_factory.mktemp("year")
    land_days(landing, YEAR_START, YEAR_END)
    return landing


def test_the_real_year_passes_with_only_the_genuinely_bad_row_quarantined(year: Path) -> None:
    """Every real day passes the gate at the default share; the one quarantined row is a 1048 mph wind reading."""
    total = 0
    midnight = {"dep_time": 0, "arr_time": 0}
    quarantined: list[dict[str, object]] = []
    for table in DAILY_TABLES:
        for day in days_between(YEAR_START, YEAR_END):
            path = Path(landed_file_path(year, table, day))
            delivery = inspect_delivery(path.read_bytes(), table, day, str(path), f"{table}/{path.name}")
            enforce_bad_share(delivery, max_bad_share=0.01, min_tolerated_bad_rows=1)
            assert not delivery.extra_columns
            total += delivery.total_rows
            if table == "flights":  # 2400: a departure or arrival at the midnight that ends the day, accepted
                for column in midnight:
                    midnight[column] += int((delivery.good[column] == 2400).sum())
            quarantined += delivery.quarantine.to_dicts()
    assert total == 336_776 + 26_115
    assert [(row["file"], row["row"], row["rules"]) for row in quarantined] == [
        ("weather/2013-02-12.csv", 4, ["wind_speed_range(wind_speed)"])
    ]
    assert "wind_speed=1048.36058" in str(quarantined[0]["detail"])
    assert midnight == {"dep_time": 29, "arr_time": 150}


def test_real_details_the_rules_accept(year: Path) -> None:
    """The repeated local hour at the autumn DST change, a quiet (header-only) weather day."""
    dst = Path(landed_file_path(year, "weather", date(2013, 11, 3)))
    weather = inspect_delivery(dst.read_bytes(), "weather", date(2013, 11, 3), str(dst), dst.name)
    repeated = weather.good.group_by("origin", "hour").len().filter(pl.col("len") > 1)
    assert repeated.height > 0 and weather.bad_rows == 0
    quiet = Path(landed_file_path(year, "weather", YEAR_END))
    assert inspect_delivery(quiet.read_bytes(), "weather", YEAR_END, str(quiet), quiet.name).total_rows == 0


def test_an_empty_redelivery_never_replaces_rows(year: Path) -> None:
    quiet = Path(landed_file_path(year, "weather", YEAR_END))
    delivery = inspect_delivery(quiet.read_bytes(), "weather", YEAR_END, str(quiet), quiet.name)
    check_redelivery(delivery, published_rows=None)
    check_redelivery(delivery, published_rows=0)
    with pytest.raises(DeliveryError, match="rule empty_redelivery: the delivery has no rows but the published"):
        check_redelivery(delivery, published_rows=72)


def test_keys_shared_by_different_rows_quarantine_every_copy(year: Path) -> None:
    path = Path(landed_file_path(year, "flights", date(2013, 3, 2)))
    lines = path.read_bytes().split(b"\n")
    # The same flight key with another scheduled arrival: two versions of one flight, neither can be trusted.
    twin = lines[5].split(b",")
    twin[8] = b"NA"  # arr_delay
    twin[14] = b"NA"  # air_time, so the row stays internally consistent
    content = b"\n".join([*lines[:-1], b",".join(twin), b""])
    delivery = inspect_delivery(content, "flights", date(2013, 3, 2), str(path), path.name)
    assert delivery.quarantine["row"].to_list() == [5, len(lines) - 1]
    assert all(
        rules == ["unique_key(year,month,day,carrier,flight,origin)"]
        for rules in delivery.quarantine["rules"].to_list()
    )
