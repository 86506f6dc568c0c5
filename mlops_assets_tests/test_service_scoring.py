"""The serving logic without BentoML, the store or MLflow: request validation, the point-in-time rules applied to
online values, unknown-entity flags, row order and the threshold fallback.

Then the hot swap in-process: the real :class:`ServingRuntime` over a real MLflow sqlite store of this module (small
real LightGBM versions, registered and promoted as the pipeline does) and the session's real online store and lake,
its watcher polling the champion alias every POLL_SECONDS."""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.feature_contract import KEY_COLUMN, LABEL_COLUMN
from mlops_assets.lib.model_artifacts import LoadedModel, load_version
from mlops_assets.lib.model_registry import promote, rollback
from mlops_assets.lib.point_in_time import build_training_frame
from mlops_assets.lib.training import MODEL_FEATURE_COLUMNS, CategoryVocabulary, model_data
from mlops_assets.service.runtime import ServingRuntime
from mlops_assets.service.scoring import (
    DEFAULT_THRESHOLD,
    SERVING_VIEWS,
    FlightRequest,
    OnlineValues,
    RouteReference,
    assemble,
    build_inputs,
    entity_rows,
    report_threshold,
    request_frame,
)
from mlops_assets.settings import load_settings
from mlops_assets_tests.conftest import FEATURES_END, FEATURES_START, Warehouse
from mlops_assets_tests.test_evaluation_assets import Setup, _register, _subset

REFERENCE = RouteReference(distance={"EWR-IAH": 1400.0}, dest={"IAH": (29.98, -95.34, 97)})
VOCABULARY = CategoryVocabulary(
    {
        "carrier": ("AA", "UA"),
        "origin": ("EWR", "JFK"),
        "dest": ("IAH", "ORD"),
        "plane_type": ("Fixed wing multi engine",),
    }
)


def _request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "carrier": "UA",
        "flight": 1545,
        "tailnum": "N14228",
        "origin": "EWR",
        "dest": "IAH",
        "sched_dep": "2013-02-14T05:15:00",
        "sched_arr": "2013-02-14T08:19:00",
    }
    return body | overrides


def _online(rows: int, stamps: dict[str, list[datetime | None]], values: dict[str, list[Any]]) -> OnlineValues:
    names = [name for spec in SERVING_VIEWS for name in spec.features]
    return OnlineValues(
        values={name: values.get(name, [None] * rows) for name in names},
        event_times={spec.name: stamps.get(spec.name, [None] * rows) for spec in SERVING_VIEWS},
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"carrier": "UNITED"}, "carrier"),
        ({"flight": 0}, "flight"),
        ({"sched_dep": "yesterday"}, "sched_dep"),
        ({"tailnum": None}, "tailnum"),
        ({"sched_arr": "2013-02-14T05:20:00"}, "sched_arr"),  # a 5-minute block time is not a schedule
        ({"sched_dep": "2013-02-14T05:15:00+00:00"}, "sched_dep"),
    ],
)
def test_a_bad_request_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FlightRequest.model_validate(_request(**overrides))
    # The field is in the error's location, which the HTTP answer carries.
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_request_columns_match_the_warehouse_derivation() -> None:
    request = FlightRequest.model_validate(_request(carrier="ua"))
    frame = request_frame([request], REFERENCE, lead_minutes=60)
    row = frame.row(0, named=True)
    assert row["flight_id"] == "2013-02-14_UA1545_EWR"  # stg_flights' key
    assert row["carrier"] == "UA" and row["route"] == "EWR-IAH"
    assert row["sched_dep_minute_of_day"] == 315 and row["sched_block_minutes"] == 184
    assert row["day_of_week"] == 4 and row["month"] == 2 and row["distance"] == 1400.0
    assert row["prediction_ts"] == datetime(2013, 2, 14, 4, 15)
    assert row["tail_day"] == "N14228|2013-02-14" and row["carrier_origin_day"] == "UA|EWR|2013-02-14"
    assert set(entity_rows(frame)[0]) == {spec.join_key for spec in SERVING_VIEWS}


