"""Landing sensor: a day whose flights and weather files have both landed (new or re-landed) requests its partitions.

A day with only one table landed waits for the other; ``LANDING_WAIT`` (6 h after the newest file of the day) later it
is requested anyway, in a run of its own, where the missing table's raw asset fails with the file it could not find.
"""

import json
import time
from datetime import date

import dagster as dg

from mlops_assets.defs.common import LakeResource, daily_partitions
from mlops_assets.lib.io import modified_times, read_bytes, sha256_hex
from mlops_assets.lib.landing import LANDING_WAIT, classify_days, contiguous_ranges
from mlops_assets.lib.source import DAILY_TABLES, DIMENSION_TABLES

raw_daily_job = dg.define_asset_job(
    "raw_daily_job",
    selection=dg.AssetSelection.assets(*[["raw", table] for table in DAILY_TABLES]),
)
raw_dimensions_job = dg.define_asset_job(
    "raw_dimensions_job",
    selection=dg.AssetSelection.assets(*[["raw", table] for table in DIMENSION_TABLES]),
)


def _landed_state(lake: LakeResource) -> dict[str, float]:
    state: dict[str, float] = {}
    for table in (*DAILY_TABLES, *DIMENSION_TABLES):
        for name, modified in modified_times(f"{lake.landing_root.rstrip('/')}/{table}", ".csv").items():
            state[f"{table}/{name}"] = modified
    return state


# The cursor's entry holding the content digest of each landed dimension file (the others are file -> mtime).
DIMENSION_DIGESTS = "dimension_sha256"


def _redelivered_dimensions(
    lake: LakeResource, changed: list[str], digests: dict[str, str]
) -> tuple[set[str], dict[str, str]]:
    """Of the dimension files among ``changed`` (a new mtime), those whose content is the digest already seen: the
    upstream re-delivers every dimension with every landing, and an identical file is not a change (without this,
    every landed day rebuilt every dimension and its dbt models). Returns them and the digests now landed."""
    same: set[str] = set()
    now = dict(digests)
    for name in changed:
        if name.split("/", 1)[0] not in DIMENSION_TABLES:
            continue
        now[name] = sha256_hex(read_bytes(f"{lake.landing_root.rstrip('/')}/{name}"))
        if digests.get(name) == now[name]:
            same.add(name)
    return same, now


def _day_of(name: str) -> date | None:
    try:
        return date.fromisoformat(name.split("/", 1)[1].removesuffix(".csv"))
    except ValueError:
        return None


def _range_request(first: date, last: date, tags: dict[str, str] | None = None) -> dg.RunRequest:
    return dg.RunRequest(
        job_name=raw_daily_job.name,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
            **(tags or {}),
        },
    )


def _materialised_at(instance: dg.DagsterInstance, table: str, partitions: list[str]) -> dict[str | None, float]:
    """When each of ``partitions`` of raw/``table`` (a dimension: its single partition, None) was last
    materialised, in epoch seconds; absent when never."""
    records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey(["raw", table]), asset_partitions=partitions or None)
    newest: dict[str | None, float] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=1000, cursor=cursor)
        for record in page.records:
            key = record.partition_key
            newest[key] = max(newest.get(key, 0.0), record.timestamp)
        if not page.has_more:
            return newest
        cursor = page.cursor


def _already_ingested(instance: dg.DagsterInstance, names: list[str], current: dict[str, float]) -> set[str]:
    """The landed files among ``names`` (not in the cursor) whose raw partition was materialised after the file last
    changed: ingested already, by a run the sensor did not request (a CLI backfill, or before this sensor's cursor
    was reset). Without this, a sensor starting on an ingested landing zone requests every landed day again."""
    by_table: dict[str, dict[str | None, str]] = {}
    for name in names:
        table = name.split("/", 1)[0]
        day = _day_of(name) if table in DAILY_TABLES else None
        if table in DAILY_TABLES and day is None:
            continue
        by_table.setdefault(table, {})[day.isoformat() if day else None] = name
    ingested: set[str] = set()
    for table, by_partition in by_table.items():
        partitions = [key for key in by_partition if key is not None]
        materialised = _materialised_at(instance, table, partitions)
        for key, name in by_partition.items():
            if materialised.get(key, 0.0) > current[name]:
                ingested.add(name)
    return ingested


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


