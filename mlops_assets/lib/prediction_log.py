"""The prediction log: every served flight with its features, the champion's and the shadow's scores, the versions
and the time, as Parquet in the lake, partitioned by the flight's day (issue 13).

    <lake_root>/serving/prediction_log/date=YYYY-MM-DD/part-<UTC stamp>-<uuid>.parquet

The day is the flight's scheduled departure date (data time), not the wall clock: 2013 is replayed, and the monitoring
jobs (drift, live performance, the online A/B comparison) join the log to the labels of the same landed day.

:class:`PredictionLogWriter` keeps all I/O off the request path: :meth:`~PredictionLogWriter.append` only puts the
records on an in-memory queue, and a background thread writes them in batches. Pure Python with polars; no BentoML,
no Dagster, so the service, tests and benchmarks drive it directly.
"""

from __future__ import annotations

import logging
import numbers
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fsspec
import polars as pl

from mlops_assets.lib.io import parquet_bytes, read_bytes, write_bytes_atomic

logger = logging.getLogger(__name__)

LOG_TABLE = "serving/prediction_log"

# The fixed columns, which the monitoring reader can rely on; every other key of a record is a model input (or an
# entity column such as tailnum or route) and becomes a nullable column of its own.
LOGGED_AT = "logged_at"
REQUEST_ID = "request_id"
FLIGHT_ID = "flight_id"  # the warehouse key, feature_contract.KEY_COLUMN (not imported: it pulls in the settings)
DAY_COLUMN = "flight_date"  # the partition: the flight's scheduled departure date, origin local
MODEL_NAME = "model_name"
CHAMPION_VERSION = "champion_version"
CHAMPION_SCORE = "champion_score"
DECISION = "decision"
SHADOW_VERSION = "shadow_version"
SHADOW_SCORE = "shadow_score"

FIXED_SCHEMA: dict[str, pl.DataType] = {
    LOGGED_AT: pl.Datetime("us", "UTC"),
    REQUEST_ID: pl.String(),
    FLIGHT_ID: pl.String(),
    DAY_COLUMN: pl.Date(),
    MODEL_NAME: pl.String(),
    CHAMPION_VERSION: pl.String(),
    CHAMPION_SCORE: pl.Float64(),
    DECISION: pl.Boolean(),
    SHADOW_VERSION: pl.String(),
    SHADOW_SCORE: pl.Float64(),
}
FIXED_COLUMNS: tuple[str, ...] = tuple(FIXED_SCHEMA)

_PART_PREFIX = "part-"


def log_root(lake_root: str | Path) -> str:
    return f"{str(lake_root).rstrip('/')}/{LOG_TABLE}"


def day_dir(lake_root: str | Path, day: date) -> str:
    return f"{log_root(lake_root)}/date={day.isoformat()}"


