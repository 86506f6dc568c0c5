"""End to end with the daemon (issue 14, point 6): a real ``dagster dev`` (webserver, daemon, code server) on
127.0.0.1 over a temporary ``DAGSTER_HOME``, driven only by landing files.

The history before it is built the way the README's main job builds it (``mlops-assets land``, ``dagster asset
materialize``, CI-sized: a 28-day window), up to a champion for the week of 2013-02-11. Then, with no run launched by
hand:

1. a real day lands (2013-02-18) and raw -> dbt -> features -> feature store -> drift profile materialise for it by
   the landing sensor and automation alone;
2. a test-only day with shifted distributions lands (2013-02-19: a ground-delay programme in a warm storm,
   ``shifted_day.py``) and the drift sensor requests and runs a retrain of its week (2013-02-18), which registers a
   new model version as the challenger;
3. across every run the daemon launched, no two steps of the ``duckdb_warehouse`` pool ran at the same time.

Settings that make a one-day signal enough (``MLOPS_DRIFT_MIN_DAYS=1``), allow a retrain one week after the
champion's (``MLOPS_RETRAIN_COOLDOWN_DAYS=7``) and leave only the drift path (``MLOPS_DECAY_THRESHOLD=0.5``) are the
test's; the drift threshold stays the product's. Every process is stopped by its PID (the process group of ``dagster
dev``), and the test checks that none is left. Cost: 9.5-11.5 min on 2 cores, mostly the sensors' 120-second
intervals.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.cli import REPLAY_SENSORS
from mlops_assets.definitions import defs
from mlops_assets.defs.common import WAREHOUSE_POOL, daily_partitions
from mlops_assets.defs.monitoring.assets import DRIFT_EXCESS, DRIFT_PROFILE_KEY
from mlops_assets.defs.monitoring.sensors import RETRAIN_REASON_TAG
from mlops_assets.lib.landing import land_days
from mlops_assets.lib.local_processes import group_members, pid_alive
from mlops_assets.lib.replay_daemon import (
    DagsterDev,
    Run,
    Sensor,
    asset_events,
    dagster_dev,
    ensure_running,
    runs_since,
    sensors,
    wait_until_settled,
)
from mlops_assets.settings import load_settings
from mlops_assets_tests import tools
from mlops_assets_tests.shifted_day import land_shifted_day

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
HISTORY = (date(2013, 1, 1), date(2013, 2, 17))
CHAMPION_WEEK = "2013-02-11"
REAL_DAY = date(2013, 2, 18)
SHIFTED_DAY = date(2013, 2, 19)
RETRAINED_WEEK = "2013-02-18"
DAY_TIMEOUT_S = 600.0
RETRAIN_TIMEOUT_S = 900.0
# Tags Dagster puts on the runs its sensors and declarative automation launch.
AUTOMATED_RUN_TAGS = ("dagster/sensor_name", "dagster/from_automation_condition", "dagster/backfill")


@dataclass(frozen=True)
class Daemon:
    server: DagsterDev
    env: dict[str, str]
    landing_root: Path
    watched: Mapping[str, Sensor]
    dagster_home: Path
    started: float


def _env(root: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLOPS_")}
    env.update(
        MLOPS_DATA_DIR=str(root / "data"),
        DAGSTER_HOME=str(root / "dagster_home"),
        MLOPS_TRAIN_DAYS="28",
        MLOPS_DRIFT_MIN_DAYS="1",
        MLOPS_RETRAIN_COOLDOWN_DAYS="7",
        # With one day enough, the AUC-decay rule would fire on one real day's noise (2013-02-18: 4.1% > 4%); the
        # product asks 3 of 7 days for that reason. This test isolates the drift path (test_drift_sensor covers decay).
        MLOPS_DECAY_THRESHOLD="0.5",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def _cli(env: Mapping[str, str], *argv: str) -> str:
    done = tools.run([VENV_BIN / argv[0], *argv[1:]], env=dict(env), timeout=900)
    assert done.returncode == 0, (
        f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done.stdout.strip()


def _build_history(env: Mapping[str, str]) -> None:
    """The README's main job, CI-sized: land, one run over the daily graph, train, evaluate and gate one week."""
    first, last = (day.isoformat() for day in HISTORY)
    _cli(env, "mlops-assets", "land", first, "--to", last)
    module = ("-m", "mlops_assets.definitions")
    _cli(env, "dagster", "asset", "materialize", *module, "--select", "not group:training and not group:serving",
         "--partition-range", f"{first}...{last}")  # fmt: skip
    sweep = '{"ops": {"trained_model": {"config": {"num_samples": 4, "max_rounds": 100}}}}'
    _cli(env, "dagster", "asset", "materialize", *module, "--select", "trained_model", "--partition", CHAMPION_WEEK,
         "--config-json", sweep)  # fmt: skip
    _cli(env, "dagster", "asset", "materialize", *module, "--select", "evaluation_report,champion",
         "--partition", CHAMPION_WEEK)  # fmt: skip


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("daemon_e2e")
    env = _env(root)
    (root / "dagster_home").mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    _build_history(env)
    landing_root = Path(load_settings(env).landing_root)
    with dagster_dev(root / "dagster_home", env, root / "dagster-dev.log", cwd=REPO_ROOT) as server:
        ensure_running(server.graphql, REPLAY_SENSORS)
        watched = {name: sensor for name, sensor in sensors(server.graphql).items() if name in REPLAY_SENSORS}
        yield Daemon(server, env, landing_root, watched, root / "dagster_home", time.time())
    assert not pid_alive(server.pid), f"dagster dev (pid {server.pid}) still runs after the stop"
    leftover = [proc.pid for proc in group_members(server.pid)]
    assert not leftover, f"processes of dagster dev's group {server.pid} still run: {leftover}"


