"""The evaluation report as a self-contained HTML page (plots embedded as base64 PNG, no external resource, so it
opens offline) and as a short Markdown summary for Dagster's UI. Reads only the report ``dict``.

matplotlib is imported lazily with the Agg backend (no display, no global ``pyplot`` state kept between figures).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_assets.lib.promotion import GateResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SECTION_TITLES: dict[str, str] = {
    "gate": "Promotion gate",
    "provenance": "Provenance",
    "metrics": "Metrics (bootstrap 95% CI)",
    "calibration": "Calibration",
    "operating_point": "Operating point",
    "slices": "Slices",
    "baselines": "Baselines",
    "explanations": "Explanations",
    "operations": "Operations",
}


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p>none</p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png(draw: Callable[[Axes], None], width: float = 5.0, height: float = 3.6) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=90)
    axes = figure.add_subplot()
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{encoded}"/>'


def _curve_plot(report: dict[str, Any], kind: str) -> str:
    def draw(ax: Axes) -> None:
        for who, style in (("candidate", "-"), ("champion", "--")):
            curves = report["curves"].get(who)
            if curves:
                ax.plot(curves[kind]["x"], curves[kind]["y"], style, label=who)
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ":", color="grey")
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
        else:
            ax.axhline(report["positives"] / max(report["rows"], 1), linestyle=":", color="grey")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
        ax.set_title("ROC" if kind == "roc" else "Precision-recall")
        ax.legend()

    return _png(draw)


def _reliability_plot(report: dict[str, Any]) -> str:
    def draw(ax: Axes) -> None:
        for who, marker in (("candidate", "o-"), ("champion", "s--")):
            calibration = report["calibration"].get(who)
            if calibration:
                rows = calibration["reliability"]
                ax.plot([r["mean_predicted"] for r in rows], [r["observed_rate"] for r in rows], marker, label=who)
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_xlabel("mean predicted")
        ax.set_ylabel("observed delay rate")
        ax.set_title("Reliability")
        ax.legend()

    return _png(draw)


def _sweep_plot(report: dict[str, Any]) -> str:
    def draw(ax: Axes) -> None:
        rows = report["operating_point"]["sweep"]
        thresholds = [r["threshold"] for r in rows]
        for key in ("precision", "recall", "f1"):
            ax.plot(thresholds, [r[key] for r in rows], label=key)
        ax.axvline(report["operating_point"]["threshold"], color="black", linestyle=":", label="chosen")
        ax.set_xlabel("threshold")
        ax.set_title("Threshold sweep")
        ax.legend()

    return _png(draw)


def _slices_plot(report: dict[str, Any]) -> str:
    rows = [r for r in report["slices"]["rows"] if r["scored"]]

    def draw(ax: Axes) -> None:
        labels = [f"{r['dimension']}={r['value']}" for r in rows]
        values = [r["delta_auc"] if r["delta_auc"] is not None else r["candidate_auc"] for r in rows]
        ax.barh(range(len(rows)), values, color=["#c0392b" if v < 0 else "#2e86c1" for v in values])
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        ax.set_xlabel("AUC delta vs champion" if report["has_champion"] else "candidate AUC")
        ax.set_title("Slices")

    return _png(draw, height=max(3.0, 0.22 * len(rows) + 1))


def _importance_plot(report: dict[str, Any]) -> str:
    rows = report["explanations"]["gain_importance"]

    def draw(ax: Axes) -> None:
        ax.barh(range(len(rows)), [r["value"] for r in rows][::-1])
        ax.set_yticks(range(len(rows)), [r["feature"] for r in rows][::-1], fontsize=7)
        ax.set_xlabel("share of split gain")
        ax.set_title("Gain importance (candidate)")

    return _png(draw, height=4.5)


def _metrics_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    metrics = report["metrics"]
    rows = []
    for name, cand in metrics["candidate"].items():
        champ = (metrics.get("champion") or {}).get(name)
        delta = (metrics.get("delta") or {}).get(name)
        rows.append(
            {
                "metric": name,
                "candidate": cand["estimate"],
                "candidate CI": f"{cand['low']:.4f} .. {cand['high']:.4f}",
                "champion": champ["estimate"] if champ else None,
                "delta": delta["estimate"] if delta else None,
                "delta CI (paired)": f"{delta['low']:+.4f} .. {delta['high']:+.4f}" if delta else None,
            }
        )
    return rows


def _section(key: str, body: str) -> str:
    return f'<section id="{key}"><h2>{SECTION_TITLES[key]}</h2>{body}</section>'


def render_html(report: dict[str, Any], gate: list[GateResult]) -> str:
    provenance = report["provenance"]
    models = [provenance["candidate"]] + ([provenance["champion"]] if provenance["champion"] else [])
    calibration = report["calibration"]
    op = report["operating_point"]
    baselines = report["baselines"]
    explanations = report["explanations"]
    operations = report["operations"]
    verdict = "PASSED" if all(r.passed for r in gate) else "FAILED"
    parts = [
        _section(
            "gate",
            f"<p class='verdict {verdict.lower()}'>Gate {verdict}</p>"
            + _table([{"rule": r.rule, "passed": r.passed, "summary": r.summary} for r in gate]),
        ),
        _section(
            "provenance",
            _table(models) + f"<p>holdout rows hash <code>{provenance['holdout_rows_hash']}</code>; bootstrap "
            f"{provenance['bootstrap_resamples']} resamples, seed {provenance['bootstrap_seed']}</p>",
        ),
        _section("metrics", _table(_metrics_rows(report)) + _curve_plot(report, "roc") + _curve_plot(report, "pr")),
        _section(
            "calibration",
            f"<p>ECE candidate {_fmt(calibration['candidate']['ece'])}"
            + (f", champion {_fmt(calibration['champion']['ece'])}" if calibration["champion"] else "")
            + f"; mean prediction {_fmt(calibration['candidate']['mean_prediction'])} vs observed rate "
            f"{_fmt(calibration['candidate']['observed_rate'])}</p>"
            + _reliability_plot(report)
            + _table(calibration["candidate"]["reliability"]),
        ),
        _section(
            "operating_point",
            f"<p>rule: {html.escape(op['rule'])}; threshold {_fmt(op['threshold'], 2)}; precision "
            f"{_fmt(op['precision'])}, recall {_fmt(op['recall'])}, F1 {_fmt(op['f1'])}</p>"
            + _table(
                [
                    {
                        "": "actual delayed",
                        **{
                            "predicted delayed": op["confusion_matrix"]["tp"],
                            "predicted on time": op["confusion_matrix"]["fn"],
                        },
                    },
                    {
                        "": "actual on time",
                        **{
                            "predicted delayed": op["confusion_matrix"]["fp"],
                            "predicted on time": op["confusion_matrix"]["tn"],
                        },
                    },
                ]
            )
            + _sweep_plot(report)
            + _table(op["sweep"]),
        ),
        _section(
            "slices",
            f"<p>minimum slice size {report['slices']['min_rows']}; worst: "
            + (
                f"{html.escape(report['slices']['worst']['dimension'])}={html.escape(report['slices']['worst']['value'])}"
                f" delta AUC {_fmt(report['slices']['worst']['delta_auc'])}"
                if report["slices"]["worst"]
                else "no champion to compare"
            )
            + "</p>"
            + _slices_plot(report)
            + _table(report["slices"]["rows"]),
        ),
        _section(
            "baselines",
            _table(
                [
                    {"model": "candidate", **{k: v["estimate"] for k, v in report["metrics"]["candidate"].items()}},
                    {"model": "prior rate", **{k: baselines["prior_rate"][k] for k in report["metrics"]["candidate"]}},
                    {"model": "logistic regression", **baselines["logistic_regression"]},
                ]
            )
            + f"<p>train AUC {_fmt(baselines['train_auc'])}, holdout AUC {_fmt(baselines['holdout_auc'])}, "
            f"gap {_fmt(baselines['train_holdout_gap'])} ({baselines['train_rows']} training rows)</p>",
        ),
        _section(
            "explanations",
            _importance_plot(report)
            + "<h3>Mean |contribution| (pred_contrib, log-odds)</h3>"
            + _table(explanations["mean_abs_contribution"])
            + "<h3>Importance shift vs champion</h3>"
            + (_table(explanations["importance_shift"]) if explanations["importance_shift"] else "<p>no champion</p>"),
        ),
        _section(
            "operations",
            _table(
                [{"model": "candidate", **operations["candidate"]}]
                + ([{"model": "champion", **operations["champion"]}] if operations["champion"] else [])
            ),
        ),
    ]
    title = f"Evaluation report: week {html.escape(report['week'])}"
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}.passed{color:#1e8449}.failed{color:#c0392b}"
        ".verdict{font-size:1.4em;font-weight:bold}img{display:block;margin:.5em 0}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head><body>"
        f"<h1>{title}</h1><p>holdout {html.escape(report['holdout_window'])}: {report['rows']} flights, "
        f"{report['positives']} delayed</p>"
        + "".join(parts)
        + "<script type='application/json' id='report-json'>"
        + html.escape(json.dumps({"week": report["week"], "gate": [r.as_dict() for r in gate]}))
        + "</script></body></html>"
    )


def render_markdown(report: dict[str, Any], gate: list[GateResult]) -> str:
    cand = report["metrics"]["candidate"]
    delta = report["metrics"].get("delta")
    provenance = report["provenance"]
    champion = provenance["champion"]
    lines = [
        f"**Week {report['week']}** (holdout {report['holdout_window']}, {report['rows']} flights): candidate "
        f"v{provenance['candidate']['version']} vs "
        + (f"champion v{champion['version']}" if champion else "no champion (absolute floors)"),
        "",
        "| metric | candidate (95% CI) | delta vs champion (paired 95% CI) |",
        "|---|---|---|",
    ]
    for name, interval in cand.items():
        d = delta[name] if delta else None
        lines.append(
            f"| {name} | {interval['estimate']:.4f} ({interval['low']:.4f} .. {interval['high']:.4f}) | "
            + (f"{d['estimate']:+.4f} ({d['low']:+.4f} .. {d['high']:+.4f})" if d else "-")
            + " |"
        )
    lines += [
        "",
        f"ECE {report['calibration']['candidate']['ece']:.4f}",
        "",
        "| gate rule | passed | detail |",
        "|---|---|---|",
    ]
    lines += [f"| {r.rule} | {'yes' if r.passed else '**NO**'} | {r.summary} |" for r in gate]
    return "\n".join(lines)
