"""Out-of-time quality as the product trains: weekly models scored on their own holdout week, pooled over Oct-Dec 2013.

    python benchmarks/quality.py                          # build (or reuse) the year, then the full table
    python benchmarks/quality.py --quick                  # fewer configs and windows (a smoke run)
    python benchmarks/quality.py --per-week               # also the per-week figures
    python benchmarks/quality.py --rebuild                # re-materialise the year even if the data dir is current

Target (issue 10, point 7): pooled AUC >= 0.75 and ECE <= 0.02 (10 equal-width bins) over the 13 Monday-to-Sunday
holdout weeks of 2013-09-30 .. 2013-12-29.

Data: the product's own path. The year 2013 is landed with ``mlops_assets.lib.landing.land_days`` and materialised
through Dagster in-process (``group:raw or group:transform``, then ``group:features``) into ``--data-dir``; the data
dir is reused while a fingerprint of the feature code (dbt project, ``mlops_assets/lib``, the features and Feast
definitions) is unchanged, so re-running after a feature change rebuilds by itself. Training frames come from
``mlops_assets.lib.point_in_time.build_training_frame`` and the matrix from ``mlops_assets.lib.training.model_data``.

Per weekly partition (holdout = its own week, validation = the week before, training = ``train_days`` before that,
:func:`mlops_assets.lib.windows.training_windows`): sampled configs (``mlops_assets.lib.sweep.sample_configs``, a plain
loop instead of Ray Tune) trained with early stopping on validation, the best by validation AUC refit on train +
validation for its best round count (``mlops_assets.lib.boosting.refit``), as ``trained_model`` does. Calibrators
(``mlops_assets.lib.calibration``) are fitted on data before the holdout week only: the validation week's
out-of-sample predictions of the early-stopped model. Nothing is fitted on the holdout week.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pkgutil
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlops_assets.lib.boosting import ModelData

REPO_ROOT = Path(__file__).resolve().parent.parent
YEAR_START = date(2013, 1, 1)
YEAR_END = date(2013, 12, 31)
# The 13 Monday-to-Sunday weeks whose holdout lies in Oct-Dec 2013 (the first starts 2013-09-30: its week is mostly
# October; 2013-12-30 is excluded because its week runs into 2014, past the data).
FIRST_PARTITION = date(2013, 9, 30)
WEEKS = 13
VALID_DAYS = 7
HOLDOUT_DAYS = 7
# The frame's day column (``mlops_assets.lib.features.PARTITION_COLUMN`` today; named here so the benchmark does not
# depend on which feature module will hold the constant).
PARTITION_COLUMN = "flight_date"
TIMESTAMP_COLUMN = "prediction_ts"
KEY_COLUMN = "flight_id"
TARGET_AUC = 0.75
TARGET_ECE = 0.02
# What the data dir depends on: when any of these change, the year is re-materialised.
FINGERPRINT_PATHS = ("dbt_project/models", "dbt_project/macros", "dbt_project/dbt_project.yml", "mlops_assets")
# The training side does not change the materialised data; it keys the cache of weekly predictions instead.
TRAINING_CODE = (
    "mlops_assets/lib/training.py",
    "mlops_assets/lib/boosting.py",
    "mlops_assets/lib/search_space.py",
    "mlops_assets/lib/sweep.py",
    "mlops_assets/lib/point_in_time.py",
    "mlops_assets/lib/windows.py",
)
FINGERPRINT_SKIP = ("/defs/training/", "/lib/calibration.py", "__pycache__", *(f"/{path}" for path in TRAINING_CODE))


# --------------------------------------------------------------------------------------------------------------------
# Environment and data (the benchmark's own process; product code never writes os.environ)
# --------------------------------------------------------------------------------------------------------------------


def set_environment(data_dir: Path) -> None:
    """Point the product's settings at ``data_dir``; must run before ``mlops_assets`` is imported."""
    if "mlops_assets" in sys.modules:
        raise RuntimeError("set_environment must run before mlops_assets is imported (settings are read at import)")
    os.environ["MLOPS_DATA_DIR"] = str(data_dir / "data")
    os.environ["DAGSTER_HOME"] = str(data_dir / "dagster_home")
    for name in (
        "MLOPS_PROFILE",
        "MLOPS_LAKE_ROOT",
        "MLOPS_LANDING_ROOT",
        "MLOPS_WAREHOUSE_CATALOG",
        "MLOPS_WAREHOUSE_DATA_PATH",
    ):
        os.environ.pop(name, None)
    os.environ["MLOPS_PARTITIONS_START"] = YEAR_START.isoformat()
    os.environ["MLOPS_PARTITIONS_END"] = YEAR_END.isoformat()
    # dbt is a console script of this interpreter's environment, found even when the venv is not activated.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    for name, value in (
        ("FEAST_USAGE", "False"),
        ("RAY_USAGE_STATS_ENABLED", "0"),
        ("DAGSTER_DISABLE_TELEMETRY", "1"),
        ("WHYLOGS_NO_ANALYTICS", "1"),
        ("BENTOML_DO_NOT_TRACK", "true"),
    ):
        os.environ.setdefault(name, value)


