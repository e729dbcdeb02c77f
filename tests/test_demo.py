import json

import pytest

from asdxai.data.synth import PresetConfig
from asdxai.demo import DEMO_MODELS, DemoSettings, run_demo


@pytest.mark.filterwarnings("ignore")
def test_demo_trains_scores_explains_and_projects_on_a_tiny_tree(tmp_path):
    tiny = PresetConfig(
        "tiny", machines=("fan", "valve"), dev_sections=(0,), eval_sections=(3,), duration_s=1.0,
        n_train_source=12, n_train_target=4, n_test=4,
    )  # fmt: skip
    settings = DemoSettings(device="cpu", train=True, epochs=1, width=0.125, max_masks=1000,
                            progress=False, preset=tiny)  # fmt: skip
    res = run_demo(tmp_path / "demo", settings=settings)
    names = {m.name for m in DEMO_MODELS}
    assert set(res.checkpoints) == set(res.rise_maps) == set(res.tsne) == names
    for path in [*res.checkpoints.values(), *res.tsne.values()]:
        assert path.is_file()
    maps = [p for paths in res.rise_maps.values() for p in paths]
    assert len(maps) == 2 * 2 and all(p.is_file() for p in maps)  # 2 clips x 2 models
    assert all(f.is_file() and f.stat().st_size > 0 for f in res.figures)
    assert "SC-AdaCos" in res.table and "IC compactness" in res.table
    summary = json.loads((res.out / "demo.json").read_text())["summary"]
    assert set(summary["measures"]) == names
    for per_clip in summary["measures"].values():
        for measures in per_clip.values():  # anomalous synthetic clips: every measure is known
            assert 0.0 <= measures["pixel_auc"] <= 1.0 and 0.5 <= measures["machine_focus"] <= 1.0
            assert -1.0 <= measures["machine_correlation"] <= 1.0
            # the energy-map baseline beside every measure; nothing beyond energy by definition
            assert 0.5 <= measures["energy_machine_focus"] <= 1.0
            assert measures["energy_machine_partial_r"] == 0.0
    assert set(summary["auc"]) == names
    assert (res.data / "synth.json").is_file()
