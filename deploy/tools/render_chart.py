"""Render a Helm chart offline with helm-python-sdk (Helm's Go SDK in a shared library; no helm binary needed).

Run with the tools venv: ``.venv-tools/bin/python deploy/tools/render_chart.py CHART OUT_DIR CASES_JSON``.
CASES_JSON maps a case name to a values override; each case is written to ``OUT_DIR/<case>.yaml`` as one
multi-document YAML stream (templates that render to nothing are left out), so validators can take one file per case.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import helm_python as helm


def render_cases(chart_dir: Path, out_dir: Path, cases: dict[str, dict]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with helm.Chart.load(str(chart_dir)) as chart:
        for case, values in cases.items():
            # A fixed release name and namespace keep the output deterministic and never in `default`.
            rendered = chart.render(values, name="fds", namespace="serving")
            docs = [text.strip() for _, text in sorted(rendered.items()) if text.strip()]
            (out_dir / f"{case}.yaml").write_text("\n---\n".join(docs) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    render_cases(Path(argv[1]), Path(argv[2]), json.loads(argv[3]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
