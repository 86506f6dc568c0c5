"""Intraday features: what the day's departures and arrivals so far say, as of any moment, from one definition.

A departure is known at its actual departure time (scheduled departure + ``dep_delay``); that a flight has *not*
left is known once its scheduled departure has passed; a flight's outcome (arrived on time or late, or never
arrived) at ``outcome_known_at`` (the actual arrival; see ``stg_flights``). From these events, for every key below,
the state changes only at an event, so the state as of the prediction time T is the state after the last event at or
before T:

- per origin airport, per carrier at an origin and per carrier over all origins, for the operating day (flights
  scheduled that day): departures that have left (count, mean departure delay, share more than 15 minutes late) and
  flights whose scheduled departure has passed but which have not left;
- per destination, for the operating day: outcomes known (count) and the share of them delayed (the label's rule:
  15+ minutes late or never arrived), which sees the destination's weather and air traffic control before any
  departure from New York does;
- per aircraft (tail number), for the operating day: departures that have left and the delay of the latest one;
  scheduled departures that have passed and the latest one's minute of the day (the schedule: how far into its
  rotation the aircraft is); the latest known outcome (late or not, and its arrival delay).

Keys carry the operating day (``EWR|2013-03-01``): a flight of D that leaves after midnight still counts for D, and
the first flights of D + 1 never see it. Every key of the day starts at 00:00 with an empty state.

One definition, two paths: :class:`IntradayAggregator` consumes the events in time order and emits, after each
distinct event time, the new state of every key that changed. Training runs it over a whole day
(:func:`intraday_timelines`) and joins the rows point-in-time; the live feed (``mlops-assets replay-departures``)
runs the same aggregator and pushes each emitted batch to Feast's push sources as the clock reaches it.
:func:`with_derived_features` then combines a row's schedule with its joined state, on both paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum

import polars as pl

LATE_MINUTES = 15
EVENT_TS = "event_ts"
SOURCE_DATE = "source_date"

ORIGIN_TODAY = "origin_today"
CARRIER_ORIGIN_TODAY = "carrier_origin_today"
CARRIER_TODAY = "carrier_today"
DEST_TODAY = "dest_today"
TAIL_TODAY = "tail_today"

ORIGIN_DAY_KEY = "origin_day"
CARRIER_ORIGIN_DAY_KEY = "carrier_origin_day"
CARRIER_DAY_KEY = "carrier_day"
DEST_DAY_KEY = "dest_day"
TAIL_DAY_KEY = "tail_day"

# The views whose state is departures so far (the same four features each, with the view's prefix).
_DEPARTURE_PREFIXES: dict[str, str] = {
    ORIGIN_TODAY: "origin",
    CARRIER_ORIGIN_TODAY: "carrier_origin",
    CARRIER_TODAY: "carrier",
}


def _departure_features(prefix: str) -> dict[str, pl.DataType]:
    return {
        f"{prefix}_departed_today": pl.Int32(),
        f"{prefix}_mean_dep_delay_today": pl.Float64(),
        f"{prefix}_late_share_today": pl.Float64(),
        f"{prefix}_pending_today": pl.Int32(),
    }


INTRADAY_FEATURES: dict[str, dict[str, pl.DataType]] = {
    **{view: _departure_features(prefix) for view, prefix in _DEPARTURE_PREFIXES.items()},
    DEST_TODAY: {"dest_outcomes_today": pl.Int32(), "dest_late_share_today": pl.Float64()},
    TAIL_TODAY: {
        "tail_departed_today": pl.Int32(),
        "tail_last_dep_delay_today": pl.Float64(),
        "tail_scheduled_today": pl.Int32(),
        "tail_last_sched_dep_minute_today": pl.Int32(),
        "tail_last_outcome_late_today": pl.Int32(),
        "tail_last_arr_delay_today": pl.Float64(),
    },
}
INTRADAY_JOIN_KEYS: dict[str, str] = {
    ORIGIN_TODAY: ORIGIN_DAY_KEY,
    CARRIER_ORIGIN_TODAY: CARRIER_ORIGIN_DAY_KEY,
    CARRIER_TODAY: CARRIER_DAY_KEY,
    DEST_TODAY: DEST_DAY_KEY,
    TAIL_TODAY: TAIL_DAY_KEY,
}
INTRADAY_FEATURE_COLUMNS: tuple[str, ...] = tuple(name for view in INTRADAY_FEATURES.values() for name in view)
# Computed per row from its own schedule and its joined intraday state (:func:`with_derived_features`).
DERIVED_FEATURES: dict[str, pl.DataType] = {"tail_sched_gap_minutes": pl.Int32()}
# Every model column that comes from the intraday state.
INTRADAY_COLUMNS: tuple[str, ...] = (*INTRADAY_FEATURE_COLUMNS, *DERIVED_FEATURES)
# The columns a day's flights must have: the schedule, the actual departure of those that left, and the outcome.
EVENT_SOURCE_COLUMNS: tuple[str, ...] = (
    "flight_date", "carrier", "origin", "dest", "tailnum", "sched_dep_ts", "dep_ts", "outcome_known_at",
    "arr_delay", "is_delayed",
)  # fmt: skip


def origin_day_key(origin: str, day: date) -> str:
    return f"{origin}|{day.isoformat()}"


def carrier_origin_day_key(carrier: str, origin: str, day: date) -> str:
    return f"{carrier}|{origin}|{day.isoformat()}"


def carrier_day_key(carrier: str, day: date) -> str:
    return f"{carrier}|{day.isoformat()}"


def dest_day_key(dest: str, day: date) -> str:
    return f"{dest}|{day.isoformat()}"


def tail_day_key(tailnum: str, day: date) -> str:
    return f"{tailnum}|{day.isoformat()}"


def with_intraday_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the day keys to rows with ``flight_date``, ``carrier``, ``origin``, ``dest`` and ``tailnum`` (a request
    or a training spine); a null tail number gives a null tail key."""
    day = pl.col("flight_date").cast(pl.String)
    return frame.with_columns(
        pl.concat_str(pl.col("origin"), day, separator="|").alias(ORIGIN_DAY_KEY),
        pl.concat_str(pl.col("carrier"), pl.col("origin"), day, separator="|").alias(CARRIER_ORIGIN_DAY_KEY),
        pl.concat_str(pl.col("carrier"), day, separator="|").alias(CARRIER_DAY_KEY),
        pl.concat_str(pl.col("dest"), day, separator="|").alias(DEST_DAY_KEY),
        pl.concat_str(pl.col("tailnum"), day, separator="|").alias(TAIL_DAY_KEY),
    )


