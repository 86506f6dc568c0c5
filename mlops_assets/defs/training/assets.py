"""trained_model: a weekly LightGBM candidate, tuned by a Ray Tune sweep, tracked in MLflow, registered as challenger.

Cadence: weekly partitions (Monday to Sunday, New York). A day of new flights barely moves a model trained on 13
weeks, and a sweep costs minutes; weekly retraining follows the data's weekly rhythm and gives each model a full
week of holdout that the evaluation scores it on. Automation trains every ``MLOPS_RETRAIN_EVERY_WEEKS``-th week (4)
once its days have arrived (data time, ``defs/training/automation.py``); drift or decay detected in between requests
the current week through the drift sensor, not the calendar.

Windows (days, settings ``MLOPS_TRAIN_DAYS`` / ``MLOPS_VALID_DAYS`` / ``MLOPS_HOLDOUT_DAYS``, see
:mod:`mlops_assets.lib.windows`): the holdout is the partition's own week and is never read here; validation (early
stopping, model selection) is the week before it and training the 91 days before that (chosen out of time by
``benchmarks/quality.py``). The asset's dependency on
the daily features covers exactly the train and validation days, so lineage shows what a model was trained on.
"""

import hashlib
import json
import time
from datetime import date, timedelta
from typing import Literal

import dagster as dg
import polars as pl
from pydantic import Field

from mlops_assets.defs.common import NEW_YORK, SETTINGS, LakeResource
from mlops_assets.defs.features.assets import FEATURE_STORE_KEY
from mlops_assets.defs.features.checks import VALIDATED_KEY
from mlops_assets.defs.training.automation import training_automation
from mlops_assets.defs.training.resources import MlflowTracking, TrackedRun
from mlops_assets.lib.boosting import ModelData, model_sha256, training_params
from mlops_assets.lib.feature_contract import PARTITION_COLUMN
from mlops_assets.lib.feature_paths import entity_table_uri
from mlops_assets.lib.feature_views import FEATURE_VIEWS
from mlops_assets.lib.final_model import fit_final_model
from mlops_assets.lib.io import read_bytes, sha256_hex
from mlops_assets.lib.point_in_time import build_training_frame
from mlops_assets.lib.search_space import DEFAULT_SEARCH_SPACE, sample_configs
from mlops_assets.lib.sweep import SweepResult, SweepSettings, TrialRecord, run_sweep
from mlops_assets.lib.training import CategoryVocabulary, input_example, model_data, require_both_classes
from mlops_assets.lib.windows import TrainingWindows, training_windows
from mlops_assets.settings import Settings

TRAINING_GROUP = "training"
TRAINED_MODEL_KEY = dg.AssetKey("trained_model")
CHALLENGER_ALIAS = "challenger"
CODE_VERSION = "trained_model-v2"
CALIBRATOR_ARTIFACT = "calibration/calibrator.json"


def _first_monday_on_or_after(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7)


# The first week is the first one with a full training and validation window of daily partitions before it, so every
# weekly partition maps onto upstream partitions that exist.
FIRST_TRAINABLE_DAY = SETTINGS.partitions_start + timedelta(days=SETTINGS.train_days + SETTINGS.valid_days)

FIRST_WEEK = _first_monday_on_or_after(FIRST_TRAINABLE_DAY)

weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=FIRST_WEEK.isoformat(),
    end_date=(SETTINGS.partitions_end + timedelta(days=1)).isoformat(),
    day_offset=1,  # weeks start on Monday
    timezone=NEW_YORK,
)


