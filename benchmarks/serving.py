"""Serving latency over HTTP: single-row and 100-row batch predictions against a running service.

    python benchmarks/serving.py --url http://127.0.0.1:3000 --lake-root DIR --day 2013-02-14 [--single 300]
        [--batches 50] [--batch-rows 100]

The service is started separately (``bentoml serve mlops_assets.service.service:FlightDelayService``) over a pipeline
state with a champion and a materialised online store; the requests are real scheduled flights of ``--day`` read from
the validated partitions under ``--lake-root`` (so tails, routes and stores are the ones the service knows). One
keep-alive client, sequential requests (latency, not throughput), after a warm-up. Prints medians and p95 in ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date
from typing import Any

import httpx
import polars as pl

from mlops_assets.lib.feature_paths import partition_uri
from mlops_assets.service.scoring import request_bodies

WARMUP = 20


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _time(client: httpx.Client, route: str, bodies: list[dict[str, Any]]) -> list[float]:
    timings = []
    for body in bodies:
        start = time.perf_counter()
        response = client.post(route, json=body)
        timings.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return timings


def measure(
    url: str, flights: list[dict[str, Any]], single: int, batches: int, batch_rows: int
) -> dict[str, list[float]]:
    """Milliseconds per request: ``single`` one-row requests and ``batches`` requests of ``batch_rows`` rows."""
    if len(flights) < batch_rows:
        raise SystemExit(f"only {len(flights)} flights to draw from; need at least --batch-rows={batch_rows}")
    singles = [{"flight": flights[i % len(flights)]} for i in range(single)]
    batch_bodies = [
        {"flights": [flights[(b * batch_rows + i) % len(flights)] for i in range(batch_rows)]} for b in range(batches)
    ]
    with httpx.Client(base_url=url, timeout=30) as client:
        _time(client, "/predict", singles[:WARMUP])
        _time(client, "/predict_batch", batch_bodies[:2])
        return {
            "single row": _time(client, "/predict", singles),
            f"batch of {batch_rows}": _time(client, "/predict_batch", batch_bodies),
        }


def table(results: dict[str, list[float]]) -> str:
    lines = ["| request | n | median ms | p95 ms |", "|---|---|---|---|"]
    for name, timings in results.items():
        lines.append(
            f"| {name} | {len(timings)} | {statistics.median(timings):.2f} | {_percentile(timings, 0.95):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--lake-root", required=True)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 2, 14))
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-rows", type=int, default=100)
    args = parser.parse_args()
    flights = request_bodies(pl.read_parquet(partition_uri(args.lake_root, "validated", args.day)))
    print(table(measure(args.url, flights, args.single, args.batches, args.batch_rows)))


if __name__ == "__main__":
    main()
