"""Landing sensor: a newly landed (or re-landed) file requests the matching raw partition."""

import json
from datetime import date

import dagster as dg

from mlops_assets.defs.common import LakeResource, daily_partitions
from mlops_assets.lib.landing import contiguous_ranges
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
        folder = lake.landing_path() / table
        if folder.is_dir():
            for path in folder.glob("*.csv"):
                state[f"{table}/{path.name}"] = path.stat().st_mtime
    return state


@dg.sensor(
    jobs=[raw_daily_job, raw_dimensions_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the raw partition of every day whose landed files are new or changed.",
)
def landing_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    seen: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    current = _landed_state(lake)
    changed = [name for name, mtime in current.items() if seen.get(name) != mtime]
    valid_keys = set(daily_partitions.get_partition_keys())
    days: set[date] = set()
    dimensions_changed = False
    for name in changed:
        table, filename = name.split("/", 1)
        if table in DIMENSION_TABLES:
            dimensions_changed = True
            continue
        try:
            day = date.fromisoformat(filename.removesuffix(".csv"))
        except ValueError:
            context.log.warning(f"ignoring landed file {name}: the name is not a YYYY-MM-DD.csv day")
            continue
        if day.isoformat() in valid_keys:
            days.add(day)
    requests = [
        dg.RunRequest(
            job_name=raw_daily_job.name,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
        for first, last in contiguous_ranges(sorted(days))
    ]
    if dimensions_changed:
        requests.insert(0, dg.RunRequest(run_key=None, job_name=raw_dimensions_job.name))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current))
