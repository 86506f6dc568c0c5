"""Materialise a slice of the pipeline as CI would, with ``dagster asset materialize``, and print a JSON summary.

Run as ``python -m mlops_assets_tests.production_run FIRST LAST WEEK`` by the production-profile test, in a fresh
process because settings (and so every resource) are resolved when the package is imported. With
``MLOPS_STEP_EXECUTOR=docker`` every step runs in its own container: this process only orchestrates.
"""

import json
import subprocess
import sys
import time
from datetime import date

import dagster as dg

from mlops_assets.definitions import defs
from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.raw.sensors import landing_sensor
from mlops_assets.defs.resources import build_resources
from mlops_assets.defs.serving.assets import BENTO_KEY
from mlops_assets.defs.training.assets import TRAINED_MODEL_KEY
from mlops_assets.lib.landing import land_days
from mlops_assets.lib.model_registry import CHAMPION

DAILY_SELECTION = "not group:training and not group:serving"
TINY_SWEEP = {"num_samples": 2, "max_rounds": 30, "early_stopping_rounds": 10, "report_every": 5}


def _materialize(keys: list[dg.AssetKey], *options: str) -> float:
    """``dagster asset materialize`` of ``keys``; returns its wall seconds."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "mlops_assets.definitions",
         "--select", ",".join(key.to_user_string() for key in keys), *options],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def _landing_requests() -> list[list[str]]:
    """What the landing sensor requests now (it lists the landing zone, on S3 here): [job] or [job, first, last]."""
    with dg.DagsterInstance.get() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"lake": build_resources(SETTINGS)["lake"]})
        result = landing_sensor(context)
    assert isinstance(result, dg.SensorResult)
    range_tags = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
    return [
        [request.job_name or "", *(request.tags[tag] for tag in range_tags if tag in request.tags)]
        for request in result.run_requests or []
    ]


def main(first: date, last: date, week: str) -> dict[str, object]:
    land_days(SETTINGS.landing_root, first, last)
    landing_requests = _landing_requests()
    graph = defs.resolve_asset_graph()
    daily = dg.AssetSelection.from_string(DAILY_SELECTION).resolve(graph)
    # The CLI runs a partition range as one run only for partitioned assets: the dimensions go first, on their own.
    dimensions = sorted(key for key in daily if graph.get(key).partitions_def is None)
    partitioned = sorted(key for key in daily if graph.get(key).partitions_def is not None)
    dimensions_s = _materialize(dimensions)
    daily_s = _materialize(partitioned, "--partition-range", f"{first.isoformat()}...{last.isoformat()}")
    sweep = json.dumps({"ops": {"trained_model": {"config": TINY_SWEEP}}})
    training_s = _materialize([TRAINED_MODEL_KEY], "--partition", week, "--config-json", sweep)
    with dg.DagsterInstance.get() as instance:
        model = instance.fetch_materializations(TRAINED_MODEL_KEY, limit=1).records[0]
        metadata = model.event_log_entry.asset_materialization.metadata  # type: ignore[union-attr]
    # Promoted by hand, as an operator may (the gate's own path is evaluation_report -> champion), so that the bento
    # is built in a container of its own and its archive lands on S3 for the image step to import.
    tracking = build_resources(SETTINGS)["mlflow_tracking"]
    tracking.client().set_registered_model_alias(
        tracking.registered_model_name, CHAMPION, str(metadata["model_version"].value)
    )
    bento_s = _materialize([BENTO_KEY])
    with dg.DagsterInstance.get() as instance:
        bento = instance.fetch_materializations(BENTO_KEY, limit=1).records[0]
        bento_metadata = bento.event_log_entry.asset_materialization.metadata  # type: ignore[union-attr]
        runs = instance.get_runs(limit=4)  # newest first: bento, training, the daily range, the dimensions
        return {
            "landing_requests": landing_requests,
            "profile": SETTINGS.profile,
            "executor": SETTINGS.step_executor,
            "storage": type(instance.run_storage).__name__,
            "warehouse": SETTINGS.warehouse_catalog,
            "run_ids": [run.run_id for run in runs],
            "daily_run_id": runs[2].run_id,
            "bento_archive": bento_metadata["archive"].value,
            "bento_model_version": bento_metadata["model_version"].value,
            "training_run_id": model.run_id,
            "model_version": metadata["model_version"].value,
            "valid_auc": metadata["valid_auc"].value,
            "ray_start_s": metadata["ray_start_s"].value,
            "ray_address": SETTINGS.ray_address,
            "dimensions_s": round(dimensions_s, 1),
            "daily_chain_s": round(daily_s, 1),
            "training_s": round(training_s, 1),
            "bento_s": round(bento_s, 1),
        }


if __name__ == "__main__":
    start, end, partition = sys.argv[1:4]
    summary = main(date.fromisoformat(start), date.fromisoformat(end), partition)
    print("SUMMARY " + json.dumps(summary))
