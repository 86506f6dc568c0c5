"""The one place the environment is read.

Every path, URL and address the pipeline uses is resolved here from ``MLOPS_*`` environment variables, with
embedded defaults for the ``local`` profile (DuckDB, SQLite, local files, local Ray). The ``production`` profile
requires its service URLs to be set explicitly, so a typo never silently falls back to a laptop default.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

Profile = Literal["local", "production"]
PROFILES: tuple[Profile, ...] = ("local", "production")
REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = Path(__file__).resolve().parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
FEATURE_REPO_DIR = PACKAGE_ROOT / "feature_repo"


# Feature definitions shared by dbt (passed as --vars by the dbt assets) and Python (feature names, views, TTLs).
# They name feature columns (``route_delay_rate_28d``), so they are code, not environment: changing one is a schema
# change of the feature contract and of every trained model.
HISTORY_WINDOWS: dict[str, int] = {"route": 28, "carrier": 28, "origin": 7}
"""Trailing window, in days, of the daily delay statistics per entity."""
MAX_WEATHER_AGE_MINUTES = 180
"""Weather older than this at prediction time counts as missing rather than carried forward."""
WEATHER_RECORD_MINUTES = 60
"""An hourly weather record summarises its hour: it is usable from the end of the hour it is stamped with."""


# The warehouse's DuckDB extensions are installed from their wheels in this environment (lib/warehouse.py), so by
# default they live beside them: one copy per environment, whatever the data dir; the image installs them at build.
DEFAULT_DUCKDB_EXTENSION_DIR = Path(sys.prefix) / "share" / "mlops_assets" / "duckdb_extensions"


# The variables that switch the profile or move state away from MLOPS_DATA_DIR: a process pointed at a data dir of its
# own (a test's, a benchmark's) must not inherit them.
STATE_LOCATION_VARIABLES = (
    "MLOPS_PROFILE",
    "MLOPS_LAKE_ROOT",
    "MLOPS_LANDING_ROOT",
    "MLOPS_WAREHOUSE_CATALOG",
    "MLOPS_WAREHOUSE_DATA_PATH",
)


# How production runs each step: one Kubernetes Job (pod) per step, or one container per step on a Docker engine
# (dagster-docker's docker_executor: a host without Kubernetes, and the production test's stand-in for pods).
StepExecutor = Literal["k8s", "docker"]
STEP_EXECUTORS: tuple[StepExecutor, ...] = ("k8s", "docker")

# A step container gets this process's settings (and the clients' own AWS_*/RAY_* variables), except those naming a
# path on this machine: the container has its own scratch data dir and extensions, and a file here is not there.
_STEP_ENVIRONMENT_PREFIXES = ("MLOPS_", "AWS_", "RAY_")
_HOST_PATH_VARIABLES = frozenset({"MLOPS_DATA_DIR", "MLOPS_DUCKDB_EXTENSION_DIR", "RAY_AUTH_TOKEN_PATH"})


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


def _is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


@dataclass(frozen=True)
class Settings:
    profile: Profile
    data_dir: Path
    # Where upstream files land: a folder or an fsspec URL (s3://…); every step that reads it must see the same files.
    landing_root: str
    lake_root: str
    # The dbt warehouse, a DuckLake (lib/warehouse.py): ``sqlite:<file>`` or ``postgres:<conninfo>``, its data path,
    # and the folder its DuckDB extensions are installed in.
    warehouse_catalog: str
    warehouse_data_path: str
    duckdb_extension_dir: Path
    # An S3 API other than AWS's (Ceph, MinIO): the standard AWS_ENDPOINT_URL, which boto3 and s3fs read themselves;
    # DuckDB (the warehouse on s3://) is told it here. Credentials stay in the environment (or the pod's IRSA role).
    s3_endpoint_url: str
    s3_region: str
    mlflow_tracking_uri: str
    mlflow_registry_uri: str
    mlflow_artifact_root: str
    registered_model_name: str
    feast_repo_dir: Path
    feast_registry_path: str
    feast_online_store: str
    ray_address: str
    partitions_start: date
    partitions_end: date
    prediction_lead_minutes: int
    # How often serving re-reads its model alias: a promotion or rollback reaches the service within this time.
    serving_poll_seconds: float = 10.0
    # Shadow scoring: the service also scores the ``challenger`` alias (when it differs from the champion) for the
    # prediction log only; off saves a model's memory and its scoring time per request.
    serving_shadow: bool = True
    # The prediction log (mlops_assets.lib.prediction_log): a batch is written every ``prediction_log_batch_rows``
    # rows or ``prediction_log_flush_seconds``; beyond ``prediction_log_max_queue_rows`` queued rows (the lake is
    # slow or down) rows are dropped and counted rather than slowing requests or growing memory.
    prediction_log_batch_rows: int = 1000
    prediction_log_flush_seconds: float = 5.0
    prediction_log_max_queue_rows: int = 100_000
    # MLOPS_PREDICTION_LOG_LAKE: another lake (or bucket) for the log, e.g. for a retention of its own; None: the lake.
    prediction_log_lake: str | None = None
    # Training windows in days (see mlops_assets.lib.windows); they shape the trained model's lineage, so they are
    # settings rather than run config.
    train_days: int = 91
    valid_days: int = 7
    holdout_days: int = 7
    # GPU sweeps change where the sweep's pod runs (node selector, toleration, GPU request): fixed at load time.
    sweep_use_gpu: bool = False
    # Retraining, in data time (see mlops_assets.lib.retrain and README "Monitoring and retraining"): a scheduled
    # model every ``retrain_every_weeks`` weeks; in between, the drift sensor requests one when the drift (the
    # importance-weighted JS distance's excess over the reference days' own p90, lib/drift.py) or the relative AUC
    # decay exceeds its threshold on ``drift_min_days`` of the last ``drift_window_days`` days and on the latest,
    # with at least ``drift_min_rows`` rows a day and ``retrain_cooldown_days`` since the last model.
    retrain_every_weeks: int = 4
    drift_threshold: float = 0.1
    decay_threshold: float = 0.04
    drift_window_days: int = 7
    drift_min_days: int = 3
    drift_min_rows: int = 300
    retrain_cooldown_days: int = 14
    # Automated rollback (mlops_assets.lib.rollback): a new champion is demoted when, over at least
    # ``rollback_min_days`` labelled days since its promotion, the paired bootstrap CI of AUC(champion) -
    # AUC(previous_champion) on the same rows lies entirely below -``rollback_tolerance``.
    rollback_min_days: int = 3
    rollback_tolerance: float = 0.0
    # The serving image (defs/serving bento_image): the Docker engine it is built on (deploy/docker-engine.sh prints
    # it) and the registry (host:port) it is pushed to so pods can pin its digest; empty: no engine / no push.
    docker_host: str = ""
    image_registry: str = ""
    # The commit an image was built from (deploy/Dockerfile's GIT_SHA build argument): a model trained where no .git
    # exists carries it as its git_sha tag.
    git_sha: str = ""
    # Production only (local runs every step in-process): see StepExecutor. The docker executor's containers run
    # ``step_image`` with the host's network and the variables named in ``step_environment``.
    step_executor: StepExecutor = "k8s"
    step_image: str = ""
    step_environment: tuple[str, ...] = ()
    dbt_project_dir: Path = field(default=DBT_PROJECT_DIR)

    def require_warehouse_catalog(self) -> str:
        if not self.warehouse_catalog:
            raise SettingsError(
                "MLOPS_WAREHOUSE_CATALOG must be set when MLOPS_PROFILE=production, to the PostgreSQL every pod "
                "shares (e.g. MLOPS_WAREHOUSE_CATALOG='postgres:dbname=warehouse host=postgres user=dagster')"
            )
        return self.warehouse_catalog

    @property
    def lake_is_local(self) -> bool:
        return not _is_url(self.lake_root)

    @property
    def prediction_log_root(self) -> str:
        """The lake root the prediction log is written to and read from (its layout: lib/prediction_log.py)."""
        return self.prediction_log_lake or self.lake_root

    def raw_table_uri(self, table: str) -> str:
        return f"{self.lake_root.rstrip('/')}/raw/{table}"

    def dbt_vars(self) -> dict[str, int]:
        """The feature definitions dbt reads with ``var()``: the one source of truth is this module."""
        return {
            "prediction_lead_minutes": self.prediction_lead_minutes,
            "max_weather_age_minutes": MAX_WEATHER_AGE_MINUTES,
            "weather_record_minutes": WEATHER_RECORD_MINUTES,
            **{f"{entity}_history_days": days for entity, days in HISTORY_WINDOWS.items()},
        }


def _parse_date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise SettingsError(f"{name}={value!r} is not a date; use YYYY-MM-DD, e.g. {name}=2013-01-01") from exc


def _positive_days(env: dict[str, str], name: str, default: int) -> int:
    return _positive_int(env, name, default, "days")


def _rollback_min_days(env: dict[str, str]) -> int:
    days = _positive_days(env, "MLOPS_ROLLBACK_MIN_DAYS", 3)
    if days < 2:
        # The rule's CI resamples whole days: one day has no spread to compare against.
        raise SettingsError(f"MLOPS_ROLLBACK_MIN_DAYS={days} must be at least 2 (a CI over days), e.g. 3")
    return days


def _whole_weeks(env: dict[str, str], name: str, default: int) -> int:
    days = _positive_days(env, name, default)
    if days % 7:
        # Models are weekly partitions: with whole weeks, the weekly-to-daily partition mapping declares exactly the
        # training and validation days as the model's inputs (a partial week would drag holdout days into lineage).
        raise SettingsError(f"{name}={days} must be a whole number of weeks (a multiple of 7), e.g. {name}={default}")
    return days


def _positive_int(env: dict[str, str], name: str, default: int, unit: str) -> int:
    value = env.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(f"{name}={value!r} must be a positive whole number of {unit}, e.g. {name}={default}")
    return int(value)


def _positive_seconds(env: dict[str, str], name: str, default: float) -> float:
    value = env.get(name, str(default))
    try:
        parsed = float(value)
    except ValueError:
        parsed = -1.0
    # The chained comparison also rejects nan and inf.
    if not 0.0 < parsed < float("inf"):
        raise SettingsError(f"{name}={value!r} must be a positive number of seconds, e.g. {name}={default:g}")
    return parsed


def _fraction(env: dict[str, str], name: str, default: float) -> float:
    value = env.get(name, str(default))
    try:
        parsed = float(value)
    except ValueError:
        parsed = -1.0
    if not 0.0 < parsed < 1.0:
        raise SettingsError(f"{name}={value!r} must be a number between 0 and 1, e.g. {name}={default}")
    return parsed


def _tolerance(env: dict[str, str], name: str, default: float) -> float:
    # Unlike _fraction, 0 is valid: any loss beyond the CI counts.
    value = env.get(name, str(default))
    try:
        parsed = float(value)
    except ValueError:
        parsed = -1.0
    if not 0.0 <= parsed < 1.0:
        raise SettingsError(f"{name}={value!r} must be a number from 0 up to 1 (an AUC difference), e.g. {name}=0.01")
    return parsed


def _flag(env: dict[str, str], name: str) -> bool:
    value = env.get(name, "false").strip().lower()
    if value not in {"true", "false", "1", "0", "yes", "no"}:
        raise SettingsError(f"{name}={value!r} must be true or false")
    return value in {"true", "1", "yes"}


def _docker_host(env: dict[str, str]) -> str:
    value = env.get("MLOPS_DOCKER_HOST", "").strip()
    if value and not value.startswith(("unix://", "tcp://", "ssh://")):
        raise SettingsError(
            f"MLOPS_DOCKER_HOST={value!r} must be a DOCKER_HOST URL, e.g. unix:///tmp/engine/docker.sock "
            "(deploy/docker-engine.sh start DIR prints it)"
        )
    return value


def _image_registry(env: dict[str, str]) -> str:
    value = env.get("MLOPS_IMAGE_REGISTRY", "").strip().rstrip("/")
    if "://" in value or " " in value:
        raise SettingsError(f"MLOPS_IMAGE_REGISTRY={value!r} must be host[:port][/path], e.g. 127.0.0.1:5000")
    return value


def _step_executor(env: dict[str, str]) -> tuple[StepExecutor, str]:
    executor = env.get("MLOPS_STEP_EXECUTOR", "k8s").strip()
    if executor not in STEP_EXECUTORS:
        choices = ", ".join(STEP_EXECUTORS)
        raise SettingsError(f"MLOPS_STEP_EXECUTOR={executor!r} is not a step executor; use one of {choices}")
    image = env.get("MLOPS_STEP_IMAGE", "").strip()
    if executor == "docker" and not image:
        raise SettingsError(
            "MLOPS_STEP_IMAGE must name the code-location image when MLOPS_STEP_EXECUTOR=docker, e.g. "
            "MLOPS_STEP_IMAGE=mlops-assets/code-location:<sha> (deploy/build-code-image.sh prints it)"
        )
    return executor, image  # type: ignore[return-value]


def _step_environment(env: dict[str, str]) -> tuple[str, ...]:
    return tuple(
        sorted(name for name in env if name.startswith(_STEP_ENVIRONMENT_PREFIXES) and name not in _HOST_PATH_VARIABLES)
    )


def _warehouse_catalog(env: dict[str, str], profile: str, data_dir: Path) -> str:
    value = env.get("MLOPS_WAREHOUSE_CATALOG", "").strip()
    if not value:
        # Production has no default (a pod-local file would not be shared), but only what opens the warehouse needs
        # it (the serving pods do not): Settings.require_warehouse_catalog names the variable there.
        return "" if profile == "production" else f"sqlite:{data_dir / 'warehouse.sqlite'}"
    kind, _, where = value.partition(":")
    if kind not in {"sqlite", "postgres"} or not where:
        raise SettingsError(
            f"MLOPS_WAREHOUSE_CATALOG={value!r} must be sqlite:<file> or postgres:<connection string>, "
            "e.g. postgres:dbname=lake host=127.0.0.1 port=5432 user=dagster"
        )
    if kind == "sqlite":
        return f"sqlite:{Path(where).expanduser().resolve()}"
    return value


def _s3_endpoint_url(env: dict[str, str]) -> str:
    value = env.get("AWS_ENDPOINT_URL", "").strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise SettingsError(
            f"AWS_ENDPOINT_URL={value!r} must be an http:// or https:// URL, e.g. http://127.0.0.1:7480"
        )
    return value


def _warehouse_data_path(env: dict[str, str], data_dir: Path) -> str:
    value = env.get("MLOPS_WAREHOUSE_DATA_PATH", "").strip().removeprefix("file://")
    if not value:
        return f"{data_dir / 'warehouse'}/"
    if _is_url(value):
        if not value.startswith("s3://"):
            raise SettingsError(f"MLOPS_WAREHOUSE_DATA_PATH={value!r} must be a folder or an s3:// URL")
        return value.rstrip("/") + "/"
    return f"{Path(value).expanduser().resolve()}/"


def _landing_root(env: dict[str, str], data_dir: Path) -> str:
    location = env.get("MLOPS_LANDING_ROOT", str(data_dir / "landing")).removeprefix("file://")
    return location if _is_url(location) else str(Path(location).expanduser().resolve())


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Resolve settings from ``environ`` (default: the process environment)."""
    env = dict(os.environ if environ is None else environ)
    profile = env.get("MLOPS_PROFILE", "local")
    if profile not in PROFILES:
        raise SettingsError(f"MLOPS_PROFILE={profile!r} is not a profile; use one of {', '.join(PROFILES)}")

    data_dir = Path(env.get("MLOPS_DATA_DIR", str(REPO_ROOT / "data"))).expanduser().resolve()

    def required_in_production(name: str, local_default: str) -> str:
        value = env.get(name)
        if value:
            return value
        if profile == "production":
            raise SettingsError(f"{name} must be set when MLOPS_PROFILE=production (e.g. {name}=<url>)")
        return local_default

    lake_root = required_in_production("MLOPS_LAKE_ROOT", str(data_dir / "lake"))
    if lake_root.startswith("file://"):
        lake_root = lake_root.removeprefix("file://")
    start = _parse_date("MLOPS_PARTITIONS_START", env.get("MLOPS_PARTITIONS_START", "2013-01-01"))
    end = _parse_date("MLOPS_PARTITIONS_END", env.get("MLOPS_PARTITIONS_END", "2013-12-31"))
    if end < start:
        raise SettingsError(f"MLOPS_PARTITIONS_END={end} is before MLOPS_PARTITIONS_START={start}")
    lead = env.get("MLOPS_PREDICTION_LEAD_MINUTES", "60")
    if not lead.isdigit():
        raise SettingsError(f"MLOPS_PREDICTION_LEAD_MINUTES={lead!r} must be a whole number of minutes")

    step_executor, step_image = _step_executor(env)
    mlflow_tracking_uri = required_in_production(
        "MLOPS_MLFLOW_TRACKING_URI", f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
    )
    return Settings(
        profile=profile,  # type: ignore[arg-type]
        data_dir=data_dir,
        landing_root=_landing_root(env, data_dir),
        lake_root=lake_root,
        warehouse_catalog=_warehouse_catalog(env, profile, data_dir),
        warehouse_data_path=_warehouse_data_path(env, data_dir),
        duckdb_extension_dir=Path(env.get("MLOPS_DUCKDB_EXTENSION_DIR", str(DEFAULT_DUCKDB_EXTENSION_DIR)))
        .expanduser()
        .resolve(),
        s3_endpoint_url=_s3_endpoint_url(env),
        s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        mlflow_tracking_uri=mlflow_tracking_uri,
        mlflow_registry_uri=env.get("MLOPS_MLFLOW_REGISTRY_URI", mlflow_tracking_uri),
        mlflow_artifact_root=env.get("MLOPS_MLFLOW_ARTIFACT_ROOT", str(data_dir / "mlflow" / "artifacts")),
        registered_model_name=env.get("MLOPS_REGISTERED_MODEL", "flight_delay"),
        feast_repo_dir=FEATURE_REPO_DIR,
        feast_registry_path=env.get("MLOPS_FEAST_REGISTRY", str(data_dir / "feast" / "registry.db")),
        feast_online_store=required_in_production(
            "MLOPS_FEAST_ONLINE_STORE", f"sqlite:///{data_dir / 'feast' / 'online.db'}"
        ),
        ray_address=env.get("MLOPS_RAY_ADDRESS", env.get("RAY_ADDRESS", "local")),
        partitions_start=start,
        partitions_end=end,
        prediction_lead_minutes=int(lead),
        serving_poll_seconds=_positive_seconds(env, "MLOPS_SERVING_POLL_SECONDS", 10.0),
        # On unless set to false: _flag's own default is false, so the default is supplied under the variable.
        serving_shadow=_flag({"MLOPS_SERVING_SHADOW": "true"} | env, "MLOPS_SERVING_SHADOW"),
        prediction_log_batch_rows=_positive_int(env, "MLOPS_PREDICTION_LOG_BATCH_ROWS", 1000, "rows"),
        prediction_log_flush_seconds=_positive_seconds(env, "MLOPS_PREDICTION_LOG_FLUSH_SECONDS", 5.0),
        prediction_log_max_queue_rows=_positive_int(env, "MLOPS_PREDICTION_LOG_MAX_QUEUE_ROWS", 100_000, "rows"),
        prediction_log_lake=env.get("MLOPS_PREDICTION_LOG_LAKE", "").removeprefix("file://") or None,
        # 91 days: out of time over Oct-Dec 2013 it beat 28 and matched 182 at half the cost (benchmarks/quality.py).
        train_days=_whole_weeks(env, "MLOPS_TRAIN_DAYS", 91),
        valid_days=_whole_weeks(env, "MLOPS_VALID_DAYS", 7),
        holdout_days=_whole_weeks(env, "MLOPS_HOLDOUT_DAYS", 7),
        sweep_use_gpu=_flag(env, "MLOPS_SWEEP_USE_GPU"),
        retrain_every_weeks=_positive_int(env, "MLOPS_RETRAIN_EVERY_WEEKS", 4, "weeks"),
        drift_threshold=_fraction(env, "MLOPS_DRIFT_THRESHOLD", 0.1),
        decay_threshold=_fraction(env, "MLOPS_DECAY_THRESHOLD", 0.04),
        drift_window_days=_positive_days(env, "MLOPS_DRIFT_WINDOW_DAYS", 7),
        drift_min_days=_positive_days(env, "MLOPS_DRIFT_MIN_DAYS", 3),
        drift_min_rows=_positive_int(env, "MLOPS_DRIFT_MIN_ROWS", 300, "rows"),
        retrain_cooldown_days=_positive_days(env, "MLOPS_RETRAIN_COOLDOWN_DAYS", 14),
        rollback_min_days=_rollback_min_days(env),
        rollback_tolerance=_tolerance(env, "MLOPS_ROLLBACK_TOLERANCE", 0.0),
        docker_host=_docker_host(env),
        image_registry=_image_registry(env),
        git_sha=env.get("MLOPS_GIT_SHA", "").strip(),
        step_executor=step_executor,
        step_image=step_image,
        step_environment=_step_environment(env),
    )
