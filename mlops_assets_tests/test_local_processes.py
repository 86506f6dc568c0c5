"""Stopping a local server by PID (lib/local_processes.py): the whole process group goes, strays included."""

from __future__ import annotations

import subprocess
import sys
import time

from mlops_assets.lib.local_processes import group_members, pid_alive, stop_process_tree

# A leader whose child double-forks a grandchild that re-parents away from the tree and ignores SIGTERM (as a run
# worker that outlives the process that launched it would).
LEADER = """
import subprocess, sys, time
stray = (
    "import os, signal, time\\nif os.fork(): os._exit(0)\\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\ntime.sleep(120)"
)
subprocess.Popen([sys.executable, "-c", stray])
time.sleep(120)
"""


def test_a_group_stop_takes_strays_that_left_the_tree_and_ignore_sigterm() -> None:
    leader = subprocess.Popen([sys.executable, "-c", LEADER], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while len(group_members(leader.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        members = group_members(leader.pid)
        assert len(members) == 2, members
        stray = next(member for member in members if member.pid != leader.pid)
        assert stray.ppid() != leader.pid  # not the leader's descendant any more
        stop_process_tree(leader.pid, timeout_s=2, process_group=True)
        leader.wait(timeout=5)
        assert not pid_alive(stray.pid) and group_members(leader.pid) == []
    finally:
        if leader.poll() is None:
            leader.kill()
