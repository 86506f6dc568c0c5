"""Asset checks of the features domain, emitted by the assets themselves so each materialisation records them.

Partitioned asset checks are Preview in Dagster 1.13, so instead of separate ``@asset_check`` definitions the
``validated_features`` multi-asset declares these specs and yields one result per run (covering its partitions).
Blocking checks stop ``feature_store`` in the same run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
import polars as pl

from mlops_assets.lib.feature_contract import KEY_COLUMN, OUTCOME_COLUMNS

if TYPE_CHECKING:  # pandera is imported only where rows are validated (the asset body)
    from mlops_assets.lib.feature_validation import ValidationOutcome

VALIDATED_KEY = dg.AssetKey("validated_features")
QUARANTINE_KEY = dg.AssetKey("quarantined_features")

INVALID_FRACTION = "invalid_fraction_within_threshold"
UNIQUE_KEY = "unique_flight_id"
NO_OUTCOME_COLUMNS = "no_outcome_columns"
NO_QUARANTINE = "no_rows_quarantined"

CHECK_SPECS = [
    dg.AssetCheckSpec(
        INVALID_FRACTION,
        asset=VALIDATED_KEY,
        blocking=True,
        description="Every day's invalid-row fraction is within the configured threshold (default 1%).",
    ),
    dg.AssetCheckSpec(UNIQUE_KEY, asset=VALIDATED_KEY, blocking=True, description="flight_id is unique."),
    dg.AssetCheckSpec(
        NO_OUTCOME_COLUMNS,
        asset=VALIDATED_KEY,
        blocking=True,
        description="No outcome column (actual departure/arrival times, delays, cancellation) is in the features.",
    ),
    dg.AssetCheckSpec(
        NO_QUARANTINE,
        asset=VALIDATED_KEY,
        blocking=False,
        description="Warns when any row was quarantined (the run still proceeds below the threshold).",
    ),
]


def threshold_result(
    outcomes: dict[str, ValidationOutcome], threshold: float, failed_days: list[str]
) -> dg.AssetCheckResult:
    worst = max(outcomes.items(), key=lambda item: item[1].invalid_fraction)
    return dg.AssetCheckResult(
        asset_key=VALIDATED_KEY,
        check_name=INVALID_FRACTION,
        passed=not failed_days,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "threshold": threshold,
            "worst_partition": worst[0],
            "worst_invalid_fraction": round(worst[1].invalid_fraction, 6),
            "failed_partitions": ", ".join(failed_days) or "none",
        },
    )


def result_checks(valid: pl.DataFrame, rule_counts: dict[str, int], quarantined: int) -> list[dg.AssetCheckResult]:
    duplicates = valid.height - valid[KEY_COLUMN].n_unique()
    leaked = sorted(set(valid.columns) & set(OUTCOME_COLUMNS))
    return [
        dg.AssetCheckResult(
            asset_key=VALIDATED_KEY,
            check_name=UNIQUE_KEY,
            passed=duplicates == 0,
            metadata={"duplicate_rows": duplicates},
        ),
        dg.AssetCheckResult(
            asset_key=VALIDATED_KEY,
            check_name=NO_OUTCOME_COLUMNS,
            passed=not leaked,
            metadata={"outcome_columns_found": ", ".join(leaked) or "none"},
        ),
        dg.AssetCheckResult(
            asset_key=VALIDATED_KEY,
            check_name=NO_QUARANTINE,
            passed=quarantined == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"quarantined_rows": quarantined, **{f"rule {k}": v for k, v in sorted(rule_counts.items())}},
        ),
    ]
