"""What a replay recorded, day by day: the figures of each replayed day, the events around it, the CSV and the plot.

Pure logic, no Dagster or MLflow import: ``mlops-assets replay`` (cli.py) reads the instance and the registry and
hands plain values to these functions. A day's figures come from the metadata ``drift_profile`` recorded for it;
alias moves from the registered model's ``last_promotion`` / ``last_rollback`` tags (``lib/model_registry.py``
writes them with every move), compared before and after the day.

matplotlib is imported lazily with the Agg canvas (``Figure``, no ``pyplot`` state), as in ``report_render``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from pathlib import Path

from mlops_assets.lib.io import write_bytes_atomic

# Metadata keys of drift_profile (defs/monitoring/assets.py) and registered-model tags (lib/model_registry.py). Kept
# as literals so this module needs neither Dagster nor MLflow; test_replay_lib checks them against those modules.
ROWS, DRIFT_SCORE, DRIFT_EXCESS = "rows", "drift_score", "drift_excess"
ROC_AUC, HOLDOUT_AUC, CHAMPION_VERSION = "roc_auc", "holdout_roc_auc", "champion_version"
PROMOTION_TAG, ROLLBACK_TAG = "last_promotion", "last_rollback"
LIST_SEPARATOR = ";"


@dataclass(frozen=True)
class ReplayDay:
    """One replayed day: what drift_profile recorded for it and what happened while it was the newest day."""

    day: date
    profiled: bool
    """drift_profile of this day was materialised before the replay moved on (the 24-hour detection bar)."""
    rows: int | None = None
    drift_score: float | None = None
    """Importance-weighted JS distance of the day's features to the champion's training reference."""
    drift_excess: float | None = None
    """``drift_score`` minus the reference days' own p90: the figure the retrain rule compares with its threshold."""
    roc_auc: float | None = None
    holdout_roc_auc: float | None = None
    champion_version: str | None = None
    retrain_requested: bool = False
    """The drift sensor requested a trained_model run while this day was the newest."""
    retrain_reason: str = ""
    trained_weeks: tuple[str, ...] = ()
    """trained_model partitions whose run was launched (scheduled or drift-requested), whether or not it succeeded."""
    promotions: tuple[str, ...] = ()
    """Alias moves ``champion`` by promotion, as ``v<from>->v<to>`` (``v-`` when there was no champion)."""
    rollbacks: tuple[str, ...] = ()
    runs: int = 0
    """Dagster runs launched while this day was the newest (raw, daily chain, training, rollback, bento)."""
    failed_runs: int = 0
    wall_s: float = 0.0
    status: str = "ok"
    """``ok``; ``timeout`` when the day did not settle within the replay's per-day limit."""


def _number(metadata: Mapping[str, object], key: str) -> float | None:
    value = metadata.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def day_figures(metadata: Mapping[str, object]) -> dict[str, object]:
    """The ReplayDay fields found in a drift_profile day's metadata (plain values); absent figures are None.

    A day profiled before any champion existed records ``champion_version`` "none" and no drift or AUC."""
    rows = _number(metadata, ROWS)
    champion = metadata.get(CHAMPION_VERSION)
    return {
        "rows": int(rows) if rows is not None else None,
        "drift_score": _number(metadata, DRIFT_SCORE),
        "drift_excess": _number(metadata, DRIFT_EXCESS),
        "roc_auc": _number(metadata, ROC_AUC),
        "holdout_roc_auc": _number(metadata, HOLDOUT_AUC),
        "champion_version": str(champion) if champion not in (None, "none") else None,
    }


def _move(tag: str | None) -> tuple[str, str] | None:
    """(time, 'v<from>->v<to>') of a move tag's JSON; None for no tag or an unreadable one."""
    if not tag:
        return None
    try:
        move = json.loads(tag)
        return str(move["at"]), f"v{move.get('from_version') or '-'}->v{move['to_version']}"
    except (ValueError, KeyError, TypeError):
        return None


