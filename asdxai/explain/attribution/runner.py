"""All methods on one input: maps, measures and costs in one call (:func:`compare_methods`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...data.components import ComponentTruth
from ...features import log_spectrogram
from .measures import faithfulness_measures, localisation_measures, stability
from .methods import METHODS, MethodMap, MethodSettings, Resynthesis, compute_map

ScoreFn = Callable[[torch.Tensor], torch.Tensor]

#: Cost measures recorded for every map.
COST = ("forward", "backward", "seconds", "peak_mb")


@dataclass(frozen=True)
class MeasureSettings:
    """What is measured of every map besides its localisation.

    Attributes
    ----------
    with_stability : compute a second map of every stochastic method (seed + 1) and the rank
        agreement of the two
    faithfulness : compute the faithfulness measures (about 140 forward passes per map)
    top_fraction : the kept share of Average Drop / Increase
    fill : what a removed cell becomes in the faithfulness measures (``"median"``, ``"zero"``
        or a (T, F) reference tensor)
    """

    with_stability: bool = True
    faithfulness: bool = True
    top_fraction: float = 0.2
    fill: str | torch.Tensor = "median"


@dataclass
class MethodResult:
    """One method's map of one input and every measure of it.

    Attributes
    ----------
    map : MethodMap, the map (seed ``seed``) and its cost
    measures : dict name -> float: the localisation and faithfulness measures, the cost
        (:data:`COST`) and ``stability`` (NaN for a deterministic method or without a second map)
    """

    map: MethodMap
    measures: dict[str, float]

    @property
    def method(self) -> str:
        return self.map.method


def compare_methods(
    score_fn: ScoreFn,
    spec: torch.Tensor,
    *,
    methods: Sequence[str] = tuple(METHODS),
    settings: MethodSettings | None = None,
    measures: MeasureSettings | None = None,
    seed: int = 0,
    anomaly_mask: np.ndarray | None = None,
    components: ComponentTruth | None = None,
    device: torch.device | str = "cpu",
    resynthesis: Resynthesis | None = None,
    on_method: Callable[[MethodResult], object] | None = None,
) -> list[MethodResult]:
    """Every method's map of ``spec`` with its localisation, faithfulness, cost and stability.

    Parameters
    ----------
    score_fn : the black box, Tensor [shape=(B, T, F)] -> Tensor [shape=(B,)], on ``device``
    spec : Tensor [shape=(T, F)], linear magnitude spectrogram
    methods : keys of :data:`~asdxai.explain.attribution.methods.METHODS`
    settings : :class:`MethodSettings`
    measures : :class:`MeasureSettings` (stability, faithfulness and how)
    seed : int, seed of the maps; a stochastic method's second map (stability) uses ``seed + 1``
    anomaly_mask : np.ndarray [shape=(T, F)] bool, the planted anomaly (None = unknown)
    components : the machine / background ground truth (None = unknown; see
        :func:`~asdxai.explain.attribution.measures.localisation_measures`)
    device : where the black box runs
    resynthesis : masks -> spectrograms of the resynthesised clip, for ``rise-stft``
        (:func:`~asdxai.explain.attribution.methods.stft_resynthesis`)
    on_method : called with each :class:`MethodResult` as soon as it is done

    Returns
    -------
    list of MethodResult, in the order of ``methods``
    """
    settings = settings or MethodSettings()
    what = measures or MeasureSettings()
    level_db, events = (None, None) if components is None else (components.level_db,
                                                                components.events)  # fmt: skip
    x = torch.as_tensor(spec).detach().to(device=device, dtype=torch.float32)
    kwargs = {"settings": settings, "device": device, "resynthesis": resynthesis}
    log_energy = log_spectrogram(x).cpu().numpy()
    out = []
    for method in methods:
        m = compute_map(method, score_fn, x, seed=seed, **kwargs)
        values = localisation_measures(
            m.importance, anomaly_mask, level_db=level_db, events=events, log_energy=log_energy
        )
        if what.faithfulness:
            values.update(
                faithfulness_measures(
                    score_fn,
                    x,
                    m.importance,
                    bands=settings.cells[1],
                    top_fraction=what.top_fraction,
                    fill=what.fill,
                    batch_size=settings.batch_size,
                )  # fmt: skip
            )
        values.update({k: float(getattr(m, k)) for k in COST})
        values["stability"] = math.nan
        if what.with_stability and METHODS[method][1]:
            other = compute_map(method, score_fn, x, seed=seed + 1, **kwargs)
            values["stability"] = stability(m.importance, other.importance)
        result = MethodResult(m, values)
        if on_method is not None:
            on_method(result)
        out.append(result)
    return out
