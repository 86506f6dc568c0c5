"""Start-up benchmark: what a newcomer waits for before the first thing happens.

    python benchmarks/startup.py              # 5 runs each; targets: import <= 3 s, one cheap partition <= 10 s
    python benchmarks/startup.py --runs 3 --no-cli

Every figure is the median of N fresh subprocesses (nothing cached in this process):

* ``import``: ``python -c 'import mlops_assets.definitions'``;
* ``import + load``: the same plus resolving the asset graph and the repository, what the CLI, ``dagster dev``
  and the webserver do before anything runs;
* ``cli``: ``dagster asset materialize -m mlops_assets.definitions --select raw/weather --partition 2013-01-02`` on
  a fresh instance (this repo's ``dagster.yaml``) with that day landed, start-up included; and the same with
  ``dg launch`` when it is installed.

Then the top import costs from ``-X importtime``, as self time summed per top-level package (the rows add up to the
total, nothing is counted twice), and the slowest of this package's own modules (cumulative).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPORT_TARGET_S = 3.0
CLI_TARGET_S = 10.0
DAY = date(2013, 1, 2)
IMPORT = "import mlops_assets.definitions"
IMPORT_AND_LOAD = (
    "from mlops_assets.definitions import defs; defs.resolve_asset_graph(); defs.get_repository_def().get_all_jobs()"
)


def _environment(root: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLOPS_") and key != "DAGSTER_HOME"}
    env.update(
        MLOPS_DATA_DIR=str(root / "data"),
        DAGSTER_HOME=str(root / "dagster_home"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        DAGSTER_DISABLE_TELEMETRY="1",
    )
    return env


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def _median(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, list[float]]:
    times = [_timed(argv, env) for _ in range(runs)]
    return statistics.median(times), times


def _import_costs(env: dict[str, str]) -> tuple[list[tuple[str, float]], list[tuple[str, float]], float]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORT], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    by_package: dict[str, float] = defaultdict(float)
    own: dict[str, float] = {}
    total = 0.0
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if not match:
            continue
        self_s, cumulative_s, module = int(match[1]) / 1e6, int(match[2]) / 1e6, match[3]
        by_package[module.split(".")[0]] += self_s
        total += self_s
        if module.startswith("mlops_assets"):
            own[module] = max(own.get(module, 0.0), cumulative_s)
    packages = sorted(by_package.items(), key=lambda item: -item[1])
    modules = sorted(own.items(), key=lambda item: -item[1])
    return packages, modules, total


def _cli_instance(root: Path, env: dict[str, str]) -> None:
    (root / "dagster_home").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    land = [str(Path(sys.executable).parent / "mlops-assets"), "land", DAY.isoformat()]
    _timed(land, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh subprocesses per figure (median reported)")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI materialisation")
    parser.add_argument("--top", type=int, default=12, help="rows of the import-cost tables")
    args = parser.parse_args()

    rows: list[tuple[str, float, list[float], float | None]] = []
    with tempfile.TemporaryDirectory(prefix="mlops_startup_") as tmp:
        root = Path(tmp)
        env = _environment(root)
        python = sys.executable
        _timed([python, "-c", IMPORT], env)  # warm the OS file cache and __pycache__ once, like any second start
        median, times = _median([python, "-c", IMPORT], env, args.runs)
        rows.append(("import mlops_assets.definitions", median, times, IMPORT_TARGET_S))
        median, times = _median([python, "-c", IMPORT_AND_LOAD], env, args.runs)
        rows.append(("import + load (asset graph, repository)", median, times, None))
        if not args.no_cli:
            _cli_instance(root, env)
            bin_dir = Path(python).parent
            materialize = [
                str(bin_dir / "dagster"),
                "asset",
                "materialize",
                "-m",
                "mlops_assets.definitions",
                "--select",
                "raw/weather",
                "--partition",
                DAY.isoformat(),
            ]
            median, times = _median(materialize, env, args.runs)
            rows.append((f"dagster asset materialize raw/weather {DAY}", median, times, CLI_TARGET_S))
            if (bin_dir / "dg").exists():
                launch = [
                    str(bin_dir / "dg"),
                    "launch",
                    "--assets",
                    "raw/weather",
                    "--partition",
                    DAY.isoformat(),
                ]
                try:
                    median, times = _median(launch, env, args.runs)
                    rows.append((f"dg launch raw/weather {DAY}", median, times, CLI_TARGET_S))
                except SystemExit as exc:
                    print(f"dg launch skipped: {str(exc).splitlines()[0]}")
        packages, modules, total = _import_costs(env)

    print(f"\nstart-up on {os.cpu_count()} core(s), median of {args.runs} fresh subprocesses")
    print(f"{'what':<48} {'median s':>9} {'target':>7}  runs")
    for name, median, times, target in rows:
        verdict = "" if target is None else (f"<= {target:.0f}" if median <= target else f"> {target:.0f} !")
        print(f"{name:<48} {median:>9.2f} {verdict:>7}  {' '.join(f'{t:.2f}' for t in times)}")
    print(f"\nimport costs (-X importtime, self time per top-level package; total {total:.2f} s)")
    print(f"{'package':<32} {'s':>6} {'share':>6}")
    for name, seconds in packages[: args.top]:
        print(f"{name:<32} {seconds:>6.2f} {seconds / total:>6.0%}")
    print("\nthis package's modules (cumulative, includes what they import first)")
    for name, seconds in modules[: args.top]:
        print(f"{name:<48} {seconds:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
