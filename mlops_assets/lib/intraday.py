"""Intraday features: what the day's departures so far say, as of any moment, from one definition.

A departure is known at its actual departure time (scheduled departure + ``dep_delay``); that a flight has *not*
left is known once its scheduled departure has passed. From these events, for every key below, the state changes
only at an event, so the state as of the prediction time T is the state after the last event at or before T:

- per origin airport and per carrier at an origin, for the operating day (flights scheduled that day): departures
  that have left (count, mean departure delay, share more than 15 minutes late) and flights whose scheduled
  departure has passed but which have not left;
- per aircraft (tail number), for the operating day: departures that have left and the delay of the latest one.

Keys carry the operating day (``EWR|2013-03-01``): a flight of D that leaves after midnight still counts for D, and
the first flights of D + 1 never see it. Every key of the day starts at 00:00 with an empty state.

One definition, two paths: :class:`IntradayAggregator` consumes the events in time order and emits, after each
distinct event time, the new state of every key that changed. Training runs it over a whole day
(:func:`intraday_timelines`) and joins the rows point-in-time; the live feed (``mlops-assets replay-departures``)
runs the same aggregator and pushes each emitted batch to Feast's push sources as the clock reaches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

LATE_MINUTES = 15
EVENT_TS = "event_ts"
SOURCE_DATE = "source_date"

ORIGIN_TODAY = "origin_today"
CARRIER_ORIGIN_TODAY = "carrier_origin_today"
TAIL_TODAY = "tail_today"

ORIGIN_DAY_KEY = "origin_day"
CARRIER_ORIGIN_DAY_KEY = "carrier_origin_day"
TAIL_DAY_KEY = "tail_day"


def _airport_features(prefix: str) -> dict[str, pl.DataType]:
    return {
        f"{prefix}_departed_today": pl.Int32(),
        f"{prefix}_mean_dep_delay_today": pl.Float64(),
        f"{prefix}_late_share_today": pl.Float64(),
        f"{prefix}_pending_today": pl.Int32(),
    }


INTRADAY_FEATURES: dict[str, dict[str, pl.DataType]] = {
    ORIGIN_TODAY: _airport_features("origin"),
    CARRIER_ORIGIN_TODAY: _airport_features("carrier_origin"),
    TAIL_TODAY: {"tail_departed_today": pl.Int32(), "tail_last_dep_delay_today": pl.Float64()},
}
INTRADAY_JOIN_KEYS: dict[str, str] = {
    ORIGIN_TODAY: ORIGIN_DAY_KEY,
    CARRIER_ORIGIN_TODAY: CARRIER_ORIGIN_DAY_KEY,
    TAIL_TODAY: TAIL_DAY_KEY,
}
INTRADAY_FEATURE_COLUMNS: tuple[str, ...] = tuple(name for view in INTRADAY_FEATURES.values() for name in view)
# The columns a day's flights must have: the schedule and, for those that left, the actual departure.
EVENT_SOURCE_COLUMNS: tuple[str, ...] = ("flight_date", "carrier", "origin", "tailnum", "sched_dep_ts", "dep_ts")


def origin_day_key(origin: str, day: date) -> str:
    return f"{origin}|{day.isoformat()}"


def carrier_origin_day_key(carrier: str, origin: str, day: date) -> str:
    return f"{carrier}|{origin}|{day.isoformat()}"


def tail_day_key(tailnum: str, day: date) -> str:
    return f"{tailnum}|{day.isoformat()}"


def with_intraday_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the three day keys to rows with ``flight_date``, ``carrier``, ``origin`` and ``tailnum`` (a request or a
    training spine); a null tail number gives a null tail key."""
    day = pl.col("flight_date").cast(pl.String)
    return frame.with_columns(
        pl.concat_str(pl.col("origin"), day, separator="|").alias(ORIGIN_DAY_KEY),
        pl.concat_str(pl.col("carrier"), pl.col("origin"), day, separator="|").alias(CARRIER_ORIGIN_DAY_KEY),
        pl.concat_str(pl.col("tailnum"), day, separator="|").alias(TAIL_DAY_KEY),
    )


@dataclass
class _AirportState:
    departed: int = 0
    delay_sum: float = 0.0
    late: int = 0
    pending: int = 0

    def features(self, prefix: str) -> dict[str, object]:
        return {
            f"{prefix}_departed_today": self.departed,
            f"{prefix}_mean_dep_delay_today": self.delay_sum / self.departed if self.departed else None,
            f"{prefix}_late_share_today": self.late / self.departed if self.departed else None,
            f"{prefix}_pending_today": self.pending,
        }


@dataclass
class _TailState:
    departed: int = 0
    last_delay: float | None = None

    def features(self) -> dict[str, object]:
        return {"tail_departed_today": self.departed, "tail_last_dep_delay_today": self.last_delay}


@dataclass(frozen=True)
class _Flight:
    day: date
    origin_key: str
    carrier_key: str
    tail_key: str | None
    sched_dep_ts: datetime
    dep_ts: datetime | None


