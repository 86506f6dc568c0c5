"""drift_profile: the day's whylogs profiles, drift against the champion's training reference, and live performance.

Per day D (the rows of D's validated features, with the point-in-time features the model reads):
- a whylogs profile of the model's features and the label, and one of the champion's scores (and the shadow
  challenger's, scored here on the same rows), kept per partition in whylogs' binary format under
  ``<lake>/monitoring/drift_profile/date=D/``;
- per-feature PSI and Jensen-Shannon distance against the champion's reference, and their importance-weighted
  score (:mod:`mlops_assets.lib.drift`). The reference is built once per champion version and kept under
  ``<lake>/monitoring/reference/<model>-v<version>/``: the merge of the day profiles of its training window (a day
  not profiled yet is profiled from the lake), and for the scores the champion's scores on its validation week,
  rows it did not train on;
- the champion's AUC, log loss, Brier and ECE on the day, their decay against its evaluation report's holdout, and
  the shadow challenger's figures on the same rows;
- the day's labels and every model's scores on the same rows (champion, ``previous_champion`` when it is another
  version, shadow challenger) in ``scores.parquet``, its versions in the file's metadata: the paired comparisons read
  them back, the online A/B (challenger - champion, a paired CI over the days of the current pair so far, recorded
  on the day) and the rollback sensor (champion - previous champion over the days since the promotion);
- what the service answered, from the day's prediction log when there is one (:mod:`mlops_assets.lib.
  served_performance`): the served champion's and the logged shadow's figures on the served, labelled flights, and
  the training/serving skew (served score against the score of the point-in-time features, same model version).

Numeric metadata (drift score, AUC, decay, rows) is what the UI plots over days and what the drift sensor reads.
With no champion yet, the features are profiled and the rest is recorded as absent. Automation runs it once the day's
features exist and their blocking data-quality checks passed: bad data alerts and blocks, it never reaches drift.
"""

import io
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np
import polars as pl

from mlops_assets.defs.common import DAILY_AUTOMATION, DAILY_FRESHNESS, DAILY_TAG, LakeResource, daily_partitions
from mlops_assets.defs.features.assets import FEATURE_STORE_KEY
from mlops_assets.defs.features.checks import VALIDATED_KEY
from mlops_assets.defs.training.evaluation import read_report
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib import drift, live_performance, served_performance
from mlops_assets.lib.feature_contract import KEY_COLUMN, LABEL_COLUMN, PARTITION_COLUMN
from mlops_assets.lib.io import read_bytes, write_bytes_atomic
from mlops_assets.lib.model_artifacts import LoadedModel, load_version
from mlops_assets.lib.model_registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, alias_version
from mlops_assets.lib.point_in_time import build_training_frame
from mlops_assets.lib.prediction_log import read_prediction_log
from mlops_assets.lib.training import MODEL_FEATURE_COLUMNS, in_model_order

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient
    from whylogs.core import DatasetProfileView

MONITORING_GROUP = "monitoring"
DRIFT_PROFILE_KEY = dg.AssetKey("drift_profile")
CHAMPION_SCORE = "score_champion"
CHALLENGER_SCORE = "score_challenger"
PREVIOUS_SCORE = "score_previous_champion"
SCORES_FILE = "scores.parquet"
# v2: scores.parquet (labels and every model's scores per day) and the previous champion's and A/B figures.
CODE_VERSION = "drift_profile-v2"
# Metadata keys the drift and rollback sensors read.
DRIFT_SCORE = "drift_score"
DRIFT_EXCESS = "drift_excess"
AUC_DECAY = "auc_decay"
ROWS = "rows"
CHAMPION_VERSION = "champion_version"
PREVIOUS_VERSION = "previous_champion_version"
PREVIOUS_AUC = "previous_champion_roc_auc"
AB_DELTA, AB_LOW, AB_HIGH, AB_DAYS = "ab_auc_delta", "ab_ci_low", "ab_ci_high", "ab_days"
TOP_DRIFTING = 8
# How far back (data time) a paired comparison looks for days of the same pair of versions. A pair lives at most
# until the next weekly candidate or scheduled model (4 weeks by default), so four weeks hold all its days while
# bounding what one day reads.
PAIRED_LOOKBACK_DAYS = 28

