"""The dbt CLI resource: dagster-dbt's, without two start-up costs per run that this pipeline never uses."""

from functools import cached_property
from importlib.metadata import version as installed_version
from typing import Any

from dagster_dbt import DbtCliResource
from packaging import version


class DbtCli(DbtCliResource):
    """``DbtCliResource`` for the dbt-core installed with this package.

    Before its first invocation in a run, dagster-dbt starts ``dbt --version`` (a whole dbt interpreter, ~4 s on
    2 cores) to tell dbt Core from dbt Fusion, and before every invocation it builds a dbt adapter inside the
    Dagster process (~3.5 s the first time, ~1 s after) that only its ``fetch_row_counts`` and
    ``fetch_column_metadata`` helpers use. This project pins dbt-core and calls neither helper, so the version comes
    from the installed package metadata and no adapter is built; dbt itself still runs as dagster-dbt runs it.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:
        return None