@dataclass
class IntradayAggregator:
    """The state machine behind every intraday feature; feed it one or more operating days of flights.

    ``emit()`` yields ``(event_time, rows)`` in time order, where ``rows`` maps a view name to the rows (join key,
    ``event_ts``, features, ``source_date``) whose state changed at that time. The first batch of each day is every
    key's empty state at the day's midnight.
    """

    flights: list[_Flight]
    _origins: dict[str, _AirportState] = field(default_factory=dict)
    _carriers: dict[str, _AirportState] = field(default_factory=dict)
    _tails: dict[str, _TailState] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> IntradayAggregator:
        missing = [name for name in EVENT_SOURCE_COLUMNS if name not in frame.columns]
        if missing:
            raise ValueError(f"departure events need columns {missing}; read them from flights_enriched")
        flights = [
            _Flight(
                day=row["flight_date"],
                origin_key=origin_day_key(row["origin"], row["flight_date"]),
                carrier_key=carrier_origin_day_key(row["carrier"], row["origin"], row["flight_date"]),
                tail_key=tail_day_key(row["tailnum"], row["flight_date"]) if row["tailnum"] else None,
                sched_dep_ts=row["sched_dep_ts"],
                dep_ts=row["dep_ts"],
            )
            for row in frame.select(EVENT_SOURCE_COLUMNS).iter_rows(named=True)
        ]
        return cls(flights)

    def _events(self) -> list[tuple[datetime, int, int]]:
        """(time, kind, flight index); kind 0 = the day starts, 1 = scheduled departure passes, 2 = departure."""
        events: list[tuple[datetime, int, int]] = []
        for index, flight in enumerate(self.flights):
            events.append((datetime.combine(flight.day, datetime.min.time()), 0, index))
            events.append((flight.sched_dep_ts, 1, index))
            if flight.dep_ts is not None:
                events.append((flight.dep_ts, 2, index))
        events.sort()
        return events

    def emit(self) -> Iterator[tuple[datetime, dict[str, list[dict[str, object]]]]]:
        departed: set[int] = set()
        scheduled_passed: set[int] = set()
        events = self._events()
        position = 0
        while position < len(events):
            moment = events[position][0]
            changed: dict[str, set[str]] = {ORIGIN_TODAY: set(), CARRIER_ORIGIN_TODAY: set(), TAIL_TODAY: set()}
            days: dict[str, date] = {}
            # Every event at this instant is applied before the state is emitted: the state "as of T" includes
            # everything that happened at T, and the order of simultaneous events does not matter.
            while position < len(events) and events[position][0] == moment:
                _, kind, index = events[position]
                position += 1
                flight = self.flights[index]
                keys = [
                    (ORIGIN_TODAY, flight.origin_key, self._origins),
                    (CARRIER_ORIGIN_TODAY, flight.carrier_key, self._carriers),
                ]
                if kind == 0:
                    for view, key, states in keys:
                        states.setdefault(key, _AirportState())
                        changed[view].add(key)
                        days[key] = flight.day
                    if flight.tail_key is not None:
                        self._tails.setdefault(flight.tail_key, _TailState())
                        changed[TAIL_TODAY].add(flight.tail_key)
                        days[flight.tail_key] = flight.day
                elif kind == 1:
                    scheduled_passed.add(index)
                    if index not in departed:
                        for view, key, states in keys:
                            states.setdefault(key, _AirportState()).pending += 1
                            changed[view].add(key)
                            days[key] = flight.day
                else:
                    departed.add(index)
                    delay = (flight.dep_ts - flight.sched_dep_ts).total_seconds() / 60  # type: ignore[operator]
                    for view, key, states in keys:
                        state = states.setdefault(key, _AirportState())
                        state.departed += 1
                        state.delay_sum += delay
                        state.late += int(delay > LATE_MINUTES)
                        if index in scheduled_passed:
                            state.pending -= 1
                        changed[view].add(key)
                        days[key] = flight.day
                    if flight.tail_key is not None:
                        tail = self._tails.setdefault(flight.tail_key, _TailState())
                        tail.departed += 1
                        tail.last_delay = delay
                        changed[TAIL_TODAY].add(flight.tail_key)
                        days[flight.tail_key] = flight.day
            rows: dict[str, list[dict[str, object]]] = {}
            for view, keys_changed in changed.items():
                if not keys_changed:
                    continue
                join_key = INTRADAY_JOIN_KEYS[view]
                batch = []
                for key in sorted(keys_changed):
                    if view == TAIL_TODAY:
                        values = self._tails[key].features()
                    elif view == ORIGIN_TODAY:
                        values = self._origins[key].features("origin")
                    else:
                        values = self._carriers[key].features("carrier_origin")
                    batch.append({join_key: key, EVENT_TS: moment, **values, SOURCE_DATE: days[key]})
                rows[view] = batch
            yield moment, rows


def empty_timeline(view: str) -> pl.DataFrame:
    schema = {
        INTRADAY_JOIN_KEYS[view]: pl.String(),
        EVENT_TS: pl.Datetime("us"),
        **INTRADAY_FEATURES[view],
        SOURCE_DATE: pl.Date(),
    }
    return pl.DataFrame(schema=schema)


def timeline_frame(view: str, rows: list[dict[str, object]]) -> pl.DataFrame:
    """Rows emitted for one view as a typed frame (the entity-table layout: key, ``event_ts``, features, day)."""
    empty = empty_timeline(view)
    if not rows:
        return empty
    return pl.DataFrame(rows, schema=empty.schema, orient="row")


def intraday_timelines(flights: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Every state change of every key over the given operating days: the offline side of the live feed."""
    collected: dict[str, list[dict[str, object]]] = {view: [] for view in INTRADAY_FEATURES}
    for _, rows in IntradayAggregator.from_frame(flights).emit():
        for view, batch in rows.items():
            collected[view].extend(batch)
    return {view: timeline_frame(view, rows) for view, rows in collected.items()}