def _feature_mapping(settings: Settings) -> dg.TimeWindowPartitionMapping:
    """Exactly the training and validation days of a week's model: offsets are in downstream (weekly) units, and the
    settings hold the windows to whole weeks, so the mapped days start at ``train_start`` and end the day before the
    holdout."""
    weeks = (settings.train_days + settings.valid_days + settings.holdout_days) // 7
    return dg.TimeWindowPartitionMapping(start_offset=-(weeks - 1), end_offset=-(settings.holdout_days // 7))


def _k8s_tags(use_gpu: bool) -> dict[str, object]:
    """Pod resources for this asset's step under the k8s_job_executor (ignored by the local executors)."""
    container = {"resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}}
    pod: dict[str, object] = {}
    if use_gpu:
        container["resources"]["requests"]["nvidia.com/gpu"] = "1"  # type: ignore[index]
        container["resources"]["limits"]["nvidia.com/gpu"] = "1"  # type: ignore[index]
        pod = {
            "node_selector": {"mlops.example/node-pool": "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
        }
    return {"dagster-k8s/config": {"container_config": container, "pod_spec_config": pod}}


class SweepConfig(dg.Config):
    num_samples: int = 16
    """Trials in the sweep (seeded random search)."""
    max_concurrent_trials: int = 2
    cpus_per_trial: int = 1
    """Cores per trial; LightGBM uses this many threads."""
    use_gpu: bool = SETTINGS.sweep_use_gpu
    """Trials request a GPU and LightGBM uses device_type=gpu (OpenCL). Default from MLOPS_SWEEP_USE_GPU."""
    gpus_per_trial: float = 1.0
    max_rounds: int = 400
    early_stopping_rounds: int = 30
    report_every: int = 10
    seed: int = 2013
    fixed_params: dict[str, float] = Field(default_factory=dict)
    """LightGBM parameters pinned for every trial (they override the sampled values)."""
    final_fit: Literal["early", "refit"] = "early"
    """The registered model: the best configuration early-stopped on the training window, or refit on training +
    validation (lib/final_model.py; chosen by benchmarks/quality.py)."""
    calibration: Literal["identity", "intercept", "platt", "isotonic"] = "platt"
    """Calibrator fitted on the early model's validation predictions, stored with the model."""

    def sweep_settings(self) -> SweepSettings:
        return SweepSettings(
            num_samples=self.num_samples,
            max_concurrent_trials=self.max_concurrent_trials,
            cpus_per_trial=self.cpus_per_trial,
            use_gpu=self.use_gpu,
            gpus_per_trial=self.gpus_per_trial,
            max_rounds=self.max_rounds,
            early_stopping_rounds=self.early_stopping_rounds,
            report_every=self.report_every,
            seed=self.seed,
        )


def _windows(context: dg.AssetExecutionContext) -> TrainingWindows:
    window = context.partition_time_window
    windows = training_windows(
        window.start.date(), window.end.date(), SETTINGS.train_days, SETTINGS.valid_days, SETTINGS.holdout_days
    )
    if windows.train_start < SETTINGS.partitions_start:
        raise dg.Failure(
            f"trained_model partition {context.partition_key}: the training window starts {windows.train_start}, "
            f"before the first daily partition {SETTINGS.partitions_start}. Pick a week starting on or after "
            f"{FIRST_TRAINABLE_DAY} or shorten MLOPS_TRAIN_DAYS."
        )
    return windows


def _upstream_versions(context: dg.AssetExecutionContext, start: date, end: date) -> dict[str, dict[str, str]]:
    """Per upstream asset, the version of each day the model trains on (the data version, else the materialisation's
    storage id); every day of both validated_features and feature_store must be materialised. The feature store's
    day before ``start`` is required too: it produced the delay statistics that serve ``start``."""
    versions: dict[str, dict[str, str]] = {}
    store_start = max(start - timedelta(days=1), SETTINGS.partitions_start)
    for key, first in ((VALIDATED_KEY, start), (FEATURE_STORE_KEY, store_start)):
        found: dict[str, str] = {}
        missing = []
        day = first
        while day <= end:
            record = context.instance.get_latest_data_version_record(key, partition_key=day.isoformat())
            version = None
            if record is not None and record.asset_materialization is not None:
                version = record.asset_materialization.tags.get("dagster/data_version") or str(record.storage_id)
            if version is None:
                missing.append(day.isoformat())
            else:
                found[day.isoformat()] = version
            day += timedelta(days=1)
        name = key.to_user_string()
        if missing:
            raise dg.Failure(
                f"trained_model partition {context.partition_key}: {name} is not materialised for "
                f"{len(missing)} day(s) of the training window ({missing[0]} .. {missing[-1]}). Materialise them "
                f"first: dagster asset materialize -m mlops_assets.definitions --select '{name}*' "
                f"--partition-range {missing[0]}...{missing[-1]}"
            )
        versions[name] = found
    return versions


def _entity_table_hashes(lake_root: str) -> dict[str, str]:
    """SHA-256 of every entity table the point-in-time join reads: the training data is these plus the days."""
    hashes = {}
    for spec in FEATURE_VIEWS:
        try:
            hashes[spec.name] = sha256_hex(read_bytes(entity_table_uri(lake_root, spec.name)))
        except FileNotFoundError:
            hashes[spec.name] = "absent"
    return hashes


def _hash(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _git_sha() -> str:
    # In an image there is no .git: the build stamps the commit as MLOPS_GIT_SHA (deploy/Dockerfile's GIT_SHA).
    if SETTINGS.git_sha:
        return SETTINGS.git_sha
    head = SETTINGS.dbt_project_dir.parent / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (head.parent / ref.removeprefix("ref: ")).read_text().strip()
        return ref
    except OSError:
        return "unknown"


def _trials_table(trials: list[TrialRecord], top: int = 5) -> dg.TableMetadataValue:
    ranked = sorted(trials, key=lambda t: (not t.succeeded, -(t.valid_auc or 0.0)))[:top]
    params = list(DEFAULT_SEARCH_SPACE)
    return dg.TableMetadataValue(
        records=[
            dg.TableRecord(
                {
                    "trial": t.trial_id,
                    "status": t.status,
                    "valid_auc": round(t.valid_auc, 5) if t.valid_auc is not None else None,
                    "best_iteration": t.best_iteration,
                    "rounds": t.rounds,
                    **{name: t.params.get(name) for name in params},
                }
            )
            for t in ranked
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("trial", "string"),
                dg.TableColumn("status", "string"),
                dg.TableColumn("valid_auc", "float"),
                dg.TableColumn("best_iteration", "int"),
                dg.TableColumn("rounds", "int"),
                *(dg.TableColumn(name, "float") for name in params),
            ]
        ),
    )


def _sweep(
    context: dg.AssetExecutionContext,
    tracking: MlflowTracking,
    parent: TrackedRun,
    run_tags: dict[str, str],
    train: ModelData,
    valid: ModelData,
    settings: SweepSettings,
    configs: list[dict[str, float]],
) -> SweepResult:
    """The Ray Tune sweep, each finished trial logged as a nested MLflow run and as a progress line."""
    best_so_far: list[float] = []

    def on_trial(record: TrialRecord, done: int, total: int) -> None:
        tracking.log_child_run(
            parent,
            run_name=f"trial-{record.trial_id}",
            params=record.params,
            metric_history={"valid_auc": record.history},
            tags={"trial_id": record.trial_id, **run_tags},
            failed=not record.succeeded,
        )
        if record.succeeded:
            best_so_far.append(record.valid_auc or 0.0)
        best = f"{max(best_so_far):.4f}" if best_so_far else "none yet"
        outcome = f"valid AUC {record.valid_auc:.4f}" if record.succeeded else f"FAILED: {record.error_summary}"
        context.log.info(f"sweep: trial {done}/{total} done ({outcome}, {record.rounds} rounds); best {best}")

    context.log.info(
        f"sweep: {len(configs)} trials, {settings.max_concurrent_trials} at a time, "
        f"{settings.cpus_per_trial} CPU(s){' + GPU' if settings.use_gpu else ''} each, Ray at {SETTINGS.ray_address}"
    )
    sweep = run_sweep(train, valid, settings, SETTINGS.ray_address, configs=configs, on_trial_complete=on_trial)
    context.log.info(f"sweep finished in {sweep.wall_s:.1f}s (Ray start {sweep.ray_start_s:.1f}s)")
    return sweep


@dg.asset(
    key=TRAINED_MODEL_KEY,
    group_name=TRAINING_GROUP,
    partitions_def=weekly_partitions,
    deps=[
        dg.AssetDep(VALIDATED_KEY, partition_mapping=_feature_mapping(SETTINGS)),
        dg.AssetDep(FEATURE_STORE_KEY, partition_mapping=_feature_mapping(SETTINGS)),
    ],
    # No backfill policy: a backfill of weeks runs one run (one sweep) per week, each its own MLflow parent run.
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=9), warn_window=timedelta(days=8)),
    # Data arrival on the schedule's weeks (defs/training/automation.py); the drift sensor requests the weeks between.
    automation_condition=training_automation(FIRST_WEEK, SETTINGS.retrain_every_weeks),
    op_tags=_k8s_tags(SETTINGS.sweep_use_gpu),
    code_version=CODE_VERSION,
    kinds={"lightgbm", "ray", "mlflow"},
    description="LightGBM candidate tuned by a Ray Tune sweep, registered in MLflow with alias 'challenger'.",
)
def trained_model(
    context: dg.AssetExecutionContext, config: SweepConfig, lake: LakeResource, mlflow_tracking: MlflowTracking
) -> dg.MaterializeResult:
    windows = _windows(context)
    versions = _upstream_versions(context, windows.train_start, windows.valid_end)
    sweep_settings = config.sweep_settings()
    context.log.info(
        f"windows: train {windows.train_start}..{windows.train_end}, valid {windows.valid_start}..{windows.valid_end},"
        f" holdout {windows.holdout_start}..{windows.holdout_end} (not read here)"
    )

    frame = build_training_frame(lake.lake_root, windows.train_start, windows.valid_end)
    train_frame = frame.filter(pl.col(PARTITION_COLUMN) <= windows.train_end)
    valid_frame = frame.filter(pl.col(PARTITION_COLUMN) >= windows.valid_start)
    vocabulary = CategoryVocabulary.fit(train_frame)
    train, valid = model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary)
    require_both_classes(train, f"training ({windows.train_start}..{windows.train_end})")
    require_both_classes(valid, f"validation ({windows.valid_start}..{windows.valid_end})")
    context.log.info(f"training frame: {train.rows} train rows, {valid.rows} validation rows")

    configs = [{**c, **config.fixed_params} for c in sample_configs(sweep_settings.num_samples, sweep_settings.seed)]
    training_data_hash = _hash(
        {**versions, "entity_tables": _entity_table_hashes(lake.lake_root), "vocabulary": vocabulary.to_json()}
    )
    config_hash = _hash({"sweep": config.model_dump(), "windows": windows.as_metadata()})
    run_tags = {
        "dagster.run_id": context.run.run_id,
        "dagster.asset": TRAINED_MODEL_KEY.to_user_string(),
        "dagster.partition": context.partition_key,
    }
    with mlflow_tracking.parent_run(f"trained_model-{context.partition_key}", run_tags) as parent:
        mlflow_tracking.log_params(
            parent,
            {
                **windows.as_metadata(),
                **{f"sweep.{k}": v for k, v in config.model_dump().items() if k != "fixed_params"},
                **{f"space.{name}": spec.describe() for name, spec in DEFAULT_SEARCH_SPACE.items()},
                **{f"fixed.{name}": value for name, value in config.fixed_params.items()},
                "train_rows": train.rows,
                "valid_rows": valid.rows,
            },
        )
        sweep = _sweep(context, mlflow_tracking, parent, run_tags, train, valid, sweep_settings, configs)
        best = sweep.best

        refit_started = time.perf_counter()
        # All the sweep's cores; the thread count is part of the config hash, so the final fit stays reproducible.
        threads = sweep_settings.cpus_per_trial * sweep_settings.max_concurrent_trials
        params = training_params(best.params, num_threads=threads, use_gpu=sweep_settings.use_gpu)
        final = fit_final_model(
            params,
            train,
            valid,
            max_rounds=sweep_settings.max_rounds,
            early_stopping_rounds=sweep_settings.early_stopping_rounds,
            calibration=config.calibration,
            final_fit=config.final_fit,
        )
        booster = final.booster
        refit_s = time.perf_counter() - refit_started
        digest = model_sha256(booster)
        context.log.info(
            f"final model: {final.fit} fit, {final.rounds} rounds, validation AUC {final.valid_auc:.4f}; "
            f"{final.calibrator.method} calibration, validation ECE {final.valid_ece_raw:.4f} -> "
            f"{final.valid_ece_calibrated:.4f}"
        )

        mlflow_tracking.log_metrics(
            parent,
            {
                "best_valid_auc": best.valid_auc or 0.0,
                "sweep_wall_s": sweep.wall_s,
                "refit_s": refit_s,
                "trials_failed": sum(not t.succeeded for t in sweep.trials),
                "final_valid_auc": final.valid_auc,
                "valid_ece_raw": final.valid_ece_raw,
                "valid_ece_calibrated": final.valid_ece_calibrated,
            },
        )
        mlflow_tracking.log_params(
            parent, {f"best.{k}": v for k, v in best.params.items()} | {"best.rounds": best.best_iteration}
        )
        mlflow_tracking.log_text(parent, vocabulary.to_json(), "encoding/categories.json")
        # Serving and evaluation apply it to the booster's raw probability (lib/calibration.py Calibrator.from_json).
        mlflow_tracking.log_text(parent, final.calibrator.to_json(), CALIBRATOR_ARTIFACT)
        version_tags = {
            **run_tags,
            "training_data_hash": training_data_hash,
            "code_version": CODE_VERSION,
            "git_sha": _git_sha(),
            "config_hash": config_hash,
            "model_sha256": digest,
            "holdout_window": windows.as_metadata()["holdout_window"],
            "final_fit": final.fit,
            "calibration": final.calibrator.method,
        }
        version = mlflow_tracking.register_lightgbm(
            parent, booster, input_example(train).to_pandas(), version_tags, alias=CHALLENGER_ALIAS
        )
        # A backfill of an old week registers its version but never takes the alias from a newer week's model.
        challenger = mlflow_tracking.alias_version(CHALLENGER_ALIAS) == version
        context.log.info(
            f"registered {mlflow_tracking.registered_model_name} version {version}"
            + (f" as '{CHALLENGER_ALIAS}'" if challenger else f" ('{CHALLENGER_ALIAS}' stays on a newer week)")
            + f" (valid AUC {best.valid_auc:.4f})"
        )
        run_link = mlflow_tracking.run_link(parent)

    return dg.MaterializeResult(
        data_version=dg.DataVersion(digest),
        metadata={
            **windows.as_metadata(),
            "model_name": mlflow_tracking.registered_model_name,
            "model_version": version,
            "model_uri": f"models:/{mlflow_tracking.registered_model_name}/{version}",
            "challenger": challenger,
            "valid_auc": dg.FloatMetadataValue(best.valid_auc or 0.0),
            "best_params": dg.JsonMetadataValue(best.params),
            "best_rounds": best.best_iteration,
            "trials": len(sweep.trials),
            "trials_failed": sum(not t.succeeded for t in sweep.trials),
            "top_trials": _trials_table(sweep.trials),
            "sweep_wall_s": round(sweep.wall_s, 2),
            "ray_start_s": round(sweep.ray_start_s, 2),
            "cpu_seconds": round(sweep.cpu_seconds, 1),
            "gpu_seconds": round(sweep.gpu_seconds, 1),
            "refit_s": round(refit_s, 3),
            "final_fit": final.fit,
            "final_rounds": final.rounds,
            "calibration": final.calibrator.method,
            "valid_ece_raw": dg.FloatMetadataValue(round(final.valid_ece_raw, 5)),
            "valid_ece_calibrated": dg.FloatMetadataValue(round(final.valid_ece_calibrated, 5)),
            "train_rows": train.rows,
            "valid_rows": valid.rows,
            "training_data_hash": training_data_hash,
            "model_sha256": digest,
            "mlflow_run": dg.UrlMetadataValue(run_link) if run_link.startswith("http") else run_link,
        },
    )
