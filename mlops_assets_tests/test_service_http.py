"""The BentoML service end to end over HTTP: a real champion (trained on the test features, evaluated and promoted
by the real evaluation_report and champion assets, in this module's own MLflow sqlite store), the real Feast online
store of the session's feature fixtures, and ``bentoml serve`` started as a subprocess on a free 127.0.0.1 port and
stopped by PID. Everything it writes goes under pytest's temp dirs (BENTOML_HOME included).

The model and the evaluation come from test_evaluation_assets' fixture and helpers, reused rather than rebuilt.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from mlops_assets.lib.feature_paths import partition_uri
from mlops_assets.lib.model_registry import CHAMPION
from mlops_assets.service.scoring import SERVING_VIEWS, request_bodies
from mlops_assets_tests.conftest import Warehouse
from mlops_assets_tests.test_evaluation_assets import Setup, _evaluate, _register, setup  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVED_DAY = date(2013, 2, 14)  # the last day whose features the session's online store holds
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class Served:
    url: str
    champion_version: str
    flights: list[dict[str, Any]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _day_flights(lake_root: Path, day: date, rows: int) -> list[dict[str, Any]]:
    """Real scheduled flights of ``day`` (tails the store knows), as request bodies."""
    frame = pl.read_parquet(partition_uri(str(lake_root), "validated", day))
    return request_bodies(frame.filter(pl.col("sched_dep_hour") >= 8).sort("flight_id").head(rows))


@pytest.fixture(scope="module")
def served(setup: Setup, feature_lake: Warehouse, dagster_instance: object) -> Iterator[Served]:  # noqa: F811
    version = _register(setup, setup.train, rounds=60)
    assert _evaluate(setup, dagster_instance).success
    assert setup.tracking.alias_version(CHAMPION) == version

    port = _free_port()
    env = {
        **os.environ,
        "MLOPS_MLFLOW_TRACKING_URI": setup.tracking.tracking_uri,
        "MLOPS_MLFLOW_REGISTRY_URI": setup.tracking.registry_uri,
        "MLOPS_REGISTERED_MODEL": setup.tracking.registered_model_name,
        "BENTOML_HOME": str(setup.tmp / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    log = (setup.tmp / "bentoml.log").open("w")
    command = [
        str(Path(sys.executable).parent / "bentoml"),
        "serve",
        "mlops_assets.service.service:FlightDelayService",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(REPO_ROOT),
    ]
    # Its own session: the server's worker processes are stopped with it, by this process group's id only.
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, (setup.tmp / "bentoml.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (setup.tmp / "bentoml.log").read_text()[-3000:]
            time.sleep(0.5)
        yield Served(url, version, _day_flights(feature_lake.lake_root, SERVED_DAY, 20))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _post(served: Served, route: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{served.url}{route}", json=body, timeout=30)


def _check_answer(answer: dict[str, Any], served: Served) -> None:
    assert 0.0 <= answer["probability"] <= 1.0
    assert answer["model_version"] == served.champion_version
    assert answer["delayed"] == (answer["probability"] >= answer["threshold"])
    assert set(answer["feature_age_seconds"]) == {spec.name for spec in SERVING_VIEWS}


def test_status_names_the_champion_and_the_reports_threshold(served: Served) -> None:
    status = _post(served, "/status", {}).json()
    assert status["ready"] and status["model_version"] == served.champion_version
    # The champion was promoted by evaluation_report, whose report carries the operating point.
    assert status["threshold_source"] == "evaluation_report" and 0.0 < status["threshold"] < 1.0
    assert httpx.get(f"{served.url}/livez", timeout=5).status_code == 200


def test_single_prediction(served: Served) -> None:
    response = _post(served, "/predict", {"flight": served.flights[0]})
    assert response.status_code == 200, response.text
    answer = response.json()
    _check_answer(answer, served)
    assert answer["unknown_entities"] == [] and answer["defaulted"] is False
    # plane_attributes keeps a row only when the values change, so its age is since the tail was first seen (within
    # the view's TTL); an origin's intraday state of the served day is stamped that day.
    ages = answer["feature_age_seconds"]
    assert ages["plane_attributes"] is not None and 0 <= ages["plane_attributes"] <= timedelta(days=366).total_seconds()


def test_batch_prediction_keeps_the_request_order(served: Served) -> None:
    response = _post(served, "/predict_batch", {"flights": served.flights})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert len(answers) == len(served.flights)
    for answer, flight in zip(answers, served.flights, strict=True):
        _check_answer(answer, served)
        assert (
            answer["flight_id"] == f"{SERVED_DAY.isoformat()}_{flight['carrier']}{flight['flight']}_{flight['origin']}"
        )
    single = _post(served, "/predict", {"flight": served.flights[3]}).json()
    assert single["probability"] == pytest.approx(answers[3]["probability"], abs=1e-9)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"sched_dep": "not a time"}, "sched_dep"), ({"carrier": "UNITED"}, "carrier"), ({"flight": -3}, "flight")],
)
def test_a_bad_request_is_a_4xx_naming_the_field(served: Served, change: dict[str, Any], field: str) -> None:
    response = _post(served, "/predict", {"flight": {**served.flights[0], **change}})
    assert 400 <= response.status_code < 500, response.text
    assert field in response.text


def test_a_missing_field_in_a_batch_is_a_4xx_naming_it(served: Served) -> None:
    broken = {key: value for key, value in served.flights[1].items() if key != "tailnum"}
    response = _post(served, "/predict_batch", {"flights": [served.flights[0], broken]})
    assert 400 <= response.status_code < 500, response.text
    assert "tailnum" in response.text


def test_an_oversized_or_malformed_batch_is_a_4xx(served: Served) -> None:
    too_many = _post(served, "/predict_batch", {"flights": [served.flights[0]] * 1001})
    assert 400 <= too_many.status_code < 500 and "flights" in too_many.text
    malformed = httpx.post(f"{served.url}/predict", content=b"{not json", timeout=30)
    assert 400 <= malformed.status_code < 500, malformed.text


def test_an_unknown_tail_and_route_get_a_flagged_default_answer(served: Served) -> None:
    flight = {**served.flights[0], "tailnum": "N0NEW0", "dest": "QQQ"}
    response = _post(served, "/predict", {"flight": flight})
    assert response.status_code == 200, response.text
    answer = response.json()
    _check_answer(answer, served)
    assert answer["defaulted"] is True
    assert {"tailnum", "route", "dest"} <= set(answer["unknown_entities"])
    assert answer["feature_age_seconds"]["plane_attributes"] is None
