"""Serving benchmark: our BentoML service against a bare Starlette app over the same runtime, in one run.

    python benchmarks/serving.py [--data-dir DIR] [--single 2000] [--batches 200] [--concurrency 8] [--repeats 3]

Targets on 2 cores (issue 13, point 7): single-row p99 of the service <= 3x the bare app's, and >= 1,000 single-row
req/s from the service.

State (not timed): a data dir holding a lake, a Feast online store and an MLflow registry with a champion. Built by
the pipeline itself in a child process whose environment points at ``--data-dir`` (default: a fresh temporary dir):
2013-01-01 .. 02-17 landed and ``group:raw or group:transform``, then ``group:features``, materialised in-process
(``benchmarks/sweep.py``'s ``build_lake``), and a LightGBM champion registered and promoted as
``benchmarks/day.py`` does. A data dir built before (it holds ``serving-bench.json``) is reused as it is.

Servers, each on 127.0.0.1 on a free port, in its own process group, stopped by PID:
(a) ``bentoml serve mlops_assets.service.service:FlightDelayService`` (the configuration in its
    ``@bentoml.service`` decorator);
(b) a bare Starlette app under uvicorn (:func:`bare_app`: as many workers as the service, no access log) whose routes
    validate the same request models and call the same :meth:`ServingRuntime.predict` (same champion, same online
    lookup), under the environment the service declares (its ``envs``: thread settings).
Both stay up for the whole run. Payloads are the real scheduled flights of 2013-02-17 (the last day the store holds).
Both apps must first give identical answers to the same 50 flights and one batch.

Load, per app and per repeat (the apps alternate): a warm-up, then ``--single`` one-row ``/predict`` requests and
``--batches`` ``/predict_batch`` requests of ``--batch-rows`` rows, each by ``--concurrency`` keep-alive connections
from this process (uvloop, raw HTTP/1.1 over asyncio streams parsed by httptools: tens of microseconds of client CPU
per request, so the client does not take the servers' cores). Latency is from writing a request to its last byte.
Prints per repeat and the median over repeats: p50, p95, p99 (ms), req/s, the server's CPU time per request (user +
system of its process tree during the load: unlike latency, hardly stretched by other work on a shared machine, so it
also gives the CPU-bound ceiling of req/s on idle cores), and the ratios service/bare.

Trying a configuration without editing the service: ``--service-option services.flight_delay.workers=1`` (BentoML's
``BENTOML_CONFIG_OPTIONS``; give ``--bare-workers`` with it), ``--env NAME=VALUE`` / ``--env NAME=`` (set / leave out,
for both apps), ``--service module:Class`` (another service definition, e.g. a variant on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from mlops_assets.lib.local_processes import free_port
from mlops_assets.service.launch import SERVICE, serve_argv

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
LAKE_END = date(2013, 2, 17)  # benchmarks/day.py's setup end: its champion's holdout week ends here
SERVED_DAY = LAKE_END
STATE_FILE = "serving-bench.json"
TARGET_P99_RATIO = 3.0
TARGET_SINGLE_RPS = 1000.0
START_TIMEOUT_S = 180.0
CHECKED_FLIGHTS = 50
# Answer fields that differ between any two calls by design (the prediction log's row id), left out of the comparison.
PER_CALL_FIELDS = frozenset({"request_id"})
# Environment that would point a child at another data dir or profile than the benchmark's own.
FOREIGN_ENV = (
    "MLOPS_PROFILE",
    "MLOPS_LAKE_ROOT",
    "MLOPS_LANDING_ROOT",
    "MLOPS_WAREHOUSE_CATALOG",
    "MLOPS_WAREHOUSE_DATA_PATH",
    "DAGSTER_HOME",
)


# --- state: a lake, an online store and a champion --------------------------------------------------------------


def product_env(data_dir: Path) -> dict[str, str]:
    """The environment of every child (build, servers): the product's settings resolved under ``data_dir``."""
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN_ENV and not key.startswith("MLOPS_")}
    env.update(
        MLOPS_DATA_DIR=str(data_dir / "data"),
        DAGSTER_HOME=str(data_dir / "dagster_home"),
        # day.py's champion trains the week of 2013-02-11 on 28 days (the lake starts 2013-01-01).
        MLOPS_TRAIN_DAYS="28",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        BENTOML_HOME=str(data_dir / "bentoml"),
        BENTOML_DO_NOT_TRACK="true",
        FEAST_USAGE="False",
        DAGSTER_DISABLE_TELEMETRY="1",
        WHYLOGS_NO_ANALYTICS="1",
        RAY_USAGE_STATS_ENABLED="0",
    )
    return env


