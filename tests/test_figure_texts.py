"""Figures that stand alone: Fig. 4 says which clip, its label, the models and what the colours
mean; Fig. 5 shows the nearest-normal distances."""

import numpy as np
from matplotlib.collections import LineCollection

from asdxai.embed import run_tsne
from asdxai.features import FeatureConfig
from asdxai.plots.rise import clip_label, plot_importance_grid
from asdxai.plots.tsne import plot_tsne_panels, result_panel

FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)


def _texts(fig):
    out = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel()]
    return "\n".join(out)


def test_fig4_names_clip_label_models_and_colours():
    rng = np.random.default_rng(0)
    name = "section_00_source_test_anomaly_0003_x.wav"
    maps = {"SC-AdaCos": rng.random((49, 129)), "IC compactness": rng.random((49, 129))}
    rows = [(clip_label("fan", "00", name, label="anomaly"), rng.normal(size=(49, 129)), maps)]
    fig = plot_importance_grid(rows, cfg=FEAT, title="spectrogram-only twins (a, b)")
    text = _texts(fig)
    for needed in ("fan", "section 00", "anomaly", name, "SC-AdaCos", "IC compactness",
                   "spectrogram-only twins", "yellow", "blue"):  # fmt: skip
        assert needed in text, needed


def test_fig5_draws_and_states_the_nearest_normal_distances():
    rng = np.random.default_rng(0)
    labels = np.array(["normal"] * 40 + ["anomaly"] * 8)
    result = run_tsne(rng.normal(size=(48, 8)), {"label": labels})
    fig = plot_tsne_panels([result_panel(result, "model A")], ncols=1)
    lines = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 8
    assert f"{result.distances_2d.mean():.2f} (2-D)" in fig.axes[0].get_title()