def with_derived_features(frame: pl.DataFrame) -> pl.DataFrame:
    """Features of a row's own schedule against its intraday state, for rows with ``sched_dep_minute_of_day`` and
    the joined tail state: minutes from the aircraft's latest scheduled departure that day (passed by T) to this
    one's. A short gap is a tight rotation, which a late aircraft cannot recover."""
    gap = pl.col("sched_dep_minute_of_day") - pl.col("tail_last_sched_dep_minute_today")
    return frame.with_columns(gap.cast(DERIVED_FEATURES["tail_sched_gap_minutes"]).alias("tail_sched_gap_minutes"))


@dataclass
class _DepartureState:
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
class _OutcomeState:
    known: int = 0
    late: int = 0

    def features(self) -> dict[str, object]:
        share = self.late / self.known if self.known else None
        return {"dest_outcomes_today": self.known, "dest_late_share_today": share}


@dataclass
class _TailState:
    departed: int = 0
    last_delay: float | None = None
    scheduled: int = 0
    last_sched_minute: int | None = None
    last_outcome_late: int | None = None
    last_arr_delay: float | None = None

    def features(self) -> dict[str, object]:
        return {
            "tail_departed_today": self.departed,
            "tail_last_dep_delay_today": self.last_delay,
            "tail_scheduled_today": self.scheduled,
            "tail_last_sched_dep_minute_today": self.last_sched_minute,
            "tail_last_outcome_late_today": self.last_outcome_late,
            "tail_last_arr_delay_today": self.last_arr_delay,
        }


class _Event(IntEnum):
    # The order of simultaneous events does not matter: all of an instant's events are applied before it is emitted.
    DAY_STARTS = 0
    SCHEDULED_DEPARTURE_PASSES = 1
    DEPARTS = 2
    OUTCOME_KNOWN = 3


@dataclass(frozen=True)
class _Flight:
    day: date
    departure_keys: dict[str, str]  # view -> key, for the departure-state views
    dest_key: str
    tail_key: str | None
    sched_dep_ts: datetime
    dep_ts: datetime | None
    outcome_known_at: datetime
    arr_delay: float | None
    is_delayed: int


