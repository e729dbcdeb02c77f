"""Interrupted ``asdxai synth`` (issue 27, slow): no pool worker outlives its parent.

Starts ``python -m asdxai synth --preset mini --workers 2`` in a subprocess, waits for the
first clips, then ends the parent with SIGTERM (one line, exit 143, the workers ended by the
pool) or SIGKILL (the kernel ends the workers: ``PR_SET_PDEATHSIG``). Run with
``pytest -m slow tests/slow``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="Linux")]
ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_an_interrupted_synth(sig, tmp_path):
    out = tmp_path / "tree"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    argv = ["-q", "synth", str(out), "--preset", "mini", "--workers", "2", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "asdxai", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list(out.rglob("*.wav")) and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    deadline = time.monotonic() + 10
    while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(w) for w in workers), [w for w in workers if not _gone(w)]
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and err.strip().splitlines() == ["asdxai synth: terminated"]
        assert not list(out.rglob("*.part"))
