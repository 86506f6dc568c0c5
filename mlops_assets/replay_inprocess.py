"""``mlops-assets replay --driver in-process``: land one day at a time and tick the replay's sensors and the automation
conditions in this process (``automation_ticks.InProcessAutomation``) until they request nothing more, then record
the day exactly as the daemon driver does (``cli.day_record``) from the instance and the registry.

The CLI starts this module as a child process with ``MLOPS_DATA_DIR`` and ``DAGSTER_HOME`` in its environment,
because the definitions read their settings at import. Run it through ``mlops-assets replay``, not directly.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg

from mlops_assets.automation_ticks import AUTOMATION_SENSOR, InProcessAutomation, Launched
from mlops_assets.cli import REPLAY_SENSORS, day_record, registered_model_tags, run_replay
from mlops_assets.lib.landing import days_between, land_days
from mlops_assets.lib.replay import ReplayDay
from mlops_assets.lib.replay_daemon import Run


def _runs(instance: dg.DagsterInstance, launched: list[Launched]) -> list[Run]:
    """The launched runs in the form the daemon driver reads them from GraphQL."""
    if not launched:
        return []
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=[run.run_id for run in launched]))
    return [
        Run(
            run_id=record.dagster_run.run_id,
            job=record.dagster_run.job_name,
            status=record.dagster_run.status.value,
            created=record.create_timestamp.timestamp(),
            ended=record.end_time,
            tags=dict(record.dagster_run.tags),
            assets=tuple(key.to_user_string() for key in record.dagster_run.asset_selection or ()),
        )
        for record in records
    ]


def _day_profile(instance: dg.DagsterInstance, key: dg.AssetKey, day: date, since: float) -> tuple[bool, dict]:
    """(drift_profile's partition for ``day`` materialised since ``since``, the newest figures recorded for it): a
    one-day run records them on the materialisation, a range run as one observation per day."""
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()])
    events = [
        *instance.fetch_materializations(records_filter, limit=1).records,
        *instance.fetch_observations(records_filter, limit=1).records,
    ]
    fresh = any(e.asset_materialization is not None and e.timestamp >= since for e in events)
    with_figures = sorted(
        (e for e in events if "rows" in (e.asset_materialization or e.asset_observation).metadata),  # type: ignore[union-attr]
        key=lambda e: e.timestamp,
        reverse=True,
    )
    if not with_figures:
        return fresh, {}
    event = with_figures[0].asset_materialization or with_figures[0].asset_observation
    return fresh, {name: value.value for name, value in event.metadata.items()}  # type: ignore[union-attr]


def _runs_to_log(path: Path) -> Callable[[str], None]:
    """Send this child's standard output and error (the runs' step logs, dbt's output, library warnings) to
    ``path``, and return what prints a line of the replay's own progress on the terminal. The runs' events stay in
    the instance."""
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    sys.stderr.flush()
    with path.open("a") as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
    return lambda line: print(line, file=terminal, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start", type=date.fromisoformat)
    parser.add_argument("end", type=date.fromisoformat)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-ticks", type=int, default=25)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    echo = _runs_to_log(out / "replay-runs.log")
    echo(f"run logs: {out / 'replay-runs.log'}")

    from mlflow.tracking import MlflowClient

    from mlops_assets.definitions import defs
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.defs.monitoring.assets import DRIFT_PROFILE_KEY
    from mlops_assets.defs.resources import build_resources

    settings = SETTINGS
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri)
    with dg.DagsterInstance.get() as instance:
        driver = InProcessAutomation(
            defs, instance, [name for name in REPLAY_SENSORS if name != AUTOMATION_SENSOR], build_resources(settings)
        )

        # What the instance asks for before the first day lands (the daemon's first ticks, before the replay lands
        # anything): it also records the state the history left, so the first landed day is a change.
        backlog = driver.settle(args.max_ticks)
        echo(f"before the first day: {len(backlog.launched)} run(s) requested by the history's own state")

        def replay_one(day: date) -> ReplayDay:
            before = registered_model_tags(client, settings.registered_model_name)
            started = time.time()
            land_days(settings.landing_root, day, day)

            def progress(ticks: int, launched: list[Launched]) -> None:
                failed = sum(1 for run in launched if not run.success)
                echo(f"  {day}: tick {ticks}, {len(launched)} run(s) so far ({failed} failed)")

            outcome = driver.settle(args.max_ticks, progress)
            profiled, metadata = _day_profile(instance, DRIFT_PROFILE_KEY, day, started)
            after = registered_model_tags(client, settings.registered_model_name)
            status = "ok" if outcome.settled else "unsettled"
            return day_record(
                day, started, _runs(instance, outcome.launched), status, profiled, metadata, before, after
            )

        return run_replay(list(days_between(args.start, args.end)), settings.drift_threshold, out, replay_one, echo)


if __name__ == "__main__":
    raise SystemExit(main())
