"""The four losses of the study (Defs. 1-4, Sec. IV-B), mixup and compactness monitors.

All losses work on unit-normalised embeddings ``emb (B, D)`` and soft labels ``labels (B, N)``
(rows sum to 1; one-hot without mixup). Class centres are fixed: drawn uniformly from
``[-1, 1]^D`` with a seeded ``torch.Generator``, projected to the unit sphere and stored as a
buffer (``centres``, shape ``(N, M, D)``), so they are saved with ``state_dict`` and never receive
gradients. Every loss is computed in float32 (also under autocast).

* ``"compactness"`` -- IC compactness loss (Def. 1): mean over the batch of
  ``sum_j l_j ||e - c_j||^2``.
* ``"compactness-cce"`` -- the same plus categorical cross-entropy of a bias-free linear softmax
  head on the embedding (the head is the loss module's only trainable parameter).
* ``"adacos"`` -- AdaCos (Def. 3): cross-entropy of ``softmax(s * cos(e, c_j))``, no margin,
  adaptive scale.
* ``"sc-adacos"`` -- sub-cluster AdaCos (Def. 4): ``M`` centres per class, class probability = sum
  of the softmax over all ``N * M`` centres (a log-sum-exp per class), adaptive scale.

Every loss can add an additive weight-decay term ``weight_decay * sum ||w||^2`` over parameters
passed to ``forward(..., params=...)`` (the study uses such a term with the compactness loss,
after Ruff et al.); it is not part of the value returned by :meth:`_Loss.data_term`.

**Adaptive scale schedule.** Step ``t = 0`` (the first training batch) uses the initial scale
``s_0``; every later training step ``t`` first updates the scale from the current batch with the
previous scale ``s_{t-1}`` (no gradient) and then uses ``s_t`` for that batch's loss, exactly as
in Defs. 3 and 4. In ``eval()`` mode the scale is not updated.

* AdaCos: ``s_t = log(B_avg) / cos(min(pi/4, theta_med))``, ``B_avg`` = batch mean of the summed
  ``exp(s_{t-1} cos(e_x, c_j))`` over the classes that are *not* ``x``'s class; with soft labels
  a class counts as "not x's class" when its label is < 1 (so with mixup both mixed classes
  count, as in the reference implementation; with hard labels this is Def. 3 exactly).
* SC-AdaCos: ``s_t = (f_max + log B_avg) / cos(min(pi/4, theta_med))`` with ``f_max`` the largest
  ``s_{t-1} cos(e, c)`` over the batch and all centres and ``B_avg`` the batch mean of
  ``sum over all centres exp(s_{t-1} cos(e, c) - f_max)``.
* ``theta_med``: the (lower) median over the batch of the *mixed-up angle*
  ``sum_j l_j theta_j(x)`` where
  ``theta_j(x)`` is the angle between ``e_x`` and class ``j``'s centre -- for sub-clusters the
  angle to the closest of the class's ``M`` centres (the assignment ``tau`` of the study's Thm. 6).
  With hard labels this is the angle to the own class's (closest) centre. With one sub-cluster
  both definitions coincide, so SC-AdaCos with ``M = 1`` gives the same loss as AdaCos at the same
  scale (the two scale *updates* differ by definition: Def. 4 also sums the own class).
* ``theta_med="reference"`` instead takes the study author's code's expression
  ``count_nonzero(l) * sum_j l_j sum_m theta_jm``: the angles to *all* ``M`` centres of a class
  are summed (not the closest one taken), and the result is multiplied by the number of classes
  mixed into the clip. With ``M = 16`` that sum is far above ``pi/4`` for any embedding, so the
  scale's denominator is always ``cos(pi/4)``; with the default (``"closest"``) it differs only
  once training pulls embeddings within 45 degrees of their centres (``docs/FIDELITY.md``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ._checks import Integral, Interval, Real, check_params
from .constants import LOSSES, THETA_MEDS
from .errors import ConfigError

logger = logging.getLogger(__name__)

#: Most sub-clusters per class, and most fixed centre values (classes x sub-clusters x
#: dimensions: 2^26 float32 values are 256 MB).
MAX_SUB_CLUSTERS = 1024
MAX_CENTRE_VALUES = 2**26


def random_centres(
    n_classes: int, n_sub: int, embed_dim: int, *, generator: torch.Generator
) -> torch.Tensor:
    """Fixed class centres: uniform on ``[-1, 1]^D``, projected to the unit sphere.

    Returns Tensor [shape=(n_classes, n_sub, embed_dim)], float32, unit norm along the last axis.
    """
    c = torch.rand(n_classes, n_sub, embed_dim, generator=generator, dtype=torch.float64) * 2 - 1
    return F.normalize(c, dim=-1).float()


def _check_inputs(emb: torch.Tensor, labels: torch.Tensor, n_classes: int) -> None:
    if emb.dim() != 2 or labels.dim() != 2 or labels.shape != (emb.shape[0], n_classes):
        raise ConfigError(
            f"expected embeddings (B, D) and soft labels (B, {n_classes}), "
            f"got {tuple(emb.shape)} and {tuple(labels.shape)}"
        )


class _Loss(nn.Module):
    """Common part: fixed centres buffer, weight decay, float32 computation."""

    name = ""
    adaptive_scale = False

    def __init__(
        self,
        n_classes: int,
        embed_dim: int,
        n_sub: int = 1,
        seed: int = 0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        positive = (Integral, Interval(1, None))
        check_params({"n_classes": positive, "embed_dim": positive,
                      "sub_clusters": (Integral, Interval(1, MAX_SUB_CLUSTERS)),
                      "weight_decay": (Real, Interval(0, None))},
                     n_classes=n_classes, embed_dim=embed_dim, sub_clusters=n_sub,
                     weight_decay=weight_decay)  # fmt: skip
        if n_classes * n_sub * embed_dim > MAX_CENTRE_VALUES:
            raise ConfigError(
                f"{n_classes} classes x {n_sub} sub-clusters x {embed_dim} dimensions of fixed "
                f"centres is too many (at most {MAX_CENTRE_VALUES} centre values)",
                param="sub_clusters",
            )
        self.n_classes = int(n_classes)
        self.n_sub = int(n_sub)
        self.embed_dim = int(embed_dim)
        self.weight_decay = float(weight_decay)
        gen = torch.Generator().manual_seed(int(seed))
        self.register_buffer("centres", random_centres(n_classes, n_sub, embed_dim, generator=gen))

    @property
    def flat_centres(self) -> torch.Tensor:
        """Centres as (N * M, D), class-major (centre ``j * M + m`` belongs to class ``j``)."""
        return self.centres.reshape(-1, self.embed_dim)

    def data_term(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss without weight decay (scalar); updates the adaptive scale in training mode."""
        raise NotImplementedError

    def forward(
        self,
        emb: torch.Tensor,
        labels: torch.Tensor,
        params: Iterable[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Loss value (scalar float32).

        Parameters
        ----------
        emb : Tensor [shape=(B, D)], unit-normalised embeddings
        labels : Tensor [shape=(B, N)], soft labels (rows sum to 1)
        params : parameters for the additive weight-decay term (ignored when weight_decay = 0)
        """
        _check_inputs(emb, labels, self.n_classes)
        loss = self.data_term(emb.float(), labels.float())
        if params is not None and self.weight_decay > 0:
            loss = loss + self.weight_decay * weight_penalty(params)
        return loss


def weight_penalty(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum ||w||^2`` over ``params`` (float32 scalar)."""
    terms = [p.float().pow(2).sum() for p in params]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


class CompactnessLoss(_Loss):
    """IC compactness loss (Def. 1): ``mean_x sum_j l_j(x) ||e_x - c_j||^2`` (+ weight decay)."""

    name = "compactness"

    def __init__(self, n_classes: int, embed_dim: int, *, seed: int = 0, weight_decay: float = 0.0):
        super().__init__(n_classes, embed_dim, 1, seed, weight_decay)

    def data_term(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = self.centres[:, 0, :]  # (N, D)
        # ||e - c||^2 = ||e||^2 + ||c||^2 - 2 <e, c>, exact for any norm of e.
        d2 = (emb.pow(2).sum(1, keepdim=True) + c.pow(2).sum(1) - 2 * emb @ c.T).clamp_min(0)
        return (labels * d2).sum(1).mean()


class CompactnessCCELoss(CompactnessLoss):
    """IC compactness loss + cross-entropy of a bias-free linear softmax head, summed."""

    name = "compactness-cce"

    def __init__(self, n_classes: int, embed_dim: int, *, seed: int = 0, weight_decay: float = 0.0):
        super().__init__(n_classes, embed_dim, seed=seed, weight_decay=weight_decay)
        self.head = nn.Linear(embed_dim, n_classes, bias=False)
        gen = torch.Generator().manual_seed(int(seed) + 1)
        bound = 1.0 / math.sqrt(embed_dim)
        with torch.no_grad():
            self.head.weight.copy_(
                (torch.rand(n_classes, embed_dim, generator=gen) * 2 - 1) * bound
            )

    def data_term(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = F.linear(emb, self.head.weight.float())
        cce = -(labels * F.log_softmax(logits, dim=1)).sum(1).mean()
        return super().data_term(emb, labels) + cce


class _AdaptiveScaleLoss(_Loss):
    adaptive_scale = True

    def __init__(
        self,
        n_classes: int,
        embed_dim: int,
        n_sub: int,
        seed: int,
        weight_decay: float,
        theta_med: str = "closest",
    ) -> None:
        super().__init__(n_classes, embed_dim, n_sub, seed, weight_decay)
        if theta_med not in THETA_MEDS:
            raise ConfigError(f"theta_med must be one of {THETA_MEDS}, got {theta_med!r}")
        self.theta_med = theta_med
        if n_classes * n_sub < 2 or n_classes < 2:
            raise ConfigError(
                f"the {self.name} loss needs at least 2 classes (got {n_classes}); use the "
                "compactness loss for one class or one model per section"
            )
        self.register_buffer("scale", torch.tensor(self.initial_scale(), dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def initial_scale(self) -> float:
        return math.sqrt(2.0) * math.log(self.n_classes * self.n_sub - 1)

    def cosines(self, emb: torch.Tensor) -> torch.Tensor:
        """cos(e, c) for all centres: (B, N, M)."""
        e = F.normalize(emb, dim=1)
        return (e @ self.flat_centres.T).clamp(-1.0, 1.0).view(-1, self.n_classes, self.n_sub)

    def mixed_angle_median(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Lower median (``torch.median``) over the batch of each clip's mixed-up angle.

        ``"closest"``: ``sum_j l_j theta_j`` with ``theta_j`` the angle to class ``j``'s closest
        centre. ``"reference"``: ``count_nonzero(l) * sum_j l_j sum_m theta_jm`` over all of
        class ``j``'s centres, as the study author's code computes it.
        """
        lab = labels.double()
        if self.theta_med == "reference":
            theta = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7).double()).sum(dim=2)  # (B, N)
            mixed = (lab * theta).sum(1) * (lab != 0).sum(1)
        else:
            theta = torch.acos(cos.amax(dim=2).clamp(-1 + 1e-7, 1 - 1e-7).double())  # (B, N)
            mixed = (lab * theta).sum(1)
        return mixed.median()

    def new_scale(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def current_scale(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The scale for this batch (updates the buffer in training mode, see module doc)."""
        if self.training:
            with torch.no_grad():
                if int(self.step) > 0:
                    s = self.new_scale(cos.detach(), labels.detach())
                    if torch.isfinite(s) and s > 0:
                        self.scale.copy_(s)
                    else:  # keep the old scale rather than poison training
                        logger.warning(
                            "%s: scale update gave %s; kept %s", self.name, s, self.scale
                        )
                self.step += 1
        return self.scale.float()


class AdaCosLoss(_AdaptiveScaleLoss):
    """AdaCos (Def. 3): softmax cross-entropy on ``s * cos(e, c_j)``, no margin, adaptive scale."""

    name = "adacos"

    def __init__(
        self,
        n_classes: int,
        embed_dim: int,
        *,
        seed: int = 0,
        weight_decay: float = 0.0,
        theta_med: str = "closest",
    ):
        super().__init__(n_classes, embed_dim, 1, seed, weight_decay, theta_med)

    def new_scale(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = cos[:, :, 0].double()  # (B, N)
        s_prev = self.scale.double()
        other = (labels < 1).double()
        b_avg = (other * torch.exp(s_prev * c)).sum(1).mean()
        theta_med = self.mixed_angle_median(cos, labels)
        return torch.log(b_avg) / torch.cos(theta_med.clamp(max=math.pi / 4))

    def data_term(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosines(emb)
        s = self.current_scale(cos, labels)
        logits = s * cos[:, :, 0]
        return -(labels * F.log_softmax(logits, dim=1)).sum(1).mean()


class SubClusterAdaCosLoss(_AdaptiveScaleLoss):
    """Sub-cluster AdaCos (Def. 4): ``M`` centres per class, log-sum-exp per class."""

    name = "sc-adacos"

    def __init__(
        self,
        n_classes: int,
        embed_dim: int,
        *,
        sub_clusters: int = 16,
        seed: int = 0,
        weight_decay: float = 0.0,
        theta_med: str = "closest",
    ):
        super().__init__(n_classes, embed_dim, sub_clusters, seed, weight_decay, theta_med)

    def new_scale(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = self.scale.double() * cos.double().flatten(1)  # (B, N*M)
        f_max = z.max()
        b_avg = torch.exp(z - f_max).sum(1).mean()
        theta_med = self.mixed_angle_median(cos, labels)
        return (f_max + torch.log(b_avg)) / torch.cos(theta_med.clamp(max=math.pi / 4))

    def data_term(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosines(emb)
        s = self.current_scale(cos, labels)
        z = s * cos  # (B, N, M)
        log_p = torch.logsumexp(z, dim=2) - torch.logsumexp(z.flatten(1), dim=1, keepdim=True)
        return -(labels * log_p).sum(1).mean()


def build_loss(
    name: str,
    n_classes: int,
    embed_dim: int,
    *,
    sub_clusters: int = 16,
    seed: int = 0,
    weight_decay: float = 0.0,
    mixup: bool = True,
    theta_med: str = "closest",
) -> _Loss:
    """Build one of :data:`LOSSES`.

    Parameters
    ----------
    name : "compactness" | "compactness-cce" | "adacos" | "sc-adacos"
    n_classes : N, number of classes of the auxiliary task
    embed_dim : D
    sub_clusters : M, sub-clusters per class (``"sc-adacos"`` only)
    seed : seeds the fixed centres (and the CCE head's initial weights)
    weight_decay : factor of the additive ``sum ||w||^2`` term
    mixup : whether training uses mixup; without it ``"sc-adacos"`` logs a warning because its
        adaptive scale then grows without bound (study, remark after Def. 4)
    theta_med : "closest" | "reference", the adaptive losses' mixed-up angle (module docstring);
        ignored by the compactness losses
    """
    if name == "compactness":
        return CompactnessLoss(n_classes, embed_dim, seed=seed, weight_decay=weight_decay)
    if name == "compactness-cce":
        return CompactnessCCELoss(n_classes, embed_dim, seed=seed, weight_decay=weight_decay)
    if name == "adacos":
        return AdaCosLoss(
            n_classes, embed_dim, seed=seed, weight_decay=weight_decay, theta_med=theta_med
        )
    if name == "sc-adacos":
        if not mixup:
            logger.warning(
                "sc-adacos without mixup: the adaptive scale grows without bound "
                "(see the study's remark after Def. 4); consider training with mixup"
            )
        return SubClusterAdaCosLoss(
            n_classes,
            embed_dim,
            sub_clusters=sub_clusters,
            seed=seed,
            weight_decay=weight_decay,
            theta_med=theta_med,
        )
    raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def mixup(
    x: torch.Tensor | Mapping[str, torch.Tensor | None],
    labels: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor | dict[str, torch.Tensor | None], torch.Tensor]:
    """Mixup with a uniformly drawn coefficient per sample.

    ``x_i' = lam_i x_i + (1 - lam_i) x_{p(i)}``, ``l_i' = lam_i l_i + (1 - lam_i) l_{p(i)}`` with
    ``lam_i ~ U(0, 1)`` and ``p`` a random permutation of the batch (both drawn from ``generator``,
    a CPU generator, so results do not depend on the device).

    Parameters
    ----------
    x : Tensor [shape=(B, ...)] or dict of such tensors (``None`` values are passed through)
    labels : Tensor [shape=(B, N)], soft labels
    generator : torch.Generator (CPU)

    Returns
    -------
    (mixed x of the same type and shapes, mixed labels (B, N))
    """
    b = labels.shape[0]
    lam = torch.rand(b, generator=generator)
    perm = torch.randperm(b, generator=generator)

    def _mix(t: torch.Tensor) -> torch.Tensor:
        lam_t = lam.to(device=t.device, dtype=t.dtype).view(-1, *([1] * (t.dim() - 1)))
        p = perm.to(t.device)
        return lam_t * t + (1 - lam_t) * t[p]

    mixed_labels = _mix(labels)
    if isinstance(x, Mapping):
        return {k: (None if v is None else _mix(v)) for k, v in x.items()}, mixed_labels
    return _mix(x), mixed_labels


def _as_sub_centres(centres: torch.Tensor) -> torch.Tensor:
    if centres.dim() == 2:
        return centres.unsqueeze(1)
    if centres.dim() != 3:
        raise ConfigError(f"centres must be (N, D) or (N, M, D), got {tuple(centres.shape)}")
    return centres


def compactness_sums(
    emb: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class sums behind :func:`compactness_stats`, for soft labels (accumulate over batches).

    Parameters
    ----------
    emb : Tensor [shape=(B, D)]
    labels : Tensor [shape=(B, N)], soft (or one-hot) labels used as per-sample class weights
    centres : Tensor [shape=(N, D) or (N, M, D)]

    Returns
    -------
    ic_sum (N,), inter_sum (N,), weight (N,), float64: ``ic_sum[j] = sum_x l_xj d2(x, C_j)`` with
    ``d2(x, C_j)`` the squared distance to the closest centre of class ``j``;
    ``inter_sum[j] = sum_x l_xj * mean over the centres c of the other classes of ||e_x - c||^2``;
    ``weight[j] = sum_x l_xj``.
    """
    c = _as_sub_centres(centres).to(emb.device, torch.float64)  # (N, M, D)
    n, m, d = c.shape
    e = emb.detach().double()
    lab = labels.detach().to(emb.device, torch.float64)
    flat = c.reshape(-1, d)
    d2 = (e.pow(2).sum(1, keepdim=True) + flat.pow(2).sum(1) - 2 * e @ flat.T).clamp_min(0)
    d2 = d2.view(-1, n, m)  # (B, N, M)
    own = d2.amin(dim=2)  # (B, N)
    class_sum = d2.sum(dim=2)  # (B, N)
    if n > 1:
        other = (class_sum.sum(1, keepdim=True) - class_sum) / ((n - 1) * m)  # (B, N)
    else:
        other = torch.full_like(class_sum, float("nan"))
    ic_sum = (lab * own).sum(0)
    inter_sum = (lab * other).sum(0)
    return ic_sum.cpu(), inter_sum.cpu(), lab.sum(0).cpu()


def compactness_stats(
    emb: torch.Tensor, hard_labels: torch.Tensor, centres: torch.Tensor
) -> tuple[float, float]:
    """Mean IC compactness over classes and mean inter-class compactness (monitoring).

    Parameters
    ----------
    emb : Tensor [shape=(B, D)], unit-normalised embeddings
    hard_labels : Tensor [shape=(B,)], int class indices
    centres : Tensor [shape=(N, D) or (N, M, D)], the loss's fixed centres

    Returns
    -------
    (ic, inter): ``ic`` = mean over the classes present of the mean squared distance of a class's
    embeddings to the class centre -- with sub-clusters, to the class's *closest* sub-cluster
    centre; ``inter`` = mean over the classes present of the mean squared distance of the class's
    embeddings to all (sub-cluster) centres of the *other* classes (NaN for one class). For unit
    vectors ``||e - c||^2 = 2 - 2 cos``, so near-orthogonal random centres give ``inter`` near 2.
    """
    n = _as_sub_centres(centres).shape[0]
    onehot = F.one_hot(hard_labels.long().to(emb.device), n)
    ic_sum, inter_sum, weight = compactness_sums(emb, onehot, centres)
    return reduce_compactness(ic_sum, inter_sum, weight)


def reduce_compactness(
    ic_sum: torch.Tensor, inter_sum: torch.Tensor, weight: torch.Tensor
) -> tuple[float, float]:
    """Class means from :func:`compactness_sums` (classes with zero weight are skipped)."""
    present = weight > 0
    if not bool(present.any()):
        return float("nan"), float("nan")
    ic = (ic_sum[present] / weight[present]).mean()
    inter = (inter_sum[present] / weight[present]).mean()
    return float(ic), float(inter)
