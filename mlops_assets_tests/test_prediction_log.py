"""The prediction log writer on real files: batches by size and by time, one file per (batch, day) in the day's
partition, atomic writes, drops instead of waiting, and the reader's round trip. No BentoML, no Dagster."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
import pytest

import mlops_assets.lib.io as lake_io
from mlops_assets.lib import prediction_log
from mlops_assets.lib.feature_contract import KEY_COLUMN
from mlops_assets.lib.prediction_log import (
    FIXED_COLUMNS,
    FIXED_SCHEMA,
    PredictionLogWriter,
    log_root,
    read_prediction_log,
)

DAY = date(2013, 1, 31)
NEXT_DAY = date(2013, 2, 1)


def record(index: int, day: date = DAY, **overrides: Any) -> dict[str, Any]:
    """One predicted flight as the service would log it: fixed columns plus a few model inputs."""
    values: dict[str, Any] = {
        "request_id": f"req-{index}",
        "flight_id": f"{day.isoformat()}_UA{index}_EWR",
        "flight_date": day,
        "model_name": "flight_delay",
        "champion_version": "7",
        "champion_score": index / 1000,
        "decision": index % 2 == 0,
        "shadow_version": "8",
        "shadow_score": index / 2000,
        "carrier": "UA",
        "origin": "EWR",
        "sched_dep_hour": index % 24,
        "distance": 1400.0,
        "weather_wind_gust": None if index % 3 else 21.5,
    }
    return values | overrides


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def part_files(root: Path) -> list[Path]:
    return sorted(Path(log_root(str(root))).rglob("*"))


def rows_per_file(root: Path) -> list[int]:
    return sorted(pl.read_parquet(path).height for path in Path(log_root(str(root))).rglob("*.parquet"))


def test_fixed_columns_are_the_contract() -> None:
    assert FIXED_COLUMNS[:3] == ("logged_at", "request_id", KEY_COLUMN)
    assert {"champion_version", "champion_score", "decision", "shadow_version", "shadow_score"} <= set(FIXED_COLUMNS)


def test_nothing_starts_at_construction(tmp_path: Path) -> None:
    threads = threading.active_count()
    writer = PredictionLogWriter(str(tmp_path))
    assert threading.active_count() == threads and not writer.running
    assert not any(tmp_path.iterdir())
    writer.close()


def test_batches_by_size(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path), batch_rows=10, flush_seconds=60)
    for index in range(25):
        writer.append(record(index))
    writer.start()
    wait_until(lambda: writer.batches >= 2)
    # Two full batches; the last 5 rows wait for the (60 s) timer or close().
    assert writer.batches == 2 and rows_per_file(tmp_path) == [10, 10]
    assert writer.queued_rows == 5
    writer.close()
    assert writer.batches == 3 and writer.written_rows == 25 and rows_per_file(tmp_path) == [5, 10, 10]


def test_large_request_is_split_into_batches(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path), batch_rows=10, flush_seconds=60)
    writer.append([record(index) for index in range(23)])
    writer.close()
    assert rows_per_file(tmp_path) == [3, 10, 10] and writer.batches == 3


def test_batches_by_time(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path), batch_rows=1000, flush_seconds=0.2).start()
    started = time.monotonic()
    writer.append([record(0), record(1), record(2)])
    wait_until(lambda: writer.batches == 1)
    assert time.monotonic() - started < 3
    assert writer.written_rows == 3 and writer.running
    writer.close()
    assert writer.batches == 1 and not writer.running


def test_batch_spanning_two_days_writes_one_file_per_day(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path))
    # The day comes from the record (data time), in any of the forms a caller may have at hand.
    writer.append(
        [
            record(0, DAY),
            record(1, NEXT_DAY, flight_date=datetime(2013, 2, 1, 6, 0)),
            record(2, DAY, flight_date="2013-01-31"),
            record(3, NEXT_DAY),
        ]
    )
    writer.close()
    assert writer.batches == 1 and writer.files_written == 2
    for day, ids in ((DAY, ["req-0", "req-2"]), (NEXT_DAY, ["req-1", "req-3"])):
        files = list((Path(log_root(str(tmp_path))) / f"date={day.isoformat()}").iterdir())
        assert len(files) == 1 and files[0].name.startswith("part-") and files[0].suffix == ".parquet"
        frame = pl.read_parquet(files[0])
        assert frame["request_id"].to_list() == ids and frame["flight_date"].unique().to_list() == [day]


def test_features_with_missing_values(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path))
    writer.append(
        [
            record(0, plane_year=None, dest_alt=None, shadow_version=None, shadow_score=None),
            record(1, plane_year=2004, dest_alt=None, sched_dep_hour=None, tailnum="N14228"),
            record(2, plane_year=1999.5, dest_alt=None, shadow_version=None, shadow_score=None),
        ]
    )
    writer.close()
    assert writer.last_error is None and writer.written_rows == 3
    frame = read_prediction_log(str(tmp_path), DAY, DAY)
    assert frame["plane_year"].to_list() == [None, 2004.0, 1999.5]  # ints and floats together: floats
    assert frame["dest_alt"].null_count() == 3  # sent but never known: kept as an all-null column
    assert frame["tailnum"].to_list() == [None, "N14228", None]
    assert frame["shadow_version"].to_list() == [None, "8", None]
    assert frame["shadow_score"].to_list() == [None, 0.0005, None]


def test_record_without_a_day_is_dropped_not_fatal(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path))
    writer.append([record(0), record(1, flight_date=None)])
    writer.close()
    assert writer.written_rows == 1 and writer.dropped_rows == 1 and "flight_date" in (writer.last_error or "")


class _FailingReplace:
    """``os`` for mlops_assets.lib.io only, whose rename fails as a full or broken disk would make it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def replace(self, src: str, dst: str) -> None:
        raise OSError("simulated: no space left on device")


