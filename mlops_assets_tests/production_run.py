"""Materialise a slice of the pipeline in whatever profile the environment selects, and print a JSON summary.

Run as ``python -m mlops_assets_tests.production_run FIRST LAST WEEK`` by the production-profile test, in a fresh
process because settings (and so every resource) are resolved when the package is imported.
"""

import json
import sys
import time
from datetime import date

import dagster as dg

from mlops_assets.definitions import defs
from mlops_assets.defs.common import SETTINGS
from mlops_assets.defs.training.assets import TRAINED_MODEL_KEY
from mlops_assets.lib.landing import land_days
from mlops_assets_tests.helpers import materialize_range

TINY_SWEEP = {"num_samples": 2, "max_rounds": 30, "early_stopping_rounds": 10, "report_every": 5}


def main(first: date, last: date, week: str) -> dict[str, object]:
    land_days(SETTINGS.landing_dir, first, last)
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        daily = materialize_range(defs, instance, "not group:training and not group:serving", first, last)
        daily_s = time.perf_counter() - started
        job = defs.resolve_implicit_job_def_def_for_assets([TRAINED_MODEL_KEY])
        assert job is not None
        trained = job.execute_in_process(
            instance=instance,
            asset_selection=[TRAINED_MODEL_KEY],
            partition_key=week,
            run_config={"ops": {"trained_model": {"config": TINY_SWEEP}}},
        )
        training_s = time.perf_counter() - started - daily_s
        metadata = trained.asset_materializations_for_node("trained_model")[0].metadata
        return {
            "profile": SETTINGS.profile,
            "storage": type(instance.run_storage).__name__,
            "warehouse": SETTINGS.warehouse_catalog,
            "daily_run_id": daily.run_id,
            "training_run_id": trained.run_id,
            "model_version": metadata["model_version"].value,
            "valid_auc": metadata["valid_auc"].value,
            "ray_start_s": metadata["ray_start_s"].value,
            "daily_chain_s": round(daily_s, 1),
            "training_s": round(training_s, 1),
        }


if __name__ == "__main__":
    start, end, partition = sys.argv[1:4]
    summary = main(date.fromisoformat(start), date.fromisoformat(end), partition)
    print("SUMMARY " + json.dumps(summary))
