"""Filesystem helpers without Dagster: pruning old run directories keeps the newest and touches nothing else."""

import os
from pathlib import Path

from mlops_assets.lib.io import modified_times, prune_oldest_dirs

PATTERN = r"dbt_[a-z_]+-[0-9a-f]{7}-[0-9a-f]{7}"


def test_prune_keeps_the_newest_matching_dirs_only(tmp_path: Path) -> None:
    made = []
    for index in range(25):
        path = tmp_path / f"dbt_daily_models-{index:07x}-abcdef0"
        path.mkdir()
        (path / "manifest.json").write_text("{}")
        os.utime(path, (1_000_000 + index, 1_000_000 + index))
        made.append(path)
    (tmp_path / "partial_parse.msgpack").write_bytes(b"x")
    (tmp_path / "compiled").mkdir()
    (tmp_path / "dbt_daily_models-not-hex").mkdir()

    removed = prune_oldest_dirs(tmp_path, PATTERN, keep=20)

    assert sorted(removed) == sorted(made[:5])
    assert all(path.exists() for path in made[5:]) and not any(path.exists() for path in made[:5])
    assert (tmp_path / "partial_parse.msgpack").exists() and (tmp_path / "compiled").exists()
    assert (tmp_path / "dbt_daily_models-not-hex").exists()
    assert prune_oldest_dirs(tmp_path / "missing", PATTERN, keep=1) == []


def test_modified_times_lists_the_files_of_a_folder_with_a_suffix(tmp_path: Path) -> None:
    assert modified_times(tmp_path / "absent", ".csv") == {}
    (tmp_path / "2013-01-01.csv").write_text("a\n")
    (tmp_path / "notes.txt").write_text("b\n")
    (tmp_path / "sub.csv").mkdir()  # a folder is not a landed file, whatever its name
    os.utime(tmp_path / "2013-01-01.csv", (1_000_000, 1_000_000))
    assert modified_times(tmp_path, ".csv") == {"2013-01-01.csv": 1_000_000.0}
