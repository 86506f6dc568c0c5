"""trained_model end to end: a tiny real sweep on real features, a real MLflow store, the registry alias and tags."""

from datetime import date, timedelta

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from mlops_assets.definitions import defs
from mlops_assets.defs.common import SETTINGS, daily_partitions
from mlops_assets.defs.training.assets import CHALLENGER_ALIAS, TRAINED_MODEL_KEY, _feature_mapping, weekly_partitions
from mlops_assets.lib.windows import training_windows
from mlops_assets.settings import SettingsError, load_settings
from mlops_assets_tests.conftest import TRAINING_PARTITION, Warehouse

TINY = {"num_samples": 3, "max_rounds": 40, "early_stopping_rounds": 10, "report_every": 5}
VERSION_TAGS = {
    "dagster.run_id",
    "dagster.partition",
    "training_data_hash",
    "code_version",
    "git_sha",
    "config_hash",
    "model_sha256",
    "final_fit",
    "calibration",
}


def _materialize(instance: dg.DagsterInstance, config: dict) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_job_def_def_for_assets([TRAINED_MODEL_KEY])
    assert job is not None
    return job.execute_in_process(
        instance=instance,
        asset_selection=[TRAINED_MODEL_KEY],
        partition_key=TRAINING_PARTITION,
        run_config={"ops": {"trained_model": {"config": config}}},
        raise_on_error=False,
    )


def _client() -> MlflowClient:
    return MlflowClient(tracking_uri=SETTINGS.mlflow_tracking_uri, registry_uri=SETTINGS.mlflow_registry_uri)


def _versions() -> list:
    return _client().search_model_versions(f"name = '{SETTINGS.registered_model_name}'")


def test_trained_model_depends_on_exactly_the_training_and_validation_days() -> None:
    graph = defs.resolve_asset_graph()
    node = graph.get(TRAINED_MODEL_KEY)
    assert {key.to_user_string() for key in node.parent_keys} == {"validated_features", "feature_store"}
    assert node.freshness_policy is not None and node.automation_condition is not None
    upstream = graph.get_parent_partition_keys_for_child(
        TRAINING_PARTITION, dg.AssetKey("validated_features"), TRAINED_MODEL_KEY
    )
    days = sorted(upstream.partitions_subset.get_partition_keys())
    assert (days[0], days[-1], len(days)) == ("2013-01-07", "2013-02-10", 35)


@pytest.mark.parametrize(("train", "valid", "holdout"), [(28, 7, 7), (91, 7, 7), (182, 14, 7), (28, 7, 14)])
def test_declared_inputs_are_exactly_the_training_and_validation_days(train: int, valid: int, holdout: int) -> None:
    settings = load_settings(
        {"MLOPS_TRAIN_DAYS": str(train), "MLOPS_VALID_DAYS": str(valid), "MLOPS_HOLDOUT_DAYS": str(holdout)}
    )
    week = "2013-10-07"
    upstream = _feature_mapping(settings).get_upstream_mapped_partitions_result_for_partitions(
        weekly_partitions.empty_subset().with_partition_keys([week]), weekly_partitions, daily_partitions
    )
    days = sorted(upstream.partitions_subset.get_partition_keys())
    start = date.fromisoformat(week)
    windows = training_windows(start, start + timedelta(days=7), train, valid, holdout)
    assert (days[0], days[-1], len(days)) == (
        windows.train_start.isoformat(),
        windows.valid_end.isoformat(),
        train + valid,
    )


def test_windows_that_are_not_whole_weeks_are_refused() -> None:
    with pytest.raises(SettingsError, match="MLOPS_HOLDOUT_DAYS=10 must be a whole number of weeks"):
        load_settings({"MLOPS_HOLDOUT_DAYS": "10"})


@pytest.mark.usefixtures("local_ray")
def test_tiny_sweep_registers_a_challenger_with_nested_trial_runs(
    feature_lake: Warehouse, dagster_instance: dg.DagsterInstance
) -> None:
    result = _materialize(dagster_instance, TINY)
    assert result.success
    meta = result.asset_materializations_for_node("trained_model")[0].metadata
    assert meta["trials"].value == 3
    assert 0.55 < meta["valid_auc"].value <= 1.0
    assert meta["train_window"].value == "2013-01-07..2013-02-03"
    assert meta["valid_window"].value == "2013-02-04..2013-02-10"
    assert meta["holdout_window"].value == "2013-02-11..2013-02-17"
    assert len(meta["top_trials"].value.records) == 3

    client = _client()
    version = client.get_model_version_by_alias(SETTINGS.registered_model_name, CHALLENGER_ALIAS)
    assert str(version.version) == meta["model_version"].value
    assert set(version.tags) >= VERSION_TAGS
    assert version.tags["dagster.run_id"] == result.run_id
    assert version.tags["dagster.partition"] == TRAINING_PARTITION
    assert version.tags["model_sha256"] == meta["model_sha256"].value

    parent = client.get_run(version.run_id)
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 3
    assert all(child.info.status == "FINISHED" for child in children)
    history = client.get_metric_history(children[0].info.run_id, "valid_auc")
    assert len(history) >= 2 and history[0].step < history[-1].step
    # No MLflow run is left open by the materialisation.
    running = client.search_runs([parent.info.experiment_id], filter_string="attributes.status = 'RUNNING'")
    assert running == []


@pytest.mark.usefixtures("local_ray")
def test_sweep_where_every_trial_fails_fails_the_asset_and_registers_nothing(
    feature_lake: Warehouse, dagster_instance: dg.DagsterInstance
) -> None:
    before = len(_versions())
    result = _materialize(dagster_instance, TINY | {"num_samples": 2, "fixed_params": {"num_leaves": 1}})
    assert not result.success
    failure = result.failure_data_for_node("trained_model")
    assert failure is not None and "all 2 trials of the sweep failed" in str(failure.error)
    assert len(_versions()) == before
    client = _client()
    experiment = client.get_experiment_by_name("flight_delay")
    failed = client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'FAILED'")
    assert any(run.data.tags.get("dagster.run_id") == result.run_id for run in failed)
