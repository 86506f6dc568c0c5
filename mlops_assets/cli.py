"""``mlops-assets``: operator commands that sit beside Dagster (landing replay)."""

from __future__ import annotations

import argparse
import sys
import time as clock
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_assets.lib.landing import land_days
from mlops_assets.settings import Settings, load_settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from mlops_assets.lib.replay import ReplayDay
    from mlops_assets.lib.replay_daemon import DagsterDev, Run, Sensor


def _land(args: argparse.Namespace) -> int:
    settings = load_settings()
    start: date = args.start
    end: date = args.to or start
    landed = land_days(settings.landing_root, start, end)
    rows = Counter()
    files = Counter()
    for item in landed:
        rows[item.table] += item.rows
        files[item.table] += 1
    print(f"landed {start} .. {end} into {settings.landing_root}")
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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds, e.g. 1800")
    return value


def _replay_departures(args: argparse.Namespace) -> int:
    """Push a landed day's departure events, in event-time order, through the Feast push sources."""
    from mlops_assets.defs.features.resources import FeatureStoreResource
    from mlops_assets.lib.departure_feed import replay_departures
    from mlops_assets.lib.feature_views import FEATURE_VIEWS_BY_NAME, read_warehouse_inputs
    from mlops_assets.lib.warehouse import WarehouseLocation

    settings = load_settings()
    day: date = args.day
    warehouse = WarehouseLocation.from_settings(settings)
    if not warehouse.exists():
        raise ValueError(f"no warehouse at {warehouse.catalog}; land and materialise {day} first")
    schedule = read_warehouse_inputs(warehouse, day, day).schedule
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


def _failed_checks(
    instance: object, graph: object, check_keys: list, history: int
) -> tuple[int, list[tuple[Any, str]]]:
    """Checks whose latest evaluation for some partition failed at ERROR severity, with those partitions.

    Our checks are evaluated once per run over the run's partitions, so the newest evaluation of a check is not the
    state of every partition: a day that failed in one range run and was never re-run stays failed after a later run
    of other days passes. Each partition takes the newest evaluation whose run covered it."""
    import dagster as dg

    evaluated = 0
    failed: list[tuple[Any, str]] = []
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
            failed.append((check_key, f"{check_key.to_user_string()}{where}"))
    return evaluated, sorted(failed, key=lambda item: item[1])


def _verify(args: argparse.Namespace) -> int:
    """Fail when any asset was never materialised or any asset check's latest evaluation of any partition failed.

    The promotion gate's checks are the exception: a gate that refuses a candidate is the loop deciding, not the
    pipeline failing (the champion stays), so refusals are listed and do not fail the command."""
    import dagster as dg

    from mlops_assets.definitions import defs
    from mlops_assets.defs.training.evaluation import GATE_CHECK_SPECS

    graph = defs.resolve_asset_graph()
    # Every asset unless a selection is given: Dagster's own parser turns "*" into a Beta call that warns.
    selection = dg.AssetSelection.from_string(args.select) if args.select else dg.AssetSelection.all()
    selected = selection.resolve(graph)
    gate_checks = {spec.key for spec in GATE_CHECK_SPECS}
    with dg.DagsterInstance.get() as instance:
        missing = sorted(k.to_user_string() for k in selected if instance.get_latest_materialization_event(k) is None)
        check_keys = sorted(
            (key for key in graph.asset_check_keys if key.asset_key in selected), key=lambda k: k.to_user_string()
        )
        evaluated, failures = _failed_checks(instance, graph, check_keys, history=args.history)
    refused = [text for key, text in failures if key in gate_checks]
    failed = [text for key, text in failures if key not in gate_checks]
    print(
        f"{len(selected) - len(missing)}/{len(selected)} assets materialised; "
        f"{evaluated} checks evaluated, {len(failed)} failed, {len(refused)} gate refusal(s)"
    )
    for name in missing:
        print(f"  not materialised: {name}")
    for name in failed:
        print(f"  check failed:     {name}")
    for name in refused:
        print(f"  gate refused:     {name} (the candidate was not promoted; not a failure)")
    return 1 if missing or failed else 0


