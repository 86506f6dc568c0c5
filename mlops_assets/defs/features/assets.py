"""validated_features (+ quarantined_features) and feature_store: thin Dagster wrappers over mlops_assets.lib.

validated_features
    Reads the partition's rows of the dbt model ``flights_enriched`` (DuckDB, read-only), sets the flights without a
    tail number apart (out of scope, counted in the metadata), keeps the contract columns (outcomes dropped),
    validates them with the pandera model, and writes valid rows to
    ``<lake>/features/validated/date=D/data.parquet`` and invalid rows with their ``failed_rules`` to
    ``<lake>/features/quarantine/date=D/data.parquet`` (atomic writes; a re-run replaces). A range run validates every
    day first: if any day's invalid fraction exceeds ``max_invalid_fraction``, nothing is written to the validated
    table (the quarantine is, for diagnosis) and the run fails naming the days, rules and counts.

feature_store
    Derives the per-entity feature tables of its partitions (delay statistics from ``delay_history``, weather and
    plane attributes from the validated rows, the intraday timelines from the day's departure events in
    ``flights_enriched``), merges them into the lake tables the Feast views read, applies the Feast definitions (once
    per process) and writes each key's latest row of the batch views online (the live intraday views are pushed by
    the departure feed instead). Our own watermark (the end of the latest materialised window, kept in this asset's
    materialisation metadata in the Dagster instance, tied to the online store URL) decides the days written:
    ``[min(start, watermark), max(end, watermark))``. A backfill of old days therefore re-materialises up to the
    watermark so the online store ends with the latest values, a gap since the watermark is caught up, and
    re-applying Feast definitions (which may reset Feast's own materialisation intervals) changes nothing.
"""

import time
from datetime import date, datetime, timedelta

import dagster as dg
import polars as pl

from mlops_assets.defs.common import (
    DAILY_AUTOMATION,
    DAILY_FRESHNESS,
    DAILY_TAG,
    WAREHOUSE_POOL,
    LakeResource,
    daily_partitions,
)
from mlops_assets.defs.features.checks import (
    CHECK_SPECS,
    QUARANTINE_KEY,
    VALIDATED_KEY,
    result_checks,
    threshold_result,
)
from mlops_assets.defs.features.resources import FeatureStoreResource
from mlops_assets.lib.feature_contract import PARTITION_COLUMN, FeatureContractError, prepare_model_rows, split_scope
from mlops_assets.lib.feature_paths import entity_table_uri, partition_uri
from mlops_assets.lib.feature_views import (
    FEATURE_VIEWS,
    feature_tables,
    latest_per_key,
    merge_entity_table,
    read_warehouse_inputs,
)
from mlops_assets.lib.io import parquet_bytes, sha256_hex, write_bytes_atomic
from mlops_assets.lib.point_in_time import read_validated

FEATURES_GROUP = "features"
FEATURE_STORE_KEY = dg.AssetKey("feature_store")
DBT_MODEL_KEY = dg.AssetKey("flights_enriched")
DELAY_HISTORY_KEY = dg.AssetKey("delay_history")


class FeatureValidationConfig(dg.Config):
    max_invalid_fraction: float = 0.01
    """A day with a larger fraction of invalid rows fails as a whole instead of quarantining them."""


def _table_schema(extra: list[tuple[str, str, str]] | None = None) -> dg.TableSchema:
    """The contract's columns, read off the pandera model. Recorded with each materialisation rather than on the spec:
    pandera costs ~0.4 s to import, which every process that loads the code location would pay (issue 16)."""
    from mlops_assets.lib.feature_validation import column_schema

    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, dtype, description=description)
            for name, dtype, description in [*column_schema(), *(extra or [])]
        ]
    )


QUARANTINE_EXTRA_COLUMNS = [("failed_rules", "String", "'; '-joined names of the rules the row failed")]


def _days(context: dg.AssetExecutionContext) -> list[date]:
    return [date.fromisoformat(key) for key in context.partition_keys]