def feature_code_fingerprint() -> str:
    digest = hashlib.sha256()
    for root in FINGERPRINT_PATHS:
        path = REPO_ROOT / root
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            text = file.as_posix()
            if any(skip in text for skip in FINGERPRINT_SKIP) or file.suffix not in {".py", ".sql", ".yml", ".yaml"}:
                continue
            digest.update(file.relative_to(REPO_ROOT).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def ensure_data(data_dir: Path, rebuild: bool) -> dict[str, Any]:
    """Land and materialise the year into ``data_dir`` unless a current build is there; returns the build record."""
    marker = data_dir / "quality_build.json"
    fingerprint = feature_code_fingerprint()
    if marker.exists() and not rebuild:
        record = json.loads(marker.read_text())
        if record.get("fingerprint") == fingerprint and record.get("end") == YEAR_END.isoformat():
            record["reused"] = True
            return record
        print(f"data dir {data_dir} was built from other feature code ({record.get('fingerprint')}); rebuilding")
    if data_dir.exists():
        shutil.rmtree(data_dir)
    (data_dir / "dagster_home").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", data_dir / "dagster_home" / "dagster.yaml")

    import logging

    import dagster as dg

    logging.getLogger("dagster").setLevel(logging.WARNING)
    from dagster_dbt import DbtProject

    from mlops_assets.settings import DBT_PROJECT_DIR

    # The dbt assets load the manifest when their package is imported: parse the project first (a fresh checkout
    # has none, and a changed model needs a fresh one), as scripts/setup.sh does.
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.preparer.prepare(project)

    from mlops_assets.definitions import defs
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.lib.landing import land_days

    timings: dict[str, float] = {}
    started = time.perf_counter()
    land_days(SETTINGS.landing_root, YEAR_START, YEAR_END)
    timings["land_s"] = time.perf_counter() - started
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    with dg.DagsterInstance.get() as instance:
        for step, selection in (("raw_transform_s", "group:raw or group:transform"), ("features_s", "group:features")):
            started = time.perf_counter()
            result = job.execute_in_process(
                instance=instance,
                asset_selection=list(dg.AssetSelection.from_string(selection).resolve(graph)),
                tags={
                    "dagster/asset_partition_range_start": YEAR_START.isoformat(),
                    "dagster/asset_partition_range_end": YEAR_END.isoformat(),
                },
            )
            if not result.success:
                raise RuntimeError(f"materialising {selection} over 2013 failed")
            timings[step] = time.perf_counter() - started
            print(f"materialised {selection} for 2013 in {timings[step]:.0f} s", flush=True)
    record = {
        "fingerprint": fingerprint,
        "start": YEAR_START.isoformat(),
        "end": YEAR_END.isoformat(),
        "lake_root": str(SETTINGS.lake_root),
        "timings": {k: round(v, 1) for k, v in timings.items()},
    }
    marker.write_text(json.dumps(record, indent=2))
    record["reused"] = False
    return record


# --------------------------------------------------------------------------------------------------------------------
# Feature sets: groups of the product's model columns
# --------------------------------------------------------------------------------------------------------------------

# Group constants looked up in the product's feature modules (``mlops_assets.lib`` modules whose name contains one of
# GROUP_MODULE_WORDS), first match wins; when none is defined, the name pattern decides.
GROUP_MODULE_WORDS: tuple[str, ...] = ("feature", "intraday", "weather", "history")
GROUP_CONSTANTS: dict[str, tuple[str, ...]] = {
    "weather": ("WEATHER_FEATURES", "WEATHER_COLUMNS"),
    "history": ("HISTORICAL_STAT_COLUMNS", "HISTORY_FEATURES", "HISTORY_COLUMNS"),
    "intraday": ("INTRADAY_FEATURES", "INTRADAY_COLUMNS", "INTRADAY_FEATURE_COLUMNS"),
}
GROUP_PATTERNS: dict[str, str] = {
    "weather": r"^weather_",
    "history": r"_\d+d$",
    "intraday": r"(_today$|^intraday_|_today_)",
}


@dataclass(frozen=True)
class FeatureSet:
    name: str
    columns: tuple[str, ...]


def _feature_modules() -> list[Any]:
    import mlops_assets.lib as lib

    modules = []
    for info in pkgutil.walk_packages(lib.__path__, prefix="mlops_assets.lib."):
        if any(word in info.name for word in GROUP_MODULE_WORDS):
            modules.append(importlib.import_module(info.name))
    return modules


def feature_groups(model_columns: Sequence[str]) -> dict[str, tuple[tuple[str, ...], str]]:
    """Per group: its model columns and where the grouping came from (a constant's name or the pattern)."""
    modules = _feature_modules()
    groups: dict[str, tuple[tuple[str, ...], str]] = {}
    for group, names in GROUP_CONSTANTS.items():
        found: tuple[tuple[str, ...], str] | None = None
        for module in modules:
            for name in names:
                value = getattr(module, name, None)
                if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
                    found = (tuple(c for c in model_columns if c in value), f"{module.__name__}.{name}")
                    break
            if found:
                break
        if found is None:
            pattern = re.compile(GROUP_PATTERNS[group])
            found = (tuple(c for c in model_columns if pattern.search(c)), f"pattern {GROUP_PATTERNS[group]}")
        groups[group] = found
    return groups


def feature_sets(model_columns: Sequence[str]) -> tuple[list[FeatureSet], dict[str, str]]:
    """schedule (everything not in a group: schedule, categoricals, destination, plane), then + each group in turn.

    A group with no model column (intraday before it lands) is skipped, with a note.
    """
    groups = feature_groups(model_columns)
    grouped = {c for columns, _ in groups.values() for c in columns}
    columns = [c for c in model_columns if c not in grouped]
    sets = [FeatureSet("schedule", tuple(columns))]
    notes = {"schedule": ", ".join(columns)}
    for group, (group_columns, source) in groups.items():
        if not group_columns:
            notes[group] = f"skipped: no model column in the group ({source})"
            continue
        columns = [c for c in model_columns if c in {*columns, *group_columns}]
        sets.append(FeatureSet(f"+{group}", tuple(columns)))
        notes[group] = f"{len(group_columns)} columns from {source}: {', '.join(group_columns)}"
    return sets, notes


def subset(data: ModelData, columns: Sequence[str]) -> ModelData:
    """The product's encoded matrix restricted to ``columns`` (same rows, order and codes)."""
    from mlops_assets.lib.boosting import ModelData

    index = [data.feature_names.index(c) for c in columns]
    return ModelData(
        features=np.ascontiguousarray(data.features[:, index]),
        label=data.label,
        feature_names=tuple(columns),
        categorical_features=tuple(c for c in data.categorical_features if c in columns),
    )


# --------------------------------------------------------------------------------------------------------------------
# Training as trained_model does (plain loop instead of Ray Tune), predictions kept for calibration and scoring
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    configs: int
    seed: int = 2013
    max_rounds: int = 400
    early_stopping_rounds: int = 30
    threads: int = 2
    fixed_params: Mapping[str, Any] | None = None
    # Recency weights: a training row ``age`` days before the holdout week weighs 0.5 ** (age / halflife_days), so a
    # long window lends its variety (storms, holidays) while the recent weeks set the level. None: unweighted.
    halflife_days: float | None = None

    def key(self) -> str:
        fields = dict(self.__dict__)
        if fields["halflife_days"] is None:
            # Unweighted runs keep the cache key they had before weights existed.
            del fields["halflife_days"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class WeekPredictions:
    """One weekly model (feature set x window): the holdout week's labels and predictions, and the validation week's
    out-of-sample predictions that calibrators are fitted on."""

    partition: date
    y_holdout: np.ndarray
    p_refit: np.ndarray
    p_early: np.ndarray
    y_valid: np.ndarray
    p_valid: np.ndarray
    train_rows: int
    valid_auc: float
    rounds: int
    params: dict[str, Any]


def _weighted(data: ModelData, age_days: np.ndarray, halflife_days: float | None) -> ModelData:
    """``data`` with recency weights (benchmark-side: the product's ModelData carries no weights yet)."""
    from mlops_assets.lib.boosting import ModelData

    if halflife_days is None:
        return data

    @dataclass(frozen=True)
    class WeightedModelData(ModelData):
        weight: np.ndarray | None = None

        def dataset(self, reference: Any = None) -> Any:
            dataset = super().dataset(reference)
            dataset.set_weight(self.weight)
            return dataset

    weight = np.power(0.5, age_days / halflife_days)
    # Normalised to mean 1 so min_data_in_leaf / hessian thresholds mean what they mean unweighted.
    return WeightedModelData(
        features=data.features,
        label=data.label,
        feature_names=data.feature_names,
        categorical_features=data.categorical_features,
        weight=weight / weight.mean(),
    )


def train_week(week_data: WeekData, columns: Sequence[str], settings: RunSettings, partition: date) -> WeekPredictions:
    from mlops_assets.lib.boosting import concat_model_data, refit, train_booster, training_params

    try:
        # The search space's own module (no Ray import) where the product has one, else the sweep module.
        from mlops_assets.lib.search_space import sample_configs
    except ImportError:
        from mlops_assets.lib.sweep import sample_configs

    train = _weighted(subset(week_data.train, columns), week_data.train_age, settings.halflife_days)
    valid = subset(week_data.valid, columns)
    holdout = subset(week_data.holdout, columns)
    tuning = _weighted(
        concat_model_data(subset(week_data.train, columns), valid),
        np.concatenate([week_data.train_age, week_data.valid_age]),
        settings.halflife_days,
    )
    best: tuple[float, int, dict[str, Any], Any] | None = None
    for config in sample_configs(settings.configs, settings.seed):
        params = training_params({**config, **(settings.fixed_params or {})}, num_threads=settings.threads)
        booster = train_booster(
            params, train, valid, settings.max_rounds, early_stopping_rounds=settings.early_stopping_rounds
        )
        score = float(booster.best_score["valid"]["auc"])
        if best is None or score > best[0]:
            best = (score, max(1, booster.best_iteration), params, booster)
    assert best is not None
    score, rounds, params, early = best
    final = refit(params, tuning, num_boost_round=rounds)
    return WeekPredictions(
        partition=partition,
        y_holdout=holdout.label.astype(np.float64),
        p_refit=final.predict(holdout.features),
        p_early=early.predict(holdout.features, num_iteration=rounds),
        y_valid=valid.label.astype(np.float64),
        p_valid=early.predict(valid.features, num_iteration=rounds),
        train_rows=train.rows,
        valid_auc=score,
        rounds=rounds,
        params={k: v for k, v in params.items() if k not in ("verbosity", "metric", "num_threads")},
    )


def partitions() -> list[date]:
    return [FIRST_PARTITION + timedelta(weeks=i) for i in range(WEEKS)]


@dataclass(frozen=True)
class WeekData:
    """One weekly partition's matrices, and each training / validation row's age in days before the holdout week."""

    train: ModelData
    valid: ModelData
    holdout: ModelData
    train_age: np.ndarray
    valid_age: np.ndarray


def week_matrices(lake_root: str, partition: date, train_days: int) -> WeekData:
    """Train, validation and holdout matrices of one weekly partition, built as trained_model builds them."""
    import polars as pl

    from mlops_assets.lib.point_in_time import build_training_frame
    from mlops_assets.lib.training import CategoryVocabulary, model_data, require_both_classes
    from mlops_assets.lib.windows import training_windows

    windows = training_windows(partition, partition + timedelta(days=7), train_days, VALID_DAYS, HOLDOUT_DAYS)
    frame = build_training_frame(lake_root, windows.train_start, windows.valid_end)
    train_frame = frame.filter(pl.col(PARTITION_COLUMN) <= windows.train_end)
    valid_frame = frame.filter(pl.col(PARTITION_COLUMN) >= windows.valid_start)
    # The holdout week is built on its own, as evaluation will build it: nothing of it reaches training.
    holdout_frame = build_training_frame(lake_root, windows.holdout_start, windows.holdout_end)
    vocabulary = CategoryVocabulary.fit(train_frame)
    train, valid = model_data(train_frame, vocabulary), model_data(valid_frame, vocabulary)
    require_both_classes(train, "training")
    require_both_classes(valid, "validation")

    def age(part: pl.DataFrame) -> np.ndarray:
        # model_data orders rows by (prediction time, flight id); the ages follow the same order.
        days = part.sort([TIMESTAMP_COLUMN, KEY_COLUMN]).get_column(PARTITION_COLUMN)
        return np.asarray([(windows.holdout_start - d).days for d in days.to_list()], dtype=np.float64)

    return WeekData(train, valid, model_data(holdout_frame, vocabulary), age(train_frame), age(valid_frame))


def training_code_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in TRAINING_CODE:
        if (REPO_ROOT / path).exists():
            digest.update(path.encode())
            digest.update((REPO_ROOT / path).read_bytes())
    return digest.hexdigest()[:8]


def _cache_path(cache_dir: Path, fingerprint: str, settings: RunSettings, fs: FeatureSet, days: int) -> Path:
    """Cached weekly predictions: valid while the data, the training code, the settings and the columns are the same
    (an edit of this script itself does not invalidate them: pass ``--rebuild`` or delete the cache dir)."""
    columns = hashlib.sha256(",".join(fs.columns).encode()).hexdigest()[:8]
    key = f"{fingerprint}_{training_code_fingerprint()}_{settings.key()}"
    return cache_dir / f"{key}_{fs.name.strip('+')}_{columns}_{days}d.json"


def _save(path: Path, weeks: list[WeekPredictions]) -> None:
    rows = []
    for week in weeks:
        row = {k: v for k, v in week.__dict__.items()}
        row["partition"] = week.partition.isoformat()
        for name in ("y_holdout", "p_refit", "p_early", "y_valid", "p_valid"):
            row[name] = getattr(week, name).tolist()
        rows.append(row)
    path.write_text(json.dumps(rows))


def _load(path: Path) -> list[WeekPredictions]:
    weeks = []
    for row in json.loads(path.read_text()):
        row["partition"] = date.fromisoformat(row["partition"])
        for name in ("y_holdout", "p_refit", "p_early", "y_valid", "p_valid"):
            row[name] = np.asarray(row[name], dtype=np.float64)
        weeks.append(WeekPredictions(**row))
    return weeks


# --------------------------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------------------------

# (label, model, calibration method): "refit" is the product's final model (train + validation, fixed rounds), "early"
# the early-stopped model of the best config (training window only), whose validation predictions are out of sample.
VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("refit", "refit", "identity"),
    ("refit+intercept", "refit", "intercept"),
    ("refit+platt", "refit", "platt"),
    ("refit+isotonic", "refit", "isotonic"),
    ("early", "early", "identity"),
    ("early+intercept", "early", "intercept"),
    ("early+platt", "early", "platt"),
    ("early+isotonic", "early", "isotonic"),
)


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    from mlops_assets.lib.calibration import expected_calibration_error

    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    return {
        "auc": float(roc_auc_score(y, p)),
        "ece": expected_calibration_error(y, p, bins=10),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "base_rate": float(np.mean(y)),
        "mean_p": float(np.mean(p)),
        "rows": int(y.size),
    }


def calibrated(week: WeekPredictions, model: str, method: str) -> np.ndarray:
    """Holdout predictions of ``model`` through a calibrator fitted on the validation week (never the holdout)."""
    from mlops_assets.lib.calibration import fit

    calibrator = fit(method, week.y_valid, week.p_valid)
    return calibrator.apply(week.p_refit if model == "refit" else week.p_early)


def week_bootstrap(y: list[np.ndarray], p: list[np.ndarray], replicates: int, seed: int = 2013) -> dict[str, float]:
    """5th-95th percentile of pooled AUC and ECE over resamples of the holdout weeks (with replacement): how much the
    pooled figures move with which weeks happened to be in the quarter."""
    from sklearn.metrics import roc_auc_score

    from mlops_assets.lib.calibration import expected_calibration_error

    rng = np.random.default_rng(seed)
    aucs, eces = [], []
    for _ in range(replicates):
        pick = rng.integers(0, len(y), len(y))
        ys, ps = np.concatenate([y[i] for i in pick]), np.concatenate([p[i] for i in pick])
        aucs.append(roc_auc_score(ys, ps))
        eces.append(expected_calibration_error(ys, ps))
    return {
        "auc_p5": float(np.percentile(aucs, 5)),
        "auc_p95": float(np.percentile(aucs, 95)),
        "ece_p5": float(np.percentile(eces, 5)),
        "ece_p95": float(np.percentile(eces, 95)),
    }


def evaluate(weeks: list[WeekPredictions], variants: Sequence[str] | None, bootstrap: int) -> list[dict[str, Any]]:
    rows = []
    for label, model, method in VARIANTS:
        if variants and label not in variants:
            continue
        per_week = [(w, calibrated(w, model, method)) for w in weeks]
        pooled = scores(np.concatenate([w.y_holdout for w, _ in per_week]), np.concatenate([p for _, p in per_week]))
        weekly = [{"partition": w.partition.isoformat(), **scores(w.y_holdout, p)} for w, p in per_week]
        interval = (
            week_bootstrap([w.y_holdout for w, _ in per_week], [p for _, p in per_week], bootstrap) if bootstrap else {}
        )
        rows.append(
            {
                "variant": label,
                **pooled,
                **interval,
                "median_week_auc": statistics.median(r["auc"] for r in weekly),
                "median_week_ece": statistics.median(r["ece"] for r in weekly),
                "weeks": weekly,
            }
        )
    return rows


def _fmt_row(cells: Sequence[object], widths: Sequence[int]) -> str:
    return "  ".join(
        str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def print_table(results: list[dict[str, Any]], per_week: bool) -> None:
    head = [
        "features",
        "window",
        "calibration",
        "AUC",
        "ECE",
        "logloss",
        "Brier",
        "base",
        "mean p",
        "wk AUC~",
        "wk ECE~",
    ]
    widths = [18, 9, 16, 6, 6, 7, 6, 6, 6, 7, 7]
    print(_fmt_row(head, widths))
    print(_fmt_row(["-" * w for w in widths], widths))
    for r in results:
        hit = "  <- target" if r["auc"] >= TARGET_AUC and r["ece"] <= TARGET_ECE else ""
        cells = [
            r["features"],
            r["window"],
            r["variant"],
            f"{r['auc']:.4f}",
            f"{r['ece']:.4f}",
            f"{r['log_loss']:.4f}",
            f"{r['brier']:.4f}",
            f"{r['base_rate']:.3f}",
            f"{r['mean_p']:.3f}",
            f"{r['median_week_auc']:.4f}",
            f"{r['median_week_ece']:.4f}",
        ]
        band = (
            f"  [AUC {r['auc_p5']:.3f}-{r['auc_p95']:.3f}, ECE {r['ece_p5']:.3f}-{r['ece_p95']:.3f}]"
            if "auc_p5" in r
            else ""
        )
        print(_fmt_row(cells, widths) + band + hit)
    if per_week:
        for r in results:
            print(f"\n{r['features']} {r['window']} {r['variant']}: per holdout week")
            print("  week        AUC     ECE     base   mean p  rows")
            for w in r["weeks"]:
                print(
                    f"  {w['partition']}  {w['auc']:.4f}  {w['ece']:.4f}  {w['base_rate']:.3f}  {w['mean_p']:.3f}"
                    f"  {w['rows']}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "mlops_quality")
    parser.add_argument("--rebuild", action="store_true", help="re-materialise the year even if it is current")
    parser.add_argument("--build-only", action="store_true", help="materialise the year and stop")
    parser.add_argument("--quick", action="store_true", help="2 configs, windows 28 and 91 days")
    parser.add_argument("--windows", type=int, nargs="+", help="training days (default 28 91 182)")
    parser.add_argument("--configs", type=int, help="sampled LightGBM configs per weekly model (default 8)")
    parser.add_argument("--feature-sets", nargs="+", help="names to run, e.g. +history +intraday (default all)")
    parser.add_argument("--without", nargs="+", help="drop these groups or columns from every set, e.g. history month")
    parser.add_argument("--variants", nargs="+", help="calibration variants to print (default all)")
    parser.add_argument("--halflife", type=float, help="recency weights: half-life in days (default unweighted)")
    parser.add_argument("--params", help="fixed LightGBM params over every config, JSON, e.g. '{\"max_bin\": 63}'")
    parser.add_argument("--per-week", action="store_true", help="print every holdout week's figures too")
    parser.add_argument(
        "--bootstrap", type=int, default=0, help="resample the holdout weeks N times: 90%% band of pooled AUC / ECE"
    )
    parser.add_argument("--json", type=Path, help="write every measured figure to this file")
    args = parser.parse_args()

    data_dir = args.data_dir.resolve()
    set_environment(data_dir)
    record = ensure_data(data_dir, args.rebuild)
    print(
        f"data: {data_dir} ({'reused' if record['reused'] else 'built'}; feature code {record['fingerprint']}; "
        f"build {record['timings']})"
    )
    if args.build_only:
        return

    from mlops_assets.lib.training import MODEL_FEATURE_COLUMNS

    windows = args.windows or ([28, 91] if args.quick else [28, 91, 182])
    settings = RunSettings(
        configs=args.configs or (2 if args.quick else 8),
        halflife_days=args.halflife,
        fixed_params=json.loads(args.params) if args.params else None,
    )
    sets, notes = feature_sets(MODEL_FEATURE_COLUMNS)
    if args.feature_sets:
        sets = [fs for fs in sets if fs.name in args.feature_sets]
    if args.without:
        groups = feature_groups(MODEL_FEATURE_COLUMNS)
        dropped = {c for name in args.without for c in (groups[name][0] if name in groups else (name,))}
        suffix = "".join(f"-{name}" for name in args.without)
        sets = [FeatureSet(fs.name + suffix, tuple(c for c in fs.columns if c not in dropped)) for fs in sets]
    for group, note in notes.items():
        print(f"  {group}: {note}")
    print(
        f"weekly models: {WEEKS} holdout weeks {FIRST_PARTITION}..{partitions()[-1] + timedelta(days=6)}, windows "
        f"{windows} days + {VALID_DAYS} validation, {settings.configs} sampled configs (seed {settings.seed}), "
        f"early stopping {settings.early_stopping_rounds} of max {settings.max_rounds} rounds, refit on train + valid"
        f"; recency half-life {settings.halflife_days or 'none'}; fixed params {settings.fixed_params or 'none'}"
    )

    cache_dir = data_dir / "quality_cache"
    cache_dir.mkdir(exist_ok=True)
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for days in windows:
        todo = [fs for fs in sets if not _cache_path(cache_dir, record["fingerprint"], settings, fs, days).exists()]
        weeks_by_set: dict[str, list[WeekPredictions]] = {fs.name: [] for fs in todo}
        for partition in partitions() if todo else []:
            week_data = week_matrices(record["lake_root"], partition, days)
            for fs in todo:
                week = train_week(week_data, fs.columns, settings, partition)
                weeks_by_set[fs.name].append(week)
            print(
                f"  {days}d {partition}: trained {len(todo)} sets ({time.perf_counter() - started:.0f} s)", flush=True
            )
        for fs in todo:
            _save(_cache_path(cache_dir, record["fingerprint"], settings, fs, days), weeks_by_set[fs.name])
        for fs in sets:
            weeks = _load(_cache_path(cache_dir, record["fingerprint"], settings, fs, days))
            for row in evaluate(weeks, args.variants, args.bootstrap):
                results.append(
                    {
                        "features": fs.name,
                        "train_days": days,
                        "window": f"{days}d" + (f" h{settings.halflife_days:g}" if settings.halflife_days else ""),
                        "median_train_rows": statistics.median(w.train_rows for w in weeks),
                        "median_rounds": statistics.median(w.rounds for w in weeks),
                        **row,
                    }
                )
    print(f"\npooled over {WEEKS} holdout weeks (target AUC >= {TARGET_AUC}, ECE <= {TARGET_ECE}; ~ = median week)")
    print_table(results, args.per_week)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
