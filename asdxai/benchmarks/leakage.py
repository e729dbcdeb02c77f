"""Per-machine shortcut probes of a dataset: can global clip statistics find its anomalies?

A model comparison on a dataset is only worth something if the anomalies cannot be found
without a model. Two probes, both **per machine type** (pooling machine types hides a
shortcut in one of them), on :data:`STAT_NAMES`, fifteen global statistics of each clip:

* **unsupervised** (the trivial detector of SYNTH.md principle 5): the Mahalanobis distance
  of a test clip's statistics to the machine type's normal training clips (mean and
  Ledoit-Wolf covariance of the standardised statistics) is its anomaly score; AUC of
  anomalous vs normal test clips. A synthetic generator passes when it stays at or below
  :data:`MAX_UNSUPERVISED_AUC` on every machine type;
* **supervised**: a logistic regression on the test clips' statistics, cross-validated
  (stratified ``folds``-fold ``cross_val_predict``); AUC of its out-of-fold probabilities.
  It knows the labels, so it finds any consistent shift, also one a detector fitted on
  normal clips alone would not see.

Both also report, per statistic, the AUC of the statistic alone as an anomaly score
(``single``), which names the shortcut when a probe finds one.

The statistics of a clip ``x`` (samples as floats, mean removed):

====================  ========================================================================
level                 ``20 log10(rms)`` dB
crest                 ``20 log10(max|x| / rms)`` dB
kurtosis              ``log(E[x^4] / E[x^2]^2)``
zcr                   zero crossings per sample
centroid              spectral centroid of the mean power spectrum (kHz)
flatness              ``log`` (geometric / arithmetic mean) of the mean power spectrum
rolloff               frequency below which 85 % of the power lies (kHz)
band_1 ... band_8     share of the power (dB) in eight octave-spaced bands, edges
                      :data:`BAND_EDGES_HZ`
====================  ========================================================================

The mean power spectrum averages Hann-windowed 1024-sample frames (hop 512), the grid of
the models' input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .._atomic import atomic_write_text
from .._checks import Integral, Interval, check_params
from ..data.records import ClipRecord, scan
from ..errors import DataError
from ..metrics import auc

STAT_NAMES = (
    "level",
    "crest",
    "kurtosis",
    "zcr",
    "centroid",
    "flatness",
    "rolloff",
    *(f"band_{k}" for k in range(1, 9)),
)
BAND_EDGES_HZ = (0.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 3000.0, 5000.0, 8000.0)
MAX_UNSUPERVISED_AUC = 0.60  # SYNTH.md principle 5, on every machine type
_N_FFT, _HOP = 1024, 512


def clip_statistics(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Global statistics of one clip, in the order of :data:`STAT_NAMES`.

    Parameters
    ----------
    x : np.ndarray [shape=(L,)] float, the samples (L >= 1024)
    sample_rate : int, Hz

    Returns
    -------
    np.ndarray [shape=(15,)] float64
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    power = np.mean(x**2) + 1e-20
    rms = np.sqrt(power)
    frames = np.lib.stride_tricks.sliding_window_view(x, _N_FFT)[::_HOP]
    spec = np.mean(np.abs(np.fft.rfft(frames * np.hanning(_N_FFT), axis=1)) ** 2, axis=0) + 1e-20
    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / sample_rate)
    total = spec.sum()
    cum = np.cumsum(spec) / total
    bands = [
        spec[(freqs >= lo) & (freqs < hi)].sum() / total
        for lo, hi in zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:], strict=True)
    ]
    return np.array(
        [
            10 * np.log10(power),
            20 * np.log10(np.abs(x).max() / rms + 1e-12),
            np.log(np.mean(x**4) / power**2),
            np.mean(np.signbit(x[1:]) != np.signbit(x[:-1])),
            (spec * freqs).sum() / total / 1000.0,
            np.mean(np.log(spec)) - np.log(np.mean(spec)),
            freqs[np.searchsorted(cum, 0.85)] / 1000.0,
            *(10 * np.log10(np.asarray(bands) + 1e-12)),
        ]
    )


def record_statistics(records: Sequence[ClipRecord]) -> np.ndarray:
    """:func:`clip_statistics` of every record's wav file, ``(N, 15)``."""
    out = []
    for r in records:
        x, sr = sf.read(r.path, dtype="float64", always_2d=True)
        out.append(clip_statistics(x[:, 0], sr))
    return np.array(out).reshape(len(out), len(STAT_NAMES))


@dataclass(frozen=True)
class MachineLeakage:
    """Probe results of one machine type.

    Attributes
    ----------
    machine : str
    unsupervised : float, AUC of the Mahalanobis detector fitted on normal training clips
    supervised : float, AUC of the cross-validated logistic regression on the test clips
    single : dict[str, float], AUC of each statistic alone (higher value = more anomalous)
    n_train, n_normal, n_anomaly : int, clips used
    """

    machine: str
    unsupervised: float
    supervised: float
    single: dict[str, float]
    n_train: int
    n_normal: int
    n_anomaly: int

    def shortcut(self) -> tuple[str, float]:
        """The statistic that separates best alone and its AUC folded to >= 0.5."""
        name = max(self.single, key=lambda k: abs(self.single[k] - 0.5))
        return name, max(self.single[name], 1.0 - self.single[name])