def _daily_chain() -> list[dg.AssetKey]:
    """Every daily asset drift_profile depends on, and drift_profile: what one landed day must bring up to date."""
    graph = defs.resolve_asset_graph()
    upstream = dg.AssetSelection.assets(DRIFT_PROFILE_KEY).upstream().resolve(graph)
    return sorted(key for key in upstream if graph.get(key).partitions_def == daily_partitions)


def _materialised_since(daemon: Daemon, key: dg.AssetKey, day: date, since: float) -> bool:
    events = asset_events(daemon.server.graphql, list(key.path), day.isoformat())
    return any(event.kind == "materialization" and event.timestamp >= since for event in events)


def _settle(daemon: Daemon, since: float, timeout_s: float) -> list[Run]:
    outcome = wait_until_settled(daemon.server, daemon.watched, since, timeout_s)
    assert outcome.settled, f"not settled in {timeout_s:.0f} s; runs {[(r.job, r.status) for r in outcome.runs]}"
    return outcome.runs


def _assert_automated(runs: list[Run]) -> None:
    assert runs, "no run was launched"
    manual = [run for run in runs if not any(tag in run.tags for tag in AUTOMATED_RUN_TAGS)]
    assert not manual, f"runs not launched by a sensor or automation: {[(r.run_id, r.tags) for r in manual]}"
    failed = [(run.job, run.assets, run.tags.get("dagster/partition")) for run in runs if run.status != "SUCCESS"]
    assert not failed, f"runs that did not succeed: {failed}"


def test_a_landed_day_goes_through_the_whole_daily_graph_by_automation_alone(daemon: Daemon) -> None:
    landed_at = time.time()
    land_days(daemon.landing_root, REAL_DAY, REAL_DAY)
    runs = _settle(daemon, landed_at, DAY_TIMEOUT_S)
    _assert_automated(runs)
    chain = _daily_chain()
    assert {key.to_user_string() for key in chain} >= {"raw/flights", "raw/weather", "validated_features",
                                                       "feature_store", "drift_profile"}  # fmt: skip
    stale = [key.to_user_string() for key in chain if not _materialised_since(daemon, key, REAL_DAY, landed_at)]
    assert not stale, f"not materialised for {REAL_DAY} by automation: {stale}"
    assert not [run for run in runs if RETRAIN_REASON_TAG in run.tags], "a real day requested a retrain"


