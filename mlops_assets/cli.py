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


def _evaluation(record: object) -> object | None:
    """The check evaluation a check execution record holds; None when the check was planned but never evaluated."""
    import dagster as dg

    event = getattr(record, "event", None)
    data = event.dagster_event.event_specific_data if event and event.dagster_event else None
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def _run_partitions(tags: dict[str, str], partitions_def: object) -> set[str | None]:
    """The partitions a run targeted (its partition or partition-range tags); ``{None}`` for an unpartitioned run."""
    import dagster as dg

    if "dagster/partition" in tags:
        return {tags["dagster/partition"]}
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end and partitions_def is not None:
        return set(partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)))  # type: ignore[attr-defined]
    return {None}


def _failed_checks(instance: object, graph: object, check_keys: list, history: int) -> tuple[int, list[str]]:
    """Checks whose latest evaluation for some partition failed at ERROR severity, with those partitions.

    Our checks are evaluated once per run over the run's partitions, so the newest evaluation of a check is not the
    state of every partition: a day that failed in one range run and was never re-run stays failed after a later run
    of other days passes. Each partition takes the newest evaluation whose run covered it."""
    import dagster as dg

    evaluated = 0
    failed: list[str] = []
    storage = instance.event_log_storage  # type: ignore[attr-defined]
    run_tags: dict[str, dict[str, str]] = {}
    for check_key in check_keys:
        records = storage.get_asset_check_execution_history(check_key, limit=history)  # newest first
        evaluated += any(_evaluation(record) is not None for record in records)
        partitions_def = graph.get(check_key.asset_key).partitions_def  # type: ignore[attr-defined]
        seen: set[str | None] = set()
        bad: set[str | None] = set()
        for record in records:
            evaluation = _evaluation(record)
            if evaluation is None:
                continue
            if record.run_id not in run_tags:
                run = instance.get_run_by_id(record.run_id)  # type: ignore[attr-defined]
                run_tags[record.run_id] = dict(run.tags) if run else {}
            covered = _run_partitions(run_tags[record.run_id], partitions_def) - seen
            seen |= covered
            # Warning-severity checks inform; only ERROR-severity failures fail CI.
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:  # type: ignore[attr-defined]
                bad |= covered
        if bad:
            days = sorted(p for p in bad if p is not None)
            where = (
                f" ({len(days)} partition(s): {', '.join(days[:5])}{', ...' if len(days) > 5 else ''})" if days else ""
            )
            failed.append(f"{check_key.to_user_string()}{where}")
    return evaluated, sorted(failed)


def _verify(args: argparse.Namespace) -> int:
    """Fail when any asset was never materialised or any asset check's latest evaluation of any partition failed."""
    import dagster as dg

    from mlops_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    # Every asset unless a selection is given: Dagster's own parser turns "*" into a Beta call that warns.
    selection = dg.AssetSelection.from_string(args.select) if args.select else dg.AssetSelection.all()
    selected = selection.resolve(graph)
    with dg.DagsterInstance.get() as instance:
        missing = sorted(k.to_user_string() for k in selected if instance.get_latest_materialization_event(k) is None)
        check_keys = sorted(
            (key for key in graph.asset_check_keys if key.asset_key in selected), key=lambda k: k.to_user_string()
        )
        evaluated, failed = _failed_checks(instance, graph, check_keys, history=args.history)
    print(
        f"{len(selected) - len(missing)}/{len(selected)} assets materialised; "
        f"{evaluated} checks evaluated, {len(failed)} failed"
    )
    for name in missing:
        print(f"  not materialised: {name}")
    for name in failed:
        print(f"  check failed:     {name}")
    return 1 if missing or failed else 0


_FEAST_REPO_MODULE = """\
# Generated by `mlops-assets feast-config`: the product's Feast objects (the ones FeatureStoreResource.ensure_applied
# applies), so `feast plan`/`feast apply` in this directory change nothing the pipeline did not. Do not edit.
from mlops_assets.feature_repo.entities import ENTITIES
from mlops_assets.feature_repo.views import build_feature_views

for _obj in [*ENTITIES.values(), *build_feature_views({lake_root!r})]:
    globals()[f"{{type(_obj).__name__}}_{{_obj.name}}"] = _obj
"""


def _feast_config(args: argparse.Namespace) -> int:
    """Write a Feast repo directory (feature_store.yaml + the objects) for the configured store, outside the package."""
    from pathlib import Path

    import yaml

    from mlops_assets.defs.features.resources import FEAST_PROJECT, online_store_config

    settings = load_settings()
    out = Path(args.out or settings.data_dir / "feast" / "repo").expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    # The RepoConfig FeatureStoreResource.get_store builds in-process, as YAML.
    config = {
        "project": FEAST_PROJECT,
        "provider": "local",
        "registry": {"registry_type": "file", "path": settings.feast_registry_path, "cache_ttl_seconds": 60},
        "online_store": online_store_config(settings.feast_online_store),
        "offline_store": {"type": "dask"},
        "entity_key_serialization_version": 3,
    }
    header = (
        "# Generated by `mlops-assets feast-config` from the product's settings (MLOPS_* variables); regenerate after\n"
        "# changing them. Use it with `feast -c <this directory> ...` (feature-views list, ui, plan).\n"
    )
    yaml_path = out / "feature_store.yaml"
    yaml_path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    yaml_path.chmod(0o600)  # a production online store's connection string can hold its password
    (out / "mlops_assets_feature_repo.py").write_text(_FEAST_REPO_MODULE.format(lake_root=settings.lake_root))
    print(f"wrote {yaml_path}")
    print(f"  registry     {settings.feast_registry_path}")
    print(f"  online store {config['online_store']['type']}")
    print(f"try: feast -c {out} feature-views list    |    feast -c {out} ui")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    """Restore the registered model's previous_champion as champion, recording the reason and time as tags."""
    from mlflow.tracking import MlflowClient

    from mlops_assets.lib.model_registry import RegistryError, rollback

    settings = load_settings()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri)
    try:
        move = rollback(client, settings.registered_model_name, args.reason)
    except RegistryError as exc:
        raise ValueError(str(exc)) from exc
    print(
        f"{settings.registered_model_name}: champion v{move.from_version} -> v{move.to_version} at {move.at} "
        f"({move.reason}); previous_champion cleared"
    )
    return 0


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
    verify.add_argument("--select", help="Dagster asset selection (default: every asset)")
    verify.add_argument(
        "--history", type=int, default=1000, help="evaluations read per check, newest first (default: 1000)"
    )
    verify.set_defaults(handler=_verify)
    feast_config = commands.add_parser(
        "feast-config",
        help="write a Feast repo dir (feature_store.yaml) for the configured store, for `feast -c DIR ...`",
    )
    feast_config.add_argument(
        "--out", help="directory to write (default: $MLOPS_DATA_DIR/feast/repo, never the package)"
    )
    feast_config.set_defaults(handler=_feast_config)
    roll = commands.add_parser(
        "rollback", help="restore MLflow alias previous_champion as champion and record why (tags on the model)"
    )
    roll.add_argument("--reason", required=True, help="why; stored with the time on the registered model and version")
    roll.set_defaults(handler=_rollback)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as exc:
        print(f"mlops-assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
