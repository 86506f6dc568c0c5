"""Shared fixtures: every test writes under one temporary data dir, set before the package is imported."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Reads no environment at import (only mlops_assets.defs does).
from mlops_assets.settings import STATE_LOCATION_VARIABLES

if TYPE_CHECKING:
    import duckdb

    from mlops_assets.lib.warehouse import WarehouseLocation

# Settings are resolved when mlops_assets.defs is first imported, so the environment is set at collection time.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mlops_assets_tests_"))
os.environ["MLOPS_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ["DAGSTER_HOME"] = str(_SESSION_DIR / "dagster_home")
for _name in STATE_LOCATION_VARIABLES:
    os.environ.pop(_name, None)
# The product trains on 91 days; the tests train the first weeks of the year on 28 to keep the fixtures small.
os.environ["MLOPS_TRAIN_DAYS"] = "28"
# dbt and other console scripts of this interpreter's environment must be found even when it is not activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
(_SESSION_DIR / "dagster_home").mkdir(parents=True, exist_ok=True)
# The session instance is the product's local instance (its batching event log included).
shutil.copy(Path(__file__).resolve().parent.parent / "dagster.yaml", _SESSION_DIR / "dagster_home" / "dagster.yaml")

# The warehouse fixture covers these days: enough history for the 28-day trailing statistics.
WAREHOUSE_START = date(2013, 1, 1)
WAREHOUSE_END = date(2013, 2, 14)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@dataclass(frozen=True)
class Warehouse:
    """A landed, ingested and dbt-transformed slice of real data, shared read-only by the tests."""

    data_dir: Path
    location: WarehouseLocation
    lake_root: Path
    landing_root: Path
    start: date
    end: date

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection with the lake in use, as the assets open it."""
        return self.location.connect()


@pytest.fixture(scope="session")
def dagster_instance() -> Iterator[object]:
    import dagster as dg

    with dg.instance_for_test(temp_dir=str(_SESSION_DIR / "dagster_home")) as instance:
        yield instance


@pytest.fixture(scope="session")
def warehouse(dagster_instance: object) -> Warehouse:
    """Land real days, then materialise raw + dbt over them in one single-run backfill (in-process)."""
    from mlops_assets.definitions import defs
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.lib.landing import land_days
    from mlops_assets.lib.warehouse import WarehouseLocation
    from mlops_assets_tests.helpers import materialize_range

    land_days(SETTINGS.landing_root, WAREHOUSE_START, WAREHOUSE_END)
    result = materialize_range(
        defs,
        dagster_instance,
        selection="group:raw or group:transform",
        start=WAREHOUSE_START,
        end=WAREHOUSE_END,
    )
    assert result.success
    return Warehouse(
        data_dir=SETTINGS.data_dir,
        location=WarehouseLocation.from_settings(SETTINGS),
        lake_root=Path(SETTINGS.lake_root),
        landing_root=Path(SETTINGS.landing_root),
        start=WAREHOUSE_START,
        end=WAREHOUSE_END,
    )


# The trained-model tests train the week of 2013-02-11: four training weeks and one validation week before it.
TRAINING_PARTITION = "2013-02-11"
FEATURES_START = date(2013, 1, 7)
FEATURES_END = date(2013, 2, 10)


@pytest.fixture(scope="session")
def feature_lake(warehouse: Warehouse, dagster_instance: object) -> Warehouse:
    """Validated features and the Feast entity tables for the training and validation days of TRAINING_PARTITION,
    and the day before them, whose feature_store partition produced the first training day's delay statistics."""
    from mlops_assets.definitions import defs
    from mlops_assets_tests.helpers import materialize_range

    result = materialize_range(
        defs, dagster_instance, "group:features", FEATURES_START - timedelta(days=1), FEATURES_END
    )
    assert result.success
    return warehouse


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """One local Ray for the whole session: sweeps reuse it instead of paying Ray's start-up each time."""
    from mlops_assets.lib.ray_runtime import ray_session

    with ray_session("local", num_cpus=2):
        yield