DRIFT_AUTOMATION = (DAILY_AUTOMATION & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label(
    "daily data arrival, data-quality checks passed"
)


def _day_uri(lake_root: str, day: date, name: str) -> str:
    return f"{lake_root.rstrip('/')}/monitoring/drift_profile/date={day.isoformat()}/{name}"


def _reference_uri(lake_root: str, model: LoadedModel, name: str) -> str:
    return f"{lake_root.rstrip('/')}/monitoring/reference/{model.name}-v{model.version}/{name}"


@dataclass(frozen=True)
class DayScores:
    """One profiled day's labels and scores, the models' rows aligned (``live_performance.score``'s row order)."""

    day: date
    champion: str
    previous_champion: str | None
    challenger: str | None
    frame: pl.DataFrame
    """LABEL_COLUMN, CHAMPION_SCORE, PREVIOUS_SCORE and CHALLENGER_SCORE (null where that model was absent)."""

    def pair(self, other: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels, champion scores, ``other`` column's scores): one day of a paired comparison."""
        return (
            self.frame.get_column(LABEL_COLUMN).to_numpy(),
            self.frame.get_column(CHAMPION_SCORE).to_numpy(),
            self.frame.get_column(other).to_numpy(),
        )


def _write_day_scores(lake_root: str, scores: DayScores) -> None:
    # The versions travel in the file's own metadata, so a reader never pairs one run's scores with another run's
    # drift.json (two files cannot be replaced at once).
    buffer = io.BytesIO()
    versions = {
        "day": scores.day.isoformat(),
        CHAMPION: scores.champion,
        PREVIOUS_CHAMPION: scores.previous_champion or "",
        CHALLENGER: scores.challenger or "",
    }
    scores.frame.write_parquet(buffer, compression="zstd", metadata=versions)
    write_bytes_atomic(_day_uri(lake_root, scores.day, SCORES_FILE), buffer.getvalue())


def read_day_scores(lake_root: str, day: date) -> DayScores | None:
    """The day's persisted labels and scores; None when the day was not profiled with a champion (or before v2)."""
    try:
        payload = read_bytes(_day_uri(lake_root, day, SCORES_FILE))
    except FileNotFoundError:
        return None
    versions = pl.read_parquet_metadata(io.BytesIO(payload))
    return DayScores(
        day=day,
        champion=versions[CHAMPION],
        previous_champion=versions.get(PREVIOUS_CHAMPION) or None,
        challenger=versions.get(CHALLENGER) or None,
        frame=pl.read_parquet(io.BytesIO(payload)),
    )


def persisted_days(
    lake_root: str, days: Iterable[date], cache: dict[date, DayScores | None] | None = None
) -> list[DayScores]:
    """The persisted scores of those of ``days`` that have them, oldest first; ``cache`` saves a range run from
    reading a day again for each later day."""
    cache = {} if cache is None else cache
    found = []
    for day in sorted(days):
        if day not in cache:
            cache[day] = read_day_scores(lake_root, day)
        scores = cache[day]
        if scores is not None:
            found.append(scores)
    return found


def _read_profile(uri: str) -> "DatasetProfileView | None":
    try:
        return drift.deserialize(read_bytes(uri))
    except FileNotFoundError:
        return None


def _feature_rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(*MODEL_FEATURE_COLUMNS, LABEL_COLUMN)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def _importance(model: LoadedModel) -> dict[str, float]:
    booster = model.booster
    return dict(zip(booster.feature_name(), booster.feature_importance("gain").tolist(), strict=True))


def _reference(
    context: dg.AssetExecutionContext, lake_root: str, champion: LoadedModel
) -> "tuple[DatasetProfileView, DatasetProfileView, drift.Baseline]":
    """The champion's feature and score references and its drift baseline, built on first use, kept per version."""
    uris = {name: _reference_uri(lake_root, champion, name) for name in ("features.bin", "scores.bin", "baseline.json")}
    features, scores = _read_profile(uris["features.bin"]), _read_profile(uris["scores.bin"])
    try:
        stored = json.loads(read_bytes(uris["baseline.json"]))
    except FileNotFoundError:
        stored = None
    if features is not None and scores is not None and stored is not None:
        return features, scores, drift.Baseline(**stored)
    started = time.perf_counter()
    train = _days(date.fromisoformat(champion.params["train_start"]), date.fromisoformat(champion.params["train_end"]))
    views = {day: _read_profile(_day_uri(lake_root, day, "features.bin")) for day in train}
    unprofiled = [day for day, view in views.items() if view is None]
    if unprofiled:
        frame = build_training_frame(lake_root, min(unprofiled), max(unprofiled))
        for day in unprofiled:
            rows = frame.filter(pl.col(PARTITION_COLUMN) == day)
            views[day] = drift.profile(_feature_rows(rows)) if rows.height else None
    day_views = [view for view in views.values() if view is not None]
    features = drift.merge(day_views)
    day_baseline = drift.baseline(features, day_views, MODEL_FEATURE_COLUMNS, _importance(champion))
    valid = build_training_frame(
        lake_root, date.fromisoformat(champion.params["valid_start"]), date.fromisoformat(champion.params["valid_end"])
    )
    y, p = live_performance.score(champion, valid)
    scores = drift.profile(pl.DataFrame({CHAMPION_SCORE: p, LABEL_COLUMN: y}))
    write_bytes_atomic(uris["features.bin"], drift.serialize(features))
    write_bytes_atomic(uris["scores.bin"], drift.serialize(scores))
    write_bytes_atomic(uris["baseline.json"], json.dumps(vars(day_baseline)).encode())
    context.log.info(
        f"reference for {champion.name} v{champion.version}: {len(day_views)} training days "
        f"({len(train) - len(unprofiled)} from stored day profiles), baseline score median {day_baseline.median:.3f}, "
        f"p90 {day_baseline.p90:.3f}; scores on its validation week; {time.perf_counter() - started:.1f}s"
    )
    return features, scores, day_baseline


def _model(client: "MlflowClient", name: str, alias: str) -> LoadedModel | None:
    version = alias_version(client, name, alias)
    return load_version(client, version) if version is not None else None


def _holdout_figures(
    context: dg.AssetExecutionContext, tracking: MlflowTracking, champion: LoadedModel
) -> dict[str, float]:
    """The champion's holdout figures from its own evaluation report; empty (no decay) when it has none."""
    from mlflow.exceptions import MlflowException

    try:
        return live_performance.holdout_metrics(read_report(tracking, champion.run_id, champion.partition or ""))
    except (MlflowException, OSError) as exc:
        context.log.warning(f"champion v{champion.version} has no evaluation report ({exc}); decay not computed")
        return {}


def _drift_table(columns: dict[str, drift.ColumnDrift], weights: dict[str, float]) -> str:
    ranked = sorted(columns.values(), key=lambda c: weights.get(c.column, 0.0) * c.js, reverse=True)
    lines = ["| feature | weight | JS | PSI | missing (ref → day) |", "|---|---:|---:|---:|---|"]
    for c in ranked[:TOP_DRIFTING]:
        lines.append(
            f"| {c.column} | {weights.get(c.column, 0.0):.3f} | {c.js:.3f} | {c.psi:.3f} | "
            f"{c.reference_missing:.1%} → {c.current_missing:.1%} |"
        )
    return "\n".join(lines)


def _float(value: float | None) -> dg.MetadataValue | None:
    return dg.FloatMetadataValue(float(value)) if value is not None else None


def _served(
    lake_root: str, day: date, frame: pl.DataFrame, y: np.ndarray, p_champion: np.ndarray, champion: LoadedModel
) -> served_performance.ServedDay | None:
    """The day's prediction log against the day's labels and the offline scores; None when nothing was served."""
    log = read_prediction_log(lake_root, day, day)
    if log.height == 0:
        return None
    offline = pl.DataFrame(
        {
            KEY_COLUMN: in_model_order(frame).get_column(KEY_COLUMN).cast(pl.String),
            served_performance.LABEL: y,
            served_performance.OFFLINE_SCORE: p_champion,
        }
    )
    return served_performance.served_day(log, offline, champion.version)


def _served_metadata(served: served_performance.ServedDay | None) -> dict[str, Any]:
    if served is None:
        return {"served_requests": 0}
    champion, shadow = served.champion or {}, served.shadow or {}
    return {
        "served_requests": served.requests,
        "served_flights": served.flights,
        "served_labelled": served.labelled,
        "served_roc_auc": _float(champion.get("roc_auc")),
        "served_log_loss": _float(champion.get("log_loss")),
        "served_ece": _float(champion.get("ece")),
        "served_shadow_version": served.shadow_version,
        "served_shadow_roc_auc": _float(shadow.get("roc_auc")),
        "serving_skew_compared": served.compared,
        "serving_skew_p99": _float(served.skew_p99),
        "serving_skew_max": _float(served.skew_max),
        "serving_skewed_share": _float(served.skewed_share),
    }


def _aligned_scores(
    context: dg.AssetExecutionContext, model: LoadedModel | None, frame: pl.DataFrame, y: np.ndarray
) -> np.ndarray | None:
    """``model``'s scores on the champion's rows; None without the model. ``score`` orders rows by timestamp and
    key whatever the vocabulary, so the labels match; checked all the same, since a paired comparison of
    misaligned rows would be silently wrong."""
    if model is None:
        return None
    y_model, p = live_performance.score(model, frame)
    if not np.array_equal(y_model, y):
        context.log.warning(f"v{model.version}'s rows do not align with the champion's; its scores are not kept")
        return None
    return p


def _scores_column(p: np.ndarray | None, rows: int) -> pl.Series:
    return pl.Series(p if p is not None else [None] * rows, dtype=pl.Float64)


def _online_ab(
    lake_root: str,
    day: date,
    champion: LoadedModel,
    challenger: LoadedModel | None,
    persisted: dict[date, DayScores | None],
) -> dict[str, float] | None:
    """Challenger - champion mean daily AUC with its paired CI over the days so far (data time: ``day`` and the
    ones before it) that scored this same pair of versions."""
    if challenger is None:
        return None
    window = [day - timedelta(days=offset) for offset in range(PAIRED_LOOKBACK_DAYS)]
    days = [
        scores.pair(CHALLENGER_SCORE)
        for scores in persisted_days(lake_root, window, persisted)
        if scores.champion == champion.version and scores.challenger == challenger.version
    ]
    return live_performance.paired_auc_difference(days)


def _profile_day(
    context: dg.AssetExecutionContext,
    lake_root: str,
    day: date,
    champion: LoadedModel | None,
    challenger: LoadedModel | None,
    previous: LoadedModel | None,
    mlflow_tracking: MlflowTracking,
    persisted: dict[date, DayScores | None],
) -> dict[str, Any]:
    """Profile one day, write its files, and return its metadata."""
    frame = build_training_frame(lake_root, day, day)

    started = time.perf_counter()
    features = drift.profile(_feature_rows(frame))
    profile_ms = (time.perf_counter() - started) * 1000
    write_bytes_atomic(_day_uri(lake_root, day, "features.bin"), drift.serialize(features))

    metadata: dict[str, Any] = {ROWS: frame.height, "profile_ms": dg.FloatMetadataValue(profile_ms)}
    summary: dict[str, Any] = {"day": day.isoformat(), "rows": frame.height, "champion": None}
    if champion is None:
        context.log.info(f"{day}: no champion yet; features profiled ({frame.height} rows), no drift or live figures")
        write_bytes_atomic(_day_uri(lake_root, day, "drift.json"), json.dumps(summary, indent=2).encode())
        return {**metadata, "champion_version": "none"}

    reference_features, reference_scores, day_baseline = _reference(context, lake_root, champion)
    y, p_champion = live_performance.score(champion, frame)
    scores: dict[str, Any] = {CHAMPION_SCORE: p_champion, LABEL_COLUMN: y}
    p_challenger = _aligned_scores(context, challenger, frame, y)
    if p_challenger is not None:
        scores[CHALLENGER_SCORE] = p_challenger
    score_view = drift.profile(pl.DataFrame(scores))
    write_bytes_atomic(_day_uri(lake_root, day, "scores.bin"), drift.serialize(score_view))
    p_previous = _aligned_scores(context, previous, frame, y)
    day_scores = DayScores(
        day=day,
        champion=champion.version,
        previous_champion=previous.version if previous is not None and p_previous is not None else None,
        challenger=challenger.version if challenger is not None and p_challenger is not None else None,
        frame=pl.DataFrame(
            {
                LABEL_COLUMN: pl.Series(y, dtype=pl.Float64),
                CHAMPION_SCORE: _scores_column(p_champion, len(y)),
                PREVIOUS_SCORE: _scores_column(p_previous, len(y)),
                CHALLENGER_SCORE: _scores_column(p_challenger, len(y)),
            }
        ),
    )
    _write_day_scores(lake_root, day_scores)
    persisted[day] = day_scores
    if p_challenger is None:
        # A challenger whose rows did not align has no figure on this day: not in the shadow figures nor the A/B.
        challenger = None

    started = time.perf_counter()
    score, columns, weights = drift.day_score(
        reference_features, features, MODEL_FEATURE_COLUMNS, _importance(champion)
    )
    excess = day_baseline.excess(score)
    score_drift = drift.column_drift(reference_scores, score_view, [CHAMPION_SCORE])[CHAMPION_SCORE]
    drift_ms = (time.perf_counter() - started) * 1000

    live = live_performance.day_metrics(y, p_champion)
    holdout = _holdout_figures(context, mlflow_tracking, champion)
    decay = live_performance.relative_decay(holdout.get("roc_auc"), live["roc_auc"])
    shadow = live_performance.day_metrics(y, p_challenger) if p_challenger is not None else None
    previous_live = live_performance.day_metrics(y, p_previous) if p_previous is not None else None
    ab = _online_ab(lake_root, day, champion, challenger, persisted)
    served = _served(lake_root, day, frame, y, p_champion, champion)

    summary.update(
        champion=champion.version,
        challenger=day_scores.challenger,
        previous_champion=day_scores.previous_champion,
        drift_score=score,
        drift_excess=excess,
        baseline=vars(day_baseline),
        score_drift={"psi": score_drift.psi, "js": score_drift.js},
        columns={name: vars(c) | {"weight": weights.get(name, 0.0)} for name, c in columns.items()},
        live=live,
        holdout=holdout,
        auc_decay=decay,
        shadow=shadow,
        previous_live=previous_live,
        online_ab=ab,
        served=vars(served) if served is not None else None,
    )
    write_bytes_atomic(_day_uri(lake_root, day, "drift.json"), json.dumps(summary, indent=2, default=float).encode())
    worst = max(columns.values(), key=lambda c: weights.get(c.column, 0.0) * c.js)
    context.log.info(
        f"{day}: drift {score:.3f}, {excess:+.3f} over the reference days' p90 (most: {worst.column}, JS "
        f"{worst.js:.3f}), champion v{champion.version} AUC "
        f"{live['roc_auc']:.4f} vs holdout {holdout.get('roc_auc', float('nan')):.4f}"
        + (f", shadow v{challenger.version} AUC {shadow['roc_auc']:.4f}" if shadow and challenger else "")
        + (f", previous v{day_scores.previous_champion} AUC {previous_live['roc_auc']:.4f}" if previous_live else "")
        + (
            f"; A/B challenger - champion {ab['estimate']:+.4f} [{ab['low']:+.4f}, {ab['high']:+.4f}] over "
            f"{ab['days']:.0f} days"
            if ab
            else ""
        )
    )
    optional = {
        AUC_DECAY: _float(decay),
        "shadow_roc_auc": _float(shadow["roc_auc"]) if shadow else None,
        "shadow_log_loss": _float(shadow["log_loss"]) if shadow else None,
        "challenger_version": challenger.version if challenger is not None else None,
        "holdout_roc_auc": _float(holdout.get("roc_auc")),
        PREVIOUS_VERSION: day_scores.previous_champion,
        PREVIOUS_AUC: _float(previous_live["roc_auc"]) if previous_live else None,
        AB_DELTA: _float(ab["estimate"]) if ab else None,
        AB_LOW: _float(ab["low"]) if ab else None,
        AB_HIGH: _float(ab["high"]) if ab else None,
        AB_DAYS: int(ab["days"]) if ab else None,
        **_served_metadata(served),
    }
    return {
        **metadata,
        DRIFT_SCORE: dg.FloatMetadataValue(score),
        DRIFT_EXCESS: dg.FloatMetadataValue(excess),
        "baseline_p90": dg.FloatMetadataValue(day_baseline.p90),
        "drift_ms": dg.FloatMetadataValue(drift_ms),
        "score_psi": dg.FloatMetadataValue(score_drift.psi),
        "roc_auc": dg.FloatMetadataValue(live["roc_auc"]),
        "log_loss": dg.FloatMetadataValue(live["log_loss"]),
        "ece": dg.FloatMetadataValue(live["ece"]),
        CHAMPION_VERSION: champion.version,
        "drifting_features": dg.MarkdownMetadataValue(_drift_table(columns, weights)),
        **{key: value for key, value in optional.items() if value is not None},
    }


# One spec, yet a multi_asset on purpose, as feature_store: a range (a backfill, `--partition-range` in CI) must run as
# one run (BackfillPolicy.single_run()), and `backfill_policy=` is Beta on `@asset` in Dagster 1.13 (a BetaWarning at
# every code-location load) but stable on `@multi_asset`.
@dg.multi_asset(
    name="drift_profile",
    specs=[
        dg.AssetSpec(
            DRIFT_PROFILE_KEY,
            deps=[VALIDATED_KEY, FEATURE_STORE_KEY],
            group_name=MONITORING_GROUP,
            tags=DAILY_TAG,
            freshness_policy=DAILY_FRESHNESS,
            automation_condition=DRIFT_AUTOMATION,
            code_version=CODE_VERSION,
            kinds={"whylogs", "mlflow"},
            description="whylogs profiles of the day's features and scores, drift against the champion's training "
            "reference (importance-weighted JS/PSI), and the champion's live AUC, log loss and ECE on the day.",
        )
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def drift_profile(
    context: dg.AssetExecutionContext, lake: LakeResource, mlflow_tracking: MlflowTracking
) -> dg.MaterializeResult:
    """One day: its figures are the materialisation's metadata. A range: each day's figures are an observation of
    that partition (what the drift sensor and the UI read per day), the materialisation carries the range summary."""
    days = [date.fromisoformat(key) for key in context.partition_keys]
    client = mlflow_tracking.client()
    champion = _model(client, mlflow_tracking.registered_model_name, CHAMPION)
    challenger = _model(client, mlflow_tracking.registered_model_name, CHALLENGER)
    if challenger is not None and (champion is None or challenger.version == champion.version):
        challenger = None
    # The model a rollback would restore, scored on the same rows so the rollback sensor can compare them.
    previous = _model(client, mlflow_tracking.registered_model_name, PREVIOUS_CHAMPION)
    if previous is not None and (champion is None or previous.version == champion.version):
        previous = None
    persisted: dict[date, DayScores | None] = {}
    per_day = [
        _profile_day(context, lake.lake_root, day, champion, challenger, previous, mlflow_tracking, persisted)
        for day in days
    ]
    if len(days) == 1:
        return dg.MaterializeResult(metadata=per_day[0])
    for day, metadata in zip(days, per_day, strict=True):
        context.log_event(dg.AssetObservation(DRIFT_PROFILE_KEY, partition=day.isoformat(), metadata=metadata))
    scores = [m[DRIFT_SCORE].value for m in per_day if DRIFT_SCORE in m]
    return dg.MaterializeResult(
        metadata={
            "days": len(days),
            "range": f"{days[0]}..{days[-1]}",
            "total_rows": sum(int(m[ROWS]) for m in per_day),
            "champion_version": per_day[-1]["champion_version"],
            **({"max_drift_score": dg.FloatMetadataValue(max(scores))} if scores else {}),
        }
    )