def test_online_values_follow_the_point_in_time_rules_and_unknowns_are_flagged() -> None:
    known = FlightRequest.model_validate(_request())
    new_route = FlightRequest.model_validate(_request(dest="XNA", tailnum="N0NEW", carrier="ZZ"))
    frame = request_frame([known, new_route], REFERENCE, lead_minutes=60)
    at = datetime(2013, 2, 14, 4, 15)
    online = _online(
        2,
        stamps={
            "plane_attributes": [datetime(2013, 2, 14), None],
            # One weather row is from after the prediction time (a replayed past flight), one is older than 3 h.
            "origin_weather": [at + timedelta(minutes=5), at - timedelta(hours=4)],
        },
        values={
            "plane_year": [2004, None],
            "plane_type": ["Fixed wing multi engine", None],
            "weather_temp": [30.0, 31.0],
        },
    )
    inputs = build_inputs(frame, online, VOCABULARY)
    assert inputs.matrix.shape == (2, len(MODEL_FEATURE_COLUMNS))
    temp = MODEL_FEATURE_COLUMNS.index("weather_temp")
    assert np.isnan(inputs.matrix[:, temp]).all()  # neither weather row may be used
    assert inputs.matrix[0, MODEL_FEATURE_COLUMNS.index("plane_year")] == 2004
    assert inputs.matrix[0, MODEL_FEATURE_COLUMNS.index("carrier")] == 1  # "UA" in the sorted vocabulary
    assert np.isnan(inputs.matrix[1, MODEL_FEATURE_COLUMNS.index("carrier")])
    assert inputs.ages[0]["plane_attributes"] == 4.25 * 3600 and inputs.ages[0]["origin_weather"] is None
    assert inputs.unknown == [[], ["tailnum", "route", "dest", "carrier"]]
    assert any("after the prediction time" in note for note in inputs.notes[0])
    assert any("TTL" in note for note in inputs.notes[1])

    answers = assemble(
        frame, np.array([0.7, 0.2]), inputs, 0.4, "evaluation_report", "flight_delay", "3", ["a-0", "a-1"]
    )
    assert [a.flight_id for a in answers] == ["2013-02-14_UA1545_EWR", "2013-02-14_ZZ1545_EWR"]
    assert [a.request_id for a in answers] == ["a-0", "a-1"]
    assert [a.delayed for a in answers] == [True, False]
    assert [a.defaulted for a in answers] == [False, True]


def test_an_unavailable_view_degrades_to_missing_values() -> None:
    frame = request_frame([FlightRequest.model_validate(_request())], REFERENCE, lead_minutes=60)
    online = OnlineValues(
        values=_online(1, {}, {}).values,
        event_times=_online(1, {}, {}).event_times,
        unavailable={"tail_today": "feature view 'tail_today' has no online table"},
    )
    inputs = build_inputs(frame, online, VOCABULARY)
    assert inputs.ages[0]["tail_today"] is None
    assert inputs.notes[0] == ["tail_today unavailable: feature view 'tail_today' has no online table"]


def test_rows_keep_the_request_order() -> None:
    # model_data sorts rows; the service must still answer in request order.
    requests = [
        FlightRequest.model_validate(
            _request(flight=n, sched_dep=f"2013-02-14T{h:02d}:00:00", sched_arr=f"2013-02-14T{h + 2:02d}:00:00")
        )
        for n, h in [(9, 20), (1, 6), (5, 12)]
    ]
    frame = request_frame(requests, REFERENCE, lead_minutes=60)
    plane_year = [2010, 1990, 2000]
    online = _online(3, {"plane_attributes": [datetime(2013, 2, 14)] * 3}, {"plane_year": plane_year})
    inputs = build_inputs(frame, online, VOCABULARY)
    assert inputs.matrix[:, MODEL_FEATURE_COLUMNS.index("plane_year")].tolist() == plane_year


def test_threshold_falls_back_to_the_default_without_a_report() -> None:
    assert report_threshold({"operating_point": {"threshold": 0.31}}) == (0.31, "evaluation_report")
    assert report_threshold(None) == (DEFAULT_THRESHOLD, "default")
    assert report_threshold({"operating_point": {}}) == (DEFAULT_THRESHOLD, "default")


def test_route_reference_from_rows() -> None:
    rows = pl.DataFrame(
        {"route": ["EWR-IAH"], "distance": [1400.0], "dest": ["IAH"], "dest_lat": [29.9], "dest_lon": [-95.3],
         "dest_alt": [97]}
    )  # fmt: skip
    reference = RouteReference.from_frame(rows)
    assert reference.distance == {"EWR-IAH": 1400.0} and reference.dest == {"IAH": (29.9, -95.3, 97)}


