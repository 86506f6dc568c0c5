"""The live departure feed: a landed day's departures replayed in event-time order into the online store.

It runs the same :class:`~mlops_assets.lib.intraday.IntradayAggregator` that builds the training timelines and hands
each emitted state to a ``push`` callable (Feast's push source in the product). With a ``speed``, it waits between
event times as a live feed would (``speed=60``: one minute of the day per second). Without one it replays as fast as
it can, in chunks of ``chunk_minutes`` of event time, each chunk's latest state per key pushed once: the online store
keeps only the latest value per key, so the store ends exactly where the event-by-event replay ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from mlops_assets.lib.intraday import INTRADAY_JOIN_KEYS, SOURCE_DATE, IntradayAggregator, timeline_frame

Push = Callable[[str, pl.DataFrame], None]
"""``push(view name, rows)``: rows are the view's join key, ``event_ts`` and features."""


@dataclass(frozen=True)
class ReplayReport:
    event_times: int
    rows_pushed: int
    pushes: int
    last_event: datetime | None
    wall_s: float


def replay_departures(
    schedule: pl.DataFrame,
    push: Push,
    until: datetime | None = None,
    speed: float | None = None,
    chunk_minutes: int = 15,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] | None = None,
) -> ReplayReport:
    """Replay the departures of ``schedule`` (see :data:`~mlops_assets.lib.intraday.EVENT_SOURCE_COLUMNS`) up to
    and including ``until``; returns what was pushed."""
    if speed is not None and speed <= 0:
        raise ValueError(f"speed must be positive (a multiple of real time), got {speed}; omit it to replay at once")
    started = time.perf_counter()
    pending: dict[str, dict[str, dict[str, object]]] = {view: {} for view in INTRADAY_JOIN_KEYS}
    chunk_start: datetime | None = None
    previous: datetime | None = None
    counts = {"event_times": 0, "rows": 0, "pushes": 0}

    def flush() -> None:
        for view, by_key in pending.items():
            if by_key:
                push(view, timeline_frame(view, list(by_key.values())).drop(SOURCE_DATE))
                counts["rows"] += len(by_key)
                counts["pushes"] += 1
                by_key.clear()

    for moment, rows in IntradayAggregator.from_frame(schedule).emit():
        if until is not None and moment > until:
            break
        if speed is not None and previous is not None:
            sleep((moment - previous).total_seconds() / speed)
        if speed is None and chunk_start is not None and moment - chunk_start >= timedelta(minutes=chunk_minutes):
            flush()
            chunk_start = None
        chunk_start = chunk_start or moment
        for view, batch in rows.items():
            key = INTRADAY_JOIN_KEYS[view]
            for row in batch:
                pending[view][str(row[key])] = row
        if speed is not None:
            flush()
        counts["event_times"] += 1
        previous = moment
        if progress is not None and counts["event_times"] % 200 == 0:
            progress(f"replayed {counts['event_times']} event times, up to {moment:%Y-%m-%d %H:%M}")
    flush()
    return ReplayReport(
        event_times=counts["event_times"],
        rows_pushed=counts["rows"],
        pushes=counts["pushes"],
        last_event=previous,
        wall_s=time.perf_counter() - started,
    )