def _aliases(args: argparse.Namespace) -> int:
    """Print the registered model's aliases and their versions (``--get ALIAS``: that version only, or "none")."""
    from mlflow.tracking import MlflowClient

    from mlops_assets.lib.model_registry import PARTITION_TAG, REGISTRY_ALIASES, alias_version

    settings = load_settings()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri)
    name = settings.registered_model_name
    if args.get:
        version = alias_version(client, name, args.get)
        print(version.version if version else "none")
        return 0
    for alias in REGISTRY_ALIASES:
        version = alias_version(client, name, alias)
        week = version.tags.get(PARTITION_TAG, "?") if version else ""
        print(f"{name}@{alias}: " + (f"v{version.version} (week {week})" if version else "none"))
    return 0


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


# The sensors a replayed day goes through: landing -> raw; automation -> the daily chain, training, evaluation and
# promotion; drift -> retrain; rollback; the bento follows the champion. A day is settled when no run is active and
# each of them has evaluated the state the last run left.
REPLAY_SENSORS = [
    "landing_sensor",
    "automation_sensor",
    "drift_retrain_sensor",
    "champion_rollback_sensor",
    "bento_follows_champion",
]
RETRAIN_REASON_TAG = "mlops/retrain_reason"  # defs/monitoring/sensors.py; test_replay_lib checks they match
TRAINED_MODEL_ASSET = "trained_model"
PROGRESS_EVERY_S = 30.0


def registered_model_tags(client: MlflowClient, name: str) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(name).tags)
    except MlflowException:
        return {}  # no model registered yet


def _day_profile(server: DagsterDev, day: date, since: float) -> tuple[bool, dict[str, object]]:
    """(materialised since ``since``, the newest figures recorded for the day) of drift_profile's partition."""
    from mlops_assets.lib.replay_daemon import asset_events

    events = asset_events(server.graphql, ["drift_profile"], day.isoformat())
    fresh = any(e.kind == "materialization" and e.timestamp >= since for e in events)
    with_figures = [e for e in events if "rows" in e.metadata]
    return fresh, (with_figures[0].metadata if with_figures else {})


def _replay_day(
    server: DagsterDev,
    watched: dict[str, Sensor],
    settings: Settings,
    client: MlflowClient,
    day: date,
    timeout_s: float,
) -> ReplayDay:
    from mlops_assets.lib.replay_daemon import wait_until_settled

    before = registered_model_tags(client, settings.registered_model_name)
    started = clock.time()
    land_days(settings.landing_root, day, day)

    def progress(elapsed_s: float, runs: list[Run], waiting: str) -> None:
        print(f"  {day}: {elapsed_s:4.0f} s, {len(runs)} run(s) so far, waiting for {waiting}", flush=True)

    outcome = wait_until_settled(server, watched, started, timeout_s, progress, PROGRESS_EVERY_S)
    profiled, metadata = _day_profile(server, day, started)
    after = registered_model_tags(client, settings.registered_model_name)
    return day_record(
        day, started, outcome.runs, "ok" if outcome.settled else "timeout", profiled, metadata, before, after
    )


def day_record(
    day: date,
    started: float,
    runs: list[Run],
    status: str,
    profiled: bool,
    metadata: dict[str, object],
    tags_before: dict[str, str],
    tags_after: dict[str, str],
) -> ReplayDay:
    """What a replayed day left, whichever driver replayed it: the runs since it landed (epoch ``started``), whether
    and with what figures its drift_profile was recorded, and the registered model's tags before and after."""
    from mlops_assets.lib import replay

    promotions, rollbacks = replay.alias_moves(tags_before, tags_after)
    trained = sorted({r.tags.get("dagster/partition", "?") for r in runs if TRAINED_MODEL_ASSET in r.assets})
    retrains = [r for r in runs if RETRAIN_REASON_TAG in r.tags]
    return replay.ReplayDay(
        day=day,
        profiled=profiled,
        **replay.day_figures(metadata),  # type: ignore[arg-type]
        retrain_requested=bool(retrains),
        retrain_reason=retrains[0].tags[RETRAIN_REASON_TAG] if retrains else "",
        trained_weeks=tuple(trained),
        promotions=tuple(promotions),
        rollbacks=tuple(rollbacks),
        runs=len(runs),
        failed_runs=sum(1 for r in runs if r.status == "FAILURE"),
        wall_s=round(clock.time() - started, 1),
        status=status,
    )


