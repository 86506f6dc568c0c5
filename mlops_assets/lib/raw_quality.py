"""The quality gate of the daily raw tables: every rule that defines a good row, checked before anything is published.

A delivery (one landed CSV of one table for one day) goes through two kinds of rules:

- **Table rules** fail the whole delivery, because no single row is to blame: an empty file, bytes that are not
  UTF-8, a truncated file (no final line break), a header without rows, a missing, renamed or doubled column, too many
  bad rows. They raise :class:`DeliveryError`, whose message names the file, the column, the rule and the fix.
- **Row rules** quarantine a row and keep the rest: a value of the wrong type (overflow and non-finite numbers
  included), a missing required value, a value out of range, columns that contradict each other, a row of another day,
  a duplicated row or key. Each rule is one named polars expression with a fix (``FLIGHT_RULES``/``WEATHER_RULES``);
  one vectorised pass evaluates all of them, which keeps a year of files (730) to a few seconds on two cores.

The rules were measured on the whole real 2013 year (``mlops_assets_tests/test_raw_quality.py``): it passes with one
quarantined row, the EWR weather reading of 2013-02-12 03:00 with a wind speed of 1048 mph. Real details the rules
accept on purpose: ``dep_time``/``arr_time`` of 2400 (midnight at the end of the day, 29 and 150 rows in 2013),
``(origin, year, month, day, hour)`` repeated in weather at the autumn daylight-saving change (the key is
``(origin, time_hour)``), and a header-only weather file (no observation that day: 2013-12-31).

Row numbers are 1-based data rows: the first row after the header is row 1.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from mlops_assets.lib.raw_tables import (
    NULL_TOKENS,
    RAW_SCHEMAS,
    REQUIRED_VALUES,
    TABLES_WITH_QUIET_DAYS,
    TIMESTAMP_FORMAT,
    UTC_TIMESTAMP,
)

NEW_YORK = "America/New_York"
NYC_AIRPORTS: tuple[str, ...] = ("EWR", "JFK", "LGA")
BOM = "\ufeff"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# Keys that identify one row of a day; two rows sharing one with different values cannot both be right.
DAY_KEYS: dict[str, tuple[str, ...]] = {
    "flights": ("year", "month", "day", "carrier", "flight", "origin"),
    # (origin, year, month, day, hour) repeats at the autumn daylight-saving change; the UTC hour does not.
    "weather": ("origin", "time_hour"),
}


class DeliveryError(ValueError):
    """A table rule failed: nothing of this delivery may be published. The message names column, rule and fix."""

    def __init__(self, source: str, column: str | None, rule: str, detail: str, fix: str) -> None:
        self.source, self.column, self.rule, self.detail, self.fix = source, column, rule, detail, fix
        where = f"column {column!r}, " if column else ""
        super().__init__(f"{source}: {where}rule {rule}: {detail}; fix: {fix}")


@dataclass(frozen=True)
class RowRule:
    """One property of a good row. ``bad`` is True where a row breaks it (null = not judged here)."""

    name: str
    column: str
    bad: Callable[[date | None], pl.Expr]
    fix: str


@dataclass(frozen=True)
class Delivery:
    """A delivery that passed its table rules: the good rows to publish and the bad rows to quarantine."""

    table: str
    source: str
    good: pl.DataFrame
    quarantine: pl.DataFrame
    total_rows: int
    extra_columns: tuple[str, ...]
    rule_counts: dict[str, int] = field(default_factory=dict)
    fixes: dict[str, str] = field(default_factory=dict)

    @property
    def bad_rows(self) -> int:
        return self.quarantine.height

    def warnings(self) -> list[str]:
        notes = []
        if self.extra_columns:
            notes.append(
                f"{self.source}: unexpected column(s) {', '.join(self.extra_columns)} ignored; the {self.table} "
                "contract does not use them (ask upstream, or add them to the contract in lib/raw_tables.py)"
            )
        if self.bad_rows:
            counts = "; ".join(
                f"{rule}: {count} (fix: {self.fixes[rule]})" for rule, count in sorted(self.rule_counts.items())
            )
            notes.append(f"{self.source}: {self.bad_rows} of {self.total_rows} row(s) quarantined ({counts})")
        return notes


QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "row": pl.Int64(),
    "rules": pl.List(pl.String()),
    "detail": pl.String(),
    "record": pl.String(),
}


# ---------------------------------------------------------------------------------------------------------------
# Rule building blocks


def _hhmm_bad(column: str, allow_2400: bool) -> Callable[[date | None], pl.Expr]:
    def bad(_: date | None) -> pl.Expr:
        value = pl.col(column)
        valid = value.is_between(0, 2359) & (value % 100 < 60)
        if allow_2400:
            valid = valid | (value == 2400)
        return ~valid

    return bad


def _outside(column: str, low: float, high: float, low_open: bool = False) -> Callable[[date | None], pl.Expr]:
    def bad(_: date | None) -> pl.Expr:
        value = pl.col(column)
        return ~value.is_between(low, high, closed="right" if low_open else "both")

    return bad


def _not_matching(column: str, pattern: str) -> Callable[[date | None], pl.Expr]:
    return lambda _: ~pl.col(column).str.contains(pattern)


def _minutes(column: str) -> pl.Expr:
    """HHMM as minutes after midnight (2400 → 1440)."""
    return (pl.col(column) // 100) * 60 + pl.col(column) % 100


def _delay_mismatch(time_col: str, sched_col: str, delay_col: str) -> Callable[[date | None], pl.Expr]:
    # Delays wrap past midnight (a flight due at 23:50 leaving at 00:10 is 20 minutes late), so compare modulo a day.
    return lambda _: ((_minutes(time_col) - _minutes(sched_col) - pl.col(delay_col)) % 1440) != 0


def _off_day(partition: date | None) -> pl.Expr:
    if partition is None:
        return pl.lit(False)
    return (pl.col("year") != partition.year) | (pl.col("month") != partition.month) | (pl.col("day") != partition.day)


def _time_hour_off_local_hour(_: date | None) -> pl.Expr:
    local = pl.col("time_hour").dt.convert_time_zone(NEW_YORK)
    return (
        (local.dt.year() != pl.col("year"))
        | (local.dt.month() != pl.col("month"))
        | (local.dt.day() != pl.col("day"))
        | (local.dt.hour() != pl.col("hour"))
    )


def _only_one_null(first: str, second: str) -> Callable[[date | None], pl.Expr]:
    return lambda _: pl.col(first).is_null() != pl.col(second).is_null()


RE_EXPORT = "fix the upstream export and re-land the day"

FLIGHT_RULES: tuple[RowRule, ...] = (
    RowRule("on_partition_day", "year,month,day", _off_day, "land each day's rows in that day's file"),
    RowRule("month_range", "month", _outside("month", 1, 12), RE_EXPORT),
    RowRule("day_range", "day", _outside("day", 1, 31), RE_EXPORT),
    RowRule("hhmm", "sched_dep_time", _hhmm_bad("sched_dep_time", False), "write HHMM 0000-2359, minutes < 60"),
    RowRule("hhmm", "sched_arr_time", _hhmm_bad("sched_arr_time", False), "write HHMM 0000-2359, minutes < 60"),
    # 2400 is how the source writes a departure or arrival at midnight ending the day (29 and 150 rows in 2013).
    RowRule("hhmm", "dep_time", _hhmm_bad("dep_time", True), "write HHMM 0000-2400, minutes < 60"),
    RowRule("hhmm", "arr_time", _hhmm_bad("arr_time", True), "write HHMM 0000-2400, minutes < 60"),
    RowRule("hour_range", "hour", _outside("hour", 0, 23), RE_EXPORT),
    RowRule("minute_range", "minute", _outside("minute", 0, 59), RE_EXPORT),
    RowRule("flight_range", "flight", _outside("flight", 1, 9999), "flight numbers run 1-9999; " + RE_EXPORT),
    # The longest US domestic route is under 5,100 miles (2013 max: 4,983).
    RowRule("distance_range", "distance", _outside("distance", 0, 5100, low_open=True), "distance is > 0 miles"),
    RowRule("air_time_range", "air_time", _outside("air_time", 0, 900, low_open=True), "air_time is 1-900 minutes"),
    # Departures more than 2 hours early or 2 days late are not delays but wrong dates (2013: -43 .. 1301 min).
    RowRule("delay_range", "dep_delay", _outside("dep_delay", -120, 2880), "delays run -120 .. 2880 minutes"),
    RowRule("delay_range", "arr_delay", _outside("arr_delay", -180, 2880), "delays run -180 .. 2880 minutes"),
    RowRule("code", "carrier", _not_matching("carrier", r"^[A-Z0-9]{2}$"), "carrier is a 2-character IATA code"),
    RowRule("nyc_origin", "origin", lambda _: ~pl.col("origin").is_in(NYC_AIRPORTS), "origin is one of EWR, JFK, LGA"),
    RowRule("code", "dest", _not_matching("dest", r"^[A-Z]{3}$"), "dest is a 3-letter FAA code"),
    RowRule("code", "tailnum", _not_matching("tailnum", r"^[A-Z0-9]{2,7}$"), "tailnum is 2-7 capital letters/digits"),
    RowRule("origin_not_dest", "origin,dest", lambda _: pl.col("origin") == pl.col("dest"), RE_EXPORT),
    RowRule(
        "schedule_hour_minute",
        "hour,minute,sched_dep_time",
        lambda _: pl.col("hour") * 100 + pl.col("minute") != pl.col("sched_dep_time"),
        "hour and minute are sched_dep_time split",
    ),
    RowRule(
        "time_hour_local_hour",
        "time_hour",
        _time_hour_off_local_hour,
        "time_hour is the UTC instant of year-month-day hour:00 in New York",
    ),
    RowRule(
        "delay_matches_times",
        "dep_delay",
        _delay_mismatch("dep_time", "sched_dep_time", "dep_delay"),
        "dep_delay = dep_time - sched_dep_time",
    ),
    RowRule(
        "delay_matches_times",
        "arr_delay",
        _delay_mismatch("arr_time", "sched_arr_time", "arr_delay"),
        "arr_delay = arr_time - sched_arr_time",
    ),
    # Cancelled flights have neither dep_time nor dep_delay; diverted ones depart but have no arr_delay/air_time.
    RowRule("null_together", "dep_time,dep_delay", _only_one_null("dep_time", "dep_delay"), RE_EXPORT),
    RowRule("null_together", "arr_delay,air_time", _only_one_null("arr_delay", "air_time"), RE_EXPORT),
    RowRule(
        "arrival_needs_departure",
        "arr_time,dep_time",
        lambda _: pl.col("arr_time").is_not_null() & pl.col("dep_time").is_null(),
        RE_EXPORT,
    ),
    RowRule(
        "arr_delay_needs_arr_time",
        "arr_delay,arr_time",
        lambda _: pl.col("arr_delay").is_not_null() & pl.col("arr_time").is_null(),
        RE_EXPORT,
    ),
    # Ground speed between 60 and 750 mph (2013: 77 .. 703): outside, distance or air_time is wrong.
    RowRule(
        "plausible_speed",
        "distance,air_time",
        lambda _: ~(pl.col("distance") / pl.col("air_time") * 60).is_between(60, 750),
        "check distance and air_time",
    ),
)

WEATHER_RULES: tuple[RowRule, ...] = (
    RowRule("on_partition_day", "year,month,day", _off_day, "land each day's rows in that day's file"),
    RowRule("nyc_origin", "origin", lambda _: ~pl.col("origin").is_in(NYC_AIRPORTS), "origin is one of EWR, JFK, LGA"),
    RowRule("hour_range", "hour", _outside("hour", 0, 23), RE_EXPORT),
    RowRule("temp_range", "temp", _outside("temp", -40, 130), "temp is -40 .. 130 °F"),
    RowRule("dewp_range", "dewp", _outside("dewp", -60, 100), "dewp is -60 .. 100 °F"),
    RowRule("humid_range", "humid", _outside("humid", 0, 100), "humid is 0 .. 100 %"),
    RowRule("wind_dir_range", "wind_dir", _outside("wind_dir", 0, 360), "wind_dir is 0 .. 360 degrees"),
    # 2013 holds one 1048 mph reading (EWR, 2013-02-12 03:00); the strongest real gust that year is 67 mph.
    RowRule("wind_speed_range", "wind_speed", _outside("wind_speed", 0, 150), "wind_speed is 0 .. 150 mph"),
    RowRule("wind_gust_range", "wind_gust", _outside("wind_gust", 0, 200), "wind_gust is 0 .. 200 mph"),
    RowRule("precip_range", "precip", _outside("precip", 0, 10), "precip is 0 .. 10 inches an hour"),
    RowRule("pressure_range", "pressure", _outside("pressure", 900, 1100), "pressure is 900 .. 1100 mbar"),
    RowRule("visib_range", "visib", _outside("visib", 0, 10), "visib is 0 .. 10 miles"),
    RowRule("dewpoint_not_above_temp", "dewp,temp", lambda _: pl.col("dewp") > pl.col("temp"), "dewp is at most temp"),
    RowRule(
        "gust_not_below_speed",
        "wind_gust,wind_speed",
        lambda _: pl.col("wind_gust") < pl.col("wind_speed"),
        "wind_gust is at least wind_speed",
    ),
    RowRule(
        "time_hour_local_hour",
        "time_hour",
        _time_hour_off_local_hour,
        "time_hour is the UTC instant of year-month-day hour:00 in New York",
    ),
)

ROW_RULES: dict[str, tuple[RowRule, ...]] = {"flights": FLIGHT_RULES, "weather": WEATHER_RULES}

TYPE_FIX = "write the value as the contract's type, or NA for an optional value"
REQUIRED_FIX = "every row needs this value; fix the upstream export and re-land the day"
KEY_FIX = "send each key once a day; fix the upstream export and re-land the day"
FIELD_COUNT_FIX = "quote fields that contain commas or line breaks; re-land the day"


# ---------------------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Text:
    header: list[str]
    rows: list[list[str]]


def _decode(content: bytes, source: str) -> str:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise DeliveryError(
            source,
            None,
            "encoding",
            f"byte {content[exc.start : exc.start + 1]!r} at offset {exc.start} (line {line}) is not UTF-8",
            "re-export the file as UTF-8 and re-land the day",
        ) from exc
    # A byte-order mark is legal UTF-8 that some exporters (Excel) write first; it is not part of the first name.
    return text.removeprefix(BOM)


def _read_text(content: bytes, table: str, source: str) -> _Text:
    if not content.strip():
        raise DeliveryError(source, None, "empty_file", "the file has no header and no rows", "re-land the day")
    text = _decode(content, source)
    # Every writer of the landing zone ends each row with a line break; a file without one was cut off mid-write.
    if not text.endswith("\n"):
        last = text.rsplit("\n", 1)[-1]
        raise DeliveryError(
            source,
            None,
            "truncated",
            f"the file does not end with a line break (last line: {last[:60]!r}); the delivery was cut off",
            "re-land the complete file",
        )
    # csv (not polars) so each record keeps its own field count: a short row is the row's fault, not the file's.
    records = list(csv.reader(io.StringIO(text, newline="")))
    records = [record for record in records if record]  # csv yields [] for a blank line
    if not records:
        raise DeliveryError(source, None, "empty_file", "the file has only blank lines", "re-land the day")
    header = records[0]
    doubled = sorted(name for name, count in Counter(header).items() if count > 1)
    if doubled:
        raise DeliveryError(
            source, doubled[0], "duplicate_column", "the header names the column twice", "export each column once"
        )
    schema = RAW_SCHEMAS[table]
    missing = [name for name in schema if name not in header]
    if missing:
        extra = [name for name in header if name not in schema]
        renamed = f"; the file has column(s) {', '.join(extra)} instead (renamed upstream?)" if extra else ""
        raise DeliveryError(
            source,
            missing[0],
            "missing_column",
            f"missing column(s) {', '.join(missing)}{renamed}",
            f"export the {table} contract's columns ({', '.join(schema)}) with these names; extra columns are ignored",
        )
    return _Text(header=header, rows=records[1:])


# ---------------------------------------------------------------------------------------------------------------
# Typing


def _cast(name: str, dtype: pl.DataType) -> pl.Expr:
    """Cast a text column; a value that does not fit becomes null (the caller reports it as a type failure)."""
    raw = pl.col(name)
    if dtype == UTC_TIMESTAMP:
        return raw.str.to_datetime(format=TIMESTAMP_FORMAT, time_zone="UTC", time_unit="us", strict=False)
    if dtype.is_integer():
        # Whole floats ("517.0") are accepted: some exporters write integers that way. Overflow and inf are not.
        as_float = raw.str.strip_chars().cast(pl.Float64, strict=False)
        whole = as_float.is_finite() & (as_float == as_float.round(0)) & as_float.is_between(INT32_MIN, INT32_MAX)
        return pl.when(whole).then(as_float).otherwise(None).cast(dtype)
    if dtype.is_float():
        as_float = raw.str.strip_chars().cast(pl.Float64, strict=False)
        # "1e400" parses as inf: a value no instrument reports, so it is a type failure, not a number.
        return pl.when(as_float.is_finite()).then(as_float).otherwise(None)
    return raw


def _describe(dtype: pl.DataType) -> str:
    if dtype == UTC_TIMESTAMP:
        return f"a UTC timestamp like 2013-01-01T05:00:00Z ({TIMESTAMP_FORMAT})"
    if dtype.is_integer():
        return "a whole number that fits 32 bits"
    if dtype.is_float():
        return "a finite number"
    return str(dtype)


# ---------------------------------------------------------------------------------------------------------------
# The gate


def inspect_delivery(content: bytes, table: str, partition: date | None, source: str, file_label: str) -> Delivery:
    """Apply every table and row rule to one landed file; raise :class:`DeliveryError` when a table rule fails.

    ``source`` names the file in messages; ``file_label`` (e.g. ``flights/2013-03-01.csv``) is what the quarantine
    stores, so quarantine files do not depend on where the landing zone is mounted.
    """
    schema = RAW_SCHEMAS[table]
    text = _read_text(content, table, source)
    if not text.rows and table not in TABLES_WITH_QUIET_DAYS:
        raise DeliveryError(
            source, None, "header_only", "the file has a header but no rows", "re-land the day from the upstream system"
        )
    width = len(text.header)
    positions = {name: text.header.index(name) for name in schema}
    null_tokens = set(NULL_TOKENS)

    def cell(record: list[str], index: int) -> str | None:
        value = record[index] if index < len(record) else None
        return None if value is None or value in null_tokens else value

    columns = {name: [cell(record, index) for record in text.rows] for name, index in positions.items()}
    raw = pl.DataFrame({name: pl.Series(name, values, dtype=pl.String) for name, values in columns.items()})
    if raw.width == 0:  # pragma: no cover - every contract has columns
        raise DeliveryError(source, None, "empty_contract", "no contract columns", "fix lib/raw_tables.py")

    # rule label -> boolean Series of rows that break it; labels are "rule(column)" so a reader sees both.
    failures: dict[str, pl.Series] = {}
    fixes: dict[str, str] = {}
    details: dict[str, Callable[[int], str]] = {}

    ragged = pl.Series([len(record) != width for record in text.rows], dtype=pl.Boolean)
    if ragged.any():
        failures["field_count"] = ragged
        fixes["field_count"] = FIELD_COUNT_FIX
        details["field_count"] = lambda i: f"{len(text.rows[i])} fields, header has {width}"

    typed_frame = raw.select([_cast(name, dtype).alias(name) for name, dtype in schema.items()])
    type_verdicts = pl.DataFrame(
        {name: raw.get_column(name).is_not_null() & typed_frame.get_column(name).is_null() for name in schema}
    )
    for name, dtype in schema.items():
        bad_type = type_verdicts.get_column(name)
        if bad_type.any():
            label = f"type({name})"
            failures[label] = bad_type
            fixes[label] = f"{name} is {_describe(dtype)}; {TYPE_FIX}"
            details[label] = lambda i, n=name: f"{n}={raw.get_column(n)[i]!r}"

    for name in REQUIRED_VALUES[table]:
        # Only values that were absent: a present value that failed its type is already reported as type().
        missing = raw.get_column(name).is_null()
        if missing.any():
            label = f"required({name})"
            failures[label] = missing
            fixes[label] = f"{name}: {REQUIRED_FIX}"
            details[label] = lambda i, n=name: f"{n} is empty"

    rules = ROW_RULES.get(table, ())
    if rules and typed_frame.height:
        verdicts = typed_frame.select(
            [rule.bad(partition).fill_null(False).alias(str(index)) for index, rule in enumerate(rules)]
        )
        for index, rule in enumerate(rules):
            verdict = verdicts.get_column(str(index))
            # A value that failed its type is null in the typed frame; rules over it would only echo the type failure.
            for name in rule.column.split(","):
                verdict = verdict & ~type_verdicts.get_column(name)
            if verdict.any():
                label = f"{rule.name}({rule.column})"
                failures[label] = verdict if label not in failures else failures[label] | verdict
                fixes[label] = rule.fix
                details[label] = lambda i, c=rule.column: ", ".join(
                    f"{n}={typed_frame.get_column(n)[i]}" for n in c.split(",")
                )

    # Exact copies: the first is kept, the others quarantined. Then rows sharing a key with different values are
    # all quarantined: nothing tells which one is right.
    if typed_frame.height:
        copy = typed_frame.select(~pl.struct(pl.all()).is_first_distinct()).to_series()
        if copy.any():
            failures["duplicate_row"] = copy
            fixes["duplicate_row"] = "send each row once; re-land the day"
            details["duplicate_row"] = lambda i: "an exact copy of an earlier row"
        keys = list(DAY_KEYS.get(table, ()))
        if keys:
            distinct = typed_frame.filter(~copy) if copy.any() else typed_frame
            key_counts = distinct.group_by(keys).len().filter(pl.col("len") > 1)
            if key_counts.height:
                shared = typed_frame.join(key_counts, on=keys, how="left", nulls_equal=True)["len"].is_not_null()
                shared = shared & ~copy
                label = f"unique_key({','.join(keys)})"
                failures[label] = shared
                fixes[label] = KEY_FIX
                details[label] = lambda i: ", ".join(f"{k}={typed_frame.get_column(k)[i]}" for k in keys)

    bad_mask = pl.Series([False] * typed_frame.height, dtype=pl.Boolean)
    for verdict in failures.values():
        bad_mask = bad_mask | verdict
    bad_index = bad_mask.arg_true().to_list()
    rule_counts = {label: int(verdict.sum()) for label, verdict in failures.items()}

    quarantine_rows = []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="")
    for i in bad_index:
        broken = [label for label, verdict in failures.items() if verdict[i]]
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(text.rows[i])
        quarantine_rows.append(
            {
                "file": file_label,
                "row": i + 1,
                "rules": broken,
                "detail": "; ".join(f"{label}: {details[label](i)}" for label in broken),
                "record": buffer.getvalue(),
            }
        )
    quarantine = pl.DataFrame(quarantine_rows, schema=QUARANTINE_SCHEMA)
    extra = tuple(name for name in text.header if name not in schema)
    return Delivery(
        table=table,
        source=source,
        good=typed_frame.filter(~bad_mask),
        quarantine=quarantine,
        total_rows=typed_frame.height,
        extra_columns=extra,
        rule_counts=rule_counts,
        fixes=fixes,
    )


def enforce_bad_share(delivery: Delivery, max_bad_share: float, min_tolerated_bad_rows: int) -> None:
    """Fail the delivery when too many rows are bad: a systematic defect, not a stray row, so nothing is published.

    Up to ``max(max_bad_share * rows, min_tolerated_bad_rows)`` bad rows are quarantined and the rest published; the
    floor keeps one bad reading among the ~72 hourly weather rows of a day from failing the day.
    """
    allowed = max(max_bad_share * delivery.total_rows, min_tolerated_bad_rows)
    if delivery.bad_rows and (delivery.bad_rows > allowed or delivery.good.height == 0):
        label, count = max(delivery.rule_counts.items(), key=lambda item: item[1])  # ties: the first rule
        column = label[label.find("(") + 1 : -1] if "(" in label else None
        others = ", ".join(f"{name} {n}" for name, n in sorted(delivery.rule_counts.items()) if name != label)
        share = delivery.bad_rows / delivery.total_rows
        first = delivery.quarantine.filter(pl.col("rules").list.contains(label)).row(0, named=True)
        raise DeliveryError(
            delivery.source,
            column,
            f"max_bad_share (worst rule {label})",
            f"{delivery.bad_rows} of {delivery.total_rows} row(s) are bad ({share:.1%} > {max_bad_share:.1%} allowed); "
            f"{label} broken by {count} row(s), first row {first['row']} "
            f"({first['detail']})" + (f"; also {others}" if others else ""),
            f"{delivery.fixes[label]}; or raise max_bad_share in the run config of the raw assets",
        )


def check_redelivery(delivery: Delivery, published_rows: int | None) -> None:
    """An empty re-delivery never replaces a partition that has rows (a quiet weather day is only quiet once)."""
    if delivery.good.height == 0 and published_rows:
        raise DeliveryError(
            delivery.source,
            None,
            "empty_redelivery",
            f"the delivery has no rows but the published partition has {published_rows}; keeping it",
            "re-land the day with its rows (or delete the partition on purpose if the day really has none)",
        )
