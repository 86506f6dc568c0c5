"""Raw tables: each landed file passes the quality gate (lib/raw_quality.py) and is written to the Parquet lake.

Daily tables: good rows to ``raw/<table>/date=D/``, bad rows to ``raw_quarantine/<table>/date=D/``; a day that fails a
table rule or has too many bad rows fails the run before anything of the range is published.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import dagster as dg
from pydantic import Field

from mlops_assets.defs.common import (
    DAILY_FRESHNESS,
    DAILY_TAG,
    DIMENSION_FRESHNESS,
    LakeResource,
    daily_partitions,
)
from mlops_assets.lib.io import parquet_bytes, read_bytes, sha256_hex, write_bytes_atomic
from mlops_assets.lib.raw_lake import (
    partition_uri,
    published_row_count,
    quarantine_uri,
    remove_if_exists,
    remove_stale_temp_files,
)
from mlops_assets.lib.raw_quality import DeliveryError, check_redelivery, enforce_bad_share, inspect_delivery
from mlops_assets.lib.raw_tables import RAW_SCHEMAS, LandedFileError, landed_file_path, parse_landed_csv
from mlops_assets.lib.source import DAILY_TABLES, DIMENSION_TABLES

RAW_GROUP = "raw"
INGEST_THREADS = min(4, os.cpu_count() or 1)


def _column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in RAW_SCHEMAS[table].items()])


def _raw_spec(table: str, description: str, daily: bool) -> dg.AssetSpec:
    return dg.AssetSpec(
        ["raw", table],
        group_name=RAW_GROUP,
        description=description,
        kinds={"polars", "parquet"},
        tags=DAILY_TAG if daily else None,
        freshness_policy=DAILY_FRESHNESS if daily else DIMENSION_FRESHNESS,
        metadata={"dagster/column_schema": _column_schema(table)},
    )


def _ingest_dimension(lake: LakeResource, table: str, asset_label: str) -> dict[str, object]:
    path = landed_file_path(lake.landing_root, table)
    try:
        content = read_bytes(path)
    except FileNotFoundError:
        raise dg.Failure(
            description=f"{asset_label}: no landed file at {path}; land it first (`mlops-assets land <day>`)",
            allow_retries=False,
        ) from None
    try:
        parsed = parse_landed_csv(content, table, source=path)
    except LandedFileError as exc:
        # The lake file is untouched: nothing is written before the whole file has passed its contract.
        raise dg.Failure(description=f"{asset_label}: {exc}", allow_retries=False) from exc
    payload = parquet_bytes(parsed.frame)
    write_bytes_atomic(f"{lake.raw_table_uri(table)}/data.parquet", payload)
    return {
        "rows": parsed.frame.height,
        "bytes": len(payload),
        "sha256": sha256_hex(payload),
        "ignored_columns": list(parsed.ignored_columns),
    }


class RawIngestConfig(dg.Config):
    """Run config of the daily raw assets (editable in the launchpad)."""

    max_bad_share: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Largest share of a day's rows that may be quarantined; above it nothing of the run is published.",
    )
    min_tolerated_bad_rows: int = Field(
        default=1,
        ge=0,
        description="Bad rows always quarantined rather than failing the day (one bad reading in ~72 weather rows).",
    )


@dataclass(frozen=True)
class _Prepared:
    """One day that passed the gate, encoded and hashed, waiting to be published."""

    partition: str
    payload: bytes
    quarantine: bytes | None
    rows: int
    quarantined: int
    extra_columns: tuple[str, ...]
    warnings: tuple[str, ...]


def _prepare_day(lake: LakeResource, table: str, day: date, config: RawIngestConfig) -> _Prepared:
    """Read, gate and encode one day; raise DeliveryError (or FileNotFoundError) without touching the lake."""
    path = landed_file_path(lake.landing_root, table, day)
    try:
        content = read_bytes(path)
    except FileNotFoundError:
        raise DeliveryError(
            path, None, "not_landed", "no landed file", f"land it first (`mlops-assets land {day.isoformat()}`)"
        ) from None
    delivery = inspect_delivery(content, table, day, source=path, file_label=f"{table}/{day.isoformat()}.csv")
    enforce_bad_share(delivery, config.max_bad_share, config.min_tolerated_bad_rows)
    check_redelivery(delivery, published_row_count(partition_uri(lake.lake_root, table, day)))
    return _Prepared(
        partition=day.isoformat(),
        payload=parquet_bytes(delivery.good),
        quarantine=parquet_bytes(delivery.quarantine) if delivery.bad_rows else None,
        rows=delivery.good.height,
        quarantined=delivery.bad_rows,
        extra_columns=delivery.extra_columns,
        warnings=tuple(delivery.warnings()),
    )


def _publish_day(lake: LakeResource, table: str, prepared: _Prepared) -> None:
    day = date.fromisoformat(prepared.partition)
    # The quarantine first: a crash between the two writes leaves the previous partition with the new quarantine,
    # which the re-run (the run is not recorded as done) overwrites with the same bytes as an uninterrupted run.
    bad_uri = quarantine_uri(lake.lake_root, table, day)
    good_uri = partition_uri(lake.lake_root, table, day)
    for uri in (bad_uri, good_uri):
        remove_stale_temp_files(uri)
    if prepared.quarantine is not None:
        write_bytes_atomic(bad_uri, prepared.quarantine)
    else:
        remove_if_exists(bad_uri)
    write_bytes_atomic(good_uri, prepared.payload)


def _daily_raw_asset(table: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", table])
    asset_name = key.to_user_string()

    @dg.multi_asset(
        name=f"raw_{table}",
        specs=[_raw_spec(table, f"Landed {table} rows of one New York day, gated and stored as Parquet.", daily=True)],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _asset(context: dg.AssetExecutionContext, config: RawIngestConfig, lake: LakeResource) -> dg.MaterializeResult:
        keys = context.partition_keys

        # Phase 1: every day of the range passes the gate and is encoded in memory before any byte is published, so
        # a bad day fails the run with the lake untouched and Dagster's records (no materialisation) agree with it.
        prepared: list[_Prepared] = []
        failures: list[str] = []
        with ThreadPoolExecutor(max_workers=INGEST_THREADS) as pool:
            futures = [pool.submit(_prepare_day, lake, table, date.fromisoformat(pk), config) for pk in keys]
            for partition_key, future in zip(keys, futures, strict=True):
                try:
                    prepared.append(future.result())
                except DeliveryError as exc:
                    failures.append(f"asset {asset_name} partition {partition_key}: {exc}")
        if failures:
            kept = "the lake keeps its previous partition(s)"
            passed = len(keys) - len(failures)
            summary = (
                f"asset {asset_name}: {len(failures)} of {len(keys)} partition(s) failed the quality gate; nothing "
                f"was published ({passed} passing day(s) included), {kept}. Fix or re-land the failed day(s), or run "
                "the range without them."
            )
            for line in failures:
                context.log.error(line)
            raise dg.Failure(description="\n".join([*failures, summary]), allow_retries=False)

        for item in prepared:
            for note in item.warnings:
                context.log.warning(f"asset {asset_name} partition {item.partition}: {note}")

        # Phase 2: publish. Each file is replaced atomically and is a pure function of its landed file, so a run
        # killed here leaves complete partitions only, and the re-run writes the same bytes (SHA-256) again.
        with ThreadPoolExecutor(max_workers=INGEST_THREADS) as pool:
            for index, _ in enumerate(pool.map(lambda item: _publish_day(lake, table, item), prepared), start=1):
                if index % 30 == 0 or index == len(prepared):
                    context.log.info(f"{asset_name}: {index}/{len(prepared)} partitions written")

        digests = [sha256_hex(item.payload) for item in prepared]
        version = digests[0] if len(digests) == 1 else sha256_hex("".join(digests).encode())
        extra = {item.partition: list(item.extra_columns) for item in prepared if item.extra_columns}
        per_day = [
            {
                "partition": item.partition,
                "rows": item.rows,
                "quarantined": item.quarantined,
                "bytes": len(item.payload),
                "sha256": digest,
            }
            for item, digest in zip(prepared, digests, strict=True)
        ]
        return dg.MaterializeResult(
            asset_key=key,
            data_version=dg.DataVersion(version),
            metadata={
                "partitions": len(prepared),
                "dagster/row_count": sum(item.rows for item in prepared),
                "quarantined_rows": sum(item.quarantined for item in prepared),
                "bytes": sum(len(item.payload) for item in prepared),
                "content_sha256": version,
                "extra_columns": dg.MetadataValue.json(extra),
                "warnings": dg.MetadataValue.md("\n".join(f"- {n}" for item in prepared for n in item.warnings)),
                "per_partition": dg.MetadataValue.md(_markdown_table(per_day[-50:])),
                "lake_path": dg.MetadataValue.path(lake.raw_table_uri(table)),
                "quarantine_path": dg.MetadataValue.path(f"{lake.lake_root.rstrip('/')}/raw_quarantine/{table}"),
            },
        )

    return _asset


def _dimension_raw_asset(table: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", table])

    # A multi_asset (not @asset) so that a single-run backfill policy can be set without a Beta warning: ranges
    # that include the dimensions then still run as one run from the CLI.
    @dg.multi_asset(
        name=f"raw_{table}",
        specs=[_raw_spec(table, f"The {table} dimension as last landed, typed and stored as Parquet.", daily=False)],
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _asset(lake: LakeResource) -> dg.MaterializeResult:
        stats = _ingest_dimension(lake, table, f"asset {key.to_user_string()}")
        return dg.MaterializeResult(
            asset_key=key,
            data_version=dg.DataVersion(str(stats["sha256"])),
            metadata={
                "dagster/row_count": stats["rows"],
                "bytes": stats["bytes"],
                "content_sha256": stats["sha256"],
                "lake_path": dg.MetadataValue.path(lake.raw_table_uri(table)),
            },
        )

    return _asset


def _markdown_table(rows: list[dict[str, object]]) -> str:
    header = "| partition | rows | quarantined | bytes | sha256 |\n|---|---:|---:|---:|---|\n"
    body = "".join(
        f"| {r['partition']} | {r['rows']} | {r['quarantined']} | {r['bytes']} | `{str(r['sha256'])[:12]}` |\n"
        for r in rows
    )
    return header + body


daily_raw_assets = [_daily_raw_asset(table) for table in DAILY_TABLES]
dimension_raw_assets = [_dimension_raw_asset(table) for table in DIMENSION_TABLES]
