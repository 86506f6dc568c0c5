"""dbt models as assets: daily-partitioned models (tag ``daily``) and unpartitioned dimension models.

An analyst's new model appears here with no Python change: models tagged ``daily`` join the partitioned group,
everything else the unpartitioned one. dbt tests become asset checks.
"""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from mlops_assets.defs.common import (
    DAILY_FRESHNESS,
    DIMENSION_AUTOMATION,
    DIMENSION_FRESHNESS,
    PREVIOUS_DAY,
    SETTINGS,
    WAREHOUSE_POOL,
    daily_arrival,
    daily_partitions,
)
from mlops_assets.lib.io import prune_oldest_dirs
from mlops_assets.lib.warehouse import is_contention

TRANSFORM_GROUP = "transform"
DAILY_SELECTOR = "tag:daily"
# dagster-dbt names each invocation's target directory "<op name>-<run id[:7]>-<random[:7]>".
DBT_INVOCATION_DIR_PATTERN = r"dbt_[a-z_]+-[0-9a-f]{7}-[0-9a-f]{7}"
DBT_INVOCATIONS_KEPT = 20
# A dbt build that met another process's commit to the warehouse (outside Dagster's pool) is retried this often, this
# far apart.
LOCK_RETRIES = 3
LOCK_RETRY_WAIT_S = 20


# A daily model whose partition D reads another model's partition D - 1 says so in its dbt config, e.g.
# ``config: {meta: {reads_previous_day_of: [delay_history]}}``: Dagster then knows that a re-landed day D also
# changes D + 1 of this model (and everything below it).
PREVIOUS_DAY_META = "reads_previous_day_of"


def previous_day_parents(props: Mapping[str, Any]) -> set[str]:
    meta = {**props.get("meta", {}), **props.get("config", {}).get("meta", {})}
    return set(meta.get(PREVIOUS_DAY_META, []))


class TransformTranslator(DagsterDbtTranslator):
    """Groups every model under ``transform`` and gives it a freshness policy and an automation condition."""

    def __init__(self, daily: bool) -> None:
        super().__init__()
        self._daily = daily

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if not unique_id.startswith("model."):
            return spec
        automation = DIMENSION_AUTOMATION
        if self._daily:
            eve = previous_day_parents(manifest["nodes"][unique_id])
            automation = daily_arrival([dep.asset_key for dep in spec.deps if dep.asset_key.path[-1] in eve])
        return spec.replace_attributes(
            group_name=TRANSFORM_GROUP,
            freshness_policy=DAILY_FRESHNESS if self._daily else DIMENSION_FRESHNESS,
            automation_condition=automation,
        )

    def get_partition_mapping(
        self, dbt_resource_props: Mapping[str, Any], dbt_parent_resource_props: Mapping[str, Any]
    ) -> dg.PartitionMapping | None:
        if dbt_parent_resource_props.get("name") in previous_day_parents(dbt_resource_props):
            return PREVIOUS_DAY
        return super().get_partition_mapping(dbt_resource_props, dbt_parent_resource_props)


def _build(dbt: DbtCliResource, context: dg.AssetExecutionContext, args: list[str]) -> Iterator[Any]:
    invocation = dbt.cli(args, context=context)
    try:
        yield from invocation.stream()
    except DagsterDbtCliRuntimeError as exc:
        # Only contention is retried (a busy catalog or a write conflict: the model's transaction rolled back whole);
        # a failed model or test is not transient.
        if is_contention(str(exc)):
            context.log.warning(
                f"the warehouse is busy with another process's commit; retrying in {LOCK_RETRY_WAIT_S} s"
            )
            raise dg.RetryRequested(max_retries=LOCK_RETRIES, seconds_to_wait=LOCK_RETRY_WAIT_S) from exc
        raise
    # dagster-dbt gives every invocation its own target directory (~2 MB of manifest, logs and compiled SQL) and
    # never deletes one; keep the newest few for debugging instead of growing by two a day forever.
    prune_oldest_dirs(invocation.target_path.parent, DBT_INVOCATION_DIR_PATTERN, keep=DBT_INVOCATIONS_KEPT)


def build_transform_assets(project: DbtProject) -> list[dg.AssetsDefinition]:
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=DAILY_SELECTOR,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=TransformTranslator(daily=True),
        name="dbt_daily_models",
        pool=WAREHOUSE_POOL,
    )
    def dbt_daily_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        window = context.partition_time_window
        dbt_vars = {
            **SETTINGS.dbt_vars(),
            "min_date": window.start.date().isoformat(),
            "max_date": window.end.date().isoformat(),
        }
        context.log.info(f"dbt build over [{dbt_vars['min_date']}, {dbt_vars['max_date']})")
        yield from _build(dbt, context, ["build", "--vars", json.dumps(dbt_vars)])

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        exclude=DAILY_SELECTOR,
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=TransformTranslator(daily=False),
        name="dbt_dimension_models",
        pool=WAREHOUSE_POOL,
    )
    def dbt_dimension_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        yield from _build(dbt, context, ["build", "--vars", json.dumps(SETTINGS.dbt_vars())])

    return [dbt_daily_models, dbt_dimension_models]
