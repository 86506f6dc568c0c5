"""The local Dagster instance's event log: Dagster's run-sharded SQLite storage, writing event batches at once.

Dagster logs one event per asset partition: a year-long backfill of the daily assets is ~6,000 events, and the stock
``SqliteEventLogStorage`` stores each one with its own engines, connections and commits (~30 ms an event on 2 cores,
so the bookkeeping took longer than the work). Dagster already groups these events into batches (planned events
before a run, one materialisation per partition of a ranged step) and hands them to ``store_event_batch`` when
``DAGSTER_EVENT_BATCH_SIZE`` is set, but the SQLite storage then loops over ``store_event``. This subclass stores a
batch in one transaction per shard, with the same rows in the same tables as one-by-one storage, so the UI, the
partition status and the asset checks read exactly what Dagster's own storage would have written. Every other
event still goes through ``store_event`` unchanged.

``dagster.yaml`` selects it for the local profile; the production instance uses Dagster's PostgreSQL storage.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import dagster._check as check
from dagster._config import StringSource
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable, SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationPlanned

# Events Dagster buffers before it calls store_event_batch; larger batches mean fewer transactions, and a batch
# never spans more than one run's planned events or one step's materialisations.
EVENT_BATCH_SIZE = 1000
# The asset-key columns an asset event can set (SqlEventLogStorage._get_asset_entry_values).
_ASSET_KEY_COLUMNS = frozenset({"last_materialization", "last_run_id", "last_materialization_timestamp"})
# Events mirrored into the cross-run index shard (as SqliteEventLogStorage.store_event mirrors them).
_INDEXED_EVENTS = ASSET_EVENTS | ASSET_CHECK_EVENTS


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """Run-sharded SQLite event log (one database per run plus the index) whose batches are single transactions.

    Configured with the instance directory; the shards live where Dagster's default storage keeps them
    (``<instance_dir>/history/runs``), so an existing local instance keeps its history.
    """

    def __init__(self, instance_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(os.path.join(instance_dir, "history", "runs"), inst_data=inst_data)
        # Dagster only hands events over in batches when this is set, in each process that loads the instance
        # (webserver, daemon, run worker, `dagster asset materialize`); an explicit value set by the user wins.
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"instance_dir": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingSqliteEventLogStorage:
        return cls(instance_dir=config_value["instance_dir"], inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        by_run: dict[str, list[EventLogEntry]] = defaultdict(list)
        for event in events:
            by_run[event.run_id].append(event)
        for run_id, run_events in by_run.items():
            self._store_run_batch(run_id, run_events)

    def _store_run_batch(self, run_id: str, events: list[EventLogEntry]) -> None:
        # Same rows as SqliteEventLogStorage.store_event writes one event at a time: the run's own shard, then the
        # cross-run index (asset events with their tags and asset-key row, planned asset checks), one transaction
        # per shard. Each event is serialised once.
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)

        indexed = [
            (event, row)
            for event, row in zip(events, rows, strict=True)
            if event.is_dagster_event and event.dagster_event_type in _INDEXED_EVENTS
        ]
        if not indexed:
            return
        other_check_events: list[tuple[EventLogEntry, int]] = []
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                [row for _, row in indexed],
            )
            event_ids = [event_id for (event_id,) in inserted]
            asset_events = [
                (event, event_id)
                for (event, _), event_id in zip(indexed, event_ids, strict=True)
                if event.dagster_event_type in ASSET_EVENTS
            ]
            if asset_events:
                self._store_asset_event_tags(conn, [e for e, _ in asset_events], [i for _, i in asset_events])
                self._store_asset_key_rows(conn, asset_events)
            for (event, row), event_id in zip(indexed, event_ids, strict=True):
                if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                    self._store_check_planned(conn, event, row["event"], event_id)
                elif event.dagster_event_type in ASSET_CHECK_EVENTS:
                    other_check_events.append((event, event_id))
        # Dagster's own path for any other check event; it opens its own connection, so after the transaction.
        for event, event_id in other_check_events:
            self.store_asset_check_event(event, event_id)

    def _store_asset_key_rows(self, conn: Connection, asset_events: list[tuple[EventLogEntry, int]]) -> None:
        """One asset-key row write per asset: the values the batch's events would leave if written one by one."""
        has_index_cols = self._has_asset_key_index_cols_on_connection(conn)
        latest: dict[str, dict[str, Any]] = {}
        for event, event_id in reversed(asset_events):
            asset_key = check.not_none(event.get_dagster_event().asset_key).to_string()
            values = latest.setdefault(asset_key, {})
            if values.keys() >= _ASSET_KEY_COLUMNS:
                continue  # a later event already set every column this one could
            for column, value in self._get_asset_entry_values(event, event_id, has_index_cols).items():
                values.setdefault(column, value)
        for asset_key, values in latest.items():
            if not values:
                continue
            update = AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == asset_key)
            if conn.execute(update).rowcount == 0:
                conn.execute(AssetKeyTable.insert().values(asset_key=asset_key, **values))

    def _store_check_planned(self, conn: Connection, event: EventLogEntry, serialized: str, event_id: int) -> None:
        """One PLANNED execution row per partition, as Dagster writes them, sharing the one serialised event."""
        planned = cast("AssetCheckEvaluationPlanned", event.get_dagster_event().event_specific_data)
        partition_keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        timestamp = self._event_insert_timestamp(event)
        conn.execute(
            AssetCheckExecutionsTable.insert(),
            [
                {
                    "asset_key": planned.asset_key.to_string(),
                    "check_name": planned.check_name,
                    "partition": partition_key,
                    "run_id": event.run_id,
                    "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                    "evaluation_event": serialized,
                    "evaluation_event_timestamp": timestamp,
                    "evaluation_event_storage_id": event_id,
                }
                for partition_key in partition_keys
            ],
        )