def prepare_state(data_dir: Path) -> dict[str, Any]:
    """The data dir's recorded state, building it first (in a child process) when it has none."""
    state_path = data_dir / STATE_FILE
    if state_path.exists():
        return json.loads(state_path.read_text())
    (data_dir / "dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", data_dir / "dagster_home" / "dagster.yaml")
    started = time.perf_counter()
    log = data_dir / "build.log"
    print(f"state: building {data_dir} (log: {log}) ...", flush=True)
    with log.open("wb") as out:
        built = subprocess.run(
            [sys.executable, __file__, "_build", str(data_dir)],
            env=product_env(data_dir),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if built.returncode != 0 or not state_path.exists():
        raise SystemExit(f"serving benchmark: building the state failed (exit {built.returncode}); see {log}")
    state = json.loads(state_path.read_text())
    print(f"state: built in {time.perf_counter() - started:.0f} s (reuse it with --data-dir {data_dir})")
    return state


def _build(data_dir: Path) -> None:
    """In the child: the lake and online store by the pipeline, then the champion; records the state atomically."""
    sys.path.insert(0, str(BENCH_DIR))
    sys.path.insert(0, str(REPO_ROOT))  # sweep.build_lake uses mlops_assets_tests.helpers.materialize_range
    from day import _register_champion
    from sweep import build_lake

    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.defs.resources import build_resources

    lake_root, _ = build_lake(LAKE_END)
    version = _register_champion(build_resources(SETTINGS)["mlflow_tracking"], lake_root)
    state = {"lake_root": lake_root, "champion_version": version, "served_day": SERVED_DAY.isoformat()}
    scratch = data_dir / f".{STATE_FILE}.tmp"
    scratch.write_text(json.dumps(state))
    scratch.replace(data_dir / STATE_FILE)


def request_payloads(lake_root: str, day: date) -> list[dict[str, Any]]:
    """The day's real scheduled flights as request bodies (``flight`` objects), in a fixed order."""
    import polars as pl

    from mlops_assets.lib.feature_paths import partition_uri
    from mlops_assets.service.scoring import request_bodies

    return request_bodies(pl.read_parquet(partition_uri(lake_root, "validated", day)).sort("flight_id"))


# --- the bare app -----------------------------------------------------------------------------------------------


def bare_app() -> Any:
    """A uvicorn factory: the same request models and ServingRuntime as the service, with nothing else around them."""
    from pydantic import TypeAdapter
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from mlops_assets.service.runtime import ServingRuntime
    from mlops_assets.service.scoring import BatchPrediction, BatchRequest, FlightRequest, Prediction

    # As the service's __init__ does (without its Prometheus observer): load, then the alias watcher and the
    # prediction log's writer.
    runtime = ServingRuntime()
    runtime.load()
    runtime.start()
    if not runtime.ready:
        raise RuntimeError(f"bare app: the runtime did not load: {runtime.load_error}")
    single = TypeAdapter(dict[str, FlightRequest])

    def score_one(body: bytes) -> bytes:
        flight = single.validate_json(body)["flight"]
        prediction: Prediction = runtime.predict([flight])[0]
        return prediction.model_dump_json().encode()

    def score_batch(body: bytes) -> bytes:
        flights = BatchRequest.model_validate_json(body).flights
        return BatchPrediction(predictions=runtime.predict(flights)).model_dump_json().encode()

    def route(score: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            # The runtime is synchronous: off the event loop, as BentoML runs a sync API.
            return Response(await run_in_threadpool(score, await request.body()), media_type="application/json")

        return endpoint

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        runtime.close()

    return Starlette(
        routes=[
            Route("/predict", route(score_one), methods=["POST"]),
            Route("/predict_batch", route(score_batch), methods=["POST"]),
        ],
        lifespan=lifespan,
    )


# --- servers ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    pid: int


def _wait_ready(process: subprocess.Popen[bytes], port: int, probe: bytes, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited ({process.returncode}); log tail:\n{log.read_text()[-3000:]}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(probe)
            if sock.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.5)
    raise SystemExit(
        f"server on port {port} not ready in {START_TIMEOUT_S:.0f} s; log tail:\n{log.read_text()[-3000:]}"
    )


@contextmanager
def running(
    name: str, argv: Sequence[str], env: dict[str, str], port: int, probe: bytes, log: Path
) -> Iterator[Server]:
    """Start ``argv`` in its own process group, wait until ``probe`` gets a 200, stop the group by its PID."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_ready(process, port, probe, log)
            yield Server(name, port, process.pid)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def bare_argv(port: int, workers: int) -> list[str]:
    code = (
        "import uvicorn; uvicorn.run('serving:bare_app', factory=True, host='127.0.0.1', "
        f"port={port}, workers={workers}, app_dir={str(BENCH_DIR)!r}, access_log=False, log_level='warning', "
        "loop='uvloop', http='httptools')"
    )
    return [sys.executable, "-c", code]


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def post_request(path: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


# --- the client -------------------------------------------------------------------------------------------------


class _Response:
    """httptools callbacks: one response's status and body."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.done = False

    def on_body(self, chunk: bytes) -> None:
        self.body += chunk

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    """One keep-alive HTTP/1.1 connection sending pre-encoded requests, one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        import httptools

        response = _Response()
        parser = httptools.HttpResponseParser(response)
        self._writer.write(request)
        while not response.done:
            chunk = await self._reader.read(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(chunk)
        return parser.get_status_code(), bytes(response.body)

    async def close(self) -> None:
        self._writer.close()
        with suppress(OSError):
            await self._writer.wait_closed()


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    wall_s: float
    failures: int
    server_cpu_s: float = 0.0  # user + system CPU of the server's process tree during the load

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s * 1000 / len(self.latencies_ms)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.wall_s


async def _load(port: int, requests: Sequence[bytes], concurrency: int) -> LoadResult:
    connections = [await Connection.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    failures = 0
    pending = iter(requests)
    clock = time.perf_counter

    async def worker(connection: Connection) -> None:
        nonlocal failures
        for request in pending:  # a shared iterator: each request is sent once, by whichever connection is free
            started = clock()
            status, _ = await connection.send(request)
            latencies.append((clock() - started) * 1000)
            failures += status != 200

    started = clock()
    await asyncio.gather(*(worker(connection) for connection in connections))
    wall = clock() - started
    for connection in connections:
        await connection.close()
    return LoadResult(latencies, wall, failures)


def load(port: int, requests: Sequence[bytes], concurrency: int) -> LoadResult:
    import uvloop

    return uvloop.run(_load(port, requests, concurrency))


async def _answers(port: int, requests: Sequence[bytes]) -> list[tuple[int, Any]]:
    connection = await Connection.open(port)
    try:
        return [(status, json.loads(body)) for status, body in [await connection.send(r) for r in requests]]
    finally:
        await connection.close()


def _without_per_call_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_per_call_fields(item) for key, item in value.items() if key not in PER_CALL_FIELDS}
    if isinstance(value, list):
        return [_without_per_call_fields(item) for item in value]
    return value


def same_answers(servers: Sequence[Server], requests: Sequence[bytes]) -> int:
    """Every server answers each request with 200 and the same JSON; the number of requests compared."""
    import uvloop

    answers = [uvloop.run(_answers(server.port, requests)) for server in servers]
    for index, per_server in enumerate(zip(*answers, strict=True)):
        statuses = {status for status, _ in per_server}
        if statuses != {200}:
            raise SystemExit(f"request {index}: statuses {[s for s, _ in per_server]}: {per_server}")
        stable = [_without_per_call_fields(body) for _, body in per_server]
        if any(body != stable[0] for body in stable[1:]):
            names = [server.name for server in servers]
            raise SystemExit(f"request {index}: the apps disagree:\n{dict(zip(names, per_server, strict=True))}")
    return len(requests)


# --- the run ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    single: list[bytes]
    batches: list[bytes]
    concurrency: int
    batch_rows: int
    warmup: int


def workload(flights: list[dict[str, Any]], single: int, batches: int, batch_rows: int, concurrency: int) -> Workload:
    if len(flights) < batch_rows:
        raise SystemExit(f"only {len(flights)} flights on {SERVED_DAY}; --batch-rows={batch_rows} needs as many")
    singles = [post_request("/predict", {"flight": flights[i % len(flights)]}) for i in range(single)]
    batch_bodies = [
        post_request(
            "/predict_batch", {"flights": [flights[(b * batch_rows + i) % len(flights)] for i in range(batch_rows)]}
        )
        for b in range(batches)
    ]
    return Workload(singles, batch_bodies, concurrency, batch_rows, warmup=max(concurrency * 20, 100))


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (BentoML's workers, uvicorn's)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for process in (root, *root.children(recursive=True)):
        with suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def timed_load(server: Server, requests: Sequence[bytes], concurrency: int) -> LoadResult:
    # The servers' own CPU per request: other work on a shared machine stretches latency, not this.
    before = server_cpu_s(server.pid)
    result = load(server.port, requests, concurrency)
    return replace(result, server_cpu_s=server_cpu_s(server.pid) - before)


def measure(server: Server, work: Workload) -> dict[str, LoadResult]:
    load(server.port, work.single[: work.warmup], work.concurrency)
    load(server.port, work.batches[: work.concurrency * 2], work.concurrency)
    return {
        "single": timed_load(server, work.single, work.concurrency),
        "batch": timed_load(server, work.batches, work.concurrency),
    }


def _row(app: str, kind: str, result: LoadResult) -> str:
    return (
        f"| {app} | {kind} | {len(result.latencies_ms)} | {result.percentile(0.5):.2f} | {result.percentile(0.95):.2f} "
        f"| {result.percentile(0.99):.2f} | {result.rate:,.0f} | {result.cpu_ms_per_request:.2f} | {result.failures} |"
    )


def _median(results: list[LoadResult], what: str) -> float:
    named = {"rate": lambda r: r.rate, "cpu": lambda r: r.cpu_ms_per_request}
    values = [named[what](r) if what in named else r.percentile(float(what)) for r in results]
    return statistics.median(values)


METRICS = (("p50 ms", "0.5"), ("p95 ms", "0.95"), ("p99 ms", "0.99"), ("req/s", "rate"), ("server CPU ms/req", "cpu"))


def report(runs: list[dict[str, dict[str, LoadResult]]], work: Workload) -> bool:
    """Print the per-repeat rows, the medians, the ratios and the verdict; True when both targets are met."""
    kinds = {"single": "single row", "batch": f"batch of {work.batch_rows}"}
    print(
        "\n| app | request | n | p50 ms | p95 ms | p99 ms | req/s | server CPU ms/req | non-200 |"
        "\n|---|---|---|---|---|---|---|---|---|"
    )
    for repeat, run in enumerate(runs, start=1):
        for app, results in run.items():
            for kind, result in results.items():
                print(_row(f"{app} #{repeat}", kinds[kind], result))
    print(f"\nmedian of {len(runs)} repeat(s), concurrency {work.concurrency}:\n")
    print("| request | metric | service | bare | service/bare |\n|---|---|---|---|---|")
    medians: dict[tuple[str, str, str], float] = {}
    for kind, label in kinds.items():
        for metric, what in METRICS:
            service = _median([run["service"][kind] for run in runs], what)
            bare = _median([run["bare"][kind] for run in runs], what)
            medians[(kind, metric, "service")], medians[(kind, metric, "bare")] = service, bare
            print(f"| {label} | {metric} | {service:,.2f} | {bare:,.2f} | {service / bare:.2f} |")
    p99_ratio = medians[("single", "p99 ms", "service")] / medians[("single", "p99 ms", "bare")]
    rate = medians[("single", "req/s", "service")]
    p99_ok, rate_ok = p99_ratio <= TARGET_P99_RATIO, rate >= TARGET_SINGLE_RPS
    print(
        f"\ntarget single-row p99 service/bare <= {TARGET_P99_RATIO:g}: {p99_ratio:.2f} {'PASS' if p99_ok else 'FAIL'}"
        f"\ntarget single-row service >= {TARGET_SINGLE_RPS:,.0f} req/s: {rate:,.0f} {'PASS' if rate_ok else 'FAIL'}"
    )
    cores = len(os.sched_getaffinity(0))
    service_cpu, bare_cpu = (medians[("single", "server CPU ms/req", app)] for app in ("service", "bare"))
    print(
        f"single-row server CPU per request: service {service_cpu:.2f} ms, bare {bare_cpu:.2f} ms: a CPU-bound ceiling "
        f"of {cores * 1000 / service_cpu:,.0f} and {cores * 1000 / bare_cpu:,.0f} req/s on {cores} otherwise idle cores"
    )
    failures = sum(r.failures for run in runs for results in run.values() for r in results.values())
    if failures:
        print(f"{failures} requests did not get a 200")
    return p99_ok and rate_ok and not failures


@dataclass(frozen=True)
class ServiceSetup:
    """What both apps run with: the service's worker count and declared environment (thread settings), so the bare
    app gets the same processes and the runtime the same threads; plus any overrides of this run."""

    workers: int
    env: dict[str, str | None]  # None: left out of both apps' environment
    config_options: list[str]


def service_setup(config_options: list[str], extra_env: list[str], bare_workers: int | None) -> ServiceSetup:
    from mlops_assets.service.service import FlightDelayService

    env: dict[str, str | None] = {var.name: var.value for var in FlightDelayService.envs if var.value is not None}
    for item in extra_env:
        name, _, value = item.partition("=")
        if not name or not _:
            raise SystemExit(
                f"--env {item!r}: expected NAME=VALUE (NAME= leaves NAME out), e.g. --env OMP_NUM_THREADS=1"
            )
        env[name] = value or None
    workers = FlightDelayService.config.get("workers") or 1
    if bare_workers is None and config_options:
        raise SystemExit("--service-option may change the service's workers: give --bare-workers too")
    if not isinstance(workers, int):
        raise SystemExit(f"the service's workers={workers!r}: give --bare-workers")
    return ServiceSetup(bare_workers or workers, env, config_options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a data dir built before, or where to build one (default: temp)")
    parser.add_argument("--single", type=int, default=2000, help="one-row requests per repeat (default 2000)")
    parser.add_argument("--batches", type=int, default=200, help="batch requests per repeat (default 200)")
    parser.add_argument("--batch-rows", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--service-option",
        action="append",
        default=[],
        help="a BentoML config override for this run, e.g. services.flight_delay.workers=2 (BENTOML_CONFIG_OPTIONS)",
    )
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for both apps' processes; NAME= leaves NAME out"
    )
    parser.add_argument("--service", default=SERVICE, help=f"the BentoML service to serve (default {SERVICE})")
    parser.add_argument("--bare-workers", type=int, help="uvicorn workers (default: the service's workers)")
    args = parser.parse_args()
    setup = service_setup(args.service_option, args.env, args.bare_workers)

    data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="mlops_serving_bench_"))).resolve()
    state = prepare_state(data_dir)
    flights = request_payloads(state["lake_root"], date.fromisoformat(state["served_day"]))
    work = workload(flights, args.single, args.batches, args.batch_rows, args.concurrency)
    print(f"state: {data_dir}, champion v{state['champion_version']}, {len(flights)} flights of {state['served_day']}")
    env = {name: value for name, value in (product_env(data_dir) | setup.env).items() if value is not None}
    service_env = env | ({"BENTOML_CONFIG_OPTIONS": " ".join(setup.config_options)} if setup.config_options else {})
    print(
        f"setup: bare workers {setup.workers}, env {setup.env or '-'}, "
        f"BentoML overrides {' '.join(setup.config_options) or '-'}"
    )
    service_port, bare_port = free_port(), free_port()
    with (
        running(
            "service",
            serve_argv(service_port, REPO_ROOT, args.service),
            service_env,
            service_port,
            get_request("/readyz"),
            data_dir / "bentoml.log",
        ) as service,
        running(
            "bare",
            bare_argv(bare_port, setup.workers),
            env,
            bare_port,
            post_request("/predict", {"flight": flights[0]}),
            data_dir / "bare.log",
        ) as bare,
    ):
        checked = [post_request("/predict", {"flight": flight}) for flight in flights[:CHECKED_FLIGHTS]]
        checked.append(work.batches[0])
        print(f"answers: identical from both apps on {same_answers([service, bare], checked)} requests")
        runs = []
        for _ in range(args.repeats):
            runs.append({server.name: measure(server, work) for server in (service, bare)})
    raise SystemExit(0 if report(runs, work) else 1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_build"]:
        _build(Path(sys.argv[2]))
    else:
        main()
