"""The dbt CLI resource: dagster-dbt's, told where the warehouse and the lake are, without two start-up costs per run
that this pipeline never uses."""

import json
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource
from packaging import version

from mlops_assets.defs.common import WarehouseConfig
from mlops_assets.lib.warehouse import ensure_extensions


def with_vars(args: Sequence[str], extra: dict[str, Any]) -> list[str]:
    """``args`` with ``extra`` merged into its ``--vars`` JSON (added when absent); values in ``args`` win."""
    args = list(args)
    if "--vars" not in args:
        return [*args, "--vars", json.dumps(extra)]
    at = args.index("--vars") + 1
    args[at] = json.dumps({**extra, **json.loads(args[at])})
    return args


class DbtCli(DbtCliResource):
    """``DbtCliResource`` for the dbt-core installed with this package.

    Settings reach the dbt subprocess as dbt vars on its command line, never through this process's environment:
    every invocation gets the warehouse's location (read by ``profiles.yml``) and ``lake_root`` (read by the raw
    sources) from this resource's fields. The warehouse's DuckDB extensions are installed before dbt starts, since dbt
    may not download them.

    Before its first invocation in a run, dagster-dbt starts ``dbt --version`` (a whole dbt interpreter, ~4 s on
    2 cores) to tell dbt Core from dbt Fusion, and before every invocation it builds a dbt adapter inside the
    Dagster process (~3.5 s the first time, ~1 s after) that only its ``fetch_row_counts`` and
    ``fetch_column_metadata`` helpers use. This project pins dbt-core and calls neither helper, so the version comes
    from the installed package metadata and no adapter is built; dbt itself still runs as dagster-dbt runs it.
    """

    warehouse: WarehouseConfig
    lake_root: str

    def location_vars(self) -> dict[str, str]:
        return {**self.warehouse.location().dbt_vars(), "lake_root": self.lake_root}

    def cli(self, args: Sequence[str], **kwargs: Any) -> Any:
        location = self.warehouse.location()
        ensure_extensions(Path(location.extension_dir))
        if location.on_s3 and "--target" not in args:
            # profiles.yml's `s3` target: the local one plus DuckDB's S3 secret (credential chain).
            args = [*args, "--target", "s3"]
        if not location.on_s3:
            Path(location.data_path).mkdir(parents=True, exist_ok=True)
        return super().cli(with_vars(args, self.location_vars()), **kwargs)

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:
        return None