@dg.multi_asset(
    name="validated_features",
    pool=WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec(
            VALIDATED_KEY,
            deps=[DBT_MODEL_KEY],
            group_name=FEATURES_GROUP,
            description="Model-ready flight rows of the day (pre-departure features + label), pandera-validated.",
            kinds={"polars", "parquet", "pandera"},
            tags=DAILY_TAG,
            freshness_policy=DAILY_FRESHNESS,
            automation_condition=DAILY_AUTOMATION,
        ),
        dg.AssetSpec(
            QUARANTINE_KEY,
            deps=[DBT_MODEL_KEY],
            group_name=FEATURES_GROUP,
            description="Rows of the day that failed the feature contract, with the failed rule names per row.",
            kinds={"polars", "parquet"},
            tags=DAILY_TAG,
            freshness_policy=DAILY_FRESHNESS,
            automation_condition=DAILY_AUTOMATION,
        ),
    ],
    check_specs=CHECK_SPECS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def validated_features(
    context: dg.AssetExecutionContext,
    config: FeatureValidationConfig,
    lake: LakeResource,
):
    from mlops_assets.lib.feature_validation import ValidationOutcome, validate_features  # pandera: see _table_schema

    days = _days(context)
    started = time.perf_counter()
    with lake.warehouse.location().connect() as con:
        enriched = con.sql(
            "select * from flights_enriched where flight_date between ? and ? order by flight_date, flight_id",
            params=[days[0], days[-1]],
        ).pl()
    by_day = {key[0]: frame for key, frame in enriched.partition_by(PARTITION_COLUMN, as_dict=True).items()}
    outcomes: dict[str, ValidationOutcome] = {}
    out_of_scope: dict[str, int] = {}
    failed_days: list[str] = []
    for index, day in enumerate(days, start=1):
        frame = by_day.get(day)
        if frame is None or frame.height == 0:
            raise dg.Failure(
                description=f"validated_features {day}: flights_enriched has no rows for this day; "
                "materialise the dbt model for it first",
                allow_retries=False,
            )
        in_scope, excluded = split_scope(frame)
        out_of_scope[day.isoformat()] = excluded.height
        try:
            outcome = validate_features(prepare_model_rows(in_scope))
        except FeatureContractError as exc:
            raise dg.Failure(description=f"validated_features {day}: {exc}", allow_retries=False) from exc
        outcomes[day.isoformat()] = outcome
        if outcome.invalid_fraction > config.max_invalid_fraction:
            failed_days.append(day.isoformat())
        if index % 30 == 0 or index == len(days):
            context.log.info(f"validated_features: {index}/{len(days)} partitions validated")

    for day in days:  # the quarantine is written even for failing days: it is the diagnosis
        write_bytes_atomic(
            partition_uri(lake.lake_root, "quarantine", day), parquet_bytes(outcomes[day.isoformat()].quarantine)
        )
    if failed_days:
        yield threshold_result(outcomes, config.max_invalid_fraction, failed_days)
        details = "; ".join(
            f"{day}: {outcomes[day].quarantine.height}/{outcomes[day].total_rows} rows invalid "
            f"({outcomes[day].invalid_fraction:.1%}) - {outcomes[day].summary()}"
            for day in failed_days
        )
        raise dg.Failure(
            description=(
                f"validated_features: {len(failed_days)} partition(s) exceed the invalid-row threshold "
                f"{config.max_invalid_fraction:.2%}; nothing was written to validated_features. {details}"
            ),
            metadata={"failed_partitions": ", ".join(failed_days)},
            allow_retries=False,
        )

    digests = []
    for day in days:
        payload = parquet_bytes(outcomes[day.isoformat()].valid)
        write_bytes_atomic(partition_uri(lake.lake_root, "validated", day), payload)
        digests.append(sha256_hex(payload))
    valid = pl.concat([outcome.valid for outcome in outcomes.values()])
    quarantined = sum(outcome.quarantine.height for outcome in outcomes.values())
    rule_counts: dict[str, int] = {}
    for outcome in outcomes.values():
        for rule, count in outcome.rule_counts.items():
            rule_counts[rule] = rule_counts.get(rule, 0) + count
    seconds = time.perf_counter() - started
    version = digests[0] if len(digests) == 1 else sha256_hex("".join(digests).encode())
    yield dg.MaterializeResult(
        asset_key=VALIDATED_KEY,
        data_version=dg.DataVersion(version),
        metadata={
            "partitions": len(days),
            "dagster/row_count": valid.height,
            "quarantined_rows": quarantined,
            # Flights without a tail number (all cancelled): outside what a serving request describes, never used.
            "out_of_scope_rows": sum(out_of_scope.values()),
            "rows_per_second": round((valid.height + quarantined) / max(seconds, 1e-9)),
            "dagster/column_schema": _table_schema(),
            "lake_path": dg.MetadataValue.path(f"{lake.lake_root.rstrip('/')}/features/validated"),
        },
    )
    yield dg.MaterializeResult(
        asset_key=QUARANTINE_KEY,
        metadata={
            "dagster/row_count": quarantined,
            "dagster/column_schema": _table_schema(QUARANTINE_EXTRA_COLUMNS),
            "rule_counts": dg.MetadataValue.json(rule_counts),
            "lake_path": dg.MetadataValue.path(f"{lake.lake_root.rstrip('/')}/features/quarantine"),
        },
    )
    yield threshold_result(outcomes, config.max_invalid_fraction, [])
    yield from result_checks(valid, rule_counts, quarantined)