def test_writes_are_atomic_and_a_failed_write_keeps_the_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = PredictionLogWriter(str(tmp_path), batch_rows=2, flush_seconds=60).start()
    monkeypatch.setattr(lake_io, "os", _FailingReplace())
    writer.append([record(0), record(1)])
    wait_until(lambda: writer.dropped_rows == 2)
    # The temporary sibling was removed and nothing was renamed into place: no reader can see half a batch.
    assert [path for path in part_files(tmp_path) if path.is_file()] == []
    assert "no space left" in (writer.last_error or "") and writer.running and writer.written_rows == 0

    monkeypatch.undo()
    for index in range(2, 8):
        writer.append(record(index, NEXT_DAY if index % 2 else DAY))
    writer.close()
    assert writer.written_rows == 6 and writer.dropped_rows == 2
    files = [path for path in part_files(tmp_path) if path.is_file()]
    # Only finished part files, no .tmp leftovers, and each one readable whole.
    assert files and all(path.name.startswith("part-") and path.suffix == ".parquet" for path in files)
    assert sum(pl.read_parquet(path).height for path in files) == 6


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    # Never started: nothing drains the queue, so it fills.
    writer = PredictionLogWriter(str(tmp_path), max_queue_rows=5)
    assert writer.append([record(0), record(1), record(2)])
    assert not writer.append([record(3), record(4), record(5)])  # would exceed 5: dropped whole
    assert writer.append([record(6), record(7)])
    assert not writer.append(record(8))
    assert writer.dropped_rows == 4 and writer.queued_rows == 5
    writer.close()
    assert writer.written_rows == 5


