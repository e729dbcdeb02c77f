"""Nothing lost (issue 9): SIGKILL part-way, concurrent writers, torn writes.

Each test starts ``python -m asdxai`` in subprocesses on a tiny model (a few seconds each,
mostly interpreter start-up). Every output goes through :func:`asdxai._atomic.atomic_path`:
the bytes go to a hidden ``.<name>.<random>.part`` file next to the target, which is renamed
into place only once complete, so a killed run leaves at most such a hidden temp file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_faults import SR, TEST_NAME, _make_checkpoint, _make_tree, _tone

from asdxai.checkpoint import load_checkpoint
from asdxai.cli import main
from asdxai.data.audio import write_wav
from asdxai.explain.result import load_result

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _asdxai(*argv) -> list[str]:
    return [sys.executable, "-m", "asdxai", "-q", *[str(a) for a in argv]]


def _wait_for(predicate, proc, timeout=60.0, what="") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended ({proc.returncode}) before {what}: {err[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _rise_args(ckpt, clip, out, *extra):
    return ["rise", "--checkpoint", ckpt, "--clip", clip, "--out", out, "--block-size", "100",
            "--batch-size", "100", "--device", "cpu", "--no-progress", "--no-plot", "--study",
            *extra]  # fmt: skip


def _not_temp(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".part"))


def test_rise_killed_then_resumed_equals_uninterrupted(tmp_path):
    ckpt = _make_checkpoint(tmp_path / "model.pt")
    clip = write_wav(tmp_path / "fan" / "test" / TEST_NAME, _tone(), SR)
    out = tmp_path / "out"
    h5 = out / "fan" / (clip.stem + ".h5")
    argv = _rise_args(ckpt, clip, out, "--n-masks", "500000", "--checkpoint-every", "300")
    proc = subprocess.Popen(_asdxai(*argv), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(h5.is_file, proc, what="the first partial .h5")
    time.sleep(0.3)
    _kill(proc)
    partial = load_result(h5)  # whatever the kill interrupted, the file under the name is whole
    assert not partial.complete and 0 < partial.n_masks < 500_000
    assert _not_temp(h5.parent) == [h5.name]  # at most hidden .part files besides it

    n = partial.n_masks + 700  # resume to a little further than the kill point
    assert main([str(a) for a in _rise_args(ckpt, clip, out, "--n-masks", n)]) == 0  # continues
    fresh = tmp_path / "fresh"
    assert main([str(a) for a in _rise_args(ckpt, clip, fresh, "--n-masks", n)]) == 0
    a, b = load_result(h5), load_result(fresh / "fan" / h5.name)
    assert a.complete and a.n_masks == b.n_masks >= n
    np.testing.assert_allclose(a.importance, b.importance, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(a.sum_even + a.sum_odd, b.sum_even + b.sum_odd)


def test_train_killed_leaves_no_checkpoint_and_reruns_cleanly(tmp_path):
    tree = _make_tree(tmp_path / "tree")
    out = tmp_path / "models" / "model.pt"
    argv = ["train", "--data", tree, "--out", out, "--width", "0.125", "--arch", "spectrogram",
            "--loss", "compactness", "--classes", "none", "--batch-size", "3", "--device", "cpu",
            "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(_asdxai(*argv, "--epochs", "100000"), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    line = proc.stdout.readline()  # blocks until the first epoch is reported
    assert "epoch 1/100000" in line, line + proc.stderr.read()
    _kill(proc)
    assert not out.exists()  # nothing under the final name
    # a rerun completes and its file loads; no temp file is left
    assert main([str(a) for a in [*argv, "--epochs", "2"]]) == 0
    ckpt = load_checkpoint(out)
    assert len(ckpt.history["all"]["angular"]) == 2
    assert _not_temp(out.parent) == ["model.pt"] and sorted(os.listdir(out.parent)) == ["model.pt"]


def test_kill_during_checkpoint_save_keeps_the_previous_file(tmp_path):
    """SIGKILL in the middle of writing: the old checkpoint stays, the torn bytes are a .part."""
    path = _make_checkpoint(tmp_path / "model.pt")
    before = path.read_bytes()
    script = f"""
import os, signal, torch
from asdxai.checkpoint import load_checkpoint, save_checkpoint
ckpt = load_checkpoint({str(path)!r})
def torn_save(obj, f, *a, **k):
    with open(f, "wb") as fh:
        fh.write(b"PK\\x03\\x04 half a checkpoint")
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = torn_save
save_checkpoint(ckpt, {str(path)!r})
"""
    proc = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before and load_checkpoint(path).backend is not None
    temps = [p for p in tmp_path.iterdir() if p != path]
    assert len(temps) == 1 and temps[0].name.startswith(".model.pt.")
    assert temps[0].name.endswith(".part")


def test_concurrent_rise_and_score_into_one_folder(tmp_path):
    ckpt = _make_checkpoint(tmp_path / "model.pt")
    clips = [
        write_wav(tmp_path / "fan" / "test" / TEST_NAME, _tone(), SR),
        write_wav(tmp_path / "fan" / "test" / TEST_NAME.replace("0000", "0001"), _tone(f0=700), SR),
    ]
    tree = _make_tree(tmp_path / "tree")
    shared, score_out = tmp_path / "shared", tmp_path / "score_shared"
    score = ["score", "--checkpoint", ckpt, "--data", tree, "--out", score_out, "--device",
             "cpu", "--no-progress", "--protocol", "study", "--seed", "1"]  # fmt: skip
    procs = [
        subprocess.Popen(
            _asdxai(*_rise_args(ckpt, c, shared, "--n-masks", "2000", "--seed", "3")),
            env=ENV,
            stderr=subprocess.PIPE,
        )
        for c in clips
    ] + [subprocess.Popen(_asdxai(*score), env=ENV, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    # each result equals the same command run alone
    for c in clips:
        alone = tmp_path / f"alone_{c.stem}"
        assert main([str(a) for a in _rise_args(ckpt, c, alone, "--n-masks", "2000", "--seed",
                                                "3")]) == 0  # fmt: skip
        np.testing.assert_array_equal(
            load_result(shared / "fan" / (c.stem + ".h5")).importance,
            load_result(alone / "fan" / (c.stem + ".h5")).importance,
        )
    alone = tmp_path / "score_alone"
    i = score.index(score_out)
    assert main([str(a) for a in [*score[:i], alone, *score[i + 1 :]]]) == 0
    files = sorted(p.name for p in alone.iterdir())
    assert sorted(os.listdir(score_out)) == files  # no temp files left behind
    for name in files:
        if name != "score.json":
            assert (score_out / name).read_bytes() == (alone / name).read_bytes(), name
    shutil.rmtree(tmp_path / "tree")
