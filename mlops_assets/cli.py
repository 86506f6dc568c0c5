"""``mlops-assets``: operator commands that sit beside Dagster (landing replay)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import date

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
