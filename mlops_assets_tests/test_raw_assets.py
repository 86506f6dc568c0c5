"""Raw ingestion through real Dagster runs: idempotent re-runs, bad files rejected, lake untouched."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from mlops_assets.defs.common import LakeResource
from mlops_assets.defs.raw.assets import daily_raw_assets, dimension_raw_assets
from mlops_assets.lib.landing import land_days
from mlops_assets_tests.helpers import warehouse_config

DAY = date(2013, 3, 1)
FLIGHTS_KEY = dg.AssetKey(["raw", "flights"])


@pytest.fixture
def lake(tmp_path: Path) -> LakeResource:
    land_days(tmp_path / "landing", DAY, DAY)
    return LakeResource(
        landing_root=str(tmp_path / "landing"),
        lake_root=str(tmp_path / "lake"),
        warehouse=warehouse_config(tmp_path / "warehouse"),
    )


def _materialize(lake: LakeResource, instance: dg.DagsterInstance, raise_on_error: bool = True):
    return dg.materialize(
        [*daily_raw_assets],
        partition_key=DAY.isoformat(),
        resources={"lake": lake},
        instance=instance,
        raise_on_error=raise_on_error,
    )


def _drop_column(text: str, column: str) -> str:
    frame = pl.read_csv(text.encode(), infer_schema=False)
    return frame.drop(column).write_csv()


def _partition_file(lake: LakeResource, table: str = "flights") -> Path:
    return Path(lake.raw_table_uri(table)) / f"date={DAY.isoformat()}" / "data.parquet"


def _latest(instance: dg.DagsterInstance) -> dg.AssetMaterialization:
    event = instance.get_latest_materialization_event(FLIGHTS_KEY)
    assert event is not None and event.asset_materialization is not None
    return event.asset_materialization


def test_real_day_is_ingested_with_rows_bytes_and_hash(lake: LakeResource) -> None:
    with dg.instance_for_test() as instance:
        assert _materialize(lake, instance).success
        materialization = _latest(instance)
    frame = pl.read_parquet(_partition_file(lake))
    expected_rows = sum(1 for _ in (Path(lake.landing_root) / "flights" / "2013-03-01.csv").open()) - 1
    assert frame.height == expected_rows > 600
    assert materialization.partition == DAY.isoformat()
    assert materialization.metadata["dagster/row_count"].value == expected_rows
    assert materialization.metadata["bytes"].value == _partition_file(lake).stat().st_size
    assert materialization.tags["dagster/data_version"] == materialization.metadata["content_sha256"].value


def test_rematerialising_a_partition_replaces_it(lake: LakeResource) -> None:
    with dg.instance_for_test() as instance:
        _materialize(lake, instance)
        first = _latest(instance).tags["dagster/data_version"]
        _materialize(lake, instance)
        second = _latest(instance).tags["dagster/data_version"]
    assert first == second
    files = list(_partition_file(lake).parent.iterdir())
    assert [path.name for path in files] == ["data.parquet"]
    frame = pl.read_parquet(_partition_file(lake))
    assert frame.height == frame.unique().height


def test_bad_landed_file_fails_the_partition_and_keeps_the_lake(lake: LakeResource) -> None:
    """One failing case end to end here; every defect class is in test_raw_corpus.py."""
    with dg.instance_for_test() as instance:
        _materialize(lake, instance)
        before = _partition_file(lake).read_bytes()
        landed = Path(lake.landing_root) / "flights" / "2013-03-01.csv"
        landed.write_text(_drop_column(landed.read_text(), "dep_delay"))
        result = _materialize(lake, instance, raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "asset raw/flights partition 2013-03-01" in message
    assert str(landed) in message
    assert "column 'dep_delay', rule missing_column" in message
    assert _partition_file(lake).read_bytes() == before
    assert not list(_partition_file(lake).parent.glob("*.tmp"))


def test_missing_landing_file_says_how_to_land_it(tmp_path: Path) -> None:
    lake = LakeResource(
        landing_root=str(tmp_path / "landing"),
        lake_root=str(tmp_path / "lake"),
        warehouse=warehouse_config(tmp_path / "warehouse"),
    )
    with dg.instance_for_test() as instance:
        result = _materialize(lake, instance, raise_on_error=False)
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "mlops-assets land 2013-03-01" in failure.step_failure_data.user_failure_data.description


def test_dimensions_are_ingested(lake: LakeResource) -> None:
    with dg.instance_for_test() as instance:
        assert dg.materialize(dimension_raw_assets, resources={"lake": lake}, instance=instance).success
    assert pl.read_parquet(Path(lake.raw_table_uri("planes")) / "data.parquet").height == 3_322