def _naive(moment: datetime) -> datetime:
    """Partition bounds are New York-aware; feature timestamps are New York wall clock, labelled UTC for Feast."""
    return moment.replace(tzinfo=None)


def _previous_watermark(context: dg.AssetExecutionContext, online_store: str) -> datetime | None:
    event = context.instance.get_latest_materialization_event(FEATURE_STORE_KEY)
    if event is None or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    store = metadata.get("online_store")
    mark = metadata.get("watermark")
    if store is None or mark is None or store.value != online_store:
        return None
    return datetime.fromisoformat(str(mark.value))


# One spec, yet a multi_asset on purpose: the watermark logic needs a whole range in one run
# (BackfillPolicy.single_run()), and in Dagster 1.13 `backfill_policy=` is Beta on `@asset` (a BetaWarning at every
# code-location load) but stable on `@multi_asset`. Same asset key, checks and lineage either way; switch to `@asset`
# when the parameter leaves Beta.
@dg.multi_asset(
    name="feature_store",
    pool=WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec(
            FEATURE_STORE_KEY,
            deps=[VALIDATED_KEY, DBT_MODEL_KEY, DELAY_HISTORY_KEY],
            group_name=FEATURES_GROUP,
            description="Feast entity feature tables in the lake (offline) and the online store materialised to date.",
            kinds={"feast", "parquet"},
            tags=DAILY_TAG,
            freshness_policy=DAILY_FRESHNESS,
            automation_condition=DAILY_AUTOMATION,
        )
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def feature_store(
    context: dg.AssetExecutionContext, feature_store: FeatureStoreResource, lake: LakeResource
) -> dg.MaterializeResult:
    days = _days(context)
    lake_root = feature_store.lake_root
    valid = read_validated(lake_root, days[0], days[-1])
    fresh = feature_tables(valid, read_warehouse_inputs(lake.warehouse.location(), days[0], days[-1]))
    tables: dict[str, pl.DataFrame] = {}
    for spec in FEATURE_VIEWS:
        uri = entity_table_uri(lake_root, spec.name)
        try:
            existing = pl.read_parquet(uri)
        except FileNotFoundError:
            existing = None
        tables[spec.name] = merge_entity_table(spec, existing, fresh[spec.name], days)
        write_bytes_atomic(uri, parquet_bytes(tables[spec.name]))
    window = context.partition_time_window
    start, end = _naive(window.start), _naive(window.end)
    watermark = _previous_watermark(context, feature_store.online_store)
    if watermark is not None:
        start, end = min(start, watermark), max(end, watermark)
    started = time.perf_counter()
    applied = feature_store.ensure_applied()
    apply_seconds = time.perf_counter() - started
    # Each key's latest row produced by the window's days, taken from the tables just merged in memory instead of
    # read back through Feast's offline store. Live views are left to the departure feed: their end-of-day state
    # would only overwrite what the feed pushed.
    started = time.perf_counter()
    written: dict[str, int] = {}
    first_day, last_day = start.date(), (end - timedelta(days=1)).date()
    for spec in FEATURE_VIEWS:
        if spec.live:
            continue
        latest = latest_per_key(spec, tables[spec.name], first_day, last_day)
        feature_store.write_online(spec.name, latest)
        written[spec.name] = latest.height
    seconds = time.perf_counter() - started
    context.log.info(
        f"feature_store: materialised {len(FEATURE_VIEWS)} views over [{start}, {end}) in {seconds:.2f}s "
        f"({len(days)} partition(s), previous watermark {watermark})"
    )
    return dg.MaterializeResult(
        asset_key=FEATURE_STORE_KEY,
        metadata={
            "watermark": end.isoformat(),
            "previous_watermark": watermark.isoformat() if watermark else "none",
            "materialized_from": start.isoformat(),
            "online_store": feature_store.online_store,
            "materialize_seconds": round(seconds, 3),
            "applied_definitions": applied,
            "apply_seconds": round(apply_seconds, 3),
            "entity_table_rows": dg.MetadataValue.json({name: table.height for name, table in tables.items()}),
            "online_rows_written": dg.MetadataValue.json(written),
            "partitions": len(days),
            "lake_path": dg.MetadataValue.path(entity_table_uri(lake_root, "").rsplit("/", 1)[0]),
        },
    )


__all__ = ["FeatureValidationConfig", "feature_store", "validated_features"]
