"""evaluation_report: the week's candidate and the current champion scored on the same holdout week, and the
promotion gate as blocking asset checks on it.

The holdout is the partition's own week (never read by ``trained_model``); the asset depends on exactly those daily
partitions of ``validated_features`` and ``feature_store`` and on the week's ``trained_model``. The report is
computed by :func:`mlops_assets.lib.evaluation_report.evaluate`, judged by :mod:`mlops_assets.lib.promotion`, and
written as JSON + self-contained HTML to the candidate's MLflow run (``evaluation/<week>/``) and to
``<data dir>/evaluation/<week>/``, with a Markdown summary and numeric metadata here (plotted over weeks by the UI).

Checks are emitted by the asset (``check_specs``) rather than separate ``@asset_check`` definitions: partitioned
asset checks are Preview in Dagster 1.13. They are blocking, so ``champion`` does not run in the same run after a
failed gate, and ``champion``'s automation condition waits for them to pass.
"""

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.defs.common import SETTINGS, LakeResource
from mlops_assets.defs.features.assets import FEATURE_STORE_KEY
from mlops_assets.defs.features.checks import VALIDATED_KEY
from mlops_assets.defs.training.assets import TRAINED_MODEL_KEY, TRAINING_GROUP, weekly_partitions
from mlops_assets.defs.training.resources import MlflowTracking
from mlops_assets.lib.evaluation_report import EvaluationSettings, evaluate, report_artifact
from mlops_assets.lib.feature_paths import partition_uri
from mlops_assets.lib.model_artifacts import load_version
from mlops_assets.lib.model_registry import CHAMPION, alias_version, candidate_version
from mlops_assets.lib.operating_point import ThresholdRule
from mlops_assets.lib.point_in_time import build_training_frame
from mlops_assets.lib.promotion import GATE_RULES, RULE_DESCRIPTIONS, GateConfig, evaluate_gate, gate_passed
from mlops_assets.lib.report_render import render_html, render_markdown
from mlops_assets.lib.windows import TrainingWindows, training_windows

EVALUATION_REPORT_KEY = dg.AssetKey("evaluation_report")
CODE_VERSION = "evaluation_report-v1"

GATE_CHECK_SPECS = [
    dg.AssetCheckSpec(rule, asset=EVALUATION_REPORT_KEY, blocking=True, description=RULE_DESCRIPTIONS[rule])
    for rule in GATE_RULES
]

# Weekly, replayed 2013 data: eager() without in_latest_time_window(), so any week whose model or holdout days
# update is re-evaluated, not only the partition set's last week (NOTES.md).
EVALUATION_AUTOMATION = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
EVALUATION_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=9), warn_window=timedelta(days=8))


class EvaluationConfig(dg.Config):
    resamples: int = 1000
    """Paired bootstrap resamples for every CI."""
    seed: int = 2013
    min_slice_rows: int = 200
    """Slices smaller than this are listed but not scored (nor gated)."""
    threshold_rule: str = "max_f1"
    """Operating point: max_f1, cost (FP + cost_ratio * FN) or fixed."""
    cost_ratio: float = 3.0
    threshold: float = 0.5
    require_full_holdout: bool = True
    """Fail when a day of the holdout week has no validated features (off: score the days present)."""
    # The gate's limits, editable in the launchpad; their defaults are the gate's own (lib/promotion.py GateConfig).
    auc_tolerance: float = GateConfig.auc_tolerance
    max_slice_regression: float = GateConfig.max_slice_regression
    max_ece: float = GateConfig.max_ece
    max_single_row_ms: float = GateConfig.max_single_row_ms
    max_batch_ms_per_1k_rows: float = GateConfig.max_batch_ms_per_1k_rows
    max_latency_ratio: float = GateConfig.max_latency_ratio
    latency_ratio_budget_share: float = GateConfig.latency_ratio_budget_share
    max_size_mb: float = GateConfig.max_size_mb
    min_auc: float = GateConfig.min_auc
    min_pr_auc_lift: float = GateConfig.min_pr_auc_lift

    def evaluation_settings(self) -> EvaluationSettings:
        return EvaluationSettings(
            resamples=self.resamples,
            seed=self.seed,
            min_slice_rows=self.min_slice_rows,
            threshold_rule=ThresholdRule(self.threshold_rule, self.cost_ratio, self.threshold),
        )

    def gate_config(self) -> GateConfig:
        return GateConfig(
            auc_tolerance=self.auc_tolerance,
            max_slice_regression=self.max_slice_regression,
            max_ece=self.max_ece,
            max_single_row_ms=self.max_single_row_ms,
            max_batch_ms_per_1k_rows=self.max_batch_ms_per_1k_rows,
            max_latency_ratio=self.max_latency_ratio,
            latency_ratio_budget_share=self.latency_ratio_budget_share,
            max_size_mb=self.max_size_mb,
            min_auc=self.min_auc,
            min_pr_auc_lift=self.min_pr_auc_lift,
        )