# --- Hot swap (ServingRuntime's alias watcher) --------------------------------------------------------------------

POLL_SECONDS = 0.2
WAIT_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def registry(feature_lake: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """This module's own MLflow store and the session's training features; each test registers its versions."""
    tmp = tmp_path_factory.mktemp("hot_swap")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    tracking = MlflowTracking(tracking_uri=uri, registry_uri=uri, artifact_root=str(tmp / "artifacts"))
    frame = build_training_frame(str(feature_lake.lake_root), FEATURES_START, FEATURES_END)
    vocabulary = CategoryVocabulary.fit(frame)
    data = model_data(frame, vocabulary)
    # The tests need distinct real versions, not good models: a few thousand rows keep each registration fast.
    return Setup(tracking, {}, _subset(data, np.arange(min(data.rows, 3000))), vocabulary, tmp)


def _runtime(registry: Setup) -> ServingRuntime:
    # The settings are resolved from an explicit mapping: the process environment is read, never written.
    return ServingRuntime(load_settings({**os.environ, **_registry_env(registry)}))


def _registry_env(registry: Setup) -> dict[str, str]:
    return {
        "MLOPS_MLFLOW_TRACKING_URI": registry.tracking.tracking_uri,
        "MLOPS_MLFLOW_REGISTRY_URI": registry.tracking.registry_uri,
        "MLOPS_REGISTERED_MODEL": registry.tracking.registered_model_name,
        "MLOPS_SERVING_POLL_SECONDS": str(POLL_SECONDS),
    }


def _promote(registry: Setup, rounds: int) -> str:
    version = _register(registry, registry.train, rounds=rounds)
    promote(registry.tracking.client(), registry.tracking.registered_model_name, version, reason="test")
    return version


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {WAIT_TIMEOUT_S} s waiting for {what}"
        time.sleep(0.05)


def _one_request() -> list[FlightRequest]:
    return [FlightRequest.model_validate(_request())]


def test_the_watcher_swaps_to_a_promoted_version_while_requests_keep_succeeding(registry: Setup) -> None:
    first = _promote(registry, rounds=5)
    runtime = _runtime(registry)
    runtime.load()
    assert runtime.ready, runtime.load_error
    assert runtime.predict(_one_request())[0].model_version == first

    seen: list[str] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def score() -> None:
        while not done.is_set():
            try:
                seen.append(runtime.predict(_one_request())[0].model_version)
            except Exception as exc:  # any failure of a request during the swap is what this test looks for
                failures.append(exc)
            time.sleep(0.002)  # leave the second core to the watcher's model load

    client = threading.Thread(target=score, daemon=True)
    runtime.start_watching()
    client.start()
    try:
        second = _promote(registry, rounds=10)
        _wait_for(lambda: runtime.readiness()["model_version"] == second, "the swap")
        _wait_for(lambda: seen[-1:] == [second], "an answer of the new version")
    finally:
        done.set()
        client.join(10)
        runtime.stop()
    assert not failures, failures[:3]
    assert seen[0] == first and seen[-1] == second
    # Once an answer carries the new version, no later one carries the old: the swap is one switch.
    switch = seen.index(second)
    assert set(seen[:switch]) == {first} and set(seen[switch:]) == {second}
    status = runtime.readiness()
    assert status["swaps"] == 1 and status["last_poll_error"] is None and status["last_poll_at"] is not None
    assert status["threshold_source"] == "default"  # the new version's own threshold (it has no report)
    assert not runtime.watching


def test_a_failed_load_keeps_the_current_model_and_reports_the_error(registry: Setup) -> None:
    good = _promote(registry, rounds=5)
    runtime = _runtime(registry)
    runtime.load()
    assert runtime.ready, runtime.load_error
    client = registry.tracking.client()
    name = registry.tracking.registered_model_name
    broken = _register(registry, registry.train, rounds=5)
    # The registry still names the version, but its run's artefacts (booster, vocabulary) are gone.
    artifacts = client.get_run(client.get_model_version(name, broken).run_id).info.artifact_uri
    shutil.rmtree(Path(artifacts.removeprefix("file://")))
    promote(client, name, broken, reason="test")
    runtime.start_watching()
    try:
        _wait_for(lambda: runtime.last_poll_error is not None, "the failed load to be reported")
        assert runtime.predict(_one_request())[0].model_version == good
        status = runtime.readiness()
        assert status["ready"] and status["error"] is None
        assert status["model_version"] == good and status["swaps"] == 0
        assert f"version {broken}:" in status["last_poll_error"]

        # Rolling back to the served version clears the error at the next poll, without a swap.
        rollback(client, name, reason="test")
        _wait_for(lambda: runtime.last_poll_error is None, "the error to clear after the rollback")
        assert runtime.readiness()["model_version"] == good and runtime.swaps == 0
    finally:
        runtime.stop()


def test_a_runtime_started_before_any_champion_becomes_ready_once_one_is_promoted(registry: Setup) -> None:
    # A registered model no version was ever promoted in: the service's state before the first champion.
    tracking = MlflowTracking(
        tracking_uri=registry.tracking.tracking_uri,
        registry_uri=registry.tracking.registry_uri,
        artifact_root=registry.tracking.artifact_root,
        registered_model_name="flight_delay_late",
    )
    late = dataclasses.replace(registry, tracking=tracking)
    runtime = _runtime(late)
    runtime.load()
    assert not runtime.ready and "champion" in (runtime.load_error or "")
    runtime.start_watching()
    try:
        version = _promote(late, rounds=5)
        _wait_for(lambda: runtime.ready, "the first champion to be loaded")
        assert runtime.predict(_one_request())[0].model_version == version
        assert runtime.readiness()["error"] is None and runtime.swaps == 0
    finally:
        runtime.stop()


# --- Shadow scoring and the prediction log (in-process) -----------------------------------------------------------


def _shadow_runtime(registry: Setup, log_lake: Path, **env: str) -> ServingRuntime:
    """A loaded runtime whose prediction log goes to ``log_lake`` (the session lake stays read-only)."""
    runtime = _runtime_with(registry, MLOPS_PREDICTION_LOG_LAKE=str(log_lake), **env)
    runtime.load()
    assert runtime.ready, runtime.load_error
    return runtime


def _runtime_with(registry: Setup, **env: str) -> ServingRuntime:
    return ServingRuntime(load_settings({**os.environ, **_registry_env(registry), **env}), observer=_Recorder())


class _Recorder:
    """A ServingObserver that keeps what it was told (the runtime's side of the metrics contract)."""

    def __init__(self) -> None:
        self.answered_rows = 0
        self.shadow: dict[tuple[str, bool], int] = {}
        self.shadow_seconds: list[float] = []
        self.dropped = 0

    def answered(self, answers: Any) -> None:
        self.answered_rows += len(answers)

    def shadow_scored(self, version: str, rows: int, seconds: float, failed: bool) -> None:
        self.shadow[(version, failed)] = self.shadow.get((version, failed), 0) + rows
        self.shadow_seconds.append(seconds)

    def log_dropped(self, rows: int) -> None:
        self.dropped += rows


def _three_flights() -> list[FlightRequest]:
    return [
        FlightRequest.model_validate(_request(flight=n, sched_dep=f"2013-02-14T{h:02d}:00:00",
                                              sched_arr=f"2013-02-14T{h + 3:02d}:00:00"))
        for n, h in [(11, 9), (12, 13), (13, 17)]
    ]  # fmt: skip


def _narrow(data: Any, columns: int) -> Any:
    """Training data with only the first ``columns`` features, the last renamed to one serving no longer builds: a
    booster that loads but cannot score the serving matrix (``LoadedModel.predict`` names the missing column)."""
    names = (*data.feature_names[: columns - 1], "retired_feature")
    return dataclasses.replace(
        data,
        features=np.ascontiguousarray(data.features[:, :columns]),
        feature_names=names,
        categorical_features=tuple(name for name in data.categorical_features if name in names),
    )


def logged_matrix(logged: pl.DataFrame, vocabulary: CategoryVocabulary) -> np.ndarray:
    """The model matrix of prediction-log rows, in log order, by the training code (not the service's)."""
    frame = logged.select(MODEL_FEATURE_COLUMNS).with_columns(
        pl.lit(0, pl.Int8).alias(LABEL_COLUMN),
        pl.int_range(logged.height).cast(pl.String).str.zfill(8).alias(KEY_COLUMN),
    )
    return model_data(frame, vocabulary).features


def loaded_version(registry: Setup, version: str) -> LoadedModel:
    client = registry.tracking.client()
    return load_version(client, client.get_model_version(registry.tracking.registered_model_name, version))


def test_the_challenger_is_scored_for_the_log_only(registry: Setup, tmp_path: Path) -> None:
    from mlops_assets.lib.model_registry import CHALLENGER
    from mlops_assets.lib.prediction_log import read_prediction_log

    champion = _promote(registry, rounds=5)
    # A challenger with a vocabulary of its own (carrier codes reversed): the shadow must encode the rows again.
    values = registry.vocabulary.values
    reordered = CategoryVocabulary({**values, "carrier": tuple(reversed(values["carrier"]))})
    # _register logs the setup's vocabulary with the version and points alias challenger at it.
    challenger = _register(dataclasses.replace(registry, vocabulary=reordered), registry.train, rounds=12)
    runtime = _shadow_runtime(registry, tmp_path)
    assert runtime.readiness()["shadow"] == {
        "enabled": True, "alias": CHALLENGER, "version": challenger, "load_error": None, "last_score_error": None,
        "scored_rows": 0, "failed_rows": 0,
    }  # fmt: skip
    requests = _three_flights()
    answers = runtime.predict(requests)
    assert {a.model_version for a in answers} == {champion}
    assert not any("shadow" in name for name in type(answers[0]).model_fields)
    runtime.close()
    logged = read_prediction_log(tmp_path, requests[0].sched_dep.date(), requests[0].sched_dep.date())
    assert logged["request_id"].to_list() == [a.request_id for a in answers]
    assert len(set(logged["request_id"])) == 3
    assert set(logged["shadow_version"]) == {challenger}
    assert logged["champion_score"].to_list() == [a.probability for a in answers]
    # The logged inputs are the ones scored: through each model in-process they give the logged scores. The two
    # encodings differ on these rows, so the shadow's score is checked against its own.
    assert not np.array_equal(logged_matrix(logged, reordered), logged_matrix(logged, registry.vocabulary))
    for version, column in ((challenger, "shadow_score"), (champion, "champion_score")):
        model = loaded_version(registry, version)
        assert model.predict(logged_matrix(logged, model.vocabulary)).tolist() == pytest.approx(
            logged[column].to_list(), abs=1e-12
        )
    assert runtime.observer.shadow == {(challenger, False): 3}  # type: ignore[attr-defined]
    assert runtime.readiness()["prediction_log"]["written_rows"] == 3


def test_a_failing_shadow_never_fails_a_request_and_shadow_can_be_switched_off(registry: Setup, tmp_path: Path) -> None:
    from mlops_assets.lib.prediction_log import read_prediction_log

    _promote(registry, rounds=5)
    broken = _register(registry, _narrow(registry.train, 5), rounds=3)
    runtime = _shadow_runtime(registry, tmp_path / "on")
    off = _shadow_runtime(registry, tmp_path / "off", MLOPS_SERVING_SHADOW="false")
    requests = _three_flights()
    for served in (runtime, off):
        answers = served.predict(requests)
        assert len(answers) == 3 and all(0.0 <= a.probability <= 1.0 for a in answers)
        served.close()
    status = runtime.readiness()["shadow"]
    assert status["version"] == broken and status["failed_rows"] == 3 and status["scored_rows"] == 0
    assert f"scoring challenger v{broken}" in status["last_score_error"] and status["load_error"] is None
    assert runtime.observer.shadow == {(broken, True): 3}  # type: ignore[attr-defined]
    assert off.readiness()["shadow"]["enabled"] is False and off.readiness()["shadow"]["version"] is None
    day = requests[0].sched_dep.date()
    for lake in (tmp_path / "on", tmp_path / "off"):
        logged = read_prediction_log(lake, day, day)
        # Logged all the same, with no shadow figures: neither a score nor a version that scored nothing.
        assert logged.height == 3
        assert logged["shadow_score"].null_count() == 3 and logged["shadow_version"].null_count() == 3


def test_a_challenger_that_fails_to_load_leaves_serving_alone(registry: Setup, tmp_path: Path) -> None:
    champion = _promote(registry, rounds=5)
    gone = _register(registry, registry.train, rounds=3)
    client = registry.tracking.client()
    # The registry still names the version, but its run's artefacts (booster, vocabulary) are gone.
    artifacts = client.get_run(client.get_model_version(registry.tracking.registered_model_name, gone).run_id)
    shutil.rmtree(Path(artifacts.info.artifact_uri.removeprefix("file://")))
    runtime = _shadow_runtime(registry, tmp_path)
    status = runtime.readiness()
    assert status["ready"] and status["error"] is None and status["model_version"] == champion
    assert status["shadow"]["version"] is None and f"challenger -> version {gone}:" in status["shadow"]["load_error"]
    assert runtime.predict(_one_request())[0].model_version == champion
    runtime.close()


def test_a_full_log_queue_drops_and_counts_rows_without_failing_requests(registry: Setup, tmp_path: Path) -> None:
    _promote(registry, rounds=5)
    # Never started: nothing writes, so the queue of two rows stays full after the first request.
    runtime = _shadow_runtime(registry, tmp_path, MLOPS_PREDICTION_LOG_MAX_QUEUE_ROWS="2")
    assert len(runtime.predict(_three_flights())) == 3  # three rows do not fit: all dropped
    assert len(runtime.predict(_one_request())) == 1  # one fits
    assert len(runtime.predict(_one_request())) == 1
    assert len(runtime.predict(_one_request())) == 1  # the queue holds two: dropped
    log = runtime.readiness()["prediction_log"]
    assert (log["queued_rows"], log["dropped_rows"], log["written_rows"]) == (2, 4, 0)
    assert runtime.observer.dropped == 4  # type: ignore[attr-defined]
    runtime.close()
    assert runtime.readiness()["prediction_log"]["written_rows"] == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MLOPS_SERVING_SHADOW", "sometimes"),
        ("MLOPS_PREDICTION_LOG_BATCH_ROWS", "0"),
        ("MLOPS_PREDICTION_LOG_FLUSH_SECONDS", "soon"),
        ("MLOPS_PREDICTION_LOG_MAX_QUEUE_ROWS", "-5"),
    ],
)
def test_bad_shadow_and_log_settings_name_the_variable(name: str, value: str) -> None:
    from mlops_assets.settings import SettingsError

    with pytest.raises(SettingsError, match=name):
        load_settings({**os.environ, name: value})


