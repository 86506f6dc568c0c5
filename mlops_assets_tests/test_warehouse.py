"""The DuckLake warehouse: shared by processes, atomic per commit, bounded waits on contention, maintained.

Real DuckLakes on SQLite catalogs under tmp_path, real second processes holding real catalog locks; the pool limit is
the repo's dagster.yaml.
"""

import inspect
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlops_assets.definitions import defs
from mlops_assets.defs.common import SETTINGS, WAREHOUSE_POOL, LakeResource, WarehouseConfig
from mlops_assets.defs.transform.maintenance import (
    expire_warehouse_snapshots,
    warehouse_maintenance,
    warehouse_maintenance_schedule,
)
from mlops_assets.lib.warehouse import (
    ContentionWait,
    WarehouseBusyError,
    WarehouseLocation,
    WarehouseMissingError,
    is_contention,
    maintain,
    write_with_retry,
)
from mlops_assets_tests.helpers import hold_write_lock, scratch_warehouse

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lake(tmp_path: Path) -> WarehouseLocation:
    location = scratch_warehouse(WarehouseLocation.from_settings(SETTINGS), tmp_path / "lake")
    with location.connect(read_only=False) as con:
        con.execute("create table flights as select range as id, range % 3 as day from range(30)")
    return location


def _in_another_process(
    lake: WarehouseLocation, statement: str, read_only: bool, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``statement`` on the lake from a fresh Python process (as another step's pod would); prints its first
    value, if it returns one."""
    script = (
        "import sys\n"
        "from mlops_assets.lib.warehouse import WarehouseLocation\n"
        "with WarehouseLocation(*sys.argv[1:4]).connect(read_only=sys.argv[4] == 'ro') as con:\n"
        "    row = con.execute(sys.argv[5]).fetchone()\n"
        "    print(row[0] if row else '')\n"
    )
    mode = "ro" if read_only else "rw"
    argv = [sys.executable, "-c", script, lake.catalog, lake.data_path, lake.extension_dir, mode, statement]
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def test_another_process_reads_a_commit_whole_and_never_half(lake: WarehouseLocation) -> None:
    # A writer in this process replaces day 1 in one transaction; a reader process counts it before and after.
    count = "select count(*) from flights where day = 1"
    with lake.connect(read_only=False) as con:
        con.execute("begin")
        con.execute("delete from flights where day = 1")
        con.execute("insert into flights select 100 + range, 1 from range(25)")
        during = _in_another_process(lake, count, read_only=True).stdout.strip()
        con.execute("commit")
    after = _in_another_process(lake, count, read_only=True).stdout.strip()
    assert (during, after) == ("10", "25")


def _insert_marker(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("insert into flights values (999, 0)")
    return 1


def _unguarded_write(lake: WarehouseLocation) -> str:
    failed = _in_another_process(lake, "insert into flights values (998, 0)", read_only=False, check=False)
    assert failed.returncode != 0
    return failed.stderr


def test_a_writer_waits_out_another_process_committing(lake: WarehouseLocation) -> None:
    holder = hold_write_lock(lake, 1.5)
    try:
        # What an unguarded writer gets, in a process of its own as a dbt step would be (its failed commit rolls back).
        assert is_contention(_unguarded_write(lake))
        with lake.connect() as con:  # a reader does not wait at all
            # execute(), not sql(): a relation kept alive (by an assert) would keep its read of the catalog open.
            rows = con.execute("select count(*) from flights").fetchone()
        assert rows == (30,)
        started = time.perf_counter()
        write_with_retry(lake, _insert_marker, ContentionWait(attempts=8, first_wait_s=0.25, max_wait_s=1.0))
        waited = time.perf_counter() - started
        assert 0.2 < waited < 6.0, waited
    finally:
        holder.kill()
        holder.wait()
    with lake.connect() as con:  # exactly once, and the refused writer left nothing
        assert con.execute("select id from flights where id > 990").fetchall() == [(999,)]


def test_contention_past_the_wait_fails_naming_the_catalog_and_the_fix(lake: WarehouseLocation) -> None:
    holder = hold_write_lock(lake, 30)
    try:
        sleeps: list[float] = []
        expected = r"(?s)stayed busy with other processes' commits.*Fix: wait"
        with pytest.raises(WarehouseBusyError, match=expected) as busy:
            write_with_retry(lake, _insert_marker, ContentionWait(attempts=3, first_wait_s=0.1), sleep=sleeps.append)
        assert sleeps == [0.1, 0.2]
        assert lake.catalog in str(busy.value)
    finally:
        holder.kill()
        holder.wait()


def test_a_warehouse_never_built_is_named_with_the_fix(tmp_path: Path) -> None:
    absent = scratch_warehouse(WarehouseLocation.from_settings(SETTINGS), tmp_path / "absent")
    with pytest.raises(WarehouseMissingError, match=r"nothing has been built yet.*group:transform"):
        absent.connect()
    assert not is_contention("Catalog Error: Table with name flights does not exist!")


def test_maintenance_compacts_deletes_replaced_files_and_keeps_every_row(lake: WarehouseLocation) -> None:
    with lake.connect() as con:
        first = con.execute("select max(snapshot_id) from ducklake_snapshots('lake')").fetchone()[0]  # type: ignore[index]
    # Three new days, then three re-runs of day 2, as daily runs and re-materialisations of a partition would do
    # (large enough to be Parquet files rather than rows inlined into the catalog).
    for day in (3, 4, 5):
        with lake.connect(read_only=False) as con:
            con.execute(f"insert into flights select 1000 * {day} + range, {day} from range(2000)")
    for _ in range(3):
        with lake.connect(read_only=False) as con:
            con.execute("begin")
            con.execute("delete from flights where day = 2")
            con.execute("insert into flights select 200 + range, 2 from range(2000)")
            con.execute("commit")
    files = len(list(Path(lake.data_path).rglob("*.parquet")))
    # Within the retention: the small files are merged (the merged-away ones deleted), every snapshot kept (plus the
    # compaction's own), and the lake still reads as of its first snapshot what it read then.
    kept = maintain(lake, keep=timedelta(days=7))
    assert kept.files_merged > 0 and kept.snapshots_after == kept.snapshots_before + 1
    assert len(list(Path(lake.data_path).rglob("*.parquet"))) < files
    with lake.connect() as con:
        assert con.execute(f"select count(*) from flights at (version => {first})").fetchone() == (30,)
    result = maintain(lake, keep=timedelta(0))
    assert result.snapshots_after == 1 < result.snapshots_before
    assert result.files_deleted > 0
    with lake.connect() as con:
        assert con.execute("select day, count(*) from flights group by 1 order by 1").fetchall() == [
            (0, 10),
            (1, 10),
            (2, 2000),
            (3, 2000),
            (4, 2000),
            (5, 2000),
        ]


def test_the_nightly_maintenance_job_cleans_the_warehouse_it_is_given(lake: WarehouseLocation, tmp_path: Path) -> None:
    with lake.connect(read_only=False) as con:  # every row replaced: the first file is read by an old snapshot only
        con.execute("begin")
        con.execute("delete from flights")
        con.execute("insert into flights select 300 + range, range % 3 from range(25)")
        con.execute("commit")
    resources = {
        "lake": LakeResource(landing_root=str(tmp_path), lake_root=str(tmp_path), warehouse=WarehouseConfig.of(lake))
    }
    result = warehouse_maintenance.execute_in_process(
        resources=resources, run_config={"ops": {"expire_warehouse_snapshots": {"config": {"keep_days": 0}}}}
    )
    assert result.success
    output = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT)
    assert output.event_specific_data.metadata["files_deleted"].value >= 1
    with lake.connect() as con:
        assert con.execute("select count(*) from flights").fetchone() == (25,)
    assert warehouse_maintenance_schedule.job_name == "warehouse_maintenance"
    assert WAREHOUSE_POOL in expire_warehouse_snapshots.pools


def _opens_the_warehouse(asset: dg.AssetsDefinition) -> bool:
    """Whether the asset's body builds dbt or opens the warehouse (read from its source, not from a list of names)."""
    body = inspect.getsource(asset.op.compute_fn.decorated_fn)  # type: ignore[union-attr]
    return any(call in body for call in ("_build(dbt", ".warehouse.location().connect(", "read_warehouse_inputs("))


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


def test_data_on_s3_gets_a_credential_chain_secret_with_the_endpoint_of_the_settings(tmp_path: Path) -> None:
    from mlops_assets.settings import load_settings

    env = {"MLOPS_DATA_DIR": str(tmp_path), "MLOPS_WAREHOUSE_DATA_PATH": "s3://lake/warehouse"}
    aws = WarehouseLocation.from_settings(load_settings({**env, "AWS_REGION": "eu-west-1"}))
    assert aws.on_s3 and aws.data_path == "s3://lake/warehouse/"
    assert aws.s3_options() == {"region": "eu-west-1"}  # AWS itself: the SDK's own endpoint, no path style
    ceph = WarehouseLocation.from_settings(load_settings({**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:7480/"}))
    assert ceph.s3_options() == {
        "region": "us-east-1",
        "endpoint": "127.0.0.1:7480",
        "url_style": "path",
        "use_ssl": "false",
    }
    # Keys never appear in the SQL or in dbt's argv: the credential chain reads them where DuckDB runs.
    assert "PROVIDER credential_chain" in ceph.s3_secret_sql() and "KEY_ID" not in ceph.s3_secret_sql()
    assert ceph.dbt_vars()["s3_endpoint"] == "127.0.0.1:7480"
    local = WarehouseLocation.from_settings(load_settings({"MLOPS_DATA_DIR": str(tmp_path)}))
    assert not local.on_s3


def test_the_extensions_install_once_and_readable_by_every_user(tmp_path: Path) -> None:
    from mlops_assets.lib.warehouse import EXTENSIONS, ensure_extensions

    target = tmp_path / "extensions"
    ensure_extensions(target)
    files = list(target.rglob("*.duckdb_extension"))
    assert len(files) == len(EXTENSIONS)
    # An image installs them as root for a non-root runtime user: every folder and file is world-readable.
    assert all(path.stat().st_mode & 0o005 == 0o005 for path in [target, *target.rglob("*")] if path.is_dir())
    assert all(path.stat().st_mode & 0o004 for path in files)
    before = {path: path.stat().st_mtime_ns for path in files}
    ensure_extensions(target)  # already there: nothing is reinstalled
    assert {path: path.stat().st_mtime_ns for path in files} == before
