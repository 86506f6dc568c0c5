from mlops_assets_tests.conftest import Warehouse


def test_warehouse_fixture_builds(warehouse: Warehouse) -> None:

    with warehouse.connect() as con:
        days = con.execute("select count(distinct flight_date) from flights_enriched").fetchone()[0]
    assert days == (warehouse.end - warehouse.start).days + 1
