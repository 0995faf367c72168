"""The run command's supervisor (scripts/supervise.py over supervisord): a process that exits is restarted with
backoff while the others go on; stopping the supervisor stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.harness import ROOT, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_process_that_exits_is_restarted_and_the_others_go_on(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        f"crasher: echo started >> {tmp_path}/crasher.log && echo going down && sleep 0.5 && exit 3\n"
        f"steady: while true; do echo tick >> {tmp_path}/steady.log; sleep 0.2; done\n"
    )
    supervisor = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "supervise.py"), str(procfile), str(tmp_path / "state")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _lines(tmp_path / "crasher.log") >= 3, timeout=30, what="the crasher restarted twice")
        ticks = _lines(tmp_path / "steady.log")
        time.sleep(1)
        assert _lines(tmp_path / "steady.log") > ticks  # the other process went on
        assert supervisor.poll() is None
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
        output = supervisor.communicate(timeout=30)[0].decode()
    assert "crasher | going down" in output  # each line of output names its process
    stopped_at = _lines(tmp_path / "steady.log")
    time.sleep(0.6)
    assert _lines(tmp_path / "steady.log") == stopped_at  # every process stopped with the supervisor
