"""Metrics against scikit-learn / scipy, hand-computed examples, and the organisers' files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from asdxai.errors import ConfigError, DataError
from asdxai.metrics import (
    MeanStd,
    auc,
    evaluate,
    format_csv,
    format_latex,
    format_markdown,
    format_terminal,
    harmonic_mean,
    pauc,
    performance_row,
    read_dcase_file,
    trials_table,
    write_dcase_files,
    write_tables,
)


@dataclass(frozen=True)
class Rec:  # duck-typed stand-in for ClipRecord (what metrics reads)
    machine: str
    section: str
    domain: str | None
    label: str | None
    index: int

    @property
    def section_key(self) -> str:
        return f"{self.machine}_section_{self.section}"

    @property
    def name(self) -> str:
        return f"section_{self.section}_{self.domain}_test_{self.label}_{self.index:04d}_a.wav"

    @property
    def path(self) -> Path:
        return Path("/x") / self.name


def _reference_pauc(y: np.ndarray, s: np.ndarray, max_fpr: float) -> float:
    """McClish-standardised partial AUC, written out with numpy only."""
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # one ROC point per distinct threshold (ties move together)
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(y)[last]
    fp = np.cumsum(1 - y)[last]
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (1 - y).sum()]
    keep = fpr <= max_fpr
    x, h = list(fpr[keep]), list(tpr[keep])
    if x[-1] < max_fpr:
        j = np.searchsorted(fpr, max_fpr, side="right")
        h.append(
            tpr[j - 1] + (tpr[j] - tpr[j - 1]) * (max_fpr - fpr[j - 1]) / (fpr[j] - fpr[j - 1])
        )
        x.append(max_fpr)
    area = float(np.trapezoid(h, x))
    lo, hi = 0.5 * max_fpr**2, max_fpr
    return 0.5 * (1.0 + (area - lo) / (hi - lo))


def test_hand_computed_auc_and_pauc():
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.9])
    # 7 of the 8 (anomaly, normal) pairs are ordered correctly
    assert auc(y, s) == pytest.approx(7 / 8)
    # ROC from (0,0) to (0,0.5) then flat to fpr 0.25: area over [0, 0.1] = 0.05;
    # McClish: 0.5 * (1 + (0.05 - 0.005) / (0.1 - 0.005)) = 14/19
    assert pauc(y, s) == pytest.approx(14 / 19)
    assert pauc(y, s, max_fpr=1.0) == pytest.approx(7 / 8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn_and_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=300)
    s = rng.normal(size=300) + 0.8 * y
    s[:40] = np.round(s[:40], 1)  # some ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    for max_fpr in (0.1, 0.05, 0.3):
        ref = _reference_pauc(y, s, max_fpr)
        assert pauc(y, s, max_fpr=max_fpr) == pytest.approx(
            roc_auc_score(y, s, max_fpr=max_fpr), abs=1e-12
        )
        assert pauc(y, s, max_fpr=max_fpr) == pytest.approx(ref, abs=1e-12)


def test_metric_errors():
    with pytest.raises(DataError, match="normal and anomalous"):
        auc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="length"):
        auc([0, 1], [0.1])
    with pytest.raises(DataError):
        auc([0, 2], [0.1, 0.3])
    with pytest.raises(ConfigError):
        pauc([0, 1], [0.1, 0.2], max_fpr=0)


def test_harmonic_mean_matches_scipy_and_clips():
    v = np.random.default_rng(0).uniform(0.1, 1, size=9)
    assert harmonic_mean(v) == pytest.approx(scipy.stats.hmean(v))
    eps = np.finfo(float).eps
    assert harmonic_mean([0.0, 1.0]) == pytest.approx(scipy.stats.hmean([eps, 1.0]))
    assert np.isnan(harmonic_mean([0.5, np.nan]))


def _hand_records():
    """Two sections; scores chosen so that the two protocols differ."""
    recs, scores = [], []

    def add(sec, dom, lab, vals):
        for v in vals:
            recs.append(Rec("fan", sec, dom, lab, len(recs)))
            scores.append(v)

    add("00", "source", "normal", [0.1, 0.4])
    add("00", "source", "anomaly", [0.3, 0.8])
    add("00", "target", "normal", [0.5, 0.2])
    add("00", "target", "anomaly", [0.15, 0.45])
    add("01", "source", "normal", [0.1])
    add("01", "source", "anomaly", [0.9])
    add("01", "target", "normal", [0.2])
    add("01", "target", "anomaly", [0.8])
    return recs, np.array(scores)


def test_study_protocol_by_hand():
    recs, s = _hand_records()
    ev = evaluate(recs, s, protocol="study")
    r0, r1 = ev.rows
    assert r0["section"] == "fan_section_00"
    assert r0["auc_source"] == pytest.approx(3 / 4)  # 0.3>0.1, 0.8>0.1, 0.8>0.4
    assert r0["auc_target"] == pytest.approx(1 / 4)  # only 0.45>0.2
    assert r1["auc_source"] == r1["auc_target"] == 1.0
    assert ev.summary["hmean_auc_target"] == pytest.approx(2 / (4 + 1))
    assert r0["n_normal_source"] == 2 and r0["n_anomaly_target"] == 2


def test_dcase_protocol_by_hand():
    recs, s = _hand_records()
    ev = evaluate(recs, s, protocol="dcase")
    r0, r1 = ev.rows
    # source: normals {0.1, 0.4} vs all anomalies {0.3, 0.8, 0.15, 0.45}: 1+2+1+2 = 6 of 8
    assert r0["auc_source"] == pytest.approx(6 / 8)
    # target: normals {0.5, 0.2} vs all anomalies: 1+2+0+1 = 4 of 8
    assert r0["auc_target"] == pytest.approx(4 / 8)
    # section pAUC: ranking 0.8(A) 0.5(N) ... -> tpr 1/4 up to fpr 0.1: area 0.025;
    # McClish 0.5 * (1 + 0.02 / 0.095) = 23/38
    assert r0["pauc"] == pytest.approx(23 / 38)
    assert r1["auc_source"] == r1["auc_target"] == r1["pauc"] == 1.0
    official = 6 / (4 / 3 + 2 + 38 / 23 + 3)
    assert ev.summary["official_score"] == pytest.approx(official)
    assert ev.summary["hmean_auc_target"] == pytest.approx(2 / (2 + 1))
    assert ev.table_rows()[-1]["section"] == "harmonic mean"


def test_dcase_overall_figures_under_the_organisers_names():
    """Overall AUC = h-mean of every source and target AUC (not of whole-section AUCs)."""
    recs, s = _hand_records()
    ev = evaluate(recs, s, protocol="dcase")
    # AUCs: section 00 source 6/8, target 4/8; section 01 both 1; pAUCs 23/38 and 1
    assert ev.summary["overall_hmean_auc"] == pytest.approx(4 / (4 / 3 + 2 + 1 + 1))
    assert ev.summary["overall_amean_auc"] == pytest.approx((6 / 8 + 4 / 8 + 2) / 4)
    assert ev.summary["overall_hmean_pauc"] == pytest.approx(2 / (38 / 23 + 1))
    assert ev.summary["overall_amean_pauc"] == pytest.approx((23 / 38 + 1) / 2)
    assert ev.summary["overall_hmean_auc"] != pytest.approx(ev.summary["hmean_auc_all"])
    text = ev.official_lines(digits=4)
    assert text.splitlines()[0] == f"official score: {ev.summary['official_score']:.4f}"
    assert (
        "harmonic mean over all machine types, sections, and domains: "
        f"AUC {ev.summary['overall_hmean_auc']:.4f}, pAUC {ev.summary['overall_hmean_pauc']:.4f}"
    ) in text
    assert f"harmonic mean (target): AUC {2 / 3:.4f}" in text
    assert evaluate(recs, s, protocol="study").official_lines() == ""
    row = performance_row("m", ev.summary)
    assert "AUC h-mean over all machine types" in format_terminal([row])


def test_evaluate_needs_labels():
    recs, s = _hand_records()
    recs[0] = Rec("fan", "00", "source", None, 0)
    with pytest.raises(DataError, match="ground truth"):
        evaluate(recs, s)
    with pytest.raises(ConfigError):
        evaluate(_hand_records()[0], s, protocol="other")


def test_trials_table_and_writers(tmp_path):
    sums = [{"hmean_auc_source": a, "hmean_auc_target": b} for a, b in [(0.8, 0.6), (0.9, 0.7)]]
    t = trials_table(sums)
    assert t["hmean_auc_source"].mean == pytest.approx(0.85)
    assert t["hmean_auc_source"].std == pytest.approx(0.05)
    assert str(t["hmean_auc_target"]) == "0.6500 ± 0.0500"
    rows = [performance_row("IC, 1 class", t), performance_row("single", sums[0])]
    assert rows[0]["auc_source"] == t["hmean_auc_source"]
    csv_text = format_csv(rows)
    assert csv_text.splitlines()[0] == "model,auc_source,auc_source_std,auc_target,auc_target_std"
    assert "$0.8500 \\pm 0.0500$" in format_latex(rows)
    assert "| IC, 1 class | 0.8500 ± 0.0500 |" in format_markdown(rows)
    assert "AUC source" in format_terminal(rows)
    paths = write_tables(rows, tmp_path / "table")
    assert [p.name for p in paths] == ["table.csv", "table.md", "table.tex"]
    assert paths[0].read_text() == csv_text
    assert isinstance(t["hmean_auc_source"], MeanStd)


def test_dcase_files_round_trip(tmp_path):
    recs, s = _hand_records()
    s = s + 1e-9 * np.arange(s.size)  # full precision must survive
    paths = write_dcase_files(
        tmp_path, recs, s, thresholds={"fan_section_00": 0.35, "fan_section_01": 0.5}
    )
    assert [p.name for p in paths] == [
        "anomaly_score_fan_section_00_test.csv",
        "decision_result_fan_section_00_test.csv",
        "anomaly_score_fan_section_01_test.csv",
        "decision_result_fan_section_01_test.csv",
    ]
    names, values = read_dcase_file(paths[0])
    assert names == [r.name for r in recs[:8]]
    np.testing.assert_array_equal(values, s[:8])
    first = paths[0].read_text().splitlines()[0]
    assert first.startswith(recs[0].name + ",")  # no header
    _, dec = read_dcase_file(paths[1])
    np.testing.assert_array_equal(dec, (s[:8] > 0.35).astype(float))
    assert not list(tmp_path.glob("*.part"))


GT = Path(__file__).parent / "data" / "dcase-names" / "dcase2023_eval_ground_truth"


@pytest.mark.skipif(not GT.is_dir(), reason="organisers' ground-truth fixtures missing")
def test_dcase_protocol_on_the_organisers_ground_truth_files():
    """Real DCASE2023 eval ground truth; reference = the evaluator's steps on sorted rows."""
    rng = np.random.default_rng(0)
    recs, scores = [], []
    ref_auc_s, ref_auc_t, ref_pauc = [], [], []
    for path in sorted((GT / "ground_truth_data").glob("ground_truth_*_section_00_test.csv")):
        machine = path.name.split("_")[2]
        names, y_true = read_dcase_file(path)
        dnames, y_domain = read_dcase_file(GT / "ground_truth_domain" / path.name)
        assert dnames == names
        y_pred = rng.normal(size=len(names)) + 0.7 * y_true
        order = np.argsort(names)  # the evaluator sorts rows by file name
        yt, yd, yp = y_true[order], y_domain[order], y_pred[order]
        for d, out in ((0, ref_auc_s), (1, ref_auc_t)):
            m = (yd == d) | (yt != 0)
            out.append(roc_auc_score(yt[m], yp[m]))
        ref_pauc.append(roc_auc_score(yt, yp, max_fpr=0.1))
        for n, lab, dom, s in zip(names, y_true, y_domain, y_pred, strict=True):
            label = "anomaly" if lab else "normal"
            recs.append(Rec(machine, "00", "target" if dom else "source", label, int(n[11:15])))
            scores.append(s)
    ev = evaluate(recs, np.array(scores), protocol="dcase")
    assert len(ev.rows) == 7
    np.testing.assert_allclose([r["auc_source"] for r in ev.rows], ref_auc_s, atol=1e-12)
    np.testing.assert_allclose([r["auc_target"] for r in ev.rows], ref_auc_t, atol=1e-12)
    np.testing.assert_allclose([r["pauc"] for r in ev.rows], ref_pauc, atol=1e-12)
    all_perf = np.array(ref_auc_s + ref_auc_t + ref_pauc)
    official = scipy.stats.hmean(np.maximum(all_perf, np.finfo(float).eps))
    assert ev.summary["official_score"] == pytest.approx(official, abs=1e-12)
