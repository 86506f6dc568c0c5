"""``mlops-assets``: operator commands that sit beside Dagster (landing replay)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import date, datetime, time

from mlops_assets.lib.landing import land_days
from mlops_assets.settings import load_settings


def _land(args: argparse.Namespace) -> int:
    settings = load_settings()
    start: date = args.start
    end: date = args.to or start
    landed = land_days(settings.landing_dir, start, end)
    rows = Counter()
    files = Counter()
    for item in landed:
        rows[item.table] += item.rows
        files[item.table] += 1
    print(f"landed {start} .. {end} into {settings.landing_dir}")
    for table in sorted(files):
        print(f"  {table:<9} {files[table]:>4} file(s) {rows[table]:>8,} row(s)")
    return 0


def _training_week(args: argparse.Namespace) -> int:
    from mlops_assets.lib.windows import last_complete_week

    print(last_complete_week(args.day).isoformat())
    return 0


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day; use HH:MM, e.g. 12:30") from exc


def _replay_departures(args: argparse.Namespace) -> int:
    """Push a landed day's departure events, in event-time order, through the Feast push sources."""
    from mlops_assets.defs.features.resources import FeatureStoreResource
    from mlops_assets.lib.departure_feed import replay_departures
    from mlops_assets.lib.feature_views import FEATURE_VIEWS_BY_NAME, read_warehouse_inputs

    settings = load_settings()
    day: date = args.day
    if not settings.duckdb_path.exists():
        raise ValueError(f"no warehouse at {settings.duckdb_path}; land and materialise {day} first")
    schedule = read_warehouse_inputs(str(settings.duckdb_path), day, day).schedule
    if schedule.height == 0:
        raise ValueError(
            f"flights_enriched has no flights for {day}; land it (mlops-assets land {day}) and materialise it "
            f"(dagster asset materialize -m mlops_assets.definitions --select 'flights_enriched' --partition {day})"
        )
    until = datetime.combine(day, args.until) if args.until else None
    store = FeatureStoreResource.from_settings(settings)
    store.ensure_applied()

    def push(view: str, rows: object) -> None:
        store.push_online(FEATURE_VIEWS_BY_NAME[view].push_source, rows)  # type: ignore[arg-type]

    print(
        f"replaying {schedule.height} flights of {day} up to {until or 'the last departure'} into {store.online_store}"
    )
    report = replay_departures(schedule, push, until=until, speed=args.speed, progress=print)
    print(
        f"pushed {report.rows_pushed} rows in {report.pushes} pushes ({report.event_times} event times, last "
        f"{report.last_event:%Y-%m-%d %H:%M}) in {report.wall_s:.1f} s"
        if report.last_event
        else "no departure event before the given time"
    )
    return 0


def _is_error_severity(record: object) -> bool:
    """Warning-severity checks inform; only ERROR-severity failures fail CI."""
    import dagster as dg

    event = getattr(record, "event", None)
    evaluation = event.dagster_event.event_specific_data if event and event.dagster_event else None
    return getattr(evaluation, "severity", dg.AssetCheckSeverity.ERROR) == dg.AssetCheckSeverity.ERROR


def _verify(args: argparse.Namespace) -> int:
    """Fail when any asset was never materialised or the latest evaluation of any asset check failed."""
    import dagster as dg
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    from mlops_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    selected = dg.AssetSelection.from_string(args.select).resolve(graph)
    with dg.DagsterInstance.get() as instance:
        missing = sorted(k.to_user_string() for k in selected if instance.get_latest_materialization_event(k) is None)
        check_keys = [key for key in graph.asset_check_keys if key.asset_key in selected]
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    failed = sorted(
        key.to_user_string()
        for key, record in latest.items()
        if record.status == AssetCheckExecutionRecordStatus.FAILED and _is_error_severity(record)
    )
    print(
        f"{len(selected) - len(missing)}/{len(selected)} assets materialised; "
        f"{len(latest)} checks evaluated, {len(failed)} failed"
    )
    for name in missing:
        print(f"  not materialised: {name}")
    for name in failed:
        print(f"  check failed:     {name}")
    return 1 if missing or failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    land = commands.add_parser("land", help="land the source rows of one day or a range into the landing zone")
    land.add_argument("start", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    land.add_argument("--to", type=date.fromisoformat, help="last day (inclusive), YYYY-MM-DD")
    land.set_defaults(handler=_land)
    week = commands.add_parser(
        "training-week", help="print the weekly trained_model partition whose week (the holdout) ends by DAY"
    )
    week.add_argument("day", type=date.fromisoformat, help="last landed day, YYYY-MM-DD")
    week.set_defaults(handler=_training_week)
    replay = commands.add_parser(
        "replay-departures",
        help="replay a landed day's departures in event-time order into the online store (Feast push sources)",
    )
    replay.add_argument("day", type=date.fromisoformat, help="operating day, YYYY-MM-DD (landed and materialised)")
    replay.add_argument("--until", type=_clock, help="stop after the events at this New York time, HH:MM")
    replay.add_argument(
        "--speed", type=float, help="multiple of real time, e.g. 60 = a minute a second (default: as fast as possible)"
    )
    replay.set_defaults(handler=_replay_departures)
    verify = commands.add_parser("verify", help="fail if a selected asset is unmaterialised or a check failed")
    verify.add_argument("--select", default="*", help="Dagster asset selection (default: every asset)")
    verify.set_defaults(handler=_verify)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as exc:
        print(f"mlops-assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
