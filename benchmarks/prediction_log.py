"""Prediction log micro-benchmark: what logging costs a request, and how fast the background thread writes.

    python benchmarks/prediction_log.py [--appends 20000] [--rows 50000] [--batch-rows 1000] [--repeats 5]

Records look like the service's: the fixed columns plus 35 model inputs (as many as the model has; strings, ints
and floats, some missing), spread over two flight days so every batch writes two files. Into a fresh temporary lake
on the local disk.

- append: ``--appends`` single-row appends while the writer thread runs (batches of ``--batch-rows``), each timed
  on its own; the median and p99 per call in µs (the request path's cost).
- write: ``--rows`` rows queued up front, then ``start()`` + ``close()`` timed: rows/s through building the frame,
  Parquet (zstd) and the atomic write, with one thread.

Each is repeated ``--repeats`` times; the table quotes the median over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from typing import Any

from mlops_assets.lib.prediction_log import PredictionLogWriter

DAYS = (date(2013, 3, 4), date(2013, 3, 5))
STRINGS = ("carrier", "origin", "dest", "plane_type")
INTS = ("sched_dep_hour", "sched_dep_minute_of_day", "sched_block_minutes", "month", "day_of_week", "plane_year")
FLOATS = tuple(f"feature_{index:02d}" for index in range(35 - len(STRINGS) - len(INTS)))


def request_record(index: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "request_id": f"req-{index:08d}",
        "flight_id": f"{DAYS[index % 2].isoformat()}_UA{index % 9999 + 1}_EWR",
        "flight_date": DAYS[index % 2],
        "model_name": "flight_delay",
        "champion_version": "7",
        "champion_score": (index % 997) / 997,
        "decision": index % 3 == 0,
        "shadow_version": "8",
        "shadow_score": (index % 991) / 991,
    }
    record |= {name: ("UA", "EWR", "IAH", "Fixed wing multi engine")[k] for k, name in enumerate(STRINGS)}
    record |= {name: (index + k) % 60 for k, name in enumerate(INTS)}
    # Every seventh value missing, as unknown tails and stale views leave some features empty.
    record |= {name: None if (index + k) % 7 == 0 else (index * 31 + k) % 1000 / 10 for k, name in enumerate(FLOATS)}
    return record


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def append_costs(appends: int, batch_rows: int) -> tuple[float, float, int]:
    """Median and p99 µs per single-row append, with the writer thread busy writing; and the rows it dropped."""
    records = [request_record(index) for index in range(appends)]
    with tempfile.TemporaryDirectory() as lake:
        writer = PredictionLogWriter(lake, batch_rows=batch_rows, flush_seconds=1.0, max_queue_rows=10 * appends)
        writer.start()
        costs = []
        clock = time.perf_counter_ns
        for item in records:
            started = clock()
            writer.append(item)
            costs.append((clock() - started) / 1000)
        writer.close()
        if writer.written_rows != appends:
            raise SystemExit(f"wrote {writer.written_rows} of {appends} rows: {writer.last_error}")
        return statistics.median(costs), percentile(costs, 0.99), writer.dropped_rows


def write_rate(rows: int, batch_rows: int) -> tuple[float, int]:
    """Rows/s the background thread writes from a full queue; and the files it wrote."""
    records = [request_record(index) for index in range(rows)]
    with tempfile.TemporaryDirectory() as lake:
        writer = PredictionLogWriter(lake, batch_rows=batch_rows, flush_seconds=60.0, max_queue_rows=rows)
        for start in range(0, rows, 100):
            writer.append(records[start : start + 100])
        started = time.perf_counter()
        writer.start()
        writer.close(timeout=None)
        elapsed = time.perf_counter() - started
        if writer.written_rows != rows:
            raise SystemExit(f"wrote {writer.written_rows} of {rows} rows: {writer.last_error}")
        return rows / elapsed, writer.files_written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    medians, p99s, rates = [], [], []
    files = dropped = 0
    for _ in range(args.repeats):
        median, p99, dropped = append_costs(args.appends, args.batch_rows)
        medians.append(median)
        p99s.append(p99)
        rate, files = write_rate(args.rows, args.batch_rows)
        rates.append(rate)

    print(
        f"prediction log, {len(FLOATS) + len(STRINGS) + len(INTS)} features, batch_rows={args.batch_rows}, "
        f"median of {args.repeats} repeats"
    )
    print(f"{'measure':<44}{'median':>12}")
    print(f"{'append, 1 row, writer running (µs/request)':<44}{statistics.median(medians):>12.2f}")
    print(f"{'append p99 (µs/request)':<44}{statistics.median(p99s):>12.2f}")
    print(f"{'rows dropped during the append run':<44}{dropped:>12d}")
    print(f"{f'background write, {args.rows} rows (rows/s)':<44}{statistics.median(rates):>12,.0f}")
    print(f"{'files per write run (batches x 2 days)':<44}{files:>12d}")


if __name__ == "__main__":
    main()