def test_shadow_is_on_by_default_and_the_log_goes_to_the_lake() -> None:
    settings = load_settings({key: value for key, value in os.environ.items() if key != "MLOPS_SERVING_SHADOW"})
    assert settings.serving_shadow is True and settings.prediction_log_root == settings.lake_root
    assert load_settings({**os.environ, "MLOPS_SERVING_SHADOW": "false"}).serving_shadow is False


SHADOW_COST_CALLS = {"1 row": 100, "100 rows": 40}


def test_what_shadow_scoring_costs_a_request(registry: Setup, tmp_path: Path) -> None:
    """The shadow step's own time per request (timed inside predict), and end-to-end predict with and without the
    shadow, interleaved so load affects both alike: medians, printed (run with -s). Timings on shared cores are not
    asserted; what is asserted is that the shadow timed every call and left the answers alone."""
    _promote(registry, rounds=60)
    _register(registry, registry.train, rounds=60)
    with_shadow = _shadow_runtime(registry, tmp_path / "on")
    without = _shadow_runtime(registry, tmp_path / "off", MLOPS_SERVING_SHADOW="false")
    recorder: _Recorder = with_shadow.observer  # type: ignore[assignment]
    report = []
    for label, requests in (("1 row", _one_request()), ("100 rows", _three_flights() * 33 + _one_request())):
        calls = SHADOW_COST_CALLS[label]
        times: dict[str, list[float]] = {"on": [], "off": []}
        recorder.shadow_seconds.clear()
        for _ in range(calls):
            for key, runtime in (("on", with_shadow), ("off", without)):
                began = time.perf_counter()
                runtime.predict(requests)
                times[key].append(time.perf_counter() - began)
        assert len(recorder.shadow_seconds) == calls
        on, off = (float(np.median(times[key])) * 1e3 for key in ("on", "off"))
        step = float(np.median(recorder.shadow_seconds)) * 1e3
        report.append(f"{label}: shadow step {step:.3f} ms; predict {off:.2f} ms without, {on:.2f} ms with")
    assert [a.probability for a in with_shadow.predict(requests)] == [a.probability for a in without.predict(requests)]
    for runtime in (with_shadow, without):
        runtime.close()
    print("\nshadow cost (medians; " + ", ".join(f"{k} x{v}" for k, v in SHADOW_COST_CALLS.items()) + "): ")
    print("\n".join(report))
