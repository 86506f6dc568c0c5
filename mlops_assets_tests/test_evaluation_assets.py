"""evaluation_report, the promotion gate, champion and rollback end to end: real features, real LightGBM models
registered in a real MLflow sqlite store (a tmp dir per module), real in-process Dagster runs.

Models are registered directly through ``MlflowTracking.register_lightgbm`` (as trained_model does after its sweep)
to keep the test fast: a modest model (a small sample), a deliberately worse one (shuffled labels) and a good one.
The holdout week of TRAINING_PARTITION is 2013-02-11..17; the test warehouse ends on the 14th, so the evaluation
runs with ``require_full_holdout=false`` on four days.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.resources import build_resources
from mlops_assets.defs.training.evaluation import EVALUATION_REPORT_KEY, evaluation_report, report_dir
from mlops_assets.defs.training.promotion import CHAMPION_KEY, champion, rollback_champion
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.boosting import ModelData, refit, training_params
from mlops_assets.lib.model_registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from mlops_assets.lib.point_in_time import build_training_frame
from mlops_assets.lib.promotion import AUC_VS_CHAMPION, GATE_RULES
from mlops_assets.lib.training import CategoryVocabulary, input_example, model_data
from mlops_assets_tests.conftest import FEATURES_END, FEATURES_START, TRAINING_PARTITION, Warehouse

HOLDOUT_START, HOLDOUT_END = date(2013, 2, 11), date(2013, 2, 14)
# The test's first champion is deliberately small (1,500 rows, shallow trees); a full-size candidate is several times
# slower per batch than it, which the latency gate accepts while the candidate stays well inside the budget.
EVAL_CONFIG = {
    "require_full_holdout": False,
    "resamples": 300,
    "min_slice_rows": 150,
    "max_ece": 0.2,
}


@dataclass(frozen=True)
class Setup:
    tracking: MlflowTracking
    resources: dict[str, object]
    train: ModelData
    vocabulary: CategoryVocabulary
    tmp: Path


@pytest.fixture(scope="module")
def setup(feature_lake: Warehouse, dagster_instance: object, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    from mlops_assets.definitions import defs
    from mlops_assets_tests.helpers import materialize_range

    assert materialize_range(defs, dagster_instance, "group:features", HOLDOUT_START, HOLDOUT_END).success
    tmp = tmp_path_factory.mktemp("evaluation")
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        registry_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        artifact_root=str(tmp / "artifacts"),
    )
    frame = build_training_frame(str(feature_lake.lake_root), FEATURES_START, FEATURES_END)
    vocabulary = CategoryVocabulary.fit(frame)
    resources = {**build_resources(SETTINGS), "mlflow_tracking": tracking}
    return Setup(tracking, resources, model_data(frame, vocabulary), vocabulary, tmp)


def _register(setup: Setup, data: ModelData, rounds: int, partition: str = TRAINING_PARTITION) -> str:
    params = training_params({"num_leaves": 15, "learning_rate": 0.08, "min_data_in_leaf": 20}, num_threads=2)
    booster = refit(params, data, rounds)
    tags = {"dagster.partition": partition, "training_data_hash": "test", "git_sha": "test", "config_hash": "test"}
    with setup.tracking.parent_run(f"test-{partition}", tags) as run:
        setup.tracking.log_text(run, setup.vocabulary.to_json(), "encoding/categories.json")
        return setup.tracking.register_lightgbm(run, booster, input_example(data).to_pandas(), tags, alias=CHALLENGER)


def _subset(data: ModelData, index: np.ndarray, label: np.ndarray | None = None) -> ModelData:
    return ModelData(
        data.features[index],
        data.label[index] if label is None else label,
        data.feature_names,
        data.categorical_features,
    )


def _evaluate(setup: Setup, instance: object, dry_run: bool = False) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [evaluation_report, champion],
        instance=instance,  # type: ignore[arg-type]
        resources=setup.resources,
        partition_key=TRAINING_PARTITION,
        run_config={
            "ops": {"evaluation_report": {"config": EVAL_CONFIG}, "champion": {"config": {"dry_run": dry_run}}}
        },
        raise_on_error=False,
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def _alias(setup: Setup, alias: str) -> str | None:
    return setup.tracking.alias_version(alias)


@pytest.fixture(scope="module")
def flow(setup: Setup, dagster_instance: object) -> Iterator[dict[str, object]]:
    """modest -> champion (floors); shuffled -> gate fails; good -> promoted; rollback -> modest again."""
    rng = np.random.default_rng(2013)
    steps: dict[str, object] = {}
    small = np.sort(rng.choice(setup.train.rows, 1500, replace=False))
    steps["modest"] = _register(setup, _subset(setup.train, small), rounds=60)
    steps["modest_result"] = _evaluate(setup, dagster_instance)
    steps["after_modest"] = _alias(setup, CHAMPION)

    shuffled = _subset(setup.train, np.arange(setup.train.rows), rng.permutation(setup.train.label))
    steps["shuffled"] = _register(setup, shuffled, rounds=60)
    steps["shuffled_result"] = _evaluate(setup, dagster_instance)
    steps["after_shuffled"] = _alias(setup, CHAMPION)

    steps["good"] = _register(setup, setup.train, rounds=150)
    steps["dry_run_result"] = _evaluate(setup, dagster_instance, dry_run=True)
    steps["after_dry_run"] = _alias(setup, CHAMPION)
    steps["good_result"] = _evaluate(setup, dagster_instance)
    steps["after_good"] = (_alias(setup, CHAMPION), _alias(setup, PREVIOUS_CHAMPION))
    yield steps


def test_first_candidate_without_champion_is_judged_on_floors(flow: dict[str, object]) -> None:
    result = flow["modest_result"]
    assert isinstance(result, dg.ExecuteInProcessResult)
    checks = _checks(result)
    assert set(checks) == set(GATE_RULES) and all(checks.values()), checks
    assert flow["after_modest"] == flow["modest"]
    meta = result.asset_materializations_for_node("evaluation_report")[0].metadata
    assert meta["champion_version"].value == "none"


def test_worse_candidate_fails_the_gate_and_champion_stays(flow: dict[str, object]) -> None:
    result = flow["shuffled_result"]
    assert isinstance(result, dg.ExecuteInProcessResult)
    checks = _checks(result)
    assert checks[AUC_VS_CHAMPION] is False
    assert not result.asset_materializations_for_node("champion")
    assert flow["after_shuffled"] == flow["modest"]
    meta = result.asset_materializations_for_node("evaluation_report")[0].metadata
    assert meta["delta_roc_auc_ci_high"].value < 0
    assert meta["gate_passed"].value is False


def test_dry_run_moves_nothing_then_better_candidate_is_promoted(flow: dict[str, object]) -> None:
    assert flow["after_dry_run"] == flow["modest"]
    dry = flow["dry_run_result"]
    assert isinstance(dry, dg.ExecuteInProcessResult)
    assert all(_checks(dry).values()), [
        e.asset_check_evaluation_data.description
        for e in dry.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert dry.asset_materializations_for_node("champion")[0].metadata["promoted"].value is False
    good = flow["good_result"]
    assert isinstance(good, dg.ExecuteInProcessResult)
    assert all(_checks(good).values()), _checks(good)
    assert flow["after_good"] == (flow["good"], flow["modest"])
    meta = good.asset_materializations_for_node("evaluation_report")[0].metadata
    assert meta["delta_roc_auc"].value > 0
    assert meta["roc_auc_ci_low"].value <= meta["roc_auc"].value <= meta["roc_auc_ci_high"].value


def test_report_is_logged_on_the_candidates_run(setup: Setup, flow: dict[str, object]) -> None:
    client = setup.tracking.client()
    version = client.get_model_version(setup.tracking.registered_model_name, str(flow["good"]))
    files = {f.path for f in client.list_artifacts(version.run_id, f"evaluation/{TRAINING_PARTITION}")}
    assert files == {f"evaluation/{TRAINING_PARTITION}/report.json", f"evaluation/{TRAINING_PARTITION}/report.html"}


def test_backfill_of_an_old_week_keeps_challenger_on_the_newest(setup: Setup, flow: dict[str, object]) -> None:
    before = _alias(setup, CHALLENGER)
    old = _register(setup, setup.train, rounds=5, partition="2013-02-04")
    assert old != before and _alias(setup, CHALLENGER) == before


def test_rollback_job_then_cli(
    setup: Setup, flow: dict[str, object], dagster_instance: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = rollback_champion.execute_in_process(
        instance=dagster_instance,  # type: ignore[arg-type]
        resources={"mlflow_tracking": setup.tracking},
        run_config={"ops": {"restore_previous_champion": {"config": {"reason": "late-arrival spike in test"}}}},
    )
    assert result.success
    assert _alias(setup, CHAMPION) == flow["modest"] and _alias(setup, PREVIOUS_CHAMPION) is None
    client: MlflowClient = setup.tracking.client()
    name = setup.tracking.registered_model_name
    assert "late-arrival spike" in client.get_registered_model(name).tags["last_rollback"]
    demoted = client.get_model_version(name, str(flow["good"])).tags
    assert demoted["rolled_back_reason"] == "late-arrival spike in test" and demoted["rolled_back_at"]

    # The CLI does the same through the product's settings; promote the good model again, then roll back.
    from mlops_assets.cli import main
    from mlops_assets.lib.model_registry import promote

    promote(client, name, str(flow["good"]), reason="test")
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", setup.tracking.tracking_uri)
    monkeypatch.setenv("MLOPS_MLFLOW_REGISTRY_URI", setup.tracking.registry_uri)
    assert main(["rollback", "--reason", "cli test"]) == 0
    assert _alias(setup, CHAMPION) == flow["modest"]
    assert main(["rollback", "--reason", "again"]) == 2  # nothing left to roll back to


def test_report_json_has_every_section(flow: dict[str, object]) -> None:
    import json

    from mlops_assets.lib.evaluation_report import SECTIONS

    report = json.loads((report_dir(TRAINING_PARTITION) / "report.json").read_text())
    assert set(SECTIONS) <= set(report)
    assert report["provenance"]["holdout_rows_hash"] and report["provenance"]["champion"]["version"]
    assert report["baselines"]["logistic_regression"]["roc_auc"] > 0.5
    assert {row["dimension"] for row in report["slices"]["rows"]} == {
        "carrier",
        "origin",
        "month",
        "dep_hour_bucket",
        "distance_bucket",
    }
    frame = pl.DataFrame(report["slices"]["rows"])
    assert frame.filter(pl.col("scored")).get_column("rows").min() >= EVAL_CONFIG["min_slice_rows"]


def test_evaluation_graph_declares_holdout_days_freshness_and_automation() -> None:
    from mlops_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    node = graph.get(EVALUATION_REPORT_KEY)
    assert node.freshness_policy is not None and node.automation_condition is not None
    assert graph.get(CHAMPION_KEY).freshness_policy is not None and graph.get(CHAMPION_KEY).automation_condition
    days = graph.get_parent_partition_keys_for_child(
        TRAINING_PARTITION, dg.AssetKey("validated_features"), EVALUATION_REPORT_KEY
    ).partitions_subset.get_partition_keys()
    assert sorted(days) == [f"2013-02-{d}" for d in range(11, 18)]


def test_html_report_opens_offline_in_headless_chromium(setup: Setup, flow: dict[str, object]) -> None:
    """The report logged for the promoted week opens in Chromium with every section and every plot decoded (the
    PNGs are inline, so no request leaves the page); a full-page screenshot is saved under the test's tmp dir."""
    from playwright.sync_api import sync_playwright

    from mlops_assets.lib.report_render import SECTION_TITLES
    from mlops_assets_tests.test_ui_browser import CHROMIUM, CHROMIUM_ARGS

    assert CHROMIUM.exists(), "Chromium is missing: apt-get install -y chromium (scripts/test.sh does)"
    page_path = report_dir(TRAINING_PARTITION) / "report.html"
    shot = setup.tmp / "evaluation-report.png"
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            for key, title in SECTION_TITLES.items():
                assert page.locator(f"section#{key} h2").inner_text() == title
            images = page.locator("img")
            assert images.count() == 6  # ROC, PR, reliability, threshold sweep, slices, importance
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert all(width > 100 for width in widths), widths
            assert "Gate PASSED" in page.locator("section#gate").inner_text()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    assert shot.stat().st_size > 50_000
