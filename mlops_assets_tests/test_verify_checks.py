"""``mlops-assets verify`` sees a check failure of a partition that a later run of other partitions did not replace.

Our checks are evaluated once per run over the run's partitions (partitioned asset checks are Preview), so the newest
evaluation of a check says nothing about the days other runs covered. Real in-process runs on a temporary instance.
"""

from pathlib import Path

import dagster as dg

from mlops_assets.cli import _failed_checks

DAYS = dg.DailyPartitionsDefinition(start_date="2013-01-01", end_date="2013-01-10")
BAD_DAY = "2013-01-03"


@dg.multi_asset(
    specs=[dg.AssetSpec("daily")],
    check_specs=[
        dg.AssetCheckSpec("no_bad_day", asset="daily"),
        dg.AssetCheckSpec("informative", asset="daily"),
    ],
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def daily(context: dg.AssetExecutionContext):
    yield dg.MaterializeResult(asset_key="daily")
    bad = BAD_DAY in context.partition_keys
    yield dg.AssetCheckResult(asset_key="daily", check_name="no_bad_day", passed=not bad)
    yield dg.AssetCheckResult(
        asset_key="daily", check_name="informative", passed=False, severity=dg.AssetCheckSeverity.WARN
    )


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, start: str, end: str) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    job.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
    )


def test_a_failed_day_stays_failed_until_it_is_re_run(tmp_path: Path) -> None:
    defs = dg.Definitions(assets=[daily])
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.asset_check_keys, key=lambda key: key.to_user_string())
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        _run(defs, instance, "2013-01-02", "2013-01-04")  # covers the bad day: fails
        _run(defs, instance, "2013-01-05", "2013-01-06")  # the newest evaluation passes
        evaluated, failed = _failed_checks(instance, graph, keys, history=100)
        # The warning-severity check never fails; the bad day is named although the latest evaluation passed.
        assert evaluated == 2
        assert failed == [
            (
                dg.AssetCheckKey(dg.AssetKey("daily"), "no_bad_day"),
                "daily:no_bad_day (3 partition(s): 2013-01-02, 2013-01-03, 2013-01-04)",
            )
        ]

        _run(defs, instance, "2013-01-02", "2013-01-02")  # re-running one day of the failed range clears that day
        assert [text for _, text in _failed_checks(instance, graph, keys, history=100)[1]] == [
            "daily:no_bad_day (2 partition(s): 2013-01-03, 2013-01-04)"
        ]