def alias_moves(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Promotions and rollbacks between two readings of the registered model's tags.

    The tags hold only the latest move of each kind, so two promotions between readings show as one: the replay
    reads them after every day, and a day holds at most one evaluation week."""
    found: dict[str, list[str]] = {PROMOTION_TAG: [], ROLLBACK_TAG: []}
    for tag, moves in found.items():
        new = _move(after.get(tag))
        if new is not None and new != _move(before.get(tag)):
            moves.append(new[1])
    return found[PROMOTION_TAG], found[ROLLBACK_TAG]


# --- CSV --------------------------------------------------------------------------------------------------------

COLUMNS = [f.name for f in fields(ReplayDay)]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def csv_text(days: Iterable[ReplayDay]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for day in days:
        writer.writerow([_cell(getattr(day, name)) for name in COLUMNS])
    return buffer.getvalue()


def write_csv(days: Iterable[ReplayDay], path: Path) -> None:
    """Rewrite the whole file atomically: the replay calls this after every day, so a stopped replay keeps its days."""
    write_bytes_atomic(path, csv_text(days).encode())


def _parse(name: str, text: str) -> object:
    if name == "day":
        return date.fromisoformat(text)
    if name in {"profiled", "retrain_requested"}:
        if text not in {"true", "false"}:
            raise ValueError(f"column {name!r}: {text!r} is not true or false")
        return text == "true"
    if name in {"trained_weeks", "promotions", "rollbacks"}:
        return tuple(text.split(LIST_SEPARATOR)) if text else ()
    if name in {"retrain_reason", "status"}:
        return text
    if text == "":
        return None if name != "wall_s" else 0.0
    if name in {"rows", "runs", "failed_runs"}:
        return int(text)
    if name == "champion_version":
        return text
    return float(text)


def read_csv(path: Path) -> list[ReplayDay]:
    """The days of a replay.csv (``mlops-assets replay --plot-only`` re-draws the plot from it)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: not a replay CSV, columns missing: {', '.join(sorted(missing))}")
        days = []
        for line, row in enumerate(reader, start=2):
            try:
                days.append(ReplayDay(**{name: _parse(name, row[name]) for name in COLUMNS}))  # type: ignore[arg-type]
            except ValueError as exc:
                raise ValueError(f"{path}, line {line}: {exc}") from exc
        return days


# --- Summary: the seed's bar ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplaySummary:
    days: int
    unprofiled_days: tuple[date, ...]
    """Days whose drift profile was not recorded before the next day landed: drift there went undetected > 24 h."""
    signalling_days: int
    """Days whose drift excess exceeded the threshold."""
    retrain_requests: tuple[date, ...]
    promotions: int
    rollbacks: int

    @property
    def max_undetected_hours(self) -> int:
        """Upper bound, in data hours, on how long a drifting day's data went unprofiled: a day is profiled at the
        end of its own 24 hours when it is in ``profiled``; an unprofiled day counts as at least 48."""
        return 48 if self.unprofiled_days else 24


def summarise(days: Sequence[ReplayDay], threshold: float) -> ReplaySummary:
    return ReplaySummary(
        days=len(days),
        unprofiled_days=tuple(d.day for d in days if not d.profiled),
        signalling_days=sum(1 for d in days if d.drift_excess is not None and d.drift_excess > threshold),
        retrain_requests=tuple(d.day for d in days if d.retrain_requested),
        promotions=sum(len(d.promotions) for d in days),
        rollbacks=sum(len(d.rollbacks) for d in days),
    )


# --- Timeline plot ----------------------------------------------------------------------------------------------

_EVENT_STYLES = {
    "retrain requested (drift sensor)": ("tab:red", "--"),
    "training run": ("tab:grey", ":"),
    "promotion": ("tab:green", "-"),
    "rollback": ("tab:purple", "-."),
}


def _events(days: Sequence[ReplayDay]) -> dict[str, list[date]]:
    return {
        "retrain requested (drift sensor)": [d.day for d in days if d.retrain_requested],
        "training run": [d.day for d in days if d.trained_weeks],
        "promotion": [d.day for d in days if d.promotions],
        "rollback": [d.day for d in days if d.rollbacks],
    }


def _series(days: Sequence[ReplayDay], name: str) -> tuple[list[date], list[float]]:
    points = [(d.day, getattr(d, name)) for d in days if getattr(d, name) is not None]
    return [p[0] for p in points], [float(p[1]) for p in points]


def timeline_png(days: Sequence[ReplayDay], threshold: float, title: str) -> bytes:
    """Drift excess (with the retrain threshold) over daily champion AUC (with its holdout AUC), both over data time,
    with a vertical marker on both panels for every retrain request, training run, promotion and rollback."""
    if not days:
        raise ValueError("no replayed day to plot")
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 5.6), dpi=80)
    drift_ax, auc_ax = figure.subplots(2, 1, sharex=True)
    x, y = _series(days, "drift_excess")
    drift_ax.plot(x, y, marker=".", color="tab:blue", label="drift (excess over the reference's p90)")
    drift_ax.axhline(threshold, color="tab:red", linewidth=1, label=f"retrain threshold {threshold:g}")
    drift_ax.set_ylabel("drift excess")
    x, y = _series(days, "roc_auc")
    auc_ax.plot(x, y, marker=".", color="tab:orange", label="champion AUC on the day")
    x, y = _series(days, "holdout_roc_auc")
    auc_ax.step(x, y, where="post", color="tab:brown", linewidth=1, label="champion's holdout AUC")
    auc_ax.set_ylabel("ROC AUC")
    for offset, (label, when) in enumerate(_events(days).items()):
        color, style = _EVENT_STYLES[label]
        for index, day in enumerate(when):
            # Events of one day (a model trained and promoted) are drawn a few hours apart so that none hides another.
            at = datetime.combine(day, time(6 + 4 * offset))
            drift_ax.axvline(at, color=color, linestyle=style, linewidth=1.2, label=label if index == 0 else None)
            auc_ax.axvline(at, color=color, linestyle=style, linewidth=1.2)
    unprofiled = [d.day for d in days if not d.profiled]
    if unprofiled:
        drift_ax.plot(unprofiled, [threshold] * len(unprofiled), "kx", label="day not profiled in time")
    locator = AutoDateLocator()
    auc_ax.xaxis.set_major_locator(locator)
    auc_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    drift_ax.legend(loc="upper left", fontsize=7, ncol=3)
    auc_ax.legend(loc="lower left", fontsize=7, ncol=3)
    drift_ax.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_plot(days: Sequence[ReplayDay], threshold: float, path: Path, title: str) -> None:
    write_bytes_atomic(path, timeline_png(days, threshold, title))
