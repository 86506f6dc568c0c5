"""``mlops-assets``: operator commands that sit beside Dagster (landing replay)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import date

from mlops_assets.lib.landing import land_days
from mlops_assets.settings import load_settings


def _land(args: argparse.Namespace) -> int:
    settings = load_settings()
    start: date = args.start
    end: date = args.to or start
    landed = land_days(settings.landing_dir, start, end)
    rows = Counter()
    files = Counter()
    for item in landed:
        rows[item.table] += item.rows
        files[item.table] += 1
    print(f"landed {start} .. {end} into {settings.landing_dir}")
    for table in sorted(files):
        print(f"  {table:<9} {files[table]:>4} file(s) {rows[table]:>8,} row(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    land = commands.add_parser("land", help="land the source rows of one day or a range into the landing zone")
    land.add_argument("start", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    land.add_argument("--to", type=date.fromisoformat, help="last day (inclusive), YYYY-MM-DD")
    land.set_defaults(handler=_land)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as exc:
        print(f"mlops-assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
