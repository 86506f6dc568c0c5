"""kill -9 in the middle of a range run of the raw assets, then a re-run: the lake equals an uninterrupted run's.

Both runs are real ``dagster asset materialize`` processes, each with its own MLOPS_DATA_DIR and DAGSTER_HOME under
the test's temp dir; the first is killed with SIGKILL as soon as its first partition file appears in the lake.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.lib.io import sha256_hex
from mlops_assets.lib.landing import land_days

START, END = date(2013, 1, 1), date(2013, 3, 31)
DAYS = (END - START).days + 1
REPO = Path(__file__).resolve().parent.parent
DAGSTER = str(Path(sys.executable).parent / "dagster")
COMMAND = [
    DAGSTER,
    "asset",
    "materialize",
    "-m",
    "mlops_assets.definitions",
    "--select",
    "group:raw",
    "--partition-range",
    f"{START}...{END}",
]


def _prepare(root: Path) -> dict[str, str]:
    (root / "home").mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", root / "home" / "dagster.yaml")
    land_days(root / "data" / "landing", START, END)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLOPS_")}
    return {**env, "MLOPS_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "home")}


def _lake(root: Path) -> dict[str, str]:
    lake = root / "data" / "lake"
    return {str(path.relative_to(lake)): sha256_hex(path.read_bytes()) for path in sorted(lake.rglob("*.parquet"))}


def _partitions(root: Path, table: str) -> int:
    return len(list((root / "data" / "lake" / "raw" / table).glob("date=*/data.parquet")))


def test_kill_9_mid_range_then_rerun_gives_the_bytes_of_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    crashed_env, clean_env = _prepare(crashed), _prepare(clean)

    log = (tmp_path / "killed.log").open("wb")
    process = subprocess.Popen(COMMAND, env=crashed_env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    flights_dir = crashed / "data" / "lake" / "raw" / "flights"
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if any(flights_dir.glob("date=*/data.parquet")):
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait(timeout=60)
    log.close()
    assert process.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]
    # Killed part-way: the range was not finished (weather runs after flights in the same process).
    written_at_kill = (_partitions(crashed, "flights"), _partitions(crashed, "weather"))
    assert written_at_kill[0] >= 1 and written_at_kill[1] < DAYS, written_at_kill

    for env in (crashed_env, clean_env):
        done = subprocess.run(COMMAND, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    crashed_lake, clean_lake = _lake(crashed), _lake(clean)
    assert len([path for path in clean_lake if path.startswith("raw/flights/")]) == DAYS
    assert len([path for path in clean_lake if path.startswith("raw/weather/")]) == DAYS
    assert crashed_lake == clean_lake
    assert not list((crashed / "data" / "lake").rglob("*.tmp"))

    # Dagster's records after the re-run: every partition of the range materialised, by a successful run.
    # dagster.yaml names its storage folder through $DAGSTER_HOME, so the instance is opened the way the CLI opens it.
    monkeypatch.setenv("DAGSTER_HOME", str(crashed / "home"))
    with dg.DagsterInstance.get() as instance:
        for table in ("flights", "weather"):
            materialized = instance.get_materialized_partitions(dg.AssetKey(["raw", table]))
            assert len(materialized) == DAYS
        runs = instance.get_runs()  # newest first: the re-run, then the killed run
        weather = instance.fetch_materializations(dg.AssetKey(["raw", "weather"]), limit=1000).records
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.STARTED]
    # The killed run claims nothing it did not finish: weather was never recorded by it.
    assert {record.run_id for record in weather} == {runs[0].run_id}
