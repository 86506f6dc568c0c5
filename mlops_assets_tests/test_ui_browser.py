"""The Dagster UI, in a real browser: Debian's Chromium driven by Playwright against `dagster-webserver` serving the
code location over a materialised instance (3 landed days, raw + dbt + features).

The webserver runs on 127.0.0.1 on a free port and is stopped by PID. No browser is downloaded: Playwright launches
/usr/bin/chromium (`apt-get install chromium`, which scripts/test.sh does). The asset-graph screenshot is written
under the test's temporary directory; set MLOPS_SCREENSHOT_DIR=docs to refresh docs/asset-graph.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from mlops_assets.lib.local_processes import free_port, stop_process_tree
from mlops_assets.settings import STATE_LOCATION_VARIABLES
from mlops_assets_tests.servers import _wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START, END = date(2013, 1, 1), date(2013, 1, 3)
_READ_SHA = """
import dagster as dg
with dg.DagsterInstance.get() as instance:
    event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "flights"]))
    print(event.asset_materialization.metadata["content_sha256"].value)
"""


@dataclass(frozen=True)
class Served:
    url: str
    home: Path
    tmp: Path


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in (*STATE_LOCATION_VARIABLES, "MLOPS_FEAST_REGISTRY"):
        env.pop(name, None)
    env.pop("MLOPS_FEAST_ONLINE_STORE", None)
    env.update(
        DAGSTER_HOME=str(tmp / "dagster_home"),
        MLOPS_DATA_DIR=str(tmp / "data"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DAGSTER_DISABLE_TELEMETRY="1",
        FEAST_USAGE="False",
    )
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Land START..END, materialise everything but the weekly model as one run, then serve the UI over it."""
    assert CHROMIUM.exists(), "Chromium is missing: apt-get install -y chromium (scripts/test.sh does)"
    tmp = tmp_path_factory.mktemp("ui")
    env = _env(tmp)
    (tmp / "dagster_home").mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp / "dagster_home" / "dagster.yaml")
    subprocess.run([str(BIN / "mlops-assets"), "land", START.isoformat(), "--to", END.isoformat()], env=env, check=True)
    proc = subprocess.run(
        [
            *(str(BIN / "dagster"), "asset", "materialize", "-m", "mlops_assets.definitions"),
            *("--select", "not group:training and not group:serving", "--partition-range", f"{START}...{END}"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and "RUN_SUCCESS" in proc.stderr + proc.stdout, (proc.stdout + proc.stderr)[-4000:]

    port = free_port()
    log = tmp / "webserver.log"
    with log.open("w") as out:
        # No -m: from the repository root the webserver loads pyproject.toml's [tool.dagster] (location mlops_assets).
        server = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait_until(ready, 180, "dagster-webserver", log)
        yield Served(url=url, home=tmp / "dagster_home", tmp=tmp)
    finally:
        stop_process_tree(server.pid)


def _browser_page(playwright: object, url: str) -> object:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)  # type: ignore[attr-defined]
    context = browser.new_context(viewport={"width": 1600, "height": 2000})
    # Every group of the global lineage expanded (the UI keeps the expanded groups in localStorage).
    context.add_init_script(
        "localStorage.setItem('asset-graph-open-graph-nodes-global-__GLOBAL__', JSON.stringify({expanded: "
        "'global@global:raw,global@global:transform,global@global:features,global@global:training'}));"
    )
    return context.new_page()


def _dismiss_community_dialog(page: object, wait_ms: int = 0) -> None:
    """The UI's one-time "Join the Dagster community" dialog opens a moment after the first page load; skip it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with suppress(PlaywrightTimeout):
        page.get_by_role("button", name="Skip").click(timeout=wait_ms or 1)  # type: ignore[attr-defined]


def test_ui_shows_every_asset_partitions_metadata_and_the_graph(served: Served) -> None:
    import dagster as dg
    from playwright.sync_api import expect, sync_playwright

    from mlops_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    design = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert {"raw/flights", "delay_history", "flights_enriched", "validated_features", "trained_model"} <= set(design)

    # The content hash raw/flights recorded, read from the served instance (its dagster.yaml resolves DAGSTER_HOME).
    sha = subprocess.run(
        [sys.executable, "-c", _READ_SHA],
        env=_env(served.tmp),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert len(sha) == 64, sha

    timings: dict[str, float] = {}
    with sync_playwright() as playwright:
        page = _browser_page(playwright, served.url)
        page.set_default_timeout(60_000)

        # The asset catalog: every asset of the design, each in its group.
        started = time.monotonic()
        page.goto(f"{served.url}/assets")
        _dismiss_community_dialog(page, wait_ms=10_000)
        for key, group in sorted(design.items()):
            link = page.locator(f'a[href="/assets/{key}"]').first
            expect(link).to_be_visible()
            row = link.locator("xpath=ancestor::div[contains(@class, 'VirtualizedTable_row')][1]")
            expect(row).to_contain_text(group)
        timings["catalog"] = time.monotonic() - started

        # A partitioned asset's partitions view: the landed days materialised, the rest of the year missing.
        started = time.monotonic()
        partitions_def = graph.get(dg.AssetKey(["raw", "flights"])).partitions_def
        total = len(partitions_def.get_partition_keys())
        landed = (END - START).days + 1
        page.goto(f"{served.url}/assets/raw/flights?view=partitions")
        _dismiss_community_dialog(page)
        expect(page.get_by_text(f"Materialized ({landed})")).to_be_visible()
        expect(page.get_by_text(f"Missing ({total - landed})")).to_be_visible()
        expect(page.get_by_text("Failed (0)")).to_be_visible()
        # One partition's metadata: the content hash the raw asset recorded for it.
        # The list is newest first and virtualised: hide the missing days, then pick one landed day.
        page.get_by_text(f"Missing ({total - landed})").click()
        page.get_by_text("2013-01-02", exact=True).first.click()
        expect(page.get_by_text("content_sha256").first).to_be_visible()
        expect(page.get_by_text(sha[:16]).first).to_be_visible()
        timings["partitions+metadata"] = time.monotonic() - started

        # The asset graph, every group expanded, as the README shows it.
        started = time.monotonic()
        page.set_viewport_size({"width": 1600, "height": 1000})
        page.goto(f"{served.url}/asset-groups")
        _dismiss_community_dialog(page)
        for key in ("flights_enriched", "validated_features", "trained_model"):
            expect(page.get_by_text(key, exact=True).last).to_be_visible()
        page.wait_for_load_state("networkidle")
        _dismiss_community_dialog(page)
        expect(page.get_by_text("Join the Dagster community")).to_have_count(0)
        out_dir = Path(os.environ.get("MLOPS_SCREENSHOT_DIR") or served.tmp)
        shot = out_dir / "asset-graph.png"
        page.screenshot(path=str(shot))
        timings["graph"] = time.monotonic() - started
        page.context.browser.close()
    assert shot.stat().st_size > 20_000
    print("ui timings (s):", {name: round(seconds, 1) for name, seconds in timings.items()})
