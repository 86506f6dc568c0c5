"""Raw tables: each landed file is schema-checked and written to the Parquet lake, one partition per day."""

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg

from mlops_assets.defs.common import (
    DAILY_FRESHNESS,
    DAILY_TAG,
    DIMENSION_FRESHNESS,
    LakeResource,
    daily_partitions,
)
from mlops_assets.lib.io import parquet_bytes, sha256_hex, write_bytes_atomic
from mlops_assets.lib.raw_tables import (
    RAW_SCHEMAS,
    LandedFileError,
    check_partition_date,
    landed_file_path,
    parse_landed_csv,
)
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


def _ingest_file(lake: LakeResource, table: str, day: date | None, asset_label: str) -> dict[str, object]:
    path = landed_file_path(lake.landing_path(), table, day)
    if not path.exists():
        hint = f"mlops-assets land {day.isoformat()}" if day else "mlops-assets land <day>"
        raise dg.Failure(
            description=f"{asset_label}: no landed file at {path}; land it first (`{hint}`)",
            allow_retries=False,
        )
    try:
        parsed = parse_landed_csv(path.read_bytes(), table, source=str(path))
        if day is not None:
            check_partition_date(parsed.frame, day, source=str(path))
    except LandedFileError as exc:
        # The lake partition is untouched: nothing is written before the whole file has passed its contract.
        raise dg.Failure(description=f"{asset_label}: {exc}", allow_retries=False) from exc
    payload = parquet_bytes(parsed.frame)
    folder = lake.raw_table_uri(table) + (f"/date={day.isoformat()}" if day else "")
    write_bytes_atomic(f"{folder}/data.parquet", payload)
    return {
        "rows": parsed.frame.height,
        "bytes": len(payload),
        "sha256": sha256_hex(payload),
        "ignored_columns": list(parsed.ignored_columns),
    }


def _daily_raw_asset(table: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", table])

    @dg.multi_asset(
        name=f"raw_{table}",
        specs=[_raw_spec(table, f"Landed {table} rows of one New York day, typed and stored as Parquet.", daily=True)],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        keys = context.partition_keys

        def ingest(partition_key: str) -> dict[str, object]:
            label = f"asset {key.to_user_string()} partition {partition_key}"
            return {"partition": partition_key, **_ingest_file(lake, table, date.fromisoformat(partition_key), label)}

        per_day: list[dict[str, object]] = []
        # Files are independent and polars parses outside the GIL, so a range is ingested a few files at a time;
        # results are taken in partition order, and the first failure cancels the files not yet started.
        with ThreadPoolExecutor(max_workers=INGEST_THREADS) as pool:
            futures = [pool.submit(ingest, partition_key) for partition_key in keys]
            try:
                for index, future in enumerate(futures, start=1):
                    per_day.append(future.result())
                    if index % 30 == 0 or index == len(keys):
                        context.log.info(f"{key.to_user_string()}: {index}/{len(keys)} partitions written")
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        digests = [str(item["sha256"]) for item in per_day]
        version = digests[0] if len(digests) == 1 else sha256_hex("".join(digests).encode())
        return dg.MaterializeResult(
            asset_key=key,
            data_version=dg.DataVersion(version),
            metadata={
                "partitions": len(per_day),
                "dagster/row_count": sum(int(item["rows"]) for item in per_day),  # type: ignore[call-overload]
                "bytes": sum(int(item["bytes"]) for item in per_day),  # type: ignore[call-overload]
                "content_sha256": version,
                "per_partition": dg.MetadataValue.md(_markdown_table(per_day[-50:])),
                "lake_path": dg.MetadataValue.path(lake.raw_table_uri(table)),
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
        stats = _ingest_file(lake, table, None, f"asset {key.to_user_string()}")
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
    header = "| partition | rows | bytes | sha256 |\n|---|---:|---:|---|\n"
    body = "".join(f"| {r['partition']} | {r['rows']} | {r['bytes']} | `{str(r['sha256'])[:12]}` |\n" for r in rows)
    return header + body


daily_raw_assets = [_daily_raw_asset(table) for table in DAILY_TABLES]
dimension_raw_assets = [_dimension_raw_asset(table) for table in DIMENSION_TABLES]
