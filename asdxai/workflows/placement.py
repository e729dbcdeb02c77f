"""Place a clip whose name does not say its section: by what the model knows.

A checkpoint trained with a machine, section or attribute classifier (one model for all
sections) places the clip by its own prediction: the embedding's cosine to every class centre
(the loss's fixed centres, rebuilt from the checkpoint's seed), a softmax at the loss's scale
(the last adaptive scale of training, else AdaCos's fixed scale ``sqrt(2) log(C - 1)``), and
the class probabilities summed per section. Any other detector places it in the *nearest*
section -- the one whose references give the clip the lowest anomaly score -- among the
development sections (DCASE numbering: sections 00-02; evaluation sections only when
``include_eval``), with the same softmax over ``1 - score`` as confidence. Either way the
candidates are only the sections of the clip's machine type when its folder says it
(``<machine>/<train|test>/x.wav`` or ``<machine>/x.wav``) and only those of its section
number when its name says it.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import DataError
from ..losses import build_loss

if TYPE_CHECKING:
    from .explain import Explainer

log = logging.getLogger(__name__)

#: Below this probability a placement is reported as a guess, with how to name the section.
LOW_CONFIDENCE = 0.5
#: Tasks whose classes name (or start with) a machine type or a section key.
CLASSIFIER_TASKS = ("machine", "section", "attribute")
#: Development section numbers (DCASE 2020-2022 and the synthetic presets: 00-02 dev, 03+ eval).
DEV_SECTION_NUMBERS = ("00", "01", "02")


@dataclass(frozen=True)
class Placement:
    """Where a clip without a known section is explained, and how sure that is.

    Attributes
    ----------
    section : chosen section key, e.g. ``fan_section_00``
    confidence : probability of that section, in [0, 1]
    method : ``"classifier"`` (the checkpoint's own prediction) or ``"nearest"``
    candidates : number of sections that were considered
    machine : machine type the clip's folder names, or None
    """

    section: str
    confidence: float
    method: str
    candidates: int
    machine: str | None = None

    @property
    def low_confidence(self) -> bool:
        return self.confidence < LOW_CONFIDENCE

    def to_meta(self) -> dict:
        """The ``placement`` entry of a result's ``meta``."""
        return asdict(self)

    def message(self, clip: str | os.PathLike, reason: str, known: list[str]) -> str:
        """One log line: the choice, its confidence and (when unsure) how to choose another."""
        how = (
            "the model's own prediction"
            if self.method == "classifier"
            else "the section it is closest to (lowest anomaly score)"
        )
        where = f" of the {self.machine} sections" if self.machine else ""
        text = (
            f"{clip}: {reason}; explaining it in {self.section}, {how}{where}, "
            f"probability {self.confidence:.2f} among {self.candidates} section(s)"
        )
        if self.low_confidence:
            shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
            text += (
                f"; that is a guess: name the clip's section to explain it there (one of: {shown})"
            )
        return text


def folder_machine(clip: str | os.PathLike, sections: list[str]) -> str | None:
    """The machine type a clip's folder names (``<machine>/<train|test>/x.wav`` or
    ``<machine>/x.wav``) if the detector has sections of it, else None."""
    parent = Path(clip).resolve().parent
    machines = {s.rsplit("_section_", 1)[0] for s in sections}
    for name in (parent.parent.name if parent.name in _SPLIT_DIRS else None, parent.name):
        if name in machines:
            return name
    return None


_SPLIT_DIRS = ("train", "test", "supplemental")


def _softmax_scale(n: int) -> float:
    """AdaCos's fixed scale for ``n`` classes (at least that of 3, so 2 classes still separate)."""
    return math.sqrt(2.0) * math.log(max(n - 1, 2))


def _section_of(name: str, task: str, sections: list[str]) -> str | None:
    """The section key a class name belongs to (None for a machine class)."""
    if task == "machine":
        return None
    if task == "section":
        return name if name in sections else None
    owners = [s for s in sections if name.startswith(s + "_")]
    return max(owners, key=len) if owners else None


def has_classifier(explainer: Explainer) -> bool:
    """Whether the detector is an asdxai checkpoint whose one model was trained to tell
    machines or sections apart."""
    ckpt = getattr(explainer.detector.inner, "ckpt", None)
    return ckpt is not None and (
        ckpt.task in CLASSIFIER_TASKS
        and not ckpt.per_section
        and len(ckpt.class_names.get("all", [])) > 1
    )


def class_probabilities(explainer: Explainer, inputs) -> dict[str, float]:
    """The checkpoint classifier's probability of each class for one clip.

    Parameters
    ----------
    explainer : an :class:`~asdxai.workflows.explain.Explainer` with :func:`has_classifier`
    inputs : the clip's :class:`~asdxai.workflows.explain.ClipInputs`

    Returns
    -------
    dict class name -> probability (sums to 1)
    """
    ckpt = explainer.ckpt
    names = ckpt.class_names["all"]
    train = ckpt.train_config
    loss = build_loss(
        train.get("loss", "compactness"), len(names), int(ckpt.net.embed_dim),
        sub_clusters=int(train.get("sub_clusters", 16)), seed=int(ckpt.seed), mixup=True,
    )  # fmt: skip
    centres = loss.centres.to(explainer.device)  # (C, M, D)
    encoder = explainer.scorer.encoder_for(explainer.sections[0])
    with torch.no_grad():
        spec = inputs.spec[None]
        emb = encoder(spec) if inputs.spectrum is None else encoder(spec, inputs.spectrum)
        emb = torch.nn.functional.normalize(emb.float(), dim=-1)[0]  # (D,)
        cos = torch.einsum("cmd,d->cm", centres, emb)
    scales = [s for s in ckpt.history.get("all", {}).get("scale", []) if math.isfinite(s)]
    scale = scales[-1] if scales else _softmax_scale(len(names) * centres.shape[1])
    p = torch.softmax(scale * cos.flatten().double(), 0).reshape(cos.shape).sum(1)
    return {name: float(v) for name, v in zip(names, p.tolist(), strict=True)}


def section_scores(explainer: Explainer, wave: torch.Tensor, sections: list[str]
                   ) -> dict[str, float]:  # fmt: skip
    """Anomaly score of the clip ``wave`` [shape=(L,)] under each of ``sections`` (lower =
    closer), by the detector itself."""
    with torch.no_grad():
        return {key: float(explainer.detector.score(wave[None], key)[0]) for key in sections}


def _nearest(explainer, wave, sections: list[str]) -> tuple[str, float]:
    scores = section_scores(explainer, wave, sections)
    keys = list(scores)
    sim = torch.tensor([1.0 - scores[k] for k in keys], dtype=torch.float64)
    p = torch.softmax(_softmax_scale(len(keys)) * sim, 0)
    best = int(torch.argmax(p))
    return keys[best], float(p[best])


def place_clip(
    explainer: Explainer,
    clip: str | os.PathLike,
    *,
    number: str | None = None,
    include_eval: bool = False,
) -> Placement:
    """Choose the section to explain ``clip`` in, by what the detector knows.

    Parameters
    ----------
    explainer : the loaded detector (an :class:`~asdxai.workflows.explain.Explainer`)
    clip : wav file
    number : the section number its name gives (e.g. ``"01"``), or None
    include_eval : let the nearest-section rule choose evaluation sections (03 and up) too

    Returns
    -------
    Placement (see the module docstring for the rule)
    """
    sections = explainer.sections
    machine = folder_machine(clip, sections)
    pool = [s for s in sections if machine is None or s.startswith(machine + "_section_")]
    if number is not None:
        pool = [s for s in pool if s.endswith(f"_section_{number}")] or pool
    if not pool:
        raise DataError(f"{clip}: the detector has no section to explain it in")
    wave = explainer.read(clip)
    if has_classifier(explainer):
        probs = class_probabilities(explainer, explainer.inputs(clip))
        task = explainer.ckpt.task
        if task == "machine":
            types = {s.rsplit("_section_", 1)[0] for s in pool}
            kind = max(types, key=lambda m: probs.get(m, 0.0))
            within = [s for s in pool if s.startswith(kind + "_section_")]
            section, p_within = _nearest(explainer, wave, _dev(within, include_eval))
            return Placement(section, probs.get(kind, 0.0) * p_within, "classifier", len(pool),
                             machine)  # fmt: skip
        per_section = dict.fromkeys(pool, 0.0)
        for name, p in probs.items():
            key = _section_of(name, task, pool)
            if key is not None:
                per_section[key] += p
        section = max(per_section, key=per_section.__getitem__)
        return Placement(section, per_section[section], "classifier", len(pool), machine)
    candidates = _dev(pool, include_eval)
    section, p = _nearest(explainer, wave, candidates)
    return Placement(section, p, "nearest", len(candidates), machine)


def _dev(sections: list[str], include_eval: bool) -> list[str]:
    """The development sections among ``sections`` (all of them if none is, or if asked)."""
    if include_eval:
        return sections
    dev = [s for s in sections if s.rsplit("_section_", 1)[1] in DEV_SECTION_NUMBERS]
    return dev or sections