def week_windows(context: dg.AssetExecutionContext) -> TrainingWindows:
    window = context.partition_time_window
    return training_windows(
        window.start.date(), window.end.date(), SETTINGS.train_days, SETTINGS.valid_days, SETTINGS.holdout_days
    )


def _holdout_days_present(lake_root: str, start: date, end: date) -> tuple[list[str], list[str]]:
    present: list[str] = []
    missing: list[str] = []
    day = start
    while day <= end:
        uri = partition_uri(lake_root, "validated", day)
        if "://" in uri or Path(uri).exists():
            present.append(day.isoformat())
        else:
            missing.append(day.isoformat())
        day += timedelta(days=1)
    return present, missing


def report_dir(week: str) -> Path:
    return SETTINGS.data_dir / "evaluation" / week


def _metadata(report: dict[str, Any], markdown: str, passed: bool, html_path: Path) -> dict[str, Any]:
    cand = report["metrics"]["candidate"]
    delta = report["metrics"].get("delta") or {}
    ops = report["operations"]["candidate"]
    worst = report["slices"]["worst"]
    champion = report["provenance"]["champion"]
    values: dict[str, Any] = {
        "summary": dg.MarkdownMetadataValue(markdown),
        "gate_passed": passed,
        "candidate_version": report["provenance"]["candidate"]["version"],
        "champion_version": champion["version"] if champion else "none",
        "holdout_window": report["holdout_window"],
        "holdout_rows": report["rows"],
        "holdout_rows_hash": report["provenance"]["holdout_rows_hash"],
        "ece": dg.FloatMetadataValue(report["calibration"]["candidate"]["ece"]),
        "threshold": dg.FloatMetadataValue(report["operating_point"]["threshold"]),
        "single_row_p50_ms": dg.FloatMetadataValue(ops["single_row_p50_ms"]),
        "batch_ms_per_1k_rows": dg.FloatMetadataValue(ops["batch_ms_per_1k_rows"]),
        "model_size_bytes": ops["size_bytes"],
        "report_html": dg.PathMetadataValue(str(html_path)),
    }
    for name, interval in cand.items():
        values[name] = dg.FloatMetadataValue(interval["estimate"])
        values[f"{name}_ci_low"] = dg.FloatMetadataValue(interval["low"])
        values[f"{name}_ci_high"] = dg.FloatMetadataValue(interval["high"])
    if "roc_auc" in delta:
        values["delta_roc_auc"] = dg.FloatMetadataValue(delta["roc_auc"]["estimate"])
        values["delta_roc_auc_ci_low"] = dg.FloatMetadataValue(delta["roc_auc"]["low"])
        values["delta_roc_auc_ci_high"] = dg.FloatMetadataValue(delta["roc_auc"]["high"])
    if worst is not None:
        values["worst_slice_delta_auc"] = dg.FloatMetadataValue(worst["delta_auc"])
    return values


