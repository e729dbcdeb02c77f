"""Tests of asdxai.embed (projection, nearest-normal distances, report, cache, result files)
and asdxai.plots.tsne. Small N and few iterations: the whole file runs in seconds."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy.spatial.distance import cdist

from asdxai import ConfigError, DataError, ResultError
from asdxai.embed import (
    TSNEConfig,
    leave_one_out_distances,
    load_result,
    nearest_normal_distances,
    project,
    reference_embedding,
    run_tsne,
    save_result,
    separation_auc,
    separation_report,
    transform,
    trial_table,
    write_distances_csv,
)
from asdxai.embedding_cache import EmbeddingCache
from asdxai.plots.tsne import plot_tsne, plot_tsne_panels, save_figure

FAST = TSNEConfig(n_iter=150, early_exaggeration_iter=100, perplexity=15, seed=3)


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _clusters(n=240, k=4, dim=32, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((k, dim)))
    labels = np.arange(n) % k
    x = _unit(centres[labels] + noise * rng.standard_normal((n, dim)))
    return x.astype(np.float32), labels


def _meta(n, is_anomaly, rng=None):
    machines = np.array(["fan", "valve"])[np.arange(n) // 4 % 2]
    return {
        "path": [f"/d/clip_{i:04d}.wav" for i in range(n)],
        "machine": machines,
        "section": [f"{m}_section_00" for m in machines],
        "domain": np.array(["source", "target", None], dtype=object)[np.arange(n) % 3],
        "label": np.where(is_anomaly, "anomaly", "normal"),
    }


@pytest.fixture(scope="module")
def separated():
    """Normal clips in three tight clusters, anomalous clips in a fourth one far away."""
    x, labels = _clusters(n=200, k=4)
    return x, labels, labels == 3


@pytest.fixture(scope="module")
def projected(separated):
    x, _, _ = separated
    return project(x, cfg=FAST)


# ---------------------------------------------------------------------------- distances
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("dim", [2, 16])
def test_nearest_normal_distances_match_brute_force(metric, dim):
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((150, dim))
    anom = rng.random(150) < 0.3
    d, idx = nearest_normal_distances(x, anom, metric=metric, return_index=True)
    full = cdist(x[anom], x[~anom], metric=metric)
    np.testing.assert_allclose(d, full.min(axis=1), rtol=1e-7, atol=1e-9)
    normal_idx = np.flatnonzero(~anom)
    np.testing.assert_array_equal(idx, normal_idx[full.argmin(axis=1)])


def test_leave_one_out_distances_match_brute_force():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 2))
    x[5] = x[6]  # exact duplicate normals: each other's nearest, distance 0
    anom = np.zeros(80, bool)
    anom[40:] = True
    d = leave_one_out_distances(x, anom)
    full = cdist(x, x[~anom])
    full[np.arange(40), np.arange(40)] = np.inf  # a normal point is not its own neighbour
    np.testing.assert_allclose(d, full.min(axis=1), atol=1e-12)
    assert d[5] == d[6] == 0.0


def test_separation_auc_is_one_for_separated_and_half_for_random(separated):
    x, _, anom = separated
    assert separation_auc(x, anom, metric="cosine") > 0.99
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((2000, 8))
    assert abs(separation_auc(noise, rng.random(2000) < 0.5) - 0.5) < 0.05


@pytest.mark.parametrize(
    "anom, match",
    [
        (np.zeros(10, bool), "no anomalous"),
        (np.ones(10, bool), "no normal"),
        (np.zeros(9, bool), "shape"),
    ],
)
def test_nearest_normal_bad_input(anom, match):
    with pytest.raises(DataError, match=match):
        nearest_normal_distances(np.zeros((10, 2)), anom)


def test_bad_points_raise():
    with pytest.raises(DataError, match="2-D array"):
        nearest_normal_distances(np.zeros(10), np.zeros(10, bool))
    with pytest.raises(DataError, match="at least 1"):
        nearest_normal_distances(np.zeros((0, 2)), np.zeros(0, bool))
    with pytest.raises(DataError, match="NaN"):
        nearest_normal_distances(np.full((4, 2), np.nan), np.array([0, 1, 0, 1], bool))


# ---------------------------------------------------------------------------- projection
def test_projection_deterministic_for_fixed_seed(separated, projected):
    x, _, _ = separated
    again = project(x, cfg=FAST)
    np.testing.assert_array_equal(np.asarray(projected), np.asarray(again))
    assert projected.shape == (len(x), 2)


def test_separated_clusters_knn_accuracy_in_2d(separated, projected):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    _, labels, _ = separated
    acc = cross_val_score(KNeighborsClassifier(10), np.asarray(projected), labels, cv=5).mean()
    assert acc > 0.95


def test_transform_places_points_near_their_cluster(separated, projected):
    x, labels, _ = separated
    new = _unit(x[:20] + 0.01 * np.random.default_rng(0).standard_normal(x[:20].shape))
    y = transform(projected, new)
    assert y.shape == (20, 2)
    centroids = np.stack([np.asarray(projected)[labels == k].mean(0) for k in range(4)])
    assert (cdist(y, centroids).argmin(1) == labels[:20]).mean() >= 0.9
    # The same via a reference rebuilt from stored arrays (what --transform REF.h5 does).
    ref = reference_embedding(x, np.asarray(projected), cfg=FAST)
    y2 = transform(ref, new)
    assert (cdist(y2, centroids).argmin(1) == labels[:20]).mean() >= 0.9
    with pytest.raises(DataError, match="dimension"):
        transform(projected, new[:, :5])


def test_tiny_input_lowers_perplexity_and_rejects_too_few():
    x, _ = _clusters(n=12, k=2, dim=8)
    assert project(x, cfg=FAST).shape == (12, 2)
    with pytest.raises(DataError, match="at least 4"):
        project(x[:3], cfg=FAST)


@pytest.mark.parametrize(
    "kw",
    [
        {"perplexity": 0},
        {"learning_rate": "fast"},
        {"initialization": "umap"},
        {"metric": "manhattan"},
        {"n_iter": -1},
    ],
)
def test_config_validates(kw):
    with pytest.raises(ConfigError):
        TSNEConfig(**kw)


def test_config_round_trip():
    cfg = TSNEConfig(perplexity=12.5, learning_rate=200.0, seed=7)
    assert TSNEConfig.from_dict(cfg.to_dict() | {"future": 1}) == cfg


# ---------------------------------------------------------------------------- report
def test_separation_report_groups(separated, projected):
    x, _, anom = separated
    meta = _meta(len(x), anom)
    rows = separation_report(meta, np.asarray(projected), x)
    overall = rows[0]
    assert overall["group_by"] == "all"
    assert overall["n_anomaly"] == anom.sum() and overall["n_normal"] == (~anom).sum()
    d2 = nearest_normal_distances(np.asarray(projected), anom)
    assert overall["mean_dist_2d"] == pytest.approx(d2.mean())
    de = nearest_normal_distances(x, anom, metric="cosine")
    assert overall["mean_dist_embedding"] == pytest.approx(de.mean(), rel=1e-5)
    assert overall["auc_embedding"] > 0.99
    groups = {(r["group_by"], r["group"]) for r in rows}
    assert {
        ("machine", "fan"),
        ("machine", "valve"),
        ("domain", "source"),
        ("domain", "target"),
        ("section", "fan_section_00"),
    } <= groups
    assert ("domain", "") not in groups  # unknown domains are not a group
    fan = next(r for r in rows if r["group"] == "fan")
    sel = (np.arange(len(x)) // 4 % 2 == 0)[anom]
    assert 0 < sel.sum() < anom.sum()
    assert fan["mean_dist_2d"] == pytest.approx(d2[sel].mean())


@pytest.mark.parametrize(
    "labels, match",
    [
        (["normal"] * 10, "no anomalous"),
        (["anomaly"] * 10, "no normal"),
        (["normal"] * 9 + [None], "no normal/anomaly label"),
        ([], "at least 1|empty"),
    ],
)
def test_report_bad_labels(labels, match):
    n = len(labels)
    with pytest.raises(DataError, match=match):
        run_tsne(np.ones((n, 4)), {"label": labels}, cfg=FAST)


def test_trial_table():
    rows = trial_table({"IC (1)": [0.48, 0.49, 0.485], "AdaCos (342)": [2.9]})
    assert rows[0]["mean"] == pytest.approx(0.485)
    assert rows[0]["std"] == pytest.approx(np.std([0.48, 0.49, 0.485]))
    assert rows[0]["text"] == "0.485 ± 0.004"
    assert rows[1]["std"] == 0.0


# ---------------------------------------------------------------------------- result files
def test_result_h5_and_csv_round_trip(tmp_path, separated):
    x, _, anom = separated
    res = run_tsne(x, _meta(len(x), anom), cfg=FAST, name="ic-none")
    res.checkpoint = {"path": "/m/model.pt", "sha256": "ab" * 32}
    res.provenance = {"asdxai_version": "0.1.0"}
    path = save_result(res, tmp_path / "r.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["r.h5"]  # no temp file left behind
    back = load_result(path)
    np.testing.assert_array_equal(back.embeddings, res.embeddings)
    np.testing.assert_array_equal(back.projection, res.projection)
    np.testing.assert_array_equal(back.distances_2d, res.distances_2d)
    np.testing.assert_array_equal(back.nearest_normal_2d, res.nearest_normal_2d)
    for k in res.meta:
        assert list(back.meta[k]) == list(res.meta[k])
    assert back.config == FAST and back.name == "ic-none"
    assert back.checkpoint == res.checkpoint and back.provenance == res.provenance
    assert back.report[0]["mean_dist_2d"] == pytest.approx(res.mean_distance)
    with h5py.File(path) as f:
        assert f.attrs["seed"] == FAST.seed

    write_distances_csv(back, tmp_path / "d.csv")
    with open(tmp_path / "d.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == anom.sum()
    np.testing.assert_allclose([float(r["dist_2d"]) for r in rows], res.distances_2d, rtol=1e-5)
    assert all(r["nearest_normal_path"] in set(res.meta["path"][~anom]) for r in rows)


def test_load_result_rejects_other_files(tmp_path):
    with pytest.raises(ResultError, match="no such"):
        load_result(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ResultError, match="unreadable"):
        load_result(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ResultError, match="not an asdxai t-SNE result"):
        load_result(tmp_path / "other.h5")


# ---------------------------------------------------------------------------- cache
def test_cache_hit_skips_embedding_and_changed_checkpoint_invalidates(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights v1")
    clips = []
    for i in range(5):
        p = tmp_path / f"c{i}.wav"
        p.write_bytes(bytes([i]) * 10)
        clips.append(p)
    calls = []

    def fake_embed():
        calls.append(1)
        return np.full((5, 3), len(calls), dtype=np.float32)

    cache = EmbeddingCache(tmp_path / "cache.h5")
    a = cache.get_or_compute(ckpt, clips, fake_embed)
    b = EmbeddingCache(tmp_path / "cache.h5").get_or_compute(ckpt, clips, fake_embed)
    assert len(calls) == 1
    np.testing.assert_array_equal(a, b)

    ckpt.write_bytes(b"weights v2")  # a retrained checkpoint
    c = cache.get_or_compute(ckpt, clips, fake_embed)
    assert len(calls) == 2 and c[0, 0] == 2
    cache.get_or_compute(ckpt, clips[:4], lambda: fake_embed()[:4])  # another clip list
    assert len(calls) == 3
    (tmp_path / "c0.wav").write_bytes(b"changed audio!")  # a changed clip
    cache.get_or_compute(ckpt, clips, fake_embed)
    assert len(calls) == 4
    assert cache.hits == 0 and cache.misses == 4
    cache.get_or_compute(ckpt, clips, fake_embed)  # unchanged since the last call: a hit
    assert len(calls) == 4 and cache.hits == 1


def test_cache_keeps_at_most_max_entries_and_survives_corruption(tmp_path):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    clips = [ckpt]
    cache = EmbeddingCache(tmp_path / "cache.h5", max_entries=2)
    for i in range(4):
        cache.put(f"k{i}", np.full((1, 2), i))
    with h5py.File(tmp_path / "cache.h5") as f:
        assert sorted(f) == ["k2", "k3"]
    (tmp_path / "cache.h5").write_bytes(b"garbage")
    out = cache.get_or_compute(ckpt, clips, lambda: np.ones((1, 2)))
    assert out.shape == (1, 2)
    assert cache.get_or_compute(ckpt, clips, lambda: pytest.fail("re-embedded")).shape == (1, 2)


def test_cache_rejects_wrong_shape(tmp_path):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(DataError, match="shape"):
        EmbeddingCache(tmp_path / "c.h5").get_or_compute(ckpt, [ckpt], lambda: np.ones((2, 2)))


# ---------------------------------------------------------------------------- plots
def test_plots_return_figures_and_write_png(tmp_path, separated, projected):
    x, _, anom = separated
    pts = np.asarray(projected)
    fig = plot_tsne(pts, anom, title="IC compactness (1)")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert not ax.axison
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("normal" in t for t in texts) and any("anomalous" in t for t in texts)
    fig2 = plot_tsne(pts, anom, color_by=_meta(len(x), anom)["domain"], background=pts[:10])
    texts = [t.get_text() for t in fig2.axes[0].get_legend().get_texts()]
    assert {"source", "target", "unknown", "normal", "anomalous", "reference"} <= set(texts)
    panels = plot_tsne_panels([(pts, anom, f"model {i}") for i in range(4)], ncols=3)
    assert isinstance(panels, Figure) and len(panels.axes) == 6
    assert panels.axes[0].get_title().startswith("(a) ")
    for name, f in {"one.png": fig, "two.png": fig2, "panels.png": panels}.items():
        save_figure(f, tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_bad_input():
    with pytest.raises(DataError):
        plot_tsne(np.zeros((5, 3)), np.zeros(5, bool))
    with pytest.raises(DataError):
        plot_tsne(np.zeros((5, 2)), np.zeros(4, bool))
    with pytest.raises(DataError):
        plot_tsne_panels([])
