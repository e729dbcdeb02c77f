"""The README's command-line block, run exactly as printed, in order, in a fresh folder.

The block between ``<!-- commands:begin -->`` and ``<!-- commands:end -->`` is what a new user
types; every ``asdxai`` line in it runs here unchanged (only ``x.wav``, "any clip of yours",
is provided: an anomalous clip of the generated tree), so the README cannot drift from the code.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from asdxai.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    block = text.split("<!-- commands:begin -->", 1)[1].split("<!-- commands:end -->", 1)[0]
    lines = [re.sub(r"\s+#.*$", "", ln).strip() for ln in block.splitlines()]
    return [shlex.split(ln)[1:] for ln in lines if ln.startswith("asdxai ")]


def test_readme_block_has_the_users_lines_word_for_word():
    commands = [" ".join(c) for c in readme_commands()]
    assert "rise --checkpoint model.pt --clip x.wav" in commands
    assert "tsne --split dev-test" in commands


@pytest.mark.filterwarnings("ignore")
def test_readme_commands_run_as_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ASDXAI_CHECKPOINT", raising=False)
    commands = readme_commands()
    synth = commands[0]
    assert synth[0] == "synth", "the block starts by generating the data the others use"
    assert main(synth) == 0
    data = Path(synth[1])
    monkeypatch.setenv("ASDXAI_DATA", str(data))  # the commands without --data use this tree
    clip = next((data / "dev_data" / "fan" / "test").glob("*anomaly*.wav"))
    shutil.copy(clip, "x.wav")
    for argv in commands[1:]:
        assert main(argv) == 0, " ".join(argv)
    out = capsys.readouterr().out
    assert Path("model.pt").is_file()
    assert sorted(Path("score").glob("anomaly_score_*.csv"))
    assert Path("rise/x.h5").is_file() and Path("rise/x.png").is_file()
    assert Path("tsne").is_dir() and sorted(Path("tsne").glob("*.png"))
    assert "masks/s measured" in out
