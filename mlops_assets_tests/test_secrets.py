"""No credential is committed: every file git would commit is scanned for things that look like secrets.

Deploy files reference secrets by name (Kubernetes Secrets, Secrets Manager, TF_VAR_*), never by value; this test
keeps it that way. It scans tracked files plus untracked files that are not ignored (what the next commit may add),
and fails with file:line for each hit.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Patterns of credentials. Fragments are joined so this file never matches itself.
PATTERNS: dict[str, re.Pattern[str]] = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws_secret_access_key\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}\b"),
    "private key": re.compile("-----BEGIN" + r" (?:[A-Z]+ )*PRIVATE KEY" + "-----"),
    "literal password": re.compile(r"(?i)passw(?:or)?d\s*[:=]\s*[\"'][^\"'$<{\s][^\"'$]{3,}[\"']"),
    "literal secret or token": re.compile(
        r"(?i)\b(?:secret|token|api[_-]?key|auth[_-]?token)\s*[:=]\s*[\"'][A-Za-z0-9_\-+/=]{16,}[\"']"
    ),
    # A URL whose userinfo holds a literal password (placeholders such as <token> or ${VAR} are fine).
    "credentials in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@\"'<>\[\]]*:[^\s/@\"'<>$\[\]]{6,}@"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
}

# (path, pattern name) pairs that are known not to be secrets, with the reason. Keep it minimal.
ALLOWED: dict[tuple[str, str], str] = {}


def candidate_files() -> list[Path]:
    """Tracked files and untracked, not-ignored files; never a virtual environment (even one not yet ignored)."""
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        cwd=REPO_ROOT,
        check=True,
    )
    venvs = {p.parent for p in REPO_ROOT.glob("*/pyvenv.cfg")}
    files = []
    for name in sorted(set(proc.stdout.decode().split("\0")) - {""}):
        path = REPO_ROOT / name
        if path.is_file() and not any(venv in path.parents for venv in venvs):
            files.append(path)
    return files


def scan(path: Path) -> list[tuple[int, str]]:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return []  # binary
    hits = []
    for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        for name, pattern in PATTERNS.items():
            if pattern.search(line):
                hits.append((lineno, name))
    return hits


def test_no_credentials_in_committed_files() -> None:
    files = candidate_files()
    assert len(files) > 20, "git ls-files found almost nothing: is this a git checkout?"
    found = []
    for path in files:
        rel = path.relative_to(REPO_ROOT).as_posix()
        for lineno, name in scan(path):
            if (rel, name) not in ALLOWED:
                found.append(f"{rel}:{lineno}: looks like a {name}")
    assert found == [], "\n".join(found)


def test_patterns_catch_credentials(tmp_path: Path) -> None:
    # The scanner must have teeth: each sample (built at run time, so it is in no file) is reported.
    samples = {
        "AWS access key id": "aws_access_key_id = AKIA" + "ABCDEFGHIJKLMNOP",
        "private key": "-----BEGIN" + " RSA PRIVATE KEY" + "-----",
        "literal password": "password: " + '"hunter2hunter2"',
        "literal secret or token": "auth_token = " + '"' + "x" * 24 + '"',
        "credentials in a URL": "postgresql://dagster:" + "s3cretpw" + "@db.internal:5432/dagster",
        "GitHub token": "ghp_" + "a" * 36,
    }
    for name, line in samples.items():
        sample = tmp_path / "sample.txt"
        sample.write_text(line + "\n")
        assert (1, name) in scan(sample), name


def test_references_are_not_reported(tmp_path: Path) -> None:
    sample = tmp_path / "refs.yaml"
    sample.write_text(
        "\n".join(
            [
                "password = var.db_password",
                'postgresqlPassword: "${DAGSTER_PG_PASSWORD}"',
                "MLOPS_FEAST_ONLINE_STORE=rediss://:<token>@host:6379/0",
                "redis://[:password@]host:port[/db]",
                'password: "$(cat /run/secrets/pg)"',
            ]
        )
        + "\n"
    )
    assert scan(sample) == []
