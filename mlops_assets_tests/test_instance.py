"""The local instance's batching event log writes exactly what Dagster's own SQLite event log writes, only faster."""

import sqlite3
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.instance import BatchingSqliteEventLogStorage
from mlops_assets.settings import REPO_ROOT

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily_rows(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    if context.run.tags.get("fail") == "true":
        raise RuntimeError("this run is meant to fail")
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)}, tags={"dagster/data_version": "v1"})


@dg.asset_check(asset=daily_rows, blocking=True, partitions_def=DAYS)
def rows_present(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset(deps=[daily_rows])
def summary() -> None:
    return None


JOB = dg.Definitions(assets=[daily_rows, summary], asset_checks=[rows_present]).resolve_implicit_global_asset_job_def()


def _run_history(instance: dg.DagsterInstance) -> None:
    """A successful ranged run, a re-run of part of it, a failed ranged run and a run not started yet."""
    for start, end, fail in (("2024-01-01", "2024-01-07", "false"), ("2024-01-05", "2024-01-09", "false")):
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end, "fail": fail}
        assert JOB.execute_in_process(instance=instance, tags=tags).success
    tags = {"dagster/asset_partition_range_start": "2024-01-08", "dagster/asset_partition_range_end": "2024-01-10"}
    failed = JOB.execute_in_process(
        instance=instance, tags={**tags, "fail": "true"}, asset_selection=[daily_rows.key], raise_on_error=False
    )
    assert not failed.success
    # A run created but not started yet (as the automation daemon queues one): its planned events only.
    instance.create_run_for_job(
        JOB,
        asset_selection=frozenset([daily_rows.key]),
        tags={"dagster/asset_partition_range_start": "2024-01-03", "dagster/asset_partition_range_end": "2024-01-05"},
    )


def _tables(home: Path) -> dict[str, Counter]:
    """The stored rows that matter, without ids, timestamps and run ids (which differ between two instances)."""
    runs_dir = home / "history" / "runs"
    index = sqlite3.connect(runs_dir / "index.db")
    shards = Counter()
    for shard in runs_dir.glob("*.db"):
        if shard.name != "index.db":
            with sqlite3.connect(shard) as conn:
                shards.update(conn.execute("select dagster_event_type, asset_key, partition from event_logs"))
    tables = {
        "run shards": shards,
        "index events": Counter(
            index.execute("select dagster_event_type, asset_key, partition from event_logs where asset_key is not null")
        ),
        "asset keys": Counter(
            index.execute(
                "select asset_key, last_materialization is not null, last_run_id is not null,"
                " last_materialization_timestamp is not null from asset_keys"
            )
        ),
        # summary's data version is computed from its input's storage ids, which differ between two instances.
        "asset event tags": Counter(
            index.execute(
                "select asset_key, key, case when asset_key = '[\"summary\"]' then 'derived' else value end"
                " from asset_event_tags"
            )
        ),
        "check executions": Counter(
            index.execute("select asset_key, check_name, partition, execution_status from asset_check_executions")
        ),
    }
    index.close()
    return tables


def _instance(home: Path, yaml: str, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.from_config(str(home))


def test_batching_event_log_stores_the_same_rows_as_dagsters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Restored after the test; the storage only sets it when it is unset.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    batches: list[int] = []
    original = BatchingSqliteEventLogStorage.store_event_batch

    def counting_store_event_batch(self: BatchingSqliteEventLogStorage, events: list) -> None:
        batches.append(len(events))
        original(self, events)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event_batch", counting_store_event_batch)

    with _instance(tmp_path / "stock", "telemetry:\n  enabled: false\n", monkeypatch) as stock:
        _run_history(stock)
        stock_partitions = stock.get_materialized_partitions(daily_rows.key)
        stock_status = stock.get_status_by_partition(daily_rows.key, DAYS.get_partition_keys(), DAYS)
    with _instance(tmp_path / "ours", (REPO_ROOT / "dagster.yaml").read_text(), monkeypatch) as ours:
        assert isinstance(ours.event_log_storage, BatchingSqliteEventLogStorage)
        _run_history(ours)
        assert ours.get_materialized_partitions(daily_rows.key) == stock_partitions
        our_status = ours.get_status_by_partition(daily_rows.key, DAYS.get_partition_keys(), DAYS)
        # The asset-key row points at the newest materialisation, as Dagster's one-by-one writes would leave it.
        newest = ours.fetch_materializations(daily_rows.key, limit=1).records[0]
        assert newest.partition_key == "2024-01-09"
        entry = ours.get_asset_records([daily_rows.key])[0].asset_entry
        assert entry.last_materialization_record.storage_id == newest.storage_id

    assert stock_partitions == {f"2024-01-0{day}" for day in range(1, 10)}
    assert batches and max(batches) >= 7, "the batched path never ran"
    stock_tables, our_tables = _tables(tmp_path / "stock"), _tables(tmp_path / "ours")
    for table, rows in stock_tables.items():
        assert our_tables[table] == rows, table
    # The failed run planned 2024-01-08..10, and Dagster shows a partition's latest attempt: those three failed.
    assert our_status == stock_status
    assert [day for day, status in our_status.items() if status == dg.AssetPartitionStatus.FAILED] == [
        "2024-01-08",
        "2024-01-09",
        "2024-01-10",
    ]
    in_progress = [day for day, status in our_status.items() if status == dg.AssetPartitionStatus.IN_PROGRESS]
    assert in_progress == ["2024-01-03", "2024-01-04", "2024-01-05"]
