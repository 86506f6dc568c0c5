"""The landed-file contract, without Dagster."""

from datetime import date

import polars as pl
import pytest

from mlops_assets.lib.landing import contiguous_ranges, land_days
from mlops_assets.lib.raw_tables import LandedFileError, check_partition_date, parse_landed_csv
from mlops_assets.lib.source import read_source_table

HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,flight,tailnum,"
    "origin,dest,air_time,distance,hour,minute,time_hour\n"
)
GOOD_ROW = "2013,3,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-03-01T10:00:00Z\n"


def _without_column(name: str) -> str:
    header = HEADER.strip().split(",")
    row = GOOD_ROW.strip().split(",")
    index = header.index(name)
    return ",".join(header[:index] + header[index + 1 :]) + "\n" + ",".join(row[:index] + row[index + 1 :]) + "\n"


def test_source_tables_hold_the_published_row_counts() -> None:
    counts = {table: read_source_table(table).height for table in ("flights", "weather", "planes", "airlines")}
    assert counts == {"flights": 336_776, "weather": 26_115, "planes": 3_322, "airlines": 16}


def test_good_file_is_typed() -> None:
    parsed = parse_landed_csv((HEADER + GOOD_ROW).encode(), "flights", "f.csv")
    assert parsed.frame.schema["time_hour"] == pl.Datetime("us", "UTC")
    assert parsed.frame["dep_delay"].to_list() == [2.0]
    assert parsed.frame["time_hour"][0].hour == 10


def test_na_values_become_nulls_for_cancelled_flights() -> None:
    cancelled = "2013,3,1,NA,515,NA,NA,819,NA,UA,1545,N14228,EWR,IAH,NA,1400,5,15,2013-03-01T10:00:00Z\n"
    frame = parse_landed_csv((HEADER + cancelled).encode(), "flights", "f.csv").frame
    assert frame["arr_delay"].null_count() == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_without_column("dep_delay"), "missing column(s) dep_delay"),
        (
            HEADER + GOOD_ROW.replace(",2,830", ",two,830"),
            "column 'dep_delay' expects a number, but row 2 holds 'two'",
        ),
        (HEADER + GOOD_ROW.replace("2013-03-01T10:00:00Z", "yesterday"), "column 'time_hour' expects a UTC"),
        (HEADER + GOOD_ROW.replace(",1545,", ",15.5,"), "column 'flight' expects a whole number"),
        (b"", "the file is empty"),
        (HEADER, "header but no rows"),
        (HEADER + GOOD_ROW.replace(",UA,", ",,"), "column 'carrier' must not be empty"),
    ],
)
def test_malformed_files_are_rejected_with_file_and_column(content: str | bytes, expected: str) -> None:
    payload = content if isinstance(content, bytes) else content.encode()
    with pytest.raises(LandedFileError) as error:
        parse_landed_csv(payload, "flights", "landing/flights/2013-03-01.csv")
    assert "landing/flights/2013-03-01.csv" in str(error.value)
    assert expected in str(error.value)


def test_header_only_weather_file_is_a_quiet_day() -> None:
    header = (
        "origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour\n"
    )
    assert parse_landed_csv(header.encode(), "weather", "w.csv").frame.height == 0


def test_rows_of_another_day_are_rejected() -> None:
    frame = parse_landed_csv((HEADER + GOOD_ROW).encode(), "flights", "f.csv").frame
    with pytest.raises(LandedFileError, match="not dated 2013-03-02"):
        check_partition_date(frame, date(2013, 3, 2), "f.csv")


def test_landing_writes_one_file_per_table_per_day(tmp_path) -> None:
    landed = land_days(tmp_path, date(2013, 12, 30), date(2013, 12, 31))
    daily = sorted((item.table, item.day.isoformat(), item.rows) for item in landed if item.day)
    assert [row[:2] for row in daily] == [
        ("flights", "2013-12-30"),
        ("flights", "2013-12-31"),
        ("weather", "2013-12-30"),
        ("weather", "2013-12-31"),
    ]
    # The source has no weather on 31 December: the day is landed as a header-only file.
    assert dict(((t, d), r) for t, d, r in daily)[("weather", "2013-12-31")] == 0
    assert (tmp_path / "planes" / "planes.csv").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_landing_rejects_a_reversed_range(tmp_path) -> None:
    with pytest.raises(ValueError, match="swap the two dates"):
        land_days(tmp_path, date(2013, 3, 2), date(2013, 3, 1))


def test_contiguous_ranges_group_consecutive_days() -> None:
    days = [date(2013, 1, d) for d in (1, 2, 3, 5, 7, 8)]
    assert contiguous_ranges(days) == [
        (date(2013, 1, 1), date(2013, 1, 3)),
        (date(2013, 1, 5), date(2013, 1, 5)),
        (date(2013, 1, 7), date(2013, 1, 8)),
    ]
