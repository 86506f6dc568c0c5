"""A real ``dagster dev`` (webserver + daemon) on 127.0.0.1 for a replay or a test, and its public GraphQL API.

Started in its own session, so that its process group holds the webserver, the daemon, the code server and every
run worker the daemon launches; stopped by that group's id (and, for anything that left the group, by the PIDs of
its process tree), never by name. No Dagster import: the caller reads Dagster only through GraphQL, so the replay
process stays light and needs no ``DAGSTER_HOME`` of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_assets.lib.local_processes import free_port, log_tail, pid_alive, stop_process_tree

VENV_BIN = Path(sys.executable).parent
DEFINITIONS_MODULE = "mlops_assets.definitions"
# Run states that still hold (or will take) a run slot: the replay waits until no run is in one of them.
ACTIVE_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "MANAGED", "STARTED", "CANCELING")
FINISHED_TICK_STATUSES = ("SUCCESS", "SKIPPED", "FAILURE")
# Backfill states that may still launch runs: the automation sensor requests a multi-partition range of a single-run
# asset as a backfill, whose run the backfill daemon creates a moment after the tick.
ACTIVE_BACKFILL_STATUSES = ("REQUESTED", "CANCELING", "FAILING")


class DagsterDevError(RuntimeError):
    """``dagster dev`` did not start, or its GraphQL API answered with an error; the message says which."""


@dataclass(frozen=True)
class GraphQL:
    """The webserver's GraphQL endpoint."""

    url: str
    timeout_s: float = 60.0

    def __call__(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise DagsterDevError(f"GraphQL HTTP {exc.code}: {exc.read()[:500]!r}") from exc
        if payload.get("errors"):
            raise DagsterDevError(f"GraphQL errors: {json.dumps(payload['errors'])[:1000]}")
        return payload["data"]


@dataclass(frozen=True)
class DagsterDev:
    url: str
    pid: int
    log: Path
    graphql: GraphQL

    def alive(self) -> bool:
        return pid_alive(self.pid)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


_LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def _location_loaded(graphql: GraphQL) -> bool:
    """True once every code location has loaded; raises with the error when one failed to load."""
    entries = graphql(_LOCATIONS)["workspaceOrError"].get("locationEntries", [])
    for entry in entries:
        error = entry.get("locationOrLoadError") or {}
        if error.get("__typename") == "PythonError":
            raise DagsterDevError(f"code location {entry['name']} failed to load: {error.get('message')}")
    return bool(entries) and all(entry["loadStatus"] == "LOADED" for entry in entries)


@contextmanager
def dagster_dev(
    dagster_home: Path, env: Mapping[str, str], log: Path, cwd: Path | None = None, start_timeout_s: float = 300.0
) -> Iterator[DagsterDev]:
    """``dagster dev -m mlops_assets.definitions`` on 127.0.0.1 with ``DAGSTER_HOME=dagster_home``; yields once the
    code location has loaded, and stops the whole process group on exit (an exception or Ctrl-C included)."""
    if not (dagster_home / "dagster.yaml").is_file():
        raise DagsterDevError(
            f"{dagster_home} has no dagster.yaml: copy the product's instance config there "
            f"(cp dagster.yaml {dagster_home}/) or point --dagster-home at an instance directory"
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child_env = {**env, "DAGSTER_HOME": str(dagster_home), "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"}
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [str(VENV_BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-m", DEFINITIONS_MODULE]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=child_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = DagsterDev(url=url, pid=process.pid, log=log, graphql=GraphQL(url))
    try:
        deadline = time.monotonic() + start_timeout_s
        while not (_answers(url) and _location_loaded(server.graphql)):
            if process.poll() is not None:
                raise DagsterDevError(f"dagster dev exited with {process.returncode}:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                raise DagsterDevError(f"dagster dev did not load in {start_timeout_s:.0f}s:\n{log_tail(log)}")
            time.sleep(1.0)
        yield server
    finally:
        stop_process_tree(process.pid, timeout_s=30.0, process_group=True)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


# --- Sensors ----------------------------------------------------------------------------------------------------

_SENSORS = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name location { name }
    sensors { name sensorState { status } } } } ... on PythonError { message } } }
"""
_START = """
mutation Start($selector: SensorSelector!) { startSensor(sensorSelector: $selector) { __typename
    ... on Sensor { sensorState { status } } ... on PythonError { message } ... on SensorNotFoundError { message } } }
"""
_TICKS = """
query Ticks($selector: SensorSelector!, $limit: Int!) { sensorOrError(sensorSelector: $selector) { __typename
    ... on Sensor { sensorState { ticks(limit: $limit) { status timestamp endTimestamp runIds skipReason
        error { message } } } } ... on PythonError { message } } }
"""


@dataclass(frozen=True)
class Sensor:
    name: str
    selector: dict[str, str]
    status: str


def sensors(graphql: GraphQL) -> dict[str, Sensor]:
    result = graphql(_SENSORS)["repositoriesOrError"]
    if result["__typename"] != "RepositoryConnection":
        raise DagsterDevError(f"cannot list repositories: {result.get('message')}")
    found: dict[str, Sensor] = {}
    for repo in result["nodes"]:
        for sensor in repo["sensors"]:
            selector = {
                "repositoryLocationName": repo["location"]["name"],
                "repositoryName": repo["name"],
                "sensorName": sensor["name"],
            }
            state = sensor["sensorState"]
            found[sensor["name"]] = Sensor(sensor["name"], selector, state["status"])
    return found


def ensure_running(graphql: GraphQL, names: list[str]) -> dict[str, str]:
    """Start each named sensor that is not running (the instance may hold a stopped state from an earlier session);
    returns each sensor's status afterwards. Raises naming the sensors the code location does not define."""
    known = sensors(graphql)
    missing = [name for name in names if name not in known]
    if missing:
        raise DagsterDevError(f"the code location defines no sensor {', '.join(missing)}; found {', '.join(known)}")
    statuses: dict[str, str] = {}
    for name in names:
        sensor = known[name]
        status = sensor.status
        if status != "RUNNING":
            result = graphql(_START, {"selector": sensor.selector})["startSensor"]
            if result["__typename"] != "Sensor":
                raise DagsterDevError(f"could not start sensor {name}: {result.get('message')}")
            status = result["sensorState"]["status"]
        statuses[name] = status
    return statuses


def sensor_ticks(graphql: GraphQL, sensor: Sensor, limit: int = 5) -> list[dict[str, Any]]:
    """The sensor's newest ticks, newest first (``timestamp`` in epoch seconds, ``status``, ``runIds``)."""
    result = graphql(_TICKS, {"selector": sensor.selector, "limit": limit})["sensorOrError"]
    if result["__typename"] != "Sensor":
        raise DagsterDevError(f"cannot read the ticks of {sensor.name}: {result.get('message')}")
    return result["sensorState"]["ticks"]


# --- Runs and asset events --------------------------------------------------------------------------------------

_RUNS = """
query Runs($filter: RunsFilter!) { runsOrError(filter: $filter) { __typename
    ... on Runs { results { runId jobName status creationTime startTime endTime tags { key value }
        assetSelection { path } } } ... on PythonError { message } } }
"""
_EVENTS = """
query Events($key: AssetKeyInput!, $partitions: [String!]) { assetOrError(assetKey: $key) { __typename
    ... on Asset {
        assetMaterializations(partitions: $partitions, limit: 5) { ...event }
        assetObservations(partitions: $partitions, limit: 5) { ...event } } } }
fragment event on MessageEvent { timestamp runId
    ... on MaterializationEvent { partition metadataEntries { ...entry } }
    ... on ObservationEvent { partition metadataEntries { ...entry } } }
fragment entry on MetadataEntry { label
    ... on FloatMetadataEntry { floatValue } ... on IntMetadataEntry { intValue intRepr }
    ... on TextMetadataEntry { text } ... on BoolMetadataEntry { boolValue } }
"""


@dataclass(frozen=True)
class Run:
    run_id: str
    job: str
    status: str
    created: float
    ended: float | None
    tags: dict[str, str]
    assets: tuple[str, ...]
    """The run's asset selection as user strings (``raw/flights``); empty for a job without one."""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES


def runs_since(graphql: GraphQL, created_after: float) -> list[Run]:
    result = graphql(_RUNS, {"filter": {"createdAfter": created_after}})["runsOrError"]
    if result["__typename"] != "Runs":
        raise DagsterDevError(f"cannot list runs: {result.get('message')}")
    return [
        Run(
            run_id=run["runId"],
            job=run["jobName"],
            status=run["status"],
            created=float(run["creationTime"]),
            ended=float(run["endTime"]) if run["endTime"] is not None else None,
            tags={tag["key"]: tag["value"] for tag in run["tags"]},
            assets=tuple("/".join(key["path"]) for key in run["assetSelection"] or []),
        )
        for run in result["results"]
    ]


_BACKFILLS = """
query Backfills($status: BulkActionStatus!) { partitionBackfillsOrError(status: $status, limit: 50) { __typename
    ... on PartitionBackfills { results { id } } ... on PythonError { message } } }
"""


def active_backfills(graphql: GraphQL) -> list[str]:
    """Ids of the backfills that may still launch runs."""
    found: list[str] = []
    for status in ACTIVE_BACKFILL_STATUSES:
        result = graphql(_BACKFILLS, {"status": status})["partitionBackfillsOrError"]
        if result["__typename"] != "PartitionBackfills":
            raise DagsterDevError(f"cannot list backfills: {result.get('message')}")
        found.extend(backfill["id"] for backfill in result["results"])
    return found


def _entry_value(entry: Mapping[str, Any]) -> object:
    for field in ("floatValue", "boolValue", "text"):
        if entry.get(field) is not None:
            return entry[field]
    if entry.get("intRepr") is not None:
        return int(entry["intRepr"])
    return None


@dataclass(frozen=True)
class AssetEvent:
    kind: str
    """``materialization`` or ``observation``."""
    timestamp: float
    """Epoch seconds."""
    run_id: str
    partition: str | None
    metadata: dict[str, object]


def asset_events(graphql: GraphQL, asset: list[str], partition: str) -> list[AssetEvent]:
    """The newest materialisations and observations of one partition of ``asset``, newest first."""
    result = graphql(_EVENTS, {"key": {"path": asset}, "partitions": [partition]})["assetOrError"]
    if result["__typename"] != "Asset":
        return []
    events = [
        AssetEvent(
            kind=kind,
            timestamp=int(event["timestamp"]) / 1000,
            run_id=event["runId"],
            partition=event["partition"],
            metadata={entry["label"]: _entry_value(entry) for entry in event["metadataEntries"]},
        )
        for kind, field in (("materialization", "assetMaterializations"), ("observation", "assetObservations"))
        for event in result[field]
    ]
    return sorted(events, key=lambda e: e.timestamp, reverse=True)


# --- Waiting for the automation to settle -----------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    settled: bool
    """False when ``timeout_s`` passed first."""
    runs: list[Run]
    """Every run created since ``since``."""


def _settle_state(graphql: GraphQL, watched: Mapping[str, Sensor], since: float) -> tuple[bool, list[Run], str]:
    """Whether the instance has settled: no backfill or run active, and every watched sensor finished a tick that
    started after the newest run ended (so it saw the state that run left). Returns (settled, the runs created since
    ``since``, what it waits for)."""
    runs = runs_since(graphql, since)
    backfills = active_backfills(graphql)
    if backfills:
        return False, runs, f"backfill {', '.join(backfills)}"
    active = [r for r in runs if r.active]
    if active:
        names = sorted({asset for r in active for asset in r.assets} or {r.job for r in active})
        return False, runs, f"{len(active)} run(s) active ({', '.join(names)[:80]})"
    last = max([since, *(r.ended for r in runs if r.ended is not None)])
    behind = [
        name
        for name, sensor in watched.items()
        if not any(
            t["status"] in FINISHED_TICK_STATUSES and t["timestamp"] > last for t in sensor_ticks(graphql, sensor)
        )
    ]
    if behind:
        return False, runs, f"a tick of {', '.join(behind)}"
    # A tick that requested a run finished after submitting it, so a second look finds any run it started.
    again = runs_since(graphql, since)
    return len(again) == len(runs) and not any(r.active for r in again), again, "new runs"


def wait_until_settled(
    server: DagsterDev,
    watched: Mapping[str, Sensor],
    since: float,
    timeout_s: float,
    progress: Callable[[float, list[Run], str], None] | None = None,
    progress_every_s: float = 30.0,
    poll_s: float = 2.0,
) -> Settled:
    """Poll until what happened since ``since`` (epoch seconds, e.g. when a day landed) has settled, the sensors and
    automation included, or ``timeout_s`` passes. ``progress(elapsed_s, runs, waiting_for)`` is called every
    ``progress_every_s``. Raises when ``dagster dev`` exits."""
    started = time.time()
    next_progress = started + progress_every_s
    while True:
        settled, runs, waiting = _settle_state(server.graphql, watched, since)
        now = time.time()
        if settled or now - started > timeout_s:
            return Settled(settled, runs)
        if not server.alive():
            raise DagsterDevError(f"dagster dev (pid {server.pid}) exited:\n{log_tail(server.log)}")
        if progress is not None and now >= next_progress:
            progress(now - started, runs, waiting)
            next_progress = now + progress_every_s
        time.sleep(poll_s)
