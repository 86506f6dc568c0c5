"""Local server processes, as the replay and the tests start them: a free port, a log's tail, a stop by PID.

Stopped by PID (and, for a process that leads its own session, by its process group), never by name, so nothing
else on the machine is touched.
"""

from __future__ import annotations

import os
import signal
import socket
from contextlib import suppress
from pathlib import Path

import psutil


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` of a log file, for an error message; "(no log)" when it cannot be read."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process_tree(pid: int, timeout_s: float = 20.0, process_group: bool = False) -> None:
    """SIGTERM ``pid`` and every descendant (listed before signalling), wait, then SIGKILL what is left.

    ``process_group``: ``pid`` leads its own session, so its group is signalled too; that reaches children that
    re-parented away from the tree (e.g. the run workers of ``dagster dev``'s daemon)."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    if process_group:
        known = {proc.pid for proc in procs}
        procs += [proc for proc in group_members(pid) if proc.pid not in known]
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    for proc in procs:
        with suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    if process_group:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for proc in alive:
        with suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    if process_group:
        # Members that joined the group after the listing (a run worker launched during the stop) got the group's
        # SIGKILL; wait until the kernel has taken them too, so the caller sees the group empty.
        psutil.wait_procs(group_members(pid), timeout=5)


def group_members(pgid: int) -> list[psutil.Process]:
    """The live processes (zombies excluded) of process group ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not count)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
