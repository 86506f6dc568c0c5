"""A corpus of defective deliveries, each built from a real landed day, through the real raw assets in-process.

The lake starts with three good real days (2013-03-01..03). Each case rewrites one landed file of the middle day
(2013-03-02), re-runs that partition and asserts the outcome (fail / quarantine / accept), what the message names,
and that every other partition of the lake is byte-for-byte unchanged (and the day's own when it fails).
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from mlops_assets.defs.common import LakeResource
from mlops_assets.defs.raw.assets import RawIngestConfig, daily_raw_assets
from mlops_assets.lib.io import sha256_hex
from mlops_assets.lib.landing import land_days
from mlops_assets_tests.helpers import warehouse_config

FIRST, DAY, LAST = date(2013, 3, 1), date(2013, 3, 2), date(2013, 3, 3)
ASSETS = {asset.key.path[-1]: asset for asset in daily_raw_assets}


@dataclass(frozen=True)
class Baseline:
    root: Path
    hashes: dict[str, str]
    rows: dict[str, int]


def _lake(root: Path) -> LakeResource:
    return LakeResource(
        landing_root=str(root / "landing"), lake_root=str(root / "lake"), warehouse=warehouse_config(root / "warehouse")
    )


def _lake_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under the lake (partitions and quarantines), by relative path."""
    lake = root / "lake"
    return {str(path.relative_to(lake)): sha256_hex(path.read_bytes()) for path in sorted(lake.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, instance: dg.DagsterInstance) -> Baseline:
    root = tmp_path_factory.mktemp("baseline")
    land_days(root / "landing", FIRST, LAST)
    for day in (FIRST, DAY, LAST):
        result = dg.materialize(
            daily_raw_assets, partition_key=day.isoformat(), resources={"lake": _lake(root)}, instance=instance
        )
        assert result.success
    rows = {
        table: pl.read_parquet(root / "lake" / "raw" / table / f"date={DAY}" / "data.parquet").height
        for table in ASSETS
    }
    return Baseline(root=root, hashes=_lake_hashes(root), rows=rows)


@pytest.fixture
def copy(baseline: Baseline, tmp_path: Path) -> Path:
    shutil.copytree(baseline.root / "landing", tmp_path / "landing")
    shutil.copytree(baseline.root / "lake", tmp_path / "lake")
    return tmp_path


# ---------------------------------------------------------------------------------------------------------------
# Rewriting a landed CSV


def _records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _write(records: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(records)
    return buffer.getvalue()


def _set(column: str, value: str, rows: tuple[int, ...] = (3,)) -> Callable[[bytes], bytes]:
    """Set ``column`` of the given 1-based data rows to ``value``."""

    def rewrite(content: bytes) -> bytes:
        records = _records(content.decode())
        index = records[0].index(column)
        for row in rows:
            records[row][index] = value
        return _write(records).encode()

    return rewrite


def _append_copy_of(row: int) -> Callable[[bytes], bytes]:
    return lambda content: content + _write([_records(content.decode())[row]]).encode()


def _drop(column: str) -> Callable[[bytes], bytes]:
    def rewrite(content: bytes) -> bytes:
        records = _records(content.decode())
        index = records[0].index(column)
        return _write([record[:index] + record[index + 1 :] for record in records]).encode()

    return rewrite


def _rename(old: str, new: str) -> Callable[[bytes], bytes]:
    def rewrite(content: bytes) -> bytes:
        records = _records(content.decode())
        records[0][records[0].index(old)] = new
        return _write(records).encode()

    return rewrite


def _add_column(content: bytes) -> bytes:
    records = _records(content.decode())
    return _write([[*records[0], "gate"], *[[*record, "B12"] for record in records[1:]]]).encode()


def _short_row(content: bytes) -> bytes:
    records = _records(content.decode())
    records[4] = records[4][:-3]
    return _write(records).encode()


def _another_days_file(content: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        land_days(Path(folder), LAST, LAST)
        return (Path(folder) / "flights" / f"{LAST}.csv").read_bytes()


@dataclass(frozen=True)
class Case:
    id: str
    table: str
    rewrite: Callable[[bytes], bytes]
    outcome: str  # "fail", "quarantine" or "accept"
    rule: str  # the rule (as quarantined, or named in the failure)
    column: str | None = None
    quarantined_rows: tuple[int, ...] = ()  # 1-based data rows expected in the quarantine
    same_bytes: bool = False  # an accepted delivery must publish exactly the baseline partition


CASES = [
    Case("duplicated-flight", "flights", _append_copy_of(5), "quarantine", "duplicate_row", None, (766,), True),
    Case(
        "negative-distance", "flights", _set("distance", "-100"), "quarantine", "distance_range(distance)", None, (3,)
    ),
    Case("sched-dep-2475", "flights", _set("sched_dep_time", "2475"), "quarantine", "hhmm(sched_dep_time)", None, (3,)),
    Case("dep-time-1275", "flights", _set("dep_time", "1275"), "quarantine", "hhmm(dep_time)", None, (3,)),
    Case(
        "15-empty-origins",
        "flights",
        _set("origin", "", tuple(range(10, 25))),
        "fail",
        "required(origin)",
        "origin",
    ),
    Case(
        "5-empty-origins",
        "flights",
        _set("origin", "", tuple(range(10, 15))),
        "quarantine",
        "required(origin)",
        None,
        tuple(range(10, 15)),
    ),
    Case("header-only", "flights", lambda c: c.split(b"\n", 1)[0] + b"\n", "fail", "header_only"),
    Case("empty-file", "flights", lambda c: b"", "fail", "empty_file"),
    Case("truncated", "flights", lambda c: c[: len(c) // 2], "fail", "truncated"),
    Case("extra-column", "flights", _add_column, "accept", "gate", None, (), True),
    Case("missing-column", "flights", _drop("dep_delay"), "fail", "missing_column", "dep_delay"),
    Case("renamed-column", "flights", _rename("dep_delay", "dep_dly"), "fail", "missing_column", "dep_delay"),
    Case("wrong-type", "flights", _set("dep_delay", "two"), "quarantine", "type(dep_delay)", None, (3,)),
    Case(
        "wrong-type-column",
        "flights",
        _set("air_time", "fast", tuple(range(1, 766))),
        "fail",
        "type(air_time)",
        "air_time",
    ),
    Case("bad-timestamp", "flights", _set("time_hour", "March 2"), "quarantine", "type(time_hour)", None, (3,)),
    Case(
        "timestamp-other-zone",
        "flights",
        _set("time_hour", "2013-03-02T06:00:00+05:00"),
        "quarantine",
        "type(time_hour)",
        None,
        (3,),
    ),
    Case(
        "row-of-another-day", "flights", _set("day", "3"), "quarantine", "on_partition_day(year,month,day)", None, (3,)
    ),
    Case(
        "file-of-another-day",
        "flights",
        _another_days_file,
        "fail",
        "on_partition_day(year,month,day)",
        "year,month,day",
    ),
    Case("utf8-bom", "flights", lambda c: b"\xef\xbb\xbf" + c, "accept", "", None, (), True),
    Case("crlf", "flights", lambda c: c.replace(b"\n", b"\r\n"), "accept", "", None, (), True),
    Case("quoted-newline", "flights", _set("tailnum", "N1\n23"), "quarantine", "code(tailnum)", None, (3,)),
    Case("short-row", "flights", _short_row, "quarantine", "field_count", None, (4,)),
    Case("int-overflow", "flights", _set("flight", "99999999999999999999"), "quarantine", "type(flight)", None, (3,)),
    Case("float-overflow", "flights", _set("distance", "1e400"), "quarantine", "type(distance)", None, (3,)),
    Case("non-utf8", "flights", lambda c: c.replace(b",N", b",\xe9N", 1), "fail", "encoding"),
    Case(
        "weather-wind-1048",
        "weather",
        _set("wind_speed", "1048.36"),
        "quarantine",
        "wind_speed_range(wind_speed)",
        None,
        (3,),
    ),
    Case("weather-header-only", "weather", lambda c: c.split(b"\n", 1)[0] + b"\n", "fail", "empty_redelivery"),
    Case(
        "weather-dewp-above-temp",
        "weather",
        _set("dewp", "99"),
        "quarantine",
        "dewpoint_not_above_temp(dewp,temp)",
        None,
        (3,),
    ),
]


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    failure = next(event for event in result.all_events if event.is_step_failure)
    return failure.step_failure_data.user_failure_data.description


def _warnings(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id) if entry.level == 30 and entry.user_message]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_defective_delivery(case: Case, copy: Path, baseline: Baseline, instance: dg.DagsterInstance) -> None:
    landed = copy / "landing" / case.table / f"{DAY}.csv"
    landed.write_bytes(case.rewrite(landed.read_bytes()))
    result = dg.materialize(
        [ASSETS[case.table]],
        partition_key=DAY.isoformat(),
        resources={"lake": _lake(copy)},
        instance=instance,
        raise_on_error=False,
    )
    after = _lake_hashes(copy)
    partition = f"raw/{case.table}/date={DAY}/data.parquet"
    quarantine_file = f"raw_quarantine/{case.table}/date={DAY}/data.parquet"
    others = {path: digest for path, digest in baseline.hashes.items() if path != partition}
    # Every other day (and the other table of this day) is untouched whatever happens to this delivery.
    assert {path: after.get(path) for path in others} == others

    if case.outcome == "fail":
        assert not result.success
        message = _failure_message(result)
        assert f"asset raw/{case.table} partition {DAY}" in message
        assert f"rule {case.rule}" in message
        if case.column:
            assert f"column '{case.column}'" in message
        assert "fix: " in message
        assert str(landed) in message
        assert after[partition] == baseline.hashes[partition]
        assert quarantine_file not in after
        return

    assert result.success, _failure_message(result)
    materialization = result.asset_materializations_for_node(f"raw_{case.table}")[0]
    published = pl.read_parquet(copy / "lake" / partition)
    if case.same_bytes:
        assert after[partition] == baseline.hashes[partition]
    if case.outcome == "accept":
        assert quarantine_file not in after
        assert published.height == baseline.rows[case.table]
        if case.rule:  # an extra column: accepted, with a warning in the run log and in the metadata
            assert materialization.metadata["extra_columns"].value == {DAY.isoformat(): [case.rule]}
            warning = next(w for w in _warnings(instance, result.run_id) if case.rule in w)
            assert f"asset raw/{case.table} partition {DAY}" in warning
        return

    quarantined = pl.read_parquet(copy / "lake" / quarantine_file)
    assert quarantined["file"].to_list() == [f"{case.table}/{DAY}.csv"] * len(case.quarantined_rows)
    assert tuple(quarantined["row"].to_list()) == case.quarantined_rows
    assert all(case.rule in rules for rules in quarantined["rules"].to_list())
    assert materialization.metadata["quarantined_rows"].value == len(case.quarantined_rows)
    expected_rows = baseline.rows[case.table] - len(case.quarantined_rows) + (case.id == "duplicated-flight")
    assert published.height == expected_rows
    warning = next(w for w in _warnings(instance, result.run_id) if "quarantined" in w)
    assert f"asset raw/{case.table} partition {DAY}" in warning
    assert case.rule in warning and "fix: " in warning


def test_share_setting_lets_a_worse_day_through(copy: Path, instance: dg.DagsterInstance) -> None:
    landed = copy / "landing" / "flights" / f"{DAY}.csv"
    landed.write_bytes(_set("origin", "", tuple(range(10, 25)))(landed.read_bytes()))
    result = dg.materialize(
        [ASSETS["flights"]],
        partition_key=DAY.isoformat(),
        resources={"lake": _lake(copy)},
        instance=instance,
        run_config=dg.RunConfig(ops={"raw_flights": RawIngestConfig(max_bad_share=0.05)}),
    )
    assert result.success
    quarantined = pl.read_parquet(copy / "lake" / "raw_quarantine" / "flights" / f"date={DAY}" / "data.parquet")
    assert quarantined.height == 15


def test_clean_redelivery_removes_the_stale_quarantine(copy: Path, instance: dg.DagsterInstance) -> None:
    landed = copy / "landing" / "flights" / f"{DAY}.csv"
    good = landed.read_bytes()
    landed.write_bytes(_set("distance", "-1")(good))
    lake = _lake(copy)
    assert dg.materialize([ASSETS["flights"]], partition_key=str(DAY), resources={"lake": lake}, instance=instance)
    stale = copy / "lake" / "raw_quarantine" / "flights" / f"date={DAY}" / "data.parquet"
    assert stale.exists()
    landed.write_bytes(good)
    assert dg.materialize([ASSETS["flights"]], partition_key=str(DAY), resources={"lake": lake}, instance=instance)
    assert not stale.exists()


def test_a_bad_day_in_a_range_publishes_nothing_of_the_range(
    copy: Path, baseline: Baseline, instance: dg.DagsterInstance
) -> None:
    """All days of a range pass the gate before any is published, so the good days of a failed range stay as they were.

    A re-published good day would have the same bytes, so the check is on the lake files' modification times.
    """
    (copy / "landing" / "flights" / f"{DAY}.csv").write_bytes(b"")
    lake_files = sorted((copy / "lake" / "raw" / "flights").rglob("*.parquet"))
    mtimes = {path: path.stat().st_mtime_ns for path in lake_files}
    result = dg.materialize(
        [ASSETS["flights"]],
        resources={"lake": _lake(copy)},
        instance=instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": FIRST.isoformat(),
            "dagster/asset_partition_range_end": LAST.isoformat(),
        },
    )
    assert not result.success
    message = _failure_message(result)
    assert f"asset raw/flights partition {DAY}" in message and "rule empty_file" in message
    assert "1 of 3 partition(s) failed the quality gate; nothing was published" in message
    assert {path: path.stat().st_mtime_ns for path in lake_files} == mtimes