def test_append_does_not_wait_for_a_slow_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    entered = threading.Event()
    real_write = prediction_log.write_bytes_atomic

    def slow_write(uri: str, payload: bytes) -> None:
        entered.set()
        release.wait(10)  # the lake hangs until the test lets it go
        real_write(uri, payload)

    monkeypatch.setattr(prediction_log, "write_bytes_atomic", slow_write)
    writer = PredictionLogWriter(str(tmp_path), batch_rows=1, flush_seconds=60, max_queue_rows=5).start()
    writer.append(record(0))
    assert entered.wait(5)  # the writer thread is now stuck in I/O

    costs = []
    for index in range(1, 21):
        started = time.perf_counter()
        writer.append(record(index))
        costs.append(time.perf_counter() - started)
    # The write is blocked for up to 10 s; an append that waited for it would take that long. The bound is loose
    # so a busy CI machine cannot make it flaky (the benchmark measures the real cost: microseconds).
    assert max(costs) < 1.0
    assert writer.queued_rows == 5 and writer.dropped_rows == 15

    release.set()
    writer.close()
    assert writer.written_rows == 6 and writer.dropped_rows == 15 and writer.batches == 6


def test_close_flushes_the_remainder_and_is_idempotent(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path), batch_rows=1000, flush_seconds=60).start()
    writer.append([record(index) for index in range(7)])
    writer.close()
    assert writer.written_rows == 7 and not writer.running
    writer.close()
    assert not writer.append(record(99)) and writer.dropped_rows == 1
    assert writer.stats() == {
        "running": False,
        "queued_rows": 0,
        "written_rows": 7,
        "dropped_rows": 1,
        "batches": 1,
        "files_written": 1,
        "last_error": None,
    }
    with pytest.raises(RuntimeError):
        writer.start()


def test_concurrent_appends_are_all_accounted_for(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path), batch_rows=100, flush_seconds=0.05).start()

    def client(offset: int) -> None:
        for index in range(offset, offset + 300):
            writer.append(record(index, DAY if index % 2 else NEXT_DAY))

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(0, 1200, 300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert writer.written_rows == 1200 and writer.dropped_rows == 0 and writer.last_error is None
    frame = read_prediction_log(str(tmp_path), DAY, NEXT_DAY)
    assert frame.height == 1200 and frame["request_id"].n_unique() == 1200


def test_read_round_trip(tmp_path: Path) -> None:
    logged_at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    days = [date(2013, 3, day) for day in (1, 2, 3, 4)]
    writer = PredictionLogWriter(str(tmp_path), batch_rows=3)
    sent = [record(index, days[index % 4], logged_at=logged_at) for index in range(12)]
    writer.append(sent)
    writer.close()

    frame = read_prediction_log(str(tmp_path), days[1], days[2])
    assert frame.columns[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert dict(frame.select(FIXED_COLUMNS).schema) == FIXED_SCHEMA
    assert sorted(frame["flight_date"].unique().to_list()) == days[1:3]
    expected = sorted((r for r in sent if r["flight_date"] in days[1:3]), key=lambda r: r["request_id"])
    got = frame.sort("request_id").to_dicts()
    assert len(got) == len(expected) == 6
    for row, want in zip(got, expected, strict=True):
        assert row["logged_at"] == logged_at
        assert {name: row[name] for name in want if name != "logged_at"} == {
            name: value for name, value in want.items() if name != "logged_at"
        }

    empty = read_prediction_log(str(tmp_path), date(2013, 6, 1), date(2013, 6, 30))
    assert empty.height == 0 and dict(empty.schema) == FIXED_SCHEMA
    assert read_prediction_log(str(tmp_path / "no-lake"), days[0], days[3]).height == 0


def test_object_store_lake_root() -> None:
    """An ``s3://`` lake goes through fsspec (one PUT per file, atomic for readers); fsspec's in-memory store
    stands in for S3 here."""
    root = f"memory://prediction-log-test-{os.getpid()}-{time.monotonic_ns()}/lake"
    try:
        writer = PredictionLogWriter(root)
        writer.append([record(0, DAY), record(1, NEXT_DAY)])
        writer.close()
        assert writer.files_written == 2 and writer.last_error is None
        frame = read_prediction_log(root, DAY, NEXT_DAY)
        assert frame["request_id"].to_list() == ["req-0", "req-1"]
    finally:
        fsspec.filesystem("memory").rm(root.removeprefix("memory://").split("/")[0], recursive=True)
