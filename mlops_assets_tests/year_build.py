"""Land 2013 and materialise raw, dbt and features over it, in its own process (``python -m
mlops_assets_tests.year_build``): settings come from this process's environment (``MLOPS_DATA_DIR``,
``DAGSTER_HOME``), so the year lives apart from the test session's data dir. The leakage test samples it."""

from __future__ import annotations

import logging
import sys
import time
from datetime import date

import dagster as dg

from mlops_assets_tests.helpers import materialize_range

YEAR = (date(2013, 1, 1), date(2013, 12, 31))


def main() -> int:
    logging.getLogger("dagster").setLevel(logging.WARNING)
    from mlops_assets.definitions import defs
    from mlops_assets.defs.common import SETTINGS
    from mlops_assets.lib.landing import land_days

    land_days(SETTINGS.landing_root, *YEAR)
    with dg.DagsterInstance.get() as instance:
        for selection in ("group:raw or group:transform", "group:features"):
            started = time.perf_counter()
            result = materialize_range(defs, instance, selection, *YEAR, raise_on_error=False)
            if not result.success:
                print(f"materialising {selection} over 2013 failed", file=sys.stderr)
                return 1
            print(f"{selection}: {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