@dg.sensor(
    jobs=[raw_daily_job, raw_dimensions_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Requests the raw partitions of every day whose landed files are new or changed, once both its flights and "
        f"weather files are there (or {_hours(LANDING_WAIT.total_seconds())} after the newest one landed)."
    ),
)
def landing_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    seen: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    seen_digests: dict[str, str] = seen.pop(DIMENSION_DIGESTS, {})  # type: ignore[assignment]
    current = _landed_state(lake)
    changed = [name for name, mtime in current.items() if seen.get(name) != mtime]
    redelivered, digests = _redelivered_dimensions(lake, changed, seen_digests)
    changed = [name for name in changed if name not in redelivered]
    unseen = [name for name in changed if name not in seen]
    if unseen:
        ingested = _already_ingested(context.instance, unseen, current)
        changed = [name for name in changed if name not in ingested]
    valid_keys = set(daily_partitions.get_partition_keys())

    landed: dict[date, dict[str, float]] = {}
    for name, mtime in current.items():
        table = name.split("/", 1)[0]
        day = _day_of(name) if table in DAILY_TABLES else None
        if day is not None:
            landed.setdefault(day, {})[table] = mtime

    changed_days: set[date] = set()
    dimensions_changed = False
    for name in changed:
        table = name.split("/", 1)[0]
        if table in DIMENSION_TABLES:
            dimensions_changed = True
            continue
        day = _day_of(name)
        if day is None:
            context.log.warning(f"ignoring landed file {name}: the name is not a YYYY-MM-DD.csv day")
        elif day.isoformat() in valid_keys:
            changed_days.add(day)

    readiness = classify_days(changed_days, landed, DAILY_TABLES, now=time.time())
    requests = [_range_request(first, last) for first, last in contiguous_ranges(readiness.ready)]
    for day, (missing, age) in readiness.overdue.items():
        message = (
            f"day {day.isoformat()}: {', '.join(missing)} not landed {_hours(age)} after the day's other file "
            f"(wait {_hours(LANDING_WAIT.total_seconds())}); requesting it alone so that asset raw/{missing[0]} "
            f"fails naming the missing file; land it with `mlops-assets land {day.isoformat()}`"
        )
        context.log.warning(message)
        # A run of its own: a range run publishes nothing when one day fails, and this day will fail.
        requests.append(_range_request(day, day, {"mlops/landing_timeout": ",".join(missing)}))
    if dimensions_changed:
        requests.insert(0, dg.RunRequest(run_key=None, job_name=raw_dimensions_job.name))

    # Files of waiting days stay out of the cursor so that they count as changed again on the next evaluation.
    waiting_names = {f"{table}/{day.isoformat()}.csv" for day in readiness.waiting for table in DAILY_TABLES}
    cursor = {name: mtime for name, mtime in current.items() if name not in waiting_names}
    cursor.update({name: mtime for name, mtime in seen.items() if name in waiting_names})
    cursor[DIMENSION_DIGESTS] = digests  # type: ignore[assignment]
    waiting = "waiting for " + "; ".join(
        f"{', '.join(missing)} of {day.isoformat()} ({_hours(age)} since the day's other file, requested when it "
        f"lands or after {_hours(LANDING_WAIT.total_seconds())})"
        for day, (missing, age) in readiness.waiting.items()
    )
    if readiness.waiting:
        context.log.info(waiting)
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps(cursor, sort_keys=True),
        skip_reason=waiting if readiness.waiting and not requests else None,
    )
