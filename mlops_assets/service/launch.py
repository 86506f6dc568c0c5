"""The one command line that serves the service locally (``bentoml serve`` on 127.0.0.1): the HTTP tests and the
serving benchmark start it the same way. No BentoML import: the caller only starts the subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

SERVICE = "mlops_assets.service.service:FlightDelayService"


def serve_argv(port: int, working_dir: Path, service: str = SERVICE) -> list[str]:
    """``bentoml serve SERVICE`` of this interpreter's environment, on 127.0.0.1:``port``, importing from
    ``working_dir`` (the repository root)."""
    bentoml = Path(sys.executable).parent / "bentoml"
    return [
        str(bentoml),
        "serve",
        service,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(working_dir),
    ]
