"""What a long step tells the user: a bar while synthetic clips are generated, and no
temporary path in any message."""

import logging

from asdxai.data.synth import PresetConfig
from asdxai.workflows.defaults import ensure_synthetic


def test_generation_shows_a_bar_and_names_no_temporary_folder(tmp_path, capsys, caplog):
    tiny = PresetConfig("tiny", machines=("fan",), dev_sections=(0,), eval_sections=(3,),
                        duration_s=1.0, n_train_source=2, n_train_target=1, n_test=2)  # fmt: skip
    root = tmp_path / "tree"
    with caplog.at_level(logging.INFO):
        assert (
            ensure_synthetic(root, preset=tiny, seed=0, splits=("dev-test",), progress=True) == root
        )
    err = capsys.readouterr().err
    assert "synth:" in err and "clip" in err  # the per-clip bar
    assert str(root) in err
    assert "partial" not in err + caplog.text
    assert (root / "synth.json").is_file()
