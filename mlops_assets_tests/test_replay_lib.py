"""The replay's pure parts (lib/replay.py): figures from drift_profile metadata, alias moves from the registry's tags,
the CSV round trip, the summary and the timeline plot. No Dagster, no server."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from mlops_assets.lib import replay
from mlops_assets.lib.replay import ReplayDay


def _move(action: str, to: str, frm: str | None, at: str) -> str:
    return json.dumps({"action": action, "alias": "champion", "to_version": to, "from_version": frm, "at": at})


def test_day_figures_read_the_drift_profile_metadata_and_tolerate_a_day_without_champion() -> None:
    figures = replay.day_figures(
        {"rows": 912, "drift_score": 0.21, "drift_excess": 0.04, "roc_auc": 0.71, "champion_version": "3"}
    )
    assert figures == {
        "rows": 912,
        "drift_score": 0.21,
        "drift_excess": 0.04,
        "roc_auc": 0.71,
        "holdout_roc_auc": None,
        "champion_version": "3",
    }
    before_any_champion = replay.day_figures({"rows": 800, "champion_version": "none", "profile_ms": 60.0})
    assert before_any_champion["champion_version"] is None and before_any_champion["drift_excess"] is None
    assert replay.day_figures({"rows": "not a number"})["rows"] is None


def test_alias_moves_report_only_what_changed_between_two_readings() -> None:
    first = {replay.PROMOTION_TAG: _move("promotion", "2", None, "2026-12-06T10:00:00+00:00")}
    assert replay.alias_moves({}, first) == (["v-->v2"], [])
    assert replay.alias_moves(first, dict(first)) == ([], [])
    later = {
        replay.PROMOTION_TAG: _move("promotion", "5", "2", "2026-12-06T11:00:00+00:00"),
        replay.ROLLBACK_TAG: _move("rollback", "2", "5", "2026-12-06T11:05:00+00:00"),
    }
    assert replay.alias_moves(first, later) == (["v2->v5"], ["v5->v2"])
    # A tag that is not a move (edited by hand) is ignored rather than crashing the replay.
    assert replay.alias_moves({}, {replay.PROMOTION_TAG: "{broken"}) == ([], [])


def _days() -> list[ReplayDay]:
    start = date(2013, 4, 22)
    days = [
        ReplayDay(
            day=start + timedelta(days=i),
            profiled=True,
            rows=900 + i,
            drift_score=0.3 + i / 100,
            drift_excess=-0.05 + i * 0.04,
            roc_auc=0.70 - i / 200,
            holdout_roc_auc=0.72,
            champion_version="1",
            runs=3,
            wall_s=95.5,
        )
        for i in range(6)
    ]
    days[4] = ReplayDay(
        **{
            **vars(days[4]),
            "retrain_requested": True,
            "retrain_reason": "2013-04-26: drift 0.110 > 0.1; 3 of the last 7 days signal",
            "trained_weeks": ("2013-04-22",),
        }
    )
    days[5] = ReplayDay(**{**vars(days[5]), "promotions": ("v1->v2",), "rollbacks": ("v2->v1",), "profiled": False})
    return days


def test_csv_round_trips_every_field(tmp_path: Path) -> None:
    days = _days()
    path = tmp_path / "out" / "replay.csv"
    replay.write_csv(days, path)
    assert path.read_text().splitlines()[0].split(",") == replay.COLUMNS
    again = replay.read_csv(path)
    assert [d.day for d in again] == [d.day for d in days]
    assert again[4].trained_weeks == ("2013-04-22",) and again[4].retrain_requested
    assert again[5].promotions == ("v1->v2",) and again[5].rollbacks == ("v2->v1",) and not again[5].profiled
    assert again[0].drift_excess == pytest.approx(days[0].drift_excess) and again[0].rows == 900
    assert again[0].champion_version == "1"


def test_read_csv_names_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "replay.csv"
    path.write_text("day,rows\n2013-04-22,900\n")
    with pytest.raises(ValueError, match=r"columns missing: .*drift_excess"):
        replay.read_csv(path)
    replay.write_csv(_days()[:1], path)
    path.write_text(path.read_text().replace(",true,", ",maybe,", 1))
    with pytest.raises(ValueError, match="line 2: column 'profiled': 'maybe'"):
        replay.read_csv(path)


def test_summary_counts_signals_events_and_days_not_profiled_in_time() -> None:
    summary = replay.summarise(_days(), threshold=0.1)
    # drift_excess is -0.05 + 0.04 i: above 0.1 for i = 4 and 5.
    assert summary.signalling_days == 2
    assert summary.retrain_requests == (date(2013, 4, 26),)
    assert (summary.promotions, summary.rollbacks) == (1, 1)
    assert summary.unprofiled_days == (date(2013, 4, 27),) and summary.max_undetected_hours == 48
    on_time = replay.summarise(_days()[:5], threshold=0.1)
    assert on_time.unprofiled_days == () and on_time.max_undetected_hours == 24


def test_timeline_plot_is_a_png_with_the_events_drawn(tmp_path: Path) -> None:
    days = _days()
    path = tmp_path / "replay.png"
    replay.write_plot(days, 0.1, path, "test replay")
    payload = path.read_bytes()
    assert payload[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(payload) < 300_000
    # The event markers change the picture: the same days without events draw a different image.
    no_events = {"retrain_requested": False, "trained_weeks": (), "promotions": (), "rollbacks": ()}
    quiet = [ReplayDay(**{**vars(d), **no_events}) for d in days]
    assert replay.timeline_png(quiet, 0.1, "test replay") != payload
    with pytest.raises(ValueError, match="no replayed day"):
        replay.timeline_png([], 0.1, "empty")


def test_the_literal_keys_match_the_modules_that_write_them() -> None:
    from mlops_assets import cli
    from mlops_assets.definitions import defs
    from mlops_assets.defs.monitoring import assets, sensors
    from mlops_assets.lib import model_registry

    assert (replay.ROWS, replay.DRIFT_SCORE, replay.DRIFT_EXCESS, replay.CHAMPION_VERSION) == (
        assets.ROWS,
        assets.DRIFT_SCORE,
        assets.DRIFT_EXCESS,
        assets.CHAMPION_VERSION,
    )
    assert cli.RETRAIN_REASON_TAG == sensors.RETRAIN_REASON_TAG
    assert sensors.TRAINED_MODEL_KEY.to_user_string() == cli.TRAINED_MODEL_ASSET
    # model_registry records each move as the registered-model tag last_<action>.
    for action, tag in (("promotion", replay.PROMOTION_TAG), ("rollback", replay.ROLLBACK_TAG)):
        move = model_registry.AliasMove(action, "champion", "2", "1", "why", "now")
        assert f"last_{move.action}" == tag
    # The replay waits for every sensor of the code location.
    assert set(cli.REPLAY_SENSORS) == {sensor.name for sensor in defs.sensors}


def test_cli_replay_names_a_missing_instance_or_config_and_re_draws_from_a_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_assets import cli

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    args = ["replay", "2013-04-22", "2013-04-23", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path)]
    assert cli.main(args) == 2
    assert "set DAGSTER_HOME or pass --dagster-home" in capsys.readouterr().err
    # An instance directory without the instance config: refused before anything starts.
    assert cli.main([*args, "--dagster-home", str(tmp_path / "home")]) == 2
    assert "has no dagster.yaml: copy the product's instance config" in capsys.readouterr().err
    assert not (tmp_path / "replay.csv").exists()  # nothing replayed, nothing written
    assert cli.main([*args[:1], "2013-04-23", "2013-04-22", *args[3:], "--dagster-home", str(tmp_path)]) == 2
    assert "before it starts" in capsys.readouterr().err
    # --plot-only re-draws the plot from replay.csv and starts nothing.
    replay.write_csv(_days(), tmp_path / "replay.csv")
    assert cli.main([*args, "--dagster-home", str(tmp_path), "--plot-only"]) == 0
    assert (tmp_path / "replay.png").read_bytes()[:4] == b"\x89PNG"
    assert "from 6 day(s)" in capsys.readouterr().out
