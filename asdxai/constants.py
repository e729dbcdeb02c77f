"""Every choice list of the library, in one place that imports nothing heavy.

The library modules that use a list import it from here (the names stay importable from them
too), and the command line builds every ``choices=`` from here, so ``asdxai --help`` needs
neither torch nor the workflows (``tests/test_help.py`` checks both).
"""

from __future__ import annotations

#: Split names accepted by :func:`asdxai.data.records.scan` and on the command line.
SPLITS: tuple[str, ...] = ("dev-train", "dev-test", "eval-train", "eval-test")
#: Training splits a backend can be fitted on.
TRAIN_SPLITS: tuple[str, ...] = ("dev-train", "eval-train")
#: Auxiliary classification tasks (:func:`asdxai.data.records.class_labels`).
TASKS: tuple[str, ...] = ("none", "machine", "section", "attribute")
#: What the clip loader does with an unreadable clip.
ON_ERROR: tuple[str, ...] = ("raise", "skip")
#: Synthetic-data presets of :mod:`asdxai.data.synth` (``PRESETS`` holds their settings).
SYNTH_PRESETS: tuple[str, ...] = ("mini", "small", "full")
#: Presets the demo can run on (the bundled models know ``small``; ``mini`` needs training).
DEMO_PRESETS: tuple[str, ...] = ("mini", "small")

#: Training losses (:func:`asdxai.losses.build_loss`).
LOSSES: tuple[str, ...] = ("compactness", "compactness-cce", "adacos", "sc-adacos")
#: How the adaptive scale's ``theta_med`` reads a mixed-up clip's angle (:mod:`asdxai.losses`).
THETA_MEDS: tuple[str, ...] = ("closest", "reference")
#: Encoder architectures and their options (:mod:`asdxai.nets`).
ARCHS: tuple[str, ...] = ("dual", "spectrogram")
SPECTRUM_PADDINGS: tuple[str, ...] = ("same", "valid")
RESIDUALS: tuple[str, ...] = ("preact", "reference")
BATCH_NORMS: tuple[str, ...] = ("plain", "keras")
#: Numeric precisions of training and of RISE scoring.
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

#: Backend variants: ``name -> (domains k-means clusters, whether its means are re-normalised)``.
BACKEND_VARIANTS: dict[str, tuple[str, bool]] = {
    "paper": ("source", True),
    "reference": ("all", False),
    "source-raw-means": ("source", False),
    "all-unit-means": ("all", True),
}
#: The evaluation protocols: the study's own code, and the organisers' evaluator.
PROTOCOLS: tuple[str, ...] = ("study", "dcase")

#: RISE mask modes and the axes they randomise.
MASK_MODES: dict[str, tuple[bool, bool]] = {
    "separable": (True, True),  # M = t fᵀ (the study)
    "time": (True, False),  # M = t 1ᵀ: whole frames kept / masked
    "freq": (False, True),  # M = 1 fᵀ: whole frequency bins kept / masked (FreqRISE)
    "grid": (True, True),  # 2-D RISE: one grid of time x frequency cells, dense masks
}
#: Modes whose masks are not an outer product of factors (built and summed densely).
DENSE_MODES: frozenset[str] = frozenset({"grid"})
#: RISE estimators: the study's plain weighted mean, the centred one and the control variate
#: (same expectation; :mod:`asdxai.explain.rise`).
ESTIMATORS: tuple[str, ...] = ("plain", "centered", "cv")
#: The default estimator of a map: the control variate, which reaches a converged map in the
#: fewest forward passes (docs/results/rise_quality_small_g5_sc.md).
DEFAULT_ESTIMATOR = "cv"
#: Masks per reproducible block (a map stops only at a block boundary, after at least 4
#: blocks, and the cv estimator fits its surrogate across blocks): 250 lets a converged cv map
#: stop at about 1,750 passes (docs/results/rise_quality_small_g5_sc.md, measured in blocks of
#: 250); with blocks of 1,000 no default map could stop before 4,000.
DEFAULT_BLOCK_SIZE = 250
#: The default estimator of :data:`DENSE_MODES`, which the control variate cannot serve (it
#: needs the cell factors of separable / time / frequency masks).
DENSE_ESTIMATOR = "centered"


def default_estimator(mask_mode: str) -> str:
    """The default estimator for a mask mode of :data:`MASK_MODES`: :data:`DEFAULT_ESTIMATOR`,
    :data:`DENSE_ESTIMATOR` for the :data:`DENSE_MODES`."""
    return DENSE_ESTIMATOR if mask_mode in DENSE_MODES else DEFAULT_ESTIMATOR

#: How the uniforms of a block of RISE masks are drawn (every single mask keeps the study's
#: distribution; see :mod:`asdxai.explain.masks`).
SAMPLINGS: tuple[str, ...] = ("iid", "antithetic", "latin", "latin-antithetic")
#: The study's number of masks per map.
STUDY_MASKS = 640_000
#: The default stopping rule of a map: estimated correlation 0.99 with the converged map, i.e.
#: a split-half agreement of 0.99² / (2 − 0.99²) = 0.9610
#: (:func:`asdxai.explain.rise.estimated_correlation`).
DEFAULT_CORRELATION = 0.99
DEFAULT_STOP_AGREEMENT = round(DEFAULT_CORRELATION**2 / (2.0 - DEFAULT_CORRELATION**2), 4)
#: Where RISE applies masks: the detector's own time-frequency input, or the clip's STFT
#: (resynthesised, for any waveform detector).
DOMAINS: tuple[str, ...] = ("input", "signal")

#: Explanation method name -> (family, stochastic): family is "rise", "perturbation",
#: "gradient" or "baseline"; a stochastic method's map depends on its seed.
METHODS: dict[str, tuple[str, bool]] = {
    "rise-separable-plain": ("rise", True),
    "rise-separable": ("rise", True),
    "rise-time": ("rise", True),
    "rise-freq": ("rise", True),
    "rise-grid": ("rise", True),
    "rise-stft": ("rise", True),
    "occlusion": ("perturbation", False),
    "feature-ablation": ("perturbation", False),
    "saliency": ("gradient", False),
    "integrated-gradients": ("gradient", False),
    "gradient-shap": ("gradient", True),
    "kernel-shap": ("perturbation", True),
    "random": ("baseline", True),
    "energy": ("baseline", False),
}
#: What a removed cell becomes in the faithfulness measures.
FILLS: tuple[str, ...] = ("median", "zero")
#: Fills of normal content built from the normal training clips of the explained clip's section
#: (:func:`asdxai.explain.reference.normal_reference`): fill name -> reference kind.
NORMAL_FILLS: dict[str, str] = {"normal-mean": "mean", "normal-nearest": "nearest"}
