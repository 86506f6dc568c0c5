"""The DuckDB warehouse's one-writer lock: readers wait it out (bounded); every step that opens the file takes turns.

A real second process holds a real write lock on a real DuckDB file; the pool limit is the repo's dagster.yaml.
"""

import inspect
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlops_assets.definitions import defs
from mlops_assets.defs.common import WAREHOUSE_POOL
from mlops_assets.lib.warehouse_lock import LockWait, WarehouseLockedError, connect_read_only, is_lock_conflict
from mlops_assets_tests.helpers import hold_write_lock

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table flights as select 1 as id")
    return path


def test_a_reader_waits_out_another_process_holding_the_write_lock(warehouse: Path) -> None:
    holder = hold_write_lock(warehouse, 1.5)
    try:
        with pytest.raises(duckdb.IOException) as plain:  # what an unguarded reader gets
            duckdb.connect(str(warehouse), read_only=True)
        assert is_lock_conflict(str(plain.value))
        started = time.perf_counter()
        with connect_read_only(str(warehouse), LockWait(attempts=8, first_wait_s=0.25, max_wait_s=1.0)) as con:
            waited = time.perf_counter() - started
            assert con.execute("select count(*) from flights").fetchone() == (1,)
        assert 0.5 < waited < 6.0, waited
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_held_past_the_wait_fails_with_the_file_and_the_fix(warehouse: Path) -> None:
    holder = hold_write_lock(warehouse, 30)
    try:
        sleeps: list[float] = []
        with pytest.raises(WarehouseLockedError, match=r"stayed locked by another process.*Fix: wait for that process"):
            connect_read_only(str(warehouse), LockWait(attempts=3, first_wait_s=0.1), sleep=sleeps.append)
        assert sleeps == [0.1, 0.2]
    finally:
        holder.kill()
        holder.wait()


def test_other_io_errors_are_not_mistaken_for_a_lock(tmp_path: Path) -> None:
    with pytest.raises(duckdb.IOException) as missing:
        connect_read_only(str(tmp_path / "absent.duckdb"), LockWait(attempts=3), sleep=pytest.fail)
    assert not is_lock_conflict(str(missing.value))


def _opens_the_warehouse(asset: dg.AssetsDefinition) -> bool:
    """Whether the asset's body builds dbt or opens the DuckDB file (read from its source, not from a list of names)."""
    body = inspect.getsource(asset.op.compute_fn.decorated_fn)  # type: ignore[union-attr]
    return any(call in body for call in ("_build(dbt", "connect_read_only(", "read_warehouse_inputs("))


def test_every_step_that_opens_the_warehouse_is_in_its_pool_and_the_pool_takes_one_step() -> None:
    opening = {a.node_def.name for a in defs.assets if isinstance(a, dg.AssetsDefinition) and _opens_the_warehouse(a)}
    pooled = {
        a.node_def.name for a in defs.assets if isinstance(a, dg.AssetsDefinition) and WAREHOUSE_POOL in a.op.pools
    }
    assert {"dbt_daily_models", "dbt_dimension_models", "validated_features", "feature_store"} <= opening
    assert opening == pooled
    with dg.instance_for_test(overrides=_repo_instance_overrides()) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def _repo_instance_overrides() -> dict[str, object]:
    import yaml

    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    return {"concurrency": config["concurrency"]}