def test_a_shifted_day_leads_to_a_retrain_of_its_week(daemon: Daemon) -> None:
    champion = _cli(daemon.env, "mlops-assets", "aliases", "--get", "champion")
    landed_at = time.time()
    land_shifted_day(daemon.landing_root, SHIFTED_DAY)
    runs = _settle(daemon, landed_at, RETRAIN_TIMEOUT_S)
    _assert_automated(runs)
    profile = [
        event
        for event in asset_events(daemon.server.graphql, list(DRIFT_PROFILE_KEY.path), SHIFTED_DAY.isoformat())
        if event.timestamp >= landed_at and DRIFT_EXCESS in event.metadata
    ]
    assert profile, f"{SHIFTED_DAY} was not profiled"
    threshold = load_settings(daemon.env).drift_threshold
    excess = float(profile[0].metadata[DRIFT_EXCESS])  # type: ignore[arg-type]
    assert excess > threshold, f"the shifted day's drift excess {excess:.3f} is not above {threshold}"
    retrains = [run for run in runs if RETRAIN_REASON_TAG in run.tags]
    assert len(retrains) == 1, [(r.job, r.tags) for r in runs]
    assert retrains[0].tags.get("dagster/partition") == RETRAINED_WEEK
    assert retrains[0].tags.get("dagster/sensor_name") == "drift_retrain_sensor"
    assert "trained_model" in retrains[0].assets
    assert retrains[0].status == "SUCCESS"
    assert _materialised_since(daemon, dg.AssetKey("trained_model"), date.fromisoformat(RETRAINED_WEEK), landed_at)
    # The retrained model is registered as the challenger; the champion stays until its week is evaluated and gated.
    assert int(_cli(daemon.env, "mlops-assets", "aliases", "--get", "challenger")) > int(champion)
    assert _cli(daemon.env, "mlops-assets", "aliases", "--get", "champion") == champion


_STEP_STATS = """
query Steps($runId: ID!) { runOrError(runId: $runId) { __typename
    ... on Run { stepStats { stepKey status startTime endTime } } } }
"""


def test_steps_that_open_the_warehouse_never_ran_at_the_same_time(daemon: Daemon) -> None:
    """The duckdb_warehouse pool (limit 1, dagster.yaml) under the daemon: the landing sensor's daily and dimension
    runs and automation's runs start together, but their warehouse steps take turns. Runs after the two tests above."""
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    pooled = {a.node_def.name for a in assets if WAREHOUSE_POOL in a.op.pools}
    spans: list[tuple[float, float, str]] = []
    for run in runs_since(daemon.server.graphql, daemon.started):
        stats = daemon.server.graphql(_STEP_STATS, {"runId": run.run_id})["runOrError"].get("stepStats", [])
        spans.extend(
            (step["startTime"], step["endTime"], f"{step['stepKey']} of {run.run_id[:8]}")
            for step in stats
            if step["stepKey"] in pooled and step["startTime"] is not None and step["endTime"] is not None
        )
    # Two daily runs (02-18, 02-19); identical re-delivered dimensions no longer add a dbt_dimension_models run.
    assert len({span[2].split(" of ")[1] for span in spans}) >= 2, f"too few runs with warehouse steps: {spans}"
    overlaps, latest = [], (0.0, 0.0, "")
    for span in sorted(spans):
        if span[0] < latest[1]:
            overlaps.append((latest[2], span[2]))
        latest = max(latest, span, key=lambda s: s[1])
    assert not overlaps, f"warehouse steps that overlapped: {overlaps}"