def probe_machine(
    train: np.ndarray,
    test: np.ndarray,
    labels: np.ndarray,
    *,
    machine: str = "",
    folds: int = 5,
    seed: int = 0,
) -> MachineLeakage:
    """Both probes on the statistics of one machine type.

    Parameters
    ----------
    train : np.ndarray [shape=(N_train, S)], statistics of normal training clips
    test : np.ndarray [shape=(N_test, S)], statistics of test clips
    labels : np.ndarray [shape=(N_test,)] bool, True = anomalous
    machine : str, name stored in the result
    folds : int, cross-validation folds of the supervised probe
    seed : int, shuffles the folds

    Returns
    -------
    :class:`MachineLeakage`
    """
    # scikit-learn on first use: its import costs ~3/4 of torch's (measured); most runs skip it
    from sklearn.covariance import LedoitWolf
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels, dtype=bool)
    n_anom = int(labels.sum())
    if min(n_anom, len(labels) - n_anom) < folds or len(train) < 2:
        raise DataError(
            f"{machine or 'machine'}: need >= {folds} normal and anomalous test clips and >= 2 "
            f"training clips, got {len(labels) - n_anom}, {n_anom} and {len(train)}",
            param="records",
        )
    mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-9
    cov = LedoitWolf().fit((train - mu) / sd)
    unsup = auc(labels, cov.mahalanobis((test - mu) / sd))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, test, labels, cv=cv, method="predict_proba")[:, 1]
    single = {name: auc(labels, test[:, k]) for k, name in enumerate(STAT_NAMES)}
    return MachineLeakage(
        machine,
        unsup,
        auc(labels, proba),
        single,
        len(train),
        len(labels) - n_anom,
        n_anom,
    )


def probe_tree(
    root: str | os.PathLike,
    *,
    train_split: str = "dev-train",
    test_split: str = "dev-test",
    machines: Sequence[str] | None = None,
    sections: Sequence[str] | None = None,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, MachineLeakage]:
    """Both probes per machine type of a DCASE-layout tree (labelled test split).

    Parameters
    ----------
    root : path of the tree
    train_split, test_split : splits of the normal training clips and the labelled test clips
    machines : machine types (None = every one in the tree)
    sections : section numbers as in the file names, e.g. ``["00"]`` (None = all)
    folds, seed : of the supervised probe (:func:`probe_machine`)

    Returns
    -------
    dict machine type -> :class:`MachineLeakage`, in the order the tree lists them
    """
    check_params({"folds": (Integral, Interval(2, None)), "seed": (Integral, Interval(0, None))},
                 folds=folds, seed=seed)  # fmt: skip
    keep = None if sections is None else set(sections)
    train = [
        r
        for r in scan(root, split=train_split, machines=machines)
        if keep is None or r.section in keep
    ]
    test = [
        r
        for r in scan(root, split=test_split, machines=machines)
        if keep is None or r.section in keep
    ]
    if any(r.label is None for r in test):
        raise DataError(f"{test_split} of {root} is not labelled", param="test_split")
    out = {}
    for machine in dict.fromkeys(r.machine for r in test):
        tr = [r for r in train if r.machine == machine]
        te = [r for r in test if r.machine == machine]
        out[machine] = probe_machine(
            record_statistics(tr),
            record_statistics(te),
            np.array([r.label == "anomaly" for r in te]),
            machine=machine,
            folds=folds,
            seed=seed,
        )
    return out


def leakage_table(results: dict[str, MachineLeakage]) -> str:
    """Markdown table of :func:`probe_tree`'s results, one row per machine type."""
    lines = [
        "| machine | unsupervised AUC | supervised AUC | best single statistic "
        "| clips (train / test) |",
        "|---|---|---|---|---|",
    ]
    for r in results.values():
        name, value = r.shortcut()
        lines.append(
            f"| {r.machine} | {r.unsupervised:.3f} | {r.supervised:.3f} | {name} {value:.3f} "
            f"| {r.n_train} / {r.n_normal + r.n_anomaly} |"
        )
    return "\n".join(lines) + "\n"


def write(
    results: dict[str, MachineLeakage], out: str | os.PathLike, *, command: str
) -> tuple[Path, Path]:
    """Write :func:`probe_tree`'s results as ``<out>.md`` (the table, the bound, the command)
    and ``<out>.json`` (every number, per-statistic AUCs included); return both paths."""
    stem = Path(out)
    worst = max(results.values(), key=lambda r: r.unsupervised)
    text = (
        "# Per-machine shortcut probes (SYNTH.md principle 5)\n\n"
        f"Command: `{command}`\n\n"
        f"{leakage_table(results)}\n"
        f"Bound on the unsupervised AUC: {MAX_UNSUPERVISED_AUC:.2f} on every machine type; "
        f"highest here: {worst.machine} {worst.unsupervised:.3f} "
        f"({'within' if worst.unsupervised <= MAX_UNSUPERVISED_AUC else 'above'} the bound).\n"
    )
    data = {m: asdict(r) for m, r in results.items()}
    md = atomic_write_text(stem.with_suffix(".md"), text)
    js = atomic_write_text(stem.with_suffix(".json"), json.dumps(data, indent=2) + "\n")
    return md, js