def progress_line(r: ReplayDay) -> str:
    figures = (
        f"rows {r.rows if r.rows is not None else '-':>5}  "
        + (f"drift {r.drift_excess:+.3f}  " if r.drift_excess is not None else "drift   -     ")
        + (f"AUC {r.roc_auc:.3f}  " if r.roc_auc is not None else "AUC   -    ")
    )
    events = [
        *(["RETRAIN requested"] if r.retrain_requested else []),
        *(f"trained {week}" for week in r.trained_weeks),
        *(f"promotion {move}" for move in r.promotions),
        *(f"ROLLBACK {move}" for move in r.rollbacks),
        *([] if r.profiled else ["NOT PROFILED"]),
        *([] if r.status == "ok" else [r.status.upper()]),
    ]
    return f"{r.day}  {figures}runs {r.runs:>2} ({r.failed_runs} failed)  {r.wall_s:5.0f} s" + (
        f"  [{'; '.join(events)}]" if events else ""
    )


def replay_outputs(records: list[ReplayDay], threshold: float, out: Path) -> None:
    from mlops_assets.lib import replay

    replay.write_csv(records, out / "replay.csv")
    title = f"mlops-assets replay {records[0].day} .. {records[-1].day}: drift, daily AUC and model events"
    replay.write_plot(records, threshold, out / "replay.png", title)


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _replay_paths(args: argparse.Namespace) -> tuple[dict[str, str], Settings, Path, Path]:
    """(the children's environment, the settings it gives, the instance directory, the output directory)."""
    import os

    # The child processes get the data dir through their environment; this process never writes its own.
    env = dict(os.environ)
    if args.data_dir:
        env["MLOPS_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    settings = load_settings(env)
    home = args.dagster_home or env.get("DAGSTER_HOME")
    if not home:
        raise ValueError("no Dagster instance: set DAGSTER_HOME or pass --dagster-home DIR (with a dagster.yaml)")
    out = Path(args.out).expanduser().resolve() if args.out else settings.data_dir / "replay"
    return env, settings, Path(home).expanduser().resolve(), out


def replay_summary(records: list[ReplayDay], threshold: float, out: Path) -> str:
    from mlops_assets.lib import replay

    summary = replay.summarise(records, threshold)
    return (
        f"wrote {out / 'replay.csv'} and {out / 'replay.png'}: {summary.days} day(s), "
        f"{len(summary.unprofiled_days)} not profiled in time (longest undetected drift <= "
        f"{summary.max_undetected_hours} h of data), {summary.signalling_days} over the drift threshold, "
        f"{len(summary.retrain_requests)} retrain request(s), {summary.promotions} promotion(s), "
        f"{summary.rollbacks} rollback(s)"
    )


def run_replay(
    days: list[date],
    threshold: float,
    out: Path,
    replay_one: Callable[[date], ReplayDay],
    echo: Callable[[str], None] = print,
) -> int:
    """Replay ``days`` one at a time with ``replay_one`` (either driver), rewriting OUT/replay.csv after every day and
    drawing OUT/replay.png at the end or on Ctrl-C / SIGTERM. The days before the first of an earlier replay into the
    same OUT are kept, so a long replay can run in pieces. 0 when every day was replayed and profiled in time."""
    import signal

    from mlops_assets.lib import replay

    csv_path = out / "replay.csv"
    earlier = [r for r in replay.read_csv(csv_path) if r.day < days[0]] if csv_path.exists() else []
    if earlier:
        echo(f"keeping {len(earlier)} earlier day(s) of {csv_path} ({earlier[0].day} .. {earlier[-1].day})")
    records: list[ReplayDay] = []
    previous_handler = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        for day in days:
            records.append(replay_one(day))
            echo(progress_line(records[-1]))
            replay.write_csv([*earlier, *records], csv_path)
    except KeyboardInterrupt:
        echo(f"interrupted after {len(records)} day(s)")
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        if records:  # a replay that did not get through a day leaves an earlier replay's files alone
            replay_outputs([*earlier, *records], threshold, out)
    if not records:
        echo(f"no day replayed; nothing written to {out}")
        return 1
    echo(replay_summary([*earlier, *records], threshold, out))
    on_time = all(record.profiled for record in records)
    return 0 if len(records) == len(days) and on_time else 1


def _replay(args: argparse.Namespace) -> int:
    """Replay days through the real automation path, recording each day's figures: under a `dagster dev` (daemon),
    or with the same sensors and conditions ticked in a child process (in-process)."""
    import subprocess

    from mlflow.tracking import MlflowClient

    from mlops_assets.lib import replay
    from mlops_assets.lib.landing import days_between
    from mlops_assets.lib.replay_daemon import DagsterDevError, dagster_dev, ensure_running, sensors

    env, settings, home, out = _replay_paths(args)
    if args.plot_only:
        records = replay.read_csv(out / "replay.csv")
        replay_outputs(records, settings.drift_threshold, out)
        print(f"re-drew {out / 'replay.png'} from {len(records)} day(s)")
        return 0
    days = list(days_between(args.start, args.end))
    print(
        f"replaying {days[0]} .. {days[-1]} ({len(days)} days, driver {args.driver}) with DAGSTER_HOME={home}, "
        f"data in {settings.data_dir}",
        flush=True,
    )
    if args.driver == "in-process":
        # Its own process: the definitions read their settings from the environment at import.
        command = [sys.executable, "-m", "mlops_assets.replay_inprocess", days[0].isoformat(), days[-1].isoformat()]
        command += ["--out", str(out), "--max-ticks", str(args.max_ticks)]
        return subprocess.run(command, env={**env, "DAGSTER_HOME": str(home)}, check=False).returncode
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri)
    try:
        with dagster_dev(home, env, out / "dagster-dev.log") as server:
            statuses = ensure_running(server.graphql, REPLAY_SENSORS)
            print(f"dagster dev on {server.url} (pid {server.pid}); sensors {statuses}")
            watched = {name: sensor for name, sensor in sensors(server.graphql).items() if name in REPLAY_SENSORS}
            return run_replay(
                days,
                settings.drift_threshold,
                out,
                lambda day: _replay_day(server, watched, settings, client, day, args.timeout),
            )
    except DagsterDevError as exc:
        raise ValueError(str(exc)) from exc


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
    replay_days = commands.add_parser(
        "replay",
        help="replay days through the real automation path (dagster dev + sensors), writing replay.csv and replay.png",
    )
    replay_days.add_argument("start", type=date.fromisoformat, help="first day to land, YYYY-MM-DD")
    replay_days.add_argument("end", type=date.fromisoformat, help="last day to land (inclusive), YYYY-MM-DD")
    replay_days.add_argument("--data-dir", help="the data dir (default: MLOPS_DATA_DIR or ./data)")
    replay_days.add_argument("--dagster-home", help="instance directory with a dagster.yaml (default: DAGSTER_HOME)")
    replay_days.add_argument("--out", help="where replay.csv, replay.png and the log go (default: DATA_DIR/replay)")
    replay_days.add_argument(
        "--timeout", type=_seconds, default=1800.0, help="seconds a day may take to settle (default: 1800)"
    )
    replay_days.add_argument(
        "--driver",
        choices=["daemon", "in-process"],
        default="daemon",
        help="daemon: a real dagster dev and its sensor intervals (default); in-process: the same sensors and "
        "conditions ticked back to back, every run executed in one child process (fast enough for a year)",
    )
    replay_days.add_argument(
        "--max-ticks", type=int, default=25, help="in-process: rounds a day may take to settle (default: 25)"
    )
    replay_days.add_argument(
        "--plot-only", action="store_true", help="re-draw replay.png from OUT/replay.csv; start nothing"
    )
    replay_days.set_defaults(handler=_replay)
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
    aliases = commands.add_parser("aliases", help="print the registered model's aliases (champion, challenger, ...)")
    aliases.add_argument("--get", metavar="ALIAS", help="print only this alias's version number, or 'none'")
    aliases.set_defaults(handler=_aliases)
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
