"""The dbt warehouse: a DuckLake, opened the same way by dbt, the assets, the CLI and the tests.

A DuckLake keeps its tables as Parquet files under a data path (a folder, or ``s3://`` in production) and their
metadata in a SQL catalog: a SQLite file locally, the PostgreSQL server in production. Unlike a DuckDB file, which
one writing process locks against every other, a DuckLake is shared: pods on different machines read and write the
same tables, and a reader sees a writer's commit as a whole or not at all. The SQL is the same everywhere; only the
catalog and the data path come from the settings.

Two writers of one table conflict at commit (DuckLake checks per table), and a SQLite catalog answers "database is
locked" to a commit while another process commits. Both are transient and roll the transaction back whole: writers
here retry it for a bounded time (:func:`write_with_retry`), and the dbt steps ask Dagster to retry. Readers never
wait: they see the last commit. The ``duckdb_warehouse`` pool keeps the pipeline's own writers from meeting at all.

DuckDB loads its extensions (ducklake, sqlite, postgres, httpfs) from an extension directory and would download them
when missing, which production pods and this project's machines cannot. PyPI ships them as wheels for this exact
DuckDB build (``duckdb-extension-*``), so :func:`ensure_extensions` installs them from there, once per directory
(the image does it at build time), and every connection refuses to download.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import duckdb

from mlops_assets.settings import Settings

T = TypeVar("T")

# The name every connection attaches the lake under; dbt's profile uses the same (``database: lake``).
LAKE_ALIAS = "lake"
EXTENSIONS = ("ducklake", "sqlite", "postgres", "httpfs", "aws")
# The file name an extension installs under, where it differs from its package's name.
_INSTALLED_AS = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}

# The messages of the transient conflicts: a SQLite catalog being committed to by another process, and DuckLake's
# per-table write conflict. dbt-duckdb passes both through in its error events.
CONTENTION_MARKERS = ("database is locked", "Transaction conflict")


def is_contention(message: str) -> bool:
    return any(marker in message for marker in CONTENTION_MARKERS)


@dataclass(frozen=True)
class ContentionWait:
    """How long to wait out another process's commit: ``attempts`` tries, the wait doubling from ``first_wait_s``."""

    attempts: int = 6
    first_wait_s: float = 0.5
    max_wait_s: float = 10.0

    def waits(self) -> list[float]:
        return [min(self.first_wait_s * 2**n, self.max_wait_s) for n in range(self.attempts - 1)]


DEFAULT_CONTENTION_WAIT = ContentionWait()


class WarehouseBusyError(RuntimeError):
    """The warehouse's catalog stayed busy with other processes' commits for the whole wait."""


class WarehouseMissingError(RuntimeError):
    """Nothing has been written to the warehouse yet."""


@functools.cache
def _platform() -> str:
    """DuckDB's platform name (e.g. linux_amd64), the folder level extensions install under."""
    with duckdb.connect() as con:
        return str(con.execute("pragma platform").fetchone()[0])  # type: ignore[index]


def _extensions_complete(directory: Path) -> bool:
    platform_dir = directory / f"v{duckdb.__version__}" / _platform()
    return all((platform_dir / f"{_INSTALLED_AS.get(name, name)}.duckdb_extension").exists() for name in EXTENSIONS)


