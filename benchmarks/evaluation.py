"""Evaluation benchmark: one weekly evaluation report (1,000 paired bootstrap resamples) on real features.

    python benchmarks/evaluation.py [--data-dir DIR] [--week 2013-02-11] [--resamples 1000]

Prepares a data dir once (kept for reruns; default ``/tmp/mlops_eval_bench``): lands 2013-01-01 .. the week's Sunday,
materialises raw + dbt + features with the product's CLI (in a subprocess with ``MLOPS_DATA_DIR``/``DAGSTER_HOME``
pointing there). Then, in this process, through ``lib`` only: the week's training frame (train + validation window)
and holdout frame, two real LightGBM models (a "champion" trained on the training window only, a "candidate" on
train + validation with more rounds), and :func:`mlops_assets.lib.evaluation_report.evaluate` timed end to end; the
report's HTML and JSON are written beside the data and the headline numbers printed.

Target (issue 12): the report with 1,000 paired resamples in <= 15 s on 2 cores (the frames and models excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

TARGET_SECONDS = 15.0
REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _prepare(data_dir: Path, first: date, last: date) -> None:
    marker = data_dir / f".prepared-{first}-{last}"
    if marker.exists():
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(
        MLOPS_DATA_DIR=str(data_dir / "data"),
        DAGSTER_HOME=str(data_dir / "dagster_home"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DAGSTER_DISABLE_TELEMETRY="1",
        FEAST_USAGE="False",
    )
    (data_dir / "dagster_home").mkdir(parents=True, exist_ok=True)
    (data_dir / "dagster_home" / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "mlops-assets"), "land", first.isoformat(), "--to", last.isoformat()], env=env, check=True
    )
    subprocess.run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "mlops_assets.definitions",
            "--select",
            "group:raw or group:transform or group:features",
            "--partition-range",
            f"{first}...{last}",
        ],
        env=env,
        check=True,
        cwd=REPO_ROOT,
    )
    print(f"prepared {first} .. {last} in {time.perf_counter() - started:.0f} s")
    marker.touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/mlops_eval_bench"))
    parser.add_argument("--week", type=date.fromisoformat, default=date(2013, 2, 11))
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()

    import polars as pl

    from mlops_assets.lib.boosting import refit, training_params
    from mlops_assets.lib.calibration import identity
    from mlops_assets.lib.evaluation_metrics import paired_bootstrap
    from mlops_assets.lib.evaluation_report import EvaluationSettings, evaluate
    from mlops_assets.lib.feature_contract import PARTITION_COLUMN
    from mlops_assets.lib.model_artifacts import LoadedModel
    from mlops_assets.lib.point_in_time import build_training_frame
    from mlops_assets.lib.promotion import GateConfig, evaluate_gate, gate_passed
    from mlops_assets.lib.report_render import render_html, render_markdown
    from mlops_assets.lib.training import CategoryVocabulary, model_data
    from mlops_assets.lib.windows import training_windows

    windows = training_windows(args.week, args.week + timedelta(days=7), 28, 7, 7)
    _prepare(args.data_dir, date(2013, 1, 1), windows.holdout_end)
    lake_root = str(args.data_dir / "data" / "lake")

    started = time.perf_counter()
    train_frame = build_training_frame(lake_root, windows.train_start, windows.valid_end)
    holdout = build_training_frame(lake_root, windows.holdout_start, windows.holdout_end)
    frames_s = time.perf_counter() - started
    vocabulary = CategoryVocabulary.fit(train_frame)
    tuned = {"num_leaves": 31, "learning_rate": 0.05, "min_data_in_leaf": 40, "feature_fraction": 0.8}
    params = training_params(tuned, num_threads=2)
    older = model_data(train_frame.filter(pl.col(PARTITION_COLUMN) <= windows.train_end), vocabulary)
    full = model_data(train_frame, vocabulary)
    started = time.perf_counter()
    models = {
        "champion": refit(params, older, 120),
        "candidate": refit(params, full, 200),
    }
    train_s = time.perf_counter() - started

    def loaded(label: str, version: str) -> LoadedModel:
        tags = {"dagster.partition": args.week.isoformat(), "training_data_hash": f"benchmark-{label}"}
        return LoadedModel(
            "flight_delay",
            version,
            f"bench-{label}",
            models[label],
            vocabulary,
            identity(),
            False,
            tags,
            {"sweep.seed": "2013"},
        )

    candidate, champion = loaded("candidate", "2"), loaded("champion", "1")
    settings = EvaluationSettings(resamples=args.resamples)
    started = time.perf_counter()
    report = evaluate(
        args.week.isoformat(),
        windows.as_metadata()["holdout_window"],
        holdout,
        train_frame,
        candidate,
        champion,
        settings,
    )
    report_s = time.perf_counter() - started
    gate = evaluate_gate(report, GateConfig())
    started = time.perf_counter()
    html = render_html(report, gate)
    render_s = time.perf_counter() - started
    out = args.data_dir / "report"
    out.mkdir(exist_ok=True)
    (out / "report.html").write_text(html)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "summary.md").write_text(render_markdown(report, gate))

    # The bootstrap alone (the part the vectorised metrics exist for).
    cand_data = model_data(holdout.sort(["prediction_ts", "flight_id"]), vocabulary)
    p_cand = candidate.predict(cand_data.features)
    p_champ = champion.predict(cand_data.features)
    started = time.perf_counter()
    paired_bootstrap(cand_data.label, p_cand, p_champ, args.resamples, 2013)
    boot_s = time.perf_counter() - started

    cand = report["metrics"]["candidate"]["roc_auc"]
    delta = report["metrics"]["delta"]["roc_auc"]
    print(
        f"\nweek {args.week} holdout {report['holdout_window']}: {report['rows']} rows, {report['positives']} delayed"
    )
    print(f"candidate AUC {cand['estimate']:.4f} (95% CI {cand['low']:.4f} .. {cand['high']:.4f})")
    print(f"delta vs champion {delta['estimate']:+.4f} (paired 95% CI {delta['low']:+.4f} .. {delta['high']:+.4f})")
    print(f"ECE {report['calibration']['candidate']['ece']:.4f}; gate {'PASSED' if gate_passed(gate) else 'FAILED'}")
    print("\n| step | seconds | rows |\n|---|---|---|")
    print(f"| build frames (train+valid, holdout) | {frames_s:.2f} | {full.rows} + {report['rows']} |")
    print(f"| train the two models | {train_s:.2f} | |")
    print(f"| paired bootstrap, {args.resamples} resamples, 4 metrics x 2 models | {boot_s:.2f} | {report['rows']} |")
    print(f"| whole report (incl. LR baseline, slices, latency) | {report_s:.2f} | |")
    print(f"| HTML rendering (6 plots) | {render_s:.2f} | |")
    total = report_s + render_s
    print(
        f"\nreport + HTML {total:.2f} s (target <= {TARGET_SECONDS:.0f} s): "
        + ("OK" if total <= TARGET_SECONDS else "MISSED")
    )
    print(f"report: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