def part_uri(lake_root: str | Path, day: date, written_at: datetime | None = None) -> str:
    """A new file name in the day's partition: the UTC stamp sorts the parts by write time, the uuid keeps two
    writers (several service workers share the lake) from ever choosing the same name."""
    stamp = (written_at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{day_dir(lake_root, day)}/{_PART_PREFIX}{stamp}-{uuid.uuid4().hex}.parquet"


class PredictionLogWriter:
    """Batches prediction records and writes them from a background daemon thread.

    ``append`` enqueues and returns at once; the thread (started by :meth:`start`, never at construction) writes a
    batch when ``batch_rows`` rows are queued or ``flush_seconds`` have passed since the last write, one file per
    day of the batch. :meth:`close` writes what remains and stops the thread. The counters feed a status endpoint.
    """

    def __init__(
        self,
        lake_root: str | Path,
        batch_rows: int = 1000,
        flush_seconds: float = 5.0,
        max_queue_rows: int = 100_000,
    ) -> None:
        if batch_rows < 1 or max_queue_rows < 1 or flush_seconds <= 0:
            raise ValueError("batch_rows and max_queue_rows must be >= 1 and flush_seconds > 0")
        self.lake_root = str(lake_root)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.max_queue_rows = max_queue_rows
        # One lock guards the queue and the counters; it is held only for list operations, never across I/O, so
        # append waits at most for another append or for the writer taking a batch (microseconds).
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[tuple[datetime, list[Mapping[str, Any]]]] = deque()
        self._queued_rows = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._written_rows = 0
        self._dropped_rows = 0
        self._batches = 0
        self._files_written = 0
        self._last_error: str | None = None

    # -- request path ---------------------------------------------------------------------------------------------

    def append(self, records: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> bool:
        """Queue one record or a request's records; False when they were dropped.

        Never blocks on I/O and never raises for a full queue: a request must not fail or wait because logging is
        slow or the lake is down, so when the queue holds ``max_queue_rows`` the records are dropped and counted
        (``dropped_rows``) instead. The records are not copied or validated here (that is the writer's work, off the
        request path); the caller must not mutate them afterwards. ``logged_at`` defaults to the time of this call.
        """
        batch = [records] if isinstance(records, Mapping) else list(records)
        if not batch:
            return True
        now = datetime.now(UTC)
        with self._lock:
            if self._closed or self._queued_rows + len(batch) > self.max_queue_rows:
                self._dropped_rows += len(batch)
                return False
            self._queue.append((now, batch))
            self._queued_rows += len(batch)
            if self._queued_rows >= self.batch_rows:
                self._wake.notify()
        return True

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> PredictionLogWriter:
        """Start the background writer (idempotent). Explicit, so importing or constructing starts no thread, and
        a forking server starts it in each worker, after the fork."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the prediction log writer is closed")
            if self._thread is None:
                # A daemon, so a process that exits without close() is not held up by its logger; what was still
                # queued is then lost, hence close() on shutdown.
                self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
                self._thread.start()
        return self

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what remains and stop the thread (idempotent). Without a started thread the remainder is written
        here, in the caller's thread. Appends after close are dropped and counted. Waits at most ``timeout``
        seconds (None: as long as it takes), so a hung lake cannot hold up a shutdown; the daemon thread then
        goes on writing until the process exits."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        else:
            self._drain()

    def __enter__(self) -> PredictionLogWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- counters -------------------------------------------------------------------------------------------------

    @property
    def written_rows(self) -> int:
        return self._written_rows

    @property
    def dropped_rows(self) -> int:
        return self._dropped_rows

    @property
    def batches(self) -> int:
        """Batches written (each is one file per day it spans)."""
        return self._batches

    @property
    def files_written(self) -> int:
        return self._files_written

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, Any]:
        """The counters in one dict, for a status endpoint."""
        with self._lock:
            return {
                "running": self.running,
                "queued_rows": self._queued_rows,
                "written_rows": self._written_rows,
                "dropped_rows": self._dropped_rows,
                "batches": self._batches,
                "files_written": self._files_written,
                "last_error": self._last_error,
            }

    # -- background writer ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        last_write = time.monotonic()
        while True:
            with self._lock:
                while not self._stopping and self._queued_rows < self.batch_rows:
                    remaining = last_write + self.flush_seconds - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wake.wait(remaining)
                stopping = self._stopping
                batch = self._take()
            if batch:
                self._write(batch)
            last_write = time.monotonic()
            if stopping:
                # close() was called: everything appended before it is written, batch by batch, then the thread ends.
                self._drain()
                return

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch = self._take()
            if not batch:
                return
            self._write(batch)

    def _take(self) -> list[tuple[datetime, Mapping[str, Any]]]:
        """Up to ``batch_rows`` queued rows, oldest first (a request's records may be split across batches)."""
        rows: list[tuple[datetime, Mapping[str, Any]]] = []
        while self._queue and len(rows) < self.batch_rows:
            at, records = self._queue[0]
            room = self.batch_rows - len(rows)
            if len(records) > room:
                self._queue[0] = (at, records[room:])
                records = records[:room]
            else:
                self._queue.popleft()
            rows.extend((at, record) for record in records)
        self._queued_rows -= len(rows)
        return rows

    def _write(self, rows: list[tuple[datetime, Mapping[str, Any]]]) -> None:
        """One batch: one file per day. Any failure is recorded and its rows counted as dropped, never retried and
        never raised, so a broken lake cannot kill the thread or grow the queue without bound."""
        try:
            frame = records_frame(rows)
        except Exception as exc:  # a record the frame cannot hold must not stop the logger
            self._failed(len(rows), f"building the batch: {type(exc).__name__}: {exc}")
            return
        undated = frame.filter(pl.col(DAY_COLUMN).is_null()).height
        if undated:
            self._failed(undated, f"{undated} record(s) without a usable {DAY_COLUMN}")
        wrote = 0
        dated = frame.filter(pl.col(DAY_COLUMN).is_not_null())
        for (day,), part in dated.partition_by(DAY_COLUMN, as_dict=True, maintain_order=True).items():
            try:
                write_bytes_atomic(part_uri(self.lake_root, day), parquet_bytes(part))
            except Exception as exc:  # any storage error (OSError, botocore, fsspec) is the lake's, not the request's
                self._failed(part.height, f"writing {day}: {type(exc).__name__}: {exc}")
                continue
            wrote += part.height
            with self._lock:
                self._written_rows += part.height
                self._files_written += 1
        if wrote:
            with self._lock:
                self._batches += 1

    def _failed(self, rows: int, message: str) -> None:
        logger.warning("prediction log: %d row(s) dropped: %s", rows, message)
        with self._lock:
            self._dropped_rows += rows
            self._last_error = message


# -- records to a frame -------------------------------------------------------------------------------------------


def _as_day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _as_utc(value: Any, default: datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return default


def _feature_series(name: str, values: list[Any]) -> pl.Series:
    """A nullable column from Python values, its type chosen from the values present (polars' own inference
    rejects a mix of ints and floats, which a feature with missing values produces easily). A column with no value
    at all keeps polars' Null type: the reader combines it with the other parts' type, and the column's presence
    still says the feature was sent (and missing), which drift monitoring wants to see."""
    # The checks run on the distinct types (a handful), not on every value: ABC isinstance checks per value were
    # most of a batch's cost.
    kinds = {type(value) for value in values} - {type(None)}
    if not kinds:
        return pl.Series(name, values, dtype=pl.Null())
    if kinds == {bool}:
        return pl.Series(name, values, dtype=pl.Boolean())
    # numbers.Real covers numpy's scalars too; bool is an Integral, so a bool among numbers makes it text below.
    if bool not in kinds and all(issubclass(kind, numbers.Real) for kind in kinds):
        integral = all(issubclass(kind, numbers.Integral) for kind in kinds)
        return pl.Series(name, values, dtype=pl.Int64() if integral else pl.Float64(), strict=False)
    if kinds == {str}:
        return pl.Series(name, values, dtype=pl.String())
    if all(issubclass(kind, datetime) for kind in kinds) or all(
        issubclass(kind, date) and not issubclass(kind, datetime) for kind in kinds
    ):
        return pl.Series(name, values, strict=False)
    # Anything else (mixed types, lists, objects) is kept as text rather than failing the batch.
    return pl.Series(name, [None if value is None else str(value) for value in values], dtype=pl.String())


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def records_frame(rows: Iterable[tuple[datetime, Mapping[str, Any]]]) -> pl.DataFrame:
    """Queued ``(appended_at, record)`` pairs as a frame: the fixed columns with their types, in order, then every
    other key in first-seen order. Missing keys are nulls."""
    rows = list(rows)
    features: dict[str, None] = {}
    for _, record in rows:
        for key in record:
            if key not in FIXED_SCHEMA:
                features.setdefault(key)
    columns = [
        pl.Series(
            LOGGED_AT, [_as_utc(record.get(LOGGED_AT), at) for at, record in rows], dtype=FIXED_SCHEMA[LOGGED_AT]
        ),
        pl.Series(DAY_COLUMN, [_as_day(record.get(DAY_COLUMN)) for _, record in rows], dtype=pl.Date()),
        pl.Series(DECISION, [None if r.get(DECISION) is None else bool(r[DECISION]) for _, r in rows], pl.Boolean()),
    ]
    for name in (CHAMPION_SCORE, SHADOW_SCORE):
        columns.append(pl.Series(name, [_number(record.get(name)) for _, record in rows], dtype=pl.Float64()))
    for name in (REQUEST_ID, FLIGHT_ID, MODEL_NAME, CHAMPION_VERSION, SHADOW_VERSION):
        columns.append(pl.Series(name, [_text(record.get(name)) for _, record in rows], dtype=pl.String()))
    for name in features:
        columns.append(_feature_series(name, [record.get(name) for _, record in rows]))
    return pl.DataFrame(columns).select(*FIXED_COLUMNS, *features)


# -- reader -------------------------------------------------------------------------------------------------------


def _part_files(lake_root: str, start: date, end: date) -> list[str]:
    """The part files of the days in [start, end], oldest day first. Only ``part-*.parquet`` names count: a
    writer's temporary sibling (``.part-….tmp``) is never read."""
    fs, root = fsspec.core.url_to_fs(log_root(lake_root))
    found = []
    for path in fs.glob(f"{root}/date=*/{_PART_PREFIX}*.parquet"):
        day = _as_day(path.rsplit("/", 2)[-2].removeprefix("date="))
        if day is not None and start <= day <= end:
            found.append((day, path))
    found.sort()
    if "://" in lake_root:
        return [fs.unstrip_protocol(path) for _, path in found]
    return [path for _, path in found]


def read_prediction_log(lake_root: str | Path, start: date, end: date) -> pl.DataFrame:
    """The logged rows of the days in [start, end], the fixed columns first (with their types), then the features
    in first-seen order; an empty frame with the fixed columns when there are none. Parts of different days may
    disagree on a feature's type (all-null in one, ints in another): they are combined to the common supertype."""
    frames = []
    for uri in _part_files(str(lake_root), start, end):
        try:
            frames.append(pl.read_parquet(read_bytes(uri)))
        except FileNotFoundError:
            continue  # pruned between listing and reading
    if not frames:
        return pl.DataFrame(schema=FIXED_SCHEMA)
    combined = pl.concat(frames, how="diagonal_relaxed")
    for name, dtype in FIXED_SCHEMA.items():
        if name not in combined.columns:
            combined = combined.with_columns(pl.lit(None, dtype).alias(name))
    features = [name for name in combined.columns if name not in FIXED_SCHEMA]
    ordered = combined.select(*(pl.col(name).cast(dtype) for name, dtype in FIXED_SCHEMA.items()), *features)
    return ordered.sort(DAY_COLUMN, LOGGED_AT, maintain_order=True)