def ensure_extensions(directory: Path) -> None:
    """Install the lake's DuckDB extensions into ``directory`` from their PyPI wheels, unless they are there.

    The install runs under a lock in a sibling folder that is renamed into place, so concurrent first connections
    never see a half-written directory.
    """
    if _extensions_complete(directory):
        return
    import duckdb_extensions

    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _extensions_complete(directory):
            return
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            with duckdb.connect(config={"extension_directory": str(staging)}) as con:
                for name in EXTENSIONS:
                    duckdb_extensions.import_extension(name, con=con)
            # mkdtemp's folder is private (0700): readable by all like the wheels it came from, since an image
            # installs it as root for a non-root runtime user.
            staging.chmod(0o755)
            shutil.rmtree(directory, ignore_errors=True)
            os.replace(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class WarehouseLocation:
    """Where the lake's catalog and data are, and the DuckDB extensions that open it."""

    # ``sqlite:<file>`` or ``postgres:<libpq connection string>`` (what follows ``ducklake:`` in an ATTACH).
    catalog: str
    # A folder or ``s3://bucket/prefix/``; written into the catalog when it is created.
    data_path: str
    extension_dir: str
    # For data on S3: an endpoint other than AWS's (empty: AWS) and the region. Credentials come from the AWS SDK's
    # chain (environment keys, or the pod's web identity), never from here.
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseLocation:
        return cls(
            catalog=settings.require_warehouse_catalog(),
            data_path=settings.warehouse_data_path,
            extension_dir=str(settings.duckdb_extension_dir),
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
        )

    @property
    def on_s3(self) -> bool:
        return self.data_path.startswith("s3://")

    def s3_options(self) -> dict[str, str]:
        """The S3 secret's options, for DuckDB's CREATE SECRET and dbt-duckdb's ``secrets:`` alike."""
        options = {"region": self.s3_region}
        if self.s3_endpoint_url:
            scheme, _, host = self.s3_endpoint_url.partition("://")
            options |= {"endpoint": host, "url_style": "path", "use_ssl": str(scheme == "https").lower()}
        return options

    def s3_secret_sql(self) -> str:
        options = ", ".join(f"{key.upper()} {_quote(value)}" for key, value in self.s3_options().items())
        return f"CREATE SECRET lake_s3 (TYPE s3, PROVIDER credential_chain, {options})"

    @property
    def catalog_file(self) -> Path | None:
        """The SQLite catalog's file; None for a server catalog."""
        return Path(self.catalog.removeprefix("sqlite:")) if self.catalog.startswith("sqlite:") else None

    def exists(self) -> bool:
        """Whether the catalog has been created (a server catalog is assumed to exist)."""
        return self.catalog_file is None or self.catalog_file.exists()

    def attach_sql(self, read_only: bool, alias: str = LAKE_ALIAS) -> str:
        options = "READ_ONLY" if read_only else f"DATA_PATH {_quote(self.data_path)}"
        return f"ATTACH {_quote('ducklake:' + self.catalog)} AS {alias} ({options})"

    def dbt_vars(self) -> dict[str, str]:
        """What ``profiles.yml`` reads to attach the same lake inside dbt (its ``s3`` target: the S3 options too)."""
        s3 = {f"s3_{key}": value for key, value in self.s3_options().items()}
        return {
            "warehouse_catalog": self.catalog,
            "warehouse_data_path": self.data_path,
            "duckdb_extension_dir": self.extension_dir,
            **s3,
        }

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """A connection with the lake attached as ``lake`` (and in use). Reading never waits on a writer: it sees the
        last commit; a write transaction may meet contention at commit (see :func:`write_with_retry`)."""
        if read_only and not self.exists():
            raise WarehouseMissingError(
                f"no warehouse at {self.catalog}: nothing has been built yet. "
                "Fix: materialise the dbt models (group:transform) for the days you need first."
            )
        ensure_extensions(Path(self.extension_dir))
        if not self.on_s3 and not read_only:
            Path(self.data_path).mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(config={"extension_directory": self.extension_dir, "autoinstall_known_extensions": False})
        try:
            if self.on_s3:
                con.execute(self.s3_secret_sql())
            con.execute(self.attach_sql(read_only))
            con.execute(f"USE {LAKE_ALIAS}")
        except BaseException:
            con.close()
            raise
        return con


def write_with_retry(
    location: WarehouseLocation,
    work: Callable[[duckdb.DuckDBPyConnection], T],
    wait: ContentionWait = DEFAULT_CONTENTION_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work`` in one write transaction, retried whole (bounded) while other processes' commits contend.

    A failed commit rolls back everything ``work`` did, so running it again is safe; any other error is raised at
    once.
    """
    pauses = wait.waits()
    for attempt in range(len(pauses) + 1):
        try:
            with location.connect(read_only=False) as con:
                con.execute("begin")
                result = work(con)
                con.execute("commit")
                return result
        except duckdb.Error as exc:
            if not is_contention(str(exc)):
                raise
            if attempt == len(pauses):
                raise WarehouseBusyError(
                    f"the warehouse catalog {location.catalog} stayed busy with other processes' commits for "
                    f"{sum(pauses):.1f} s: {exc}. Fix: wait for the writer to finish (or stop it), then re-run."
                ) from exc
            sleep(pauses[attempt])
    raise AssertionError("unreachable: the last attempt returns or raises")


@dataclass(frozen=True)
class MaintenanceResult:
    files_merged: int
    snapshots_before: int
    snapshots_after: int
    files_deleted: int


def maintain(location: WarehouseLocation, keep: timedelta) -> MaintenanceResult:
    """Compact the lake's small files, expire its snapshots older than ``keep`` and delete the files no remaining
    snapshot reads.

    Each daily run adds about one small Parquet file per table, and DuckLake never deletes a file by itself: every
    re-run of a partition leaves the replaced one behind for time travel. Merging adjacent files rewrites the small
    ones into larger ones without changing what any snapshot reads (time travel still works); the merged-away files
    and those only expired snapshots read are then deleted. Within ``keep`` a table can still be read as of an earlier
    snapshot; after this, not.
    """
    seconds = int(keep.total_seconds())
    alias = _quote(LAKE_ALIAS)
    with location.connect(read_only=False) as con:
        before = con.sql(f"select count(*) from ducklake_snapshots({alias})").fetchone()[0]  # type: ignore[index]
        # One row per table compacted: (schema, table, files processed, files created).
        merged = con.sql(f"call ducklake_merge_adjacent_files({alias})").fetchall()
        con.execute(f"call ducklake_expire_snapshots({alias}, older_than => now() - to_seconds({seconds}::bigint))")
        deleted = con.sql(f"call ducklake_cleanup_old_files({alias}, cleanup_all => true)").fetchall()
        after = con.sql(f"select count(*) from ducklake_snapshots({alias})").fetchone()[0]  # type: ignore[index]
    return MaintenanceResult(
        files_merged=sum(int(row[2]) - int(row[3]) for row in merged),
        snapshots_before=int(before),
        snapshots_after=int(after),
        files_deleted=len(deleted),
    )