@dataclass
class IntradayAggregator:
    """The state machine behind every intraday feature; feed it one or more operating days of flights.

    ``emit()`` yields ``(event_time, rows)`` in time order, where ``rows`` maps a view name to the rows (join key,
    ``event_ts``, features, ``source_date``) whose state changed at that time. The first batch of each day is every
    key's empty state at the day's midnight.
    """

    flights: list[_Flight]
    _departures: dict[str, dict[str, _DepartureState]] = field(
        default_factory=lambda: {view: {} for view in _DEPARTURE_PREFIXES}
    )
    _outcomes: dict[str, _OutcomeState] = field(default_factory=dict)
    _tails: dict[str, _TailState] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> IntradayAggregator:
        missing = [name for name in EVENT_SOURCE_COLUMNS if name not in frame.columns]
        if missing:
            raise ValueError(f"intraday events need columns {missing}; read them from flights_enriched")
        flights = [
            _Flight(
                day=row["flight_date"],
                departure_keys={
                    ORIGIN_TODAY: origin_day_key(row["origin"], row["flight_date"]),
                    CARRIER_ORIGIN_TODAY: carrier_origin_day_key(row["carrier"], row["origin"], row["flight_date"]),
                    CARRIER_TODAY: carrier_day_key(row["carrier"], row["flight_date"]),
                },
                dest_key=dest_day_key(row["dest"], row["flight_date"]),
                tail_key=tail_day_key(row["tailnum"], row["flight_date"]) if row["tailnum"] else None,
                sched_dep_ts=row["sched_dep_ts"],
                dep_ts=row["dep_ts"],
                outcome_known_at=row["outcome_known_at"],
                arr_delay=row["arr_delay"],
                is_delayed=int(row["is_delayed"]),
            )
            for row in frame.select(EVENT_SOURCE_COLUMNS).iter_rows(named=True)
        ]
        return cls(flights)

    def _events(self) -> list[tuple[datetime, _Event, int]]:
        events: list[tuple[datetime, _Event, int]] = []
        for index, flight in enumerate(self.flights):
            events.append((datetime.combine(flight.day, datetime.min.time()), _Event.DAY_STARTS, index))
            events.append((flight.sched_dep_ts, _Event.SCHEDULED_DEPARTURE_PASSES, index))
            if flight.dep_ts is not None:
                events.append((flight.dep_ts, _Event.DEPARTS, index))
            events.append((flight.outcome_known_at, _Event.OUTCOME_KNOWN, index))
        events.sort()
        return events

    def _apply(self, kind: _Event, index: int, departed: set[int], scheduled_passed: set[int]) -> list[tuple[str, str]]:
        """Apply one event; returns the (view, key) pairs whose state it changed."""
        flight = self.flights[index]
        departure_states = [
            (view, key, self._departures[view].setdefault(key, _DepartureState()))
            for view, key in flight.departure_keys.items()
        ]
        tail = self._tails.setdefault(flight.tail_key, _TailState()) if flight.tail_key is not None else None
        departures = [(view, key) for view, key, _ in departure_states]
        changed: list[tuple[str, str]]
        if kind == _Event.DAY_STARTS:
            self._outcomes.setdefault(flight.dest_key, _OutcomeState())
            changed = [*departures, (DEST_TODAY, flight.dest_key)]
        elif kind == _Event.SCHEDULED_DEPARTURE_PASSES:
            scheduled_passed.add(index)
            # A flight that left early was never pending: the departure views do not change.
            changed = []
            if index not in departed:
                for _, _, state in departure_states:
                    state.pending += 1
                changed = departures
            if tail is not None:
                tail.scheduled += 1
                tail.last_sched_minute = flight.sched_dep_ts.hour * 60 + flight.sched_dep_ts.minute
        elif kind == _Event.DEPARTS:
            departed.add(index)
            delay = (flight.dep_ts - flight.sched_dep_ts).total_seconds() / 60  # type: ignore[operator]
            for _, _, state in departure_states:
                state.departed += 1
                state.delay_sum += delay
                state.late += int(delay > LATE_MINUTES)
                if index in scheduled_passed:
                    state.pending -= 1
            changed = departures
            if tail is not None:
                tail.departed += 1
                tail.last_delay = delay
        else:
            outcome = self._outcomes.setdefault(flight.dest_key, _OutcomeState())
            outcome.known += 1
            outcome.late += flight.is_delayed
            changed = [(DEST_TODAY, flight.dest_key)]
            if tail is not None:
                tail.last_outcome_late = flight.is_delayed
                tail.last_arr_delay = flight.arr_delay
        if flight.tail_key is not None:
            changed.append((TAIL_TODAY, flight.tail_key))
        return changed

    def _features(self, view: str, key: str) -> dict[str, object]:
        if view == TAIL_TODAY:
            return self._tails[key].features()
        if view == DEST_TODAY:
            return self._outcomes[key].features()
        return self._departures[view][key].features(_DEPARTURE_PREFIXES[view])

    def emit(self) -> Iterator[tuple[datetime, dict[str, list[dict[str, object]]]]]:
        departed: set[int] = set()
        scheduled_passed: set[int] = set()
        events = self._events()
        position = 0
        while position < len(events):
            moment = events[position][0]
            changed: dict[str, dict[str, date]] = {view: {} for view in INTRADAY_JOIN_KEYS}
            # Every event at this instant is applied before the state is emitted: the state "as of T" includes
            # everything that happened at T, and the order of simultaneous events does not matter.
            while position < len(events) and events[position][0] == moment:
                _, kind, index = events[position]
                position += 1
                for view, key in self._apply(kind, index, departed, scheduled_passed):
                    changed[view][key] = self.flights[index].day
            rows: dict[str, list[dict[str, object]]] = {}
            for view, keys_changed in changed.items():
                if keys_changed:
                    join_key = INTRADAY_JOIN_KEYS[view]
                    rows[view] = [
                        {join_key: key, EVENT_TS: moment, **self._features(view, key), SOURCE_DATE: day}
                        for key, day in sorted(keys_changed.items())
                    ]
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
