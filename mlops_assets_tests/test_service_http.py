"""The BentoML service end to end over HTTP: a real champion (trained on the test features, evaluated and promoted
by the real evaluation_report and champion assets, in this module's own MLflow sqlite store), the real Feast online
store of the session's feature fixtures, and ``bentoml serve`` started as a subprocess on a free 127.0.0.1 port and
stopped by PID. Everything it writes goes under pytest's temp dirs (BENTOML_HOME and the prediction log included). The
server polls its aliases every second, so a test registers a challenger and reads its shadow scores back from the
prediction log, another promotes a second version and rolls it back with the real CLI under load, and the last stops
the server and finds what its log still held written.

The model and the evaluation come from test_evaluation_assets' fixture and helpers, reused rather than rebuilt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from mlops_assets.lib.feature_paths import partition_uri
from mlops_assets.lib.local_processes import free_port
from mlops_assets.lib.model_registry import CHAMPION, promote
from mlops_assets.lib.prediction_log import read_prediction_log
from mlops_assets.service.launch import serve_argv
from mlops_assets.service.scoring import SERVING_VIEWS, request_bodies
from mlops_assets_tests.conftest import Warehouse
from mlops_assets_tests.test_evaluation_assets import Setup, _evaluate, _register, setup  # noqa: F401  (fixture)
from mlops_assets_tests.test_service_scoring import loaded_version, logged_matrix

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVED_DAY = date(2013, 2, 14)  # the last day whose features the session's online store holds
START_TIMEOUT_S = 120
ROLLBACK_BUDGET_S = 60.0  # issue 13: a rollback is served within a minute of the command's return
SETTLE_S = 2.0  # how long the previous version must keep answering before the load stops
LOAD_CLIENTS = 4
LOG_FLUSH_S = 3.0  # the server's prediction log writes a batch at least this often
STOP_TRIES = 5


@dataclass(frozen=True)
class Served:
    url: str
    champion_version: str
    flights: list[dict[str, Any]]
    env: dict[str, str]  # the server's environment: the CLI run against it must see the same registry
    log_lake: Path  # where the server writes its prediction log (the session's lake stays read-only)
    stop: Callable[[], int | None]  # stops the server (SIGTERM to its process group) and returns its exit status


def _day_flights(lake_root: Path, day: date, rows: int) -> list[dict[str, Any]]:
    """Real scheduled flights of ``day`` (tails the store knows), as request bodies."""
    frame = pl.read_parquet(partition_uri(str(lake_root), "validated", day))
    return request_bodies(frame.filter(pl.col("sched_dep_hour") >= 8).sort("flight_id").head(rows))


@pytest.fixture(scope="module")
def served(setup: Setup, feature_lake: Warehouse, dagster_instance: object) -> Iterator[Served]:  # noqa: F811
    version = _register(setup, setup.train, rounds=60)
    assert _evaluate(setup, dagster_instance).success
    assert setup.tracking.alias_version(CHAMPION) == version

    port = free_port()
    env = {
        **os.environ,
        "MLOPS_MLFLOW_TRACKING_URI": setup.tracking.tracking_uri,
        "MLOPS_MLFLOW_REGISTRY_URI": setup.tracking.registry_uri,
        "MLOPS_REGISTERED_MODEL": setup.tracking.registered_model_name,
        "BENTOML_HOME": str(setup.tmp / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        # A promotion or rollback reaches the server within a second: the rollback test measures the swap itself.
        "MLOPS_SERVING_POLL_SECONDS": "1",
        "MLOPS_PREDICTION_LOG_LAKE": str(setup.tmp / "log_lake"),
        "MLOPS_PREDICTION_LOG_FLUSH_SECONDS": str(LOG_FLUSH_S),
    }
    log = (setup.tmp / "bentoml.log").open("w")
    command = serve_argv(port, REPO_ROOT)
    # Its own session: the server's worker processes are stopped with it, by this process group's id only.
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def stop() -> int | None:
        if process.poll() is not None:
            return process.returncode
        # SIGTERM is a clean stop: BentoML runs the service's shutdown hook (the prediction log's last write).
        os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None

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
        flights = _day_flights(feature_lake.lake_root, SERVED_DAY, 20)
        yield Served(url, version, flights, env, setup.tmp / "log_lake", stop)
    finally:
        stop()
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


# --- Shadow scoring, the prediction log and the service's metrics --------------------------------------------------


def _status(served: Served) -> dict[str, Any]:
    return _post(served, "/status", {}).json()


def _wait_for_shadow(served: Served, version: str | None, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (shadow := _status(served)["shadow"])["version"] != version:
        assert time.monotonic() < deadline, f"the shadow never became {version}: {shadow}"
        time.sleep(0.2)


def _answers(served: Served, singles: int, batch: int) -> list[dict[str, Any]]:
    """``singles`` single requests, then one batch of ``batch`` flights: their answers, in order."""
    answers = []
    for flight in served.flights[:singles]:
        response = _post(served, "/predict", {"flight": flight})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    response = _post(served, "/predict_batch", {"flights": served.flights[:batch]})
    assert response.status_code == 200, response.text
    return answers + response.json()["predictions"]


def _logged(served: Served, answers: list[dict[str, Any]]) -> pl.DataFrame:
    """The log rows of these answers, in answer order, once the writer has had time to write them all."""
    ids = [answer["request_id"] for answer in answers]
    deadline = time.monotonic() + 10 * LOG_FLUSH_S
    while True:
        log = read_prediction_log(served.log_lake, SERVED_DAY, SERVED_DAY)
        rows = log.filter(pl.col("request_id").is_in(ids))
        if rows.height >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # Exactly one row per answer: none missing, none twice.
    assert sorted(rows["request_id"]) == sorted(ids), f"{rows.height} logged rows for {len(ids)} answers"
    order = {request_id: index for index, request_id in enumerate(ids)}
    return rows.sort(pl.col("request_id").replace_strict(order, return_dtype=pl.Int64))


def _metrics(served: Served, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of series ``name`` on the service's /metrics, by their labels."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{served.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name
    }


def _delta(after: dict[Any, float], before: dict[Any, float]) -> dict[Any, float]:
    return {key: value - before.get(key, 0.0) for key, value in after.items() if value != before.get(key, 0.0)}


def test_without_a_challenger_the_shadow_columns_are_null(served: Served) -> None:
    # The fixture's only version is both challenger and champion: there is nothing to shadow.
    assert _status(served)["shadow"] == {
        "enabled": True, "alias": "challenger", "version": None, "load_error": None, "last_score_error": None,
        "scored_rows": 0, "failed_rows": 0,
    }  # fmt: skip
    answers = _answers(served, singles=1, batch=4)
    rows = _logged(served, answers)
    assert rows["shadow_score"].null_count() == rows.height and rows["shadow_version"].null_count() == rows.height
    assert rows["champion_score"].to_list() == [answer["probability"] for answer in answers]
    assert set(rows["champion_version"]) == {served.champion_version}


def test_the_challenger_is_scored_in_shadow_into_the_log_and_never_answered(served: Served, setup: Setup) -> None:  # noqa: F811
    challenger = _register(setup, setup.train, rounds=30)  # points alias challenger at the new version
    _wait_for_shadow(served, challenger)
    answers = _answers(served, singles=2, batch=len(served.flights))
    for answer in answers:
        _check_answer(answer, served)
        assert not any("shadow" in key or "challenger" in key for key in answer), answer
    rows = _logged(served, answers)
    assert rows["champion_score"].to_list() == [answer["probability"] for answer in answers]
    assert rows["decision"].to_list() == [answer["delayed"] for answer in answers]
    assert set(rows["shadow_version"]) == {challenger} and set(rows["champion_version"]) == {served.champion_version}
    assert rows["flight_id"].to_list() == [answer["flight_id"] for answer in answers]
    # The logged features are the model input as scored: the training code's encoding of them, through each model
    # in-process, gives the logged scores (the shadow's is its predict_proba on the same rows).
    for version, column in ((challenger, "shadow_score"), (served.champion_version, "champion_score")):
        model = loaded_version(setup, version)
        assert model.predict(logged_matrix(rows, model.vocabulary)).tolist() == pytest.approx(
            rows[column].to_list(), abs=1e-9
        ), column
    # Every answered row is written, queued or counted as dropped; nothing was dropped.
    log = _status(served)["prediction_log"]
    answered = sum(_metrics(served, "mlops_serving_predictions_total").values())
    assert log["dropped_rows"] == 0 and log["last_error"] is None and log["running"]
    assert log["written_rows"] + log["queued_rows"] == answered


def test_metrics_count_decisions_shadow_scores_and_feature_ages(served: Served) -> None:
    # Runs after the challenger was registered: the shadow is still loaded.
    shadow = _status(served)["shadow"]["version"]
    assert shadow is not None
    names = [
        "mlops_serving_predictions_total",
        "mlops_serving_shadow_scores_total",
        "mlops_serving_shadow_failures_total",
        "mlops_serving_prediction_log_dropped_rows_total",
        "mlops_serving_feature_missing_total",
    ]
    before = {name: _metrics(served, name) for name in names}
    flights = [*served.flights[:6], {**served.flights[6], "tailnum": "N0NEW0"}]  # one tail the store never saw
    response = _post(served, "/predict_batch", {"flights": flights})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    after = {name: _metrics(served, name) for name in names}
    decisions = Counter(("delayed" if a["delayed"] else "on_time", a["model_version"]) for a in answers)
    assert _delta(after["mlops_serving_predictions_total"], before["mlops_serving_predictions_total"]) == {
        (("decision", decision), ("model_version", version)): rows for (decision, version), rows in decisions.items()
    }
    assert _delta(after["mlops_serving_shadow_scores_total"], before["mlops_serving_shadow_scores_total"]) == {
        (("shadow_version", shadow),): len(flights)
    }
    assert not _delta(after["mlops_serving_shadow_failures_total"], before["mlops_serving_shadow_failures_total"])
    assert after["mlops_serving_prediction_log_dropped_rows_total"] == {(): 0.0}
    missing = {
        (("view", spec.name),): float(sum(a["feature_age_seconds"][spec.name] is None for a in answers))
        for spec in SERVING_VIEWS
    }
    assert _delta(after["mlops_serving_feature_missing_total"], before["mlops_serving_feature_missing_total"]) == {
        key: rows for key, rows in missing.items() if rows
    }
    assert missing[(("view", "plane_attributes"),)] >= 1  # the unknown tail
    # Each view's gauge holds the oldest value this (the latest) request used.
    ages = _metrics(served, "mlops_serving_feature_age_seconds")
    for spec in SERVING_VIEWS:
        used = [a["feature_age_seconds"][spec.name] for a in answers if a["feature_age_seconds"][spec.name] is not None]
        if used:
            assert ages[(("view", spec.name),)] == pytest.approx(max(used)), spec.name


@dataclass(frozen=True)
class Answer:
    received_at: float  # time.monotonic() when the answer (or the transport error) arrived
    status: int  # -1: no HTTP answer at all
    model_version: str | None
    detail: str


def _wait_for_version(served: Served, version: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = _post(served, "/predict", {"flight": served.flights[0]})
        if answer.status_code == 200 and answer.json()["model_version"] == version:
            return
        assert time.monotonic() < deadline, f"the server never answered with version {version}: {answer.text[:500]}"
        time.sleep(0.2)


def _send_until(served: Served, flight: dict[str, Any], stop: threading.Event, answers: list[Answer]) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        while not stop.is_set():
            try:
                response = http.post("/predict", json={"flight": flight})
            except httpx.HTTPError as exc:  # a refused or dropped connection is a failed request too
                answers.append(Answer(time.monotonic(), -1, None, repr(exc)))
                continue
            ok = response.status_code == 200
            version = response.json()["model_version"] if ok else None
            answers.append(Answer(time.monotonic(), response.status_code, version, "" if ok else response.text[:300]))


def test_rollback_under_load_is_served_within_a_minute_without_a_failed_request(
    served: Served,
    setup: Setup,  # noqa: F811
) -> None:
    # Last in the module: it ends with the first champion restored, as the tests above expect it.
    client = setup.tracking.client()
    name = setup.tracking.registered_model_name
    # A second champion, so the first becomes previous_champion (the gate itself is tested in test_evaluation_assets).
    began = time.monotonic()
    second = _register(setup, setup.train, rounds=20)
    promote(client, name, second, reason="test: hot swap")
    promoted = time.monotonic()
    _wait_for_version(served, second)
    swapped_in = time.monotonic()

    answers: list[Answer] = []  # list.append is atomic: the client threads share it without a lock
    stop = threading.Event()
    clients = [
        threading.Thread(target=_send_until, args=(served, served.flights[i], stop, answers), daemon=True)
        for i in range(LOAD_CLIENTS)
    ]
    for thread in clients:
        thread.start()
    try:
        time.sleep(2.0)  # the load first runs against the second champion
        invoked = time.monotonic()
        command = subprocess.run(
            [str(Path(sys.executable).parent / "mlops-assets"), "rollback", "--reason", "test"],
            env=served.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        returned = time.monotonic()
        assert command.returncode == 0, command.stderr
        # The load goes on until the previous version has answered for SETTLE_S, bounded by the budget.
        deadline = returned + ROLLBACK_BUDGET_S + SETTLE_S
        while time.monotonic() < deadline:
            back = [a.received_at for a in list(answers) if a.received_at > returned and a.model_version != second]
            if back and time.monotonic() - back[0] >= SETTLE_S:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in clients:
            thread.join(35)

    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed, e.g. {failed[:3]}"
    assert any(a.model_version == second and a.received_at < returned for a in answers)
    # Every answer after the last one of the demoted version carries the previous one; the time from the command's
    # return to that last answer is the rollback's time to serve (0 when the swap was already done by then).
    last_demoted = max(a.received_at for a in answers if a.model_version == second)
    after = [a for a in answers if a.received_at > last_demoted]
    assert after and {a.model_version for a in after} == {served.champion_version}
    rollback_s = max(0.0, last_demoted - returned)
    print(
        f"\nrollback v{second} -> v{served.champion_version}: every answer carried v{served.champion_version} "
        f"{rollback_s:.2f} s after `mlops-assets rollback` returned (last v{second} answer at "
        f"{last_demoted - invoked:+.2f} s from the command's start, which took {returned - invoked:.2f} s; "
        f"{len(answers)} requests from {LOAD_CLIENTS} clients, none failed, {len(after)} after the swap; "
        f"register {promoted - began:.1f} s, promotion served {swapped_in - promoted:.2f} s after it)"
    )
    assert rollback_s <= ROLLBACK_BUDGET_S
    status = _post(served, "/status", {}).json()
    assert status["model_version"] == served.champion_version and status["threshold_source"] == "evaluation_report"
    assert status["swaps"] >= 2 and status["last_poll_error"] is None and status["last_poll_at"] is not None


def _queue_a_batch(served: Served) -> tuple[list[str], bool]:
    """Right after the writer's last write, one batch: its request ids, and whether /status then still showed all
    of them queued (False when a loaded machine took longer than the flush interval)."""
    _post(served, "/predict", {"flight": served.flights[0]})
    deadline = time.monotonic() + 5 * LOG_FLUSH_S
    while _status(served)["prediction_log"]["queued_rows"]:
        assert time.monotonic() < deadline, "the prediction log never wrote its queue"
        time.sleep(0.05)
    response = _post(served, "/predict_batch", {"flights": served.flights})
    assert response.status_code == 200, response.text
    ids = [answer["request_id"] for answer in response.json()["predictions"]]
    return ids, _status(served)["prediction_log"]["queued_rows"] == len(ids)


def test_a_clean_stop_writes_what_the_log_still_held(served: Served) -> None:
    # Last: it stops the server while a batch is queued, not yet written (a few tries: under load a request can
    # outlast the flush interval, and then that batch was written before the stop).
    ids: list[str] = []
    for _ in range(STOP_TRIES):
        batch, queued = _queue_a_batch(served)
        ids += batch
        if queued:
            break
    assert queued, f"in {STOP_TRIES} tries no batch was still queued when /status answered"
    assert served.stop() == 0
    logged = read_prediction_log(served.log_lake, SERVED_DAY, SERVED_DAY)
    assert logged.filter(pl.col("request_id").is_in(ids)).height == len(ids)
    assert logged["request_id"].n_unique() == logged.height
