"""A command that fails leaves no output folder behind (unless it wrote something there)."""

import numpy as np
from conftest import tiny_checkpoint

from asdxai.cli import main
from asdxai.data.audio import write_wav
from asdxai.features import FeatureConfig

FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)


def test_a_failed_rise_leaves_no_empty_output_folder(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "m.pt", FEAT)
    clip = tmp_path / "data" / "fan" / "test" / "section_00_source_test_normal_0000_a.wav"
    clip.parent.mkdir(parents=True)
    write_wav(clip, 0.1 * np.ones(6400, dtype=np.float32), 16_000)
    out = tmp_path / "rise"
    base = ["rise", "--checkpoint", str(ckpt), "--clip", str(clip), "--out", str(out),
            "--n-masks", "50", "--study", "--device", "cpu", "--no-progress",
            "--no-plot"]  # fmt: skip
    assert main([*base, "--section", "pump_section_09"]) == 2
    assert "pump_section_09" in capsys.readouterr().err
    assert not out.exists()
    # a folder that was there before stays, and so does one the command wrote into
    out.mkdir()
    assert main([*base, "--section", "pump_section_09"]) == 2
    assert out.is_dir()
    out.rmdir()
    assert main(base) == 0 and any(out.rglob("*.h5"))
