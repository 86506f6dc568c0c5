"""The DuckDB warehouse file takes one writing process at a time: its lock, recognised and waited out.

A DuckDB file open for writing in one process cannot be opened by any other, not even read-only. Inside Dagster the
``duckdb_warehouse`` pool (``WAREHOUSE_POOL``, limit 1 in ``dagster.yaml``) keeps the steps that open it from running
at once across runs. A process outside Dagster (``mlops-assets features``, an analyst's DuckDB shell, a run started
before the pool existed) can still hold it, so readers retry for a bounded time and the dbt steps ask Dagster to
retry, instead of failing a day on a transient conflict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

# The message DuckDB gives when another process holds the file ("IO Error: Could not set lock on file ...:
# Conflicting lock is held in ... (PID ...)"); dbt-duckdb passes it through in its error events.
LOCK_CONFLICT_MARKER = "Could not set lock on file"


def is_lock_conflict(message: str) -> bool:
    return LOCK_CONFLICT_MARKER in message


@dataclass(frozen=True)
class LockWait:
    """How long to wait out another process's lock: ``attempts`` tries, the wait doubling from ``first_wait_s``."""

    attempts: int = 6
    first_wait_s: float = 0.5
    max_wait_s: float = 10.0

    def waits(self) -> list[float]:
        return [min(self.first_wait_s * 2**n, self.max_wait_s) for n in range(self.attempts - 1)]


DEFAULT_LOCK_WAIT = LockWait()


class WarehouseLockedError(RuntimeError):
    """Another process kept the warehouse file locked for the whole wait."""


def connect_read_only(
    path: str, wait: LockWait = DEFAULT_LOCK_WAIT, sleep: Callable[[float], None] = time.sleep
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse, waiting (bounded) while another process holds its write lock."""
    pauses = wait.waits()
    for attempt in range(len(pauses) + 1):
        try:
            return duckdb.connect(path, read_only=True)
        except duckdb.IOException as exc:
            if not is_lock_conflict(str(exc)):
                raise
            if attempt == len(pauses):
                raise WarehouseLockedError(
                    f"the warehouse {path} stayed locked by another process for {sum(pauses):.1f} s: {exc}. "
                    "Fix: wait for that process (its PID is in the message) or stop it, then re-run."
                ) from exc
            sleep(pauses[attempt])
    raise AssertionError("unreachable: the last attempt returns or raises")