@dg.asset(
    key=EVALUATION_REPORT_KEY,
    group_name=TRAINING_GROUP,
    partitions_def=weekly_partitions,
    deps=[
        dg.AssetDep(TRAINED_MODEL_KEY),
        # The holdout is the partition's own week: the mapping's default offsets are exactly its days.
        dg.AssetDep(VALIDATED_KEY, partition_mapping=dg.TimeWindowPartitionMapping()),
        dg.AssetDep(FEATURE_STORE_KEY, partition_mapping=dg.TimeWindowPartitionMapping()),
    ],
    check_specs=GATE_CHECK_SPECS,
    freshness_policy=EVALUATION_FRESHNESS,
    automation_condition=EVALUATION_AUTOMATION,
    code_version=CODE_VERSION,
    kinds={"mlflow", "python"},
    description="The week's candidate vs the champion on the holdout week: CIs, calibration, slices, baselines, "
    "explanations, latency; the promotion gate as blocking checks.",
)
def evaluation_report(
    context: dg.AssetExecutionContext, config: EvaluationConfig, lake: LakeResource, mlflow_tracking: MlflowTracking
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    week = context.partition_key
    windows = week_windows(context)
    present, missing = _holdout_days_present(lake.lake_root, windows.holdout_start, windows.holdout_end)
    if not present or (missing and config.require_full_holdout):
        raise dg.Failure(
            f"evaluation_report {week}: validated_features is missing for holdout day(s) {', '.join(missing)}. "
            f"Materialise them first (dagster asset materialize -m mlops_assets.definitions --select "
            f"'validated_features*' --partition-range {missing[0]}...{missing[-1]}), or set require_full_holdout=false"
        )
    if missing:
        context.log.warning(f"scoring {len(present)} of 7 holdout days; missing {missing}")

    client = mlflow_tracking.client()
    name = mlflow_tracking.registered_model_name
    candidate = load_version(client, candidate_version(client, name, week))
    champion_entry = alias_version(client, name, CHAMPION)
    champion = load_version(client, champion_entry) if champion_entry is not None else None
    context.log.info(
        f"evaluating {name} v{candidate.version} (week {week}) against "
        + (f"champion v{champion.version} (week {champion.partition})" if champion else "no champion: floors only")
    )
    holdout = build_training_frame(lake.lake_root, windows.holdout_start, windows.holdout_end)
    train = build_training_frame(lake.lake_root, windows.train_start, windows.valid_end)
    holdout_window = f"{present[0]}..{present[-1]}"
    report = evaluate(week, holdout_window, holdout, train, candidate, champion, config.evaluation_settings())

    gate = evaluate_gate(report, config.gate_config())
    passed = gate_passed(gate)
    report["gate"] = {
        "passed": passed,
        "rules": [result.as_dict() for result in gate],
        "config": vars(config.gate_config()),
    }
    report["dagster"] = {"run_id": context.run.run_id, "partition": week}
    html = render_html(report, gate)
    markdown = render_markdown(report, gate)
    text = json.dumps(report, indent=1, sort_keys=True, default=str)

    out = report_dir(week)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(text)
    (out / "report.html").write_text(html)
    (out / "summary.md").write_text(markdown)
    client.log_text(candidate.run_id, text, report_artifact(week))
    client.log_text(candidate.run_id, html, report_artifact(week, "report.html"))
    context.log.info(f"gate {'PASSED' if passed else 'FAILED'}:\n{markdown}")

    yield dg.MaterializeResult(
        metadata=_metadata(report, markdown, passed, out / "report.html"),
        data_version=dg.DataVersion(report["provenance"]["holdout_rows_hash"][:16] + candidate.version),
    )
    for result in gate:
        yield dg.AssetCheckResult(
            asset_key=EVALUATION_REPORT_KEY,
            check_name=result.rule,
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.summary,
            metadata={key: value for key, value in result.values.items() if isinstance(value, int | float | str)},
        )


def read_report(tracking: MlflowTracking, run_id: str, week: str) -> dict[str, Any]:
    """The report JSON the evaluation logged on the candidate's run."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        local = tracking.client().download_artifacts(run_id, report_artifact(week), scratch)
        return json.loads(Path(local).read_text())
