"""The promotion gate: the rules a candidate must pass, judged on the evaluation report (a ``dict``).

Each rule is one :class:`GateResult`; the Dagster asset checks of ``evaluation_report`` are these results, and the
``champion`` step moves the alias only when every one passed. With no champion yet, the comparative rules pass with
a note and the absolute floors decide alone.

- ``auc_not_worse_than_champion``: the lower end of the paired bootstrap CI of candidate - champion ROC-AUC must be
  at least ``-auc_tolerance``: judged on the interval over the same rows, not on two point estimates.
- ``no_slice_regression``: no scored slice's AUC below the champion's by more than ``max_slice_regression`` with
  the slice's paired CI of the delta entirely below zero.
- ``calibration_within_bound``: ECE at most ``max_ece``.
- ``latency_and_size_within_budget``: single-row p50 and batch time per 1k rows within absolute budgets; model size
  within ``max_size_mb``. A slowdown against the champion beyond ``max_latency_ratio`` fails only once the candidate
  uses more than ``latency_ratio_budget_share`` of the budget: a first champion of a few dozen trees would otherwise
  block every full-size successor (seen in CI: 9.8x slower per batch, at 10% of the budget).
- ``absolute_floors``: ROC-AUC at least ``min_auc``, PR-AUC at least ``min_pr_auc_lift`` times the base rate, and a
  log loss below the prior-rate baseline's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AUC_VS_CHAMPION = "auc_not_worse_than_champion"
NO_SLICE_REGRESSION = "no_slice_regression"
CALIBRATION = "calibration_within_bound"
OPERATIONS_BUDGET = "latency_and_size_within_budget"
ABSOLUTE_FLOORS = "absolute_floors"
GATE_RULES: tuple[str, ...] = (AUC_VS_CHAMPION, NO_SLICE_REGRESSION, CALIBRATION, OPERATIONS_BUDGET, ABSOLUTE_FLOORS)
RULE_DESCRIPTIONS: dict[str, str] = {
    AUC_VS_CHAMPION: "Paired-bootstrap CI of candidate - champion ROC-AUC: its lower end is above -tolerance.",
    NO_SLICE_REGRESSION: "No slice (carrier, origin, month, hour, distance; min size) loses more AUC than allowed.",
    CALIBRATION: "Expected calibration error on the holdout within the bound.",
    OPERATIONS_BUDGET: "Predict latency (single row, batch) and model size within budget and near the champion's.",
    ABSOLUTE_FLOORS: "ROC-AUC and PR-AUC floors, and a log loss below the prior-rate baseline.",
}


@dataclass(frozen=True)
class GateConfig:
    auc_tolerance: float = 0.01
    max_slice_regression: float = 0.05
    max_ece: float = 0.10
    max_single_row_ms: float = 5.0
    max_batch_ms_per_1k_rows: float = 50.0
    max_latency_ratio: float = 3.0
    latency_ratio_budget_share: float = 0.5
    max_size_mb: float = 50.0
    min_auc: float = 0.60
    min_pr_auc_lift: float = 1.2


@dataclass(frozen=True)
class GateResult:
    rule: str
    passed: bool
    summary: str
    values: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "summary": self.summary, "values": self.values}


def _auc_vs_champion(report: dict[str, Any], config: GateConfig) -> GateResult:
    delta = (report["metrics"].get("delta") or {}).get("roc_auc")
    if delta is None:
        return GateResult(AUC_VS_CHAMPION, True, "no champion yet: the absolute floors decide")
    low = delta["low"]
    passed = low >= -config.auc_tolerance
    return GateResult(
        AUC_VS_CHAMPION,
        passed,
        f"delta AUC {delta['estimate']:+.4f} (95% CI {low:+.4f} .. {delta['high']:+.4f}); "
        f"{'within' if passed else 'beyond'} tolerance {config.auc_tolerance:.4f}",
        {"delta": delta["estimate"], "delta_low": low, "delta_high": delta["high"], "tolerance": config.auc_tolerance},
    )


def _slices(report: dict[str, Any], config: GateConfig) -> GateResult:
    compared = [row for row in report["slices"]["rows"] if row.get("delta_auc") is not None]
    if not compared:
        return GateResult(NO_SLICE_REGRESSION, True, "no champion (or no slice large enough) to compare against")
    regressed = [
        row
        for row in compared
        if row["delta_auc"] < -config.max_slice_regression
        and (row.get("delta_ci_high") is None or row["delta_ci_high"] < 0)
    ]
    worst = min(regressed or compared, key=lambda row: row["delta_auc"])
    delta = float(worst["delta_auc"])
    high = worst.get("delta_ci_high")
    return GateResult(
        NO_SLICE_REGRESSION,
        not regressed,
        f"{len(regressed)} of {len(compared)} slices regressed; worst {worst['dimension']}={worst['value']} "
        f"({worst['rows']} rows): delta AUC {delta:+.4f}"
        + (f" (CI high {high:+.4f})" if high is not None else "")
        + f", allowed -{config.max_slice_regression:.3f} unless the CI reaches 0",
        {"worst_slice": f"{worst['dimension']}={worst['value']}", "worst_delta": delta, "regressed": len(regressed)},
    )


def _calibration(report: dict[str, Any], config: GateConfig) -> GateResult:
    ece = float(report["calibration"]["candidate"]["ece"])
    passed = ece <= config.max_ece
    return GateResult(CALIBRATION, passed, f"ECE {ece:.4f} (bound {config.max_ece:.4f})", {"ece": ece})


def _operations(report: dict[str, Any], config: GateConfig) -> GateResult:
    cand = report["operations"]["candidate"]
    champ = report["operations"].get("champion")
    problems = []
    if cand["single_row_p50_ms"] > config.max_single_row_ms:
        problems.append(f"single-row p50 {cand['single_row_p50_ms']:.3f} ms > {config.max_single_row_ms} ms")
    if cand["batch_ms_per_1k_rows"] > config.max_batch_ms_per_1k_rows:
        problems.append(f"batch {cand['batch_ms_per_1k_rows']:.2f} ms/1k > {config.max_batch_ms_per_1k_rows}")
    size_mb = cand["size_bytes"] / 1e6
    if size_mb > config.max_size_mb:
        problems.append(f"size {size_mb:.2f} MB > {config.max_size_mb} MB")
    ratios: dict[str, float] = {}
    if champ:
        budgets = {
            "single_row_p50_ms": config.max_single_row_ms,
            "batch_ms_per_1k_rows": config.max_batch_ms_per_1k_rows,
        }
        for key, budget in budgets.items():
            ratios[key] = cand[key] / max(champ[key], 1e-9)
            share = cand[key] / budget
            if ratios[key] > config.max_latency_ratio and share > config.latency_ratio_budget_share:
                problems.append(
                    f"{key} {ratios[key]:.1f}x the champion's (max {config.max_latency_ratio}x once over "
                    f"{config.latency_ratio_budget_share:.0%} of the budget; at {share:.0%})"
                )
    summary = "; ".join(problems) or (
        f"single row {cand['single_row_p50_ms']:.3f} ms, batch {cand['batch_ms_per_1k_rows']:.2f} ms/1k rows, "
        f"{size_mb:.2f} MB"
    )
    return GateResult(
        OPERATIONS_BUDGET,
        not problems,
        summary,
        {
            "single_row_p50_ms": cand["single_row_p50_ms"],
            "batch_ms_per_1k_rows": cand["batch_ms_per_1k_rows"],
            "size_mb": size_mb,
            **{f"ratio_{k}": v for k, v in ratios.items()},
        },
    )


def _floors(report: dict[str, Any], config: GateConfig) -> GateResult:
    cand = report["metrics"]["candidate"]
    auc = float(cand["roc_auc"]["estimate"])
    pr_auc = float(cand["pr_auc"]["estimate"])
    log_loss = float(cand["log_loss"]["estimate"])
    base_rate = report["positives"] / max(report["rows"], 1)
    prior_log_loss = float(report["baselines"]["prior_rate"]["log_loss"])
    problems = []
    if not auc >= config.min_auc:
        problems.append(f"AUC {auc:.4f} < {config.min_auc}")
    if not pr_auc >= config.min_pr_auc_lift * base_rate:
        problems.append(f"PR-AUC {pr_auc:.4f} < {config.min_pr_auc_lift} x base rate {base_rate:.4f}")
    if not log_loss < prior_log_loss:
        problems.append(f"log loss {log_loss:.4f} not below the prior rate's {prior_log_loss:.4f}")
    summary = (
        "; ".join(problems)
        or f"AUC {auc:.4f}, PR-AUC {pr_auc:.4f}, log loss {log_loss:.4f} (prior {prior_log_loss:.4f})"
    )
    return GateResult(
        ABSOLUTE_FLOORS,
        not problems,
        summary,
        {"auc": auc, "pr_auc": pr_auc, "log_loss": log_loss, "prior_log_loss": prior_log_loss},
    )


def evaluate_gate(report: dict[str, Any], config: GateConfig) -> list[GateResult]:
    """Every rule of the gate, in :data:`GATE_RULES` order."""
    return [rule(report, config) for rule in (_auc_vs_champion, _slices, _calibration, _operations, _floors)]


def gate_passed(results: list[GateResult]) -> bool:
    return all(result.passed for result in results)
