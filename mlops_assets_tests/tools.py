"""The offline validation tools (helm SDK, kubernetes-validate, checkov, hadolint, terraform, python-hcl2) that
``deploy/install-validation-tools.sh`` installs into ``.venv-tools``, and a runner for them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS_VENV = REPO_ROOT / ".venv-tools"


def tools_bin(name: str, venv: Path = TOOLS_VENV) -> Path:
    """A tool from .venv-tools, or a clear failure saying how to install it (never a skip)."""
    path = venv / "bin" / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: run `bash deploy/install-validation-tools.sh` to install the validation tools",
            pytrace=False,
        )
    return path


def run(cmd: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=REPO_ROOT, **kwargs)
