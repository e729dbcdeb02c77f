"""The k-means backend and the black box :class:`AnomalyScorer` (encoder + backend).

Score of a clip of section ``s`` with unit embedding ``e``::

    score = min over r in R_s of (1 - e . r)

where ``R_s`` is the section's reference matrix: the ``k`` k-means means and the target-domain
training embeddings (unit length). Higher = more anomalous. Which embeddings k-means clusters and
whether its means are re-normalised is the backend's ``variant`` (:data:`BACKEND_VARIANTS`):

* ``"paper"`` (the study's text, Sec. IV-B): k-means on the *source* normal training embeddings,
  means re-normalised to unit length, so the score is the minimum of (min cosine distance to the
  means, min cosine distance to the target embeddings), range [0, 2];
* ``"reference"`` (the study author's code): k-means on *all* of the section's normal training
  embeddings (source and target), scored against the *un-normalised* means (``1 - e . m`` with
  ``|m| <= 1``);
* ``"source-raw-means"`` and ``"all-unit-means"``: the two mixed cases, for measuring which of
  the two differences matters (``docs/FIDELITY.md``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from ._checks import Integral, Interval, check_params
from ._runtime import resolve_device
from .constants import BACKEND_VARIANTS
from .errors import CheckpointError, ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from .checkpoint import Checkpoint

logger = logging.getLogger(__name__)

#: Most k-means means per section a backend may ask for (the study uses 16; a section has a
#: few hundred to a thousand training clips, so far fewer means than this are ever useful).
MAX_K = 4096

_EPS = 1e-12  # guards the norm of an all-zero vector


def _unit_np(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)


def _unit_torch(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def _as_matrix(x: Any, what: str, dim: int | None = None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1 and a.size == 0:
        a = a.reshape(0, dim or 0)
    if a.ndim != 2:
        raise DataError(f"{what}: expected an (n, D) matrix, got shape {a.shape}")
    if dim is not None and a.shape[0] and a.shape[1] != dim:
        raise DataError(f"{what}: embedding dimension {a.shape[1]}, expected {dim}")
    if not np.isfinite(a).all():
        raise DataError(f"{what}: contains NaN or infinity")
    return a


class KMeansBackend:
    """Per-section k-means on normal training embeddings, plus the target-domain ones.

    Parameters
    ----------
    k : int
        Clusters per section (16 in the study). A section with ``n < k`` source
        clips uses ``k = n`` (every clip is its own mean) and logs a warning.
    seed : int
        ``random_state`` of every section's ``sklearn.cluster.KMeans`` (the same
        seed for every section, so a section's fit does not depend on the others).
    n_init : int
        k-means++ restarts per section (``sklearn.cluster.KMeans(n_init=5)``, Lloyd);
        the restart with the lowest inertia wins. With 5, 21 sections x 1000 x 256
        fit in 1.2 s (clustered) / 1.8 s (Gaussian) on 2 heavily loaded CPU cores
        (``asdxai bench score``).
    max_iter : int
        Lloyd iterations per restart.
    n_threads : int or None
        BLAS / OpenMP threads inside each section's fit (``threadpoolctl``); None =
        the libraries' default. 1 by default: a section (about 1000 x 256) is too
        small to gain from threads, and on a loaded machine OpenMP's spin-waiting
        made multi-threaded fits about 25x slower in wall time (2 shared cores).
    variant : str
        One of :data:`BACKEND_VARIANTS`: ``"paper"`` (k-means on the source clips, unit means),
        ``"reference"`` (k-means on source and target clips, raw means, as the study's code),
        ``"source-raw-means"`` or ``"all-unit-means"``. Stored in :meth:`to_dict`.

    Attributes
    ----------
    means_ : dict section_key -> np.ndarray [shape=(k_s, D)], float32
        k-means centroids of the unit embeddings it clusters (stored as fitted; the
        ``unit_means`` variants normalise them in :meth:`references`).
    targets_ : dict section_key -> np.ndarray [shape=(m_s, D)], float32
        Target-domain training embeddings, unit-normalised (``m_s`` may be 0).
    k_ : dict section_key -> int
        The number of clusters actually used in each section.
    """

    def __init__(
        self,
        *,
        k: int = 16,
        seed: int = 0,
        n_init: int = 5,
        max_iter: int = 300,
        n_threads: int | None = 1,
        variant: str = "paper",
    ):
        if variant not in BACKEND_VARIANTS:
            raise ConfigError(
                f"unknown backend variant {variant!r}; choose one of {', '.join(BACKEND_VARIANTS)}"
            )
        self.k = k
        self.seed = seed
        self.n_init = n_init
        self.max_iter = max_iter
        self.n_threads = n_threads
        self.variant = variant

    @property
    def clusters_targets(self) -> bool:
        """Whether k-means also clusters the target-domain training embeddings."""
        return BACKEND_VARIANTS[self.variant][0] == "all"

    @property
    def unit_means(self) -> bool:
        """Whether the k-means means are re-normalised to unit length before scoring."""
        return BACKEND_VARIANTS[self.variant][1]

    # ------------------------------------------------------------------ fitting
    def fit(self, embeddings: Mapping[str, tuple[Any, Any]]) -> KMeansBackend:
        """Fit every section.

        Parameters
        ----------
        embeddings : dict section_key -> (source, target)
            ``source`` : array [shape=(n, D)] source-domain normal training embeddings;
            ``target`` : array [shape=(m, D)] target-domain training embeddings
            (``m`` may be 0; k-means clusters them too in the ``"all"`` variants). Rows are
            normalised to unit length before use.

        Returns
        -------
        self
        """
        with _thread_limit(self.n_threads):
            return self._fit(embeddings)

    def _fit(self, embeddings: Mapping[str, tuple[Any, Any]]) -> KMeansBackend:
        # scikit-learn on first use: its import costs ~3/4 of torch's (measured); most runs skip it
        from sklearn.cluster import KMeans

        check_params({"k": (Integral, Interval(1, MAX_K))}, k=self.k)
        if not embeddings:
            raise DataError("no sections to fit the backend on")
        means, targets, ks = {}, {}, {}
        dim = None
        for key in sorted(embeddings):
            src, tgt = embeddings[key]
            src = _as_matrix(src, f"section {key} source embeddings", dim)
            dim = src.shape[1] if src.shape[0] else dim
            tgt = _as_matrix(tgt, f"section {key} target embeddings", dim)
            if src.shape[0] == 0:
                raise DataError(
                    f"section {key} has no source-domain training clips; the k-means backend "
                    "needs at least one"
                )
            src = _unit_np(src)
            tgt = _unit_np(tgt) if tgt.shape[0] else tgt.reshape(0, src.shape[1])
            clustered = np.concatenate([src, tgt]) if self.clusters_targets else src
            n = clustered.shape[0]
            k = int(self.k)
            if n < k:
                msg = f"section {key}: only {n} clips to cluster for k = {k}; using k = {n}"
                warnings.warn(msg, stacklevel=2)
                logger.warning(msg)
                k = n
            if k == n:  # every clip is its own centre; k-means would return them anyway
                centres = clustered.copy()
            else:
                km = KMeans(
                    n_clusters=k,
                    n_init=self.n_init,
                    max_iter=self.max_iter,
                    random_state=self.seed,
                )
                centres = km.fit(clustered).cluster_centers_.astype(np.float32)
            means[key] = centres
            targets[key] = tgt
            ks[key] = k
        self.means_, self.targets_, self.k_ = means, targets, ks
        logger.info(
            "fitted k-means backend (k=%d, variant %s) on %d sections",
            self.k,
            self.variant,
            len(means),
        )
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise ConfigError("KMeansBackend is not fitted; call fit() first")

    @property
    def sections(self) -> list[str]:
        """Sorted section keys the backend was fitted on."""
        self._check_fitted()
        return sorted(self.means_)

    def references(self, section_key: str) -> np.ndarray:
        """Reference matrix of a section (means then targets), shape (k_s + m_s, D), float32.

        Target rows have unit length; the means too unless the variant keeps them raw
        (``"reference"``, ``"source-raw-means"``).
        """
        self._check_fitted()
        if section_key not in self.means_:
            raise DataError(_missing_section(section_key, self.means_))
        means = self.means_[section_key]
        means = _unit_np(means) if self.unit_means else np.asarray(means, dtype=np.float32)
        return np.concatenate([means, _unit_np(self.targets_[section_key])])

    def score(self, embeddings: Any, section_key: str) -> np.ndarray:
        """Anomaly scores of embeddings of one section.

        Parameters
        ----------
        embeddings : array [shape=(N, D)]
            Normalised to unit length before scoring.
        section_key : str

        Returns
        -------
        np.ndarray [shape=(N,)], float32
            ``1 - max_r e . r`` over the section's references (the min cosine distance when
            they have unit length); higher = more anomalous.
        """
        ref = self.references(section_key)
        e = _unit_np(_as_matrix(embeddings, "embeddings", ref.shape[1]))
        return (1.0 - (e @ ref.T).max(axis=1)).astype(np.float32)

    # ------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict:
        """The checkpoint's ``backend`` entry.

        Returns
        -------
        dict
            ``{"k": int, "variant": str, "sections": {section_key: {"means": Tensor (k_s, D)
            float32, "targets": Tensor (m_s, D) float32}}}`` (the checkpoint contract; the fit
            seed is not stored here).
        """
        self._check_fitted()
        return {
            "k": int(self.k),
            "variant": self.variant,
            "sections": {
                key: {
                    "means": torch.from_numpy(self.means_[key].copy()),
                    "targets": torch.from_numpy(self.targets_[key].copy()),
                }
                for key in sorted(self.means_)
            },
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> KMeansBackend:
        """Rebuild a fitted backend from :meth:`to_dict` output (a checkpoint's ``backend``).

        An entry without ``variant`` (written before the option existed) is ``"paper"``.
        """
        variant = state.get("variant", "paper") if isinstance(state, Mapping) else None
        if variant not in BACKEND_VARIANTS:
            raise CheckpointError(
                f"backend entry in checkpoint has unknown variant {variant!r}; this asdxai knows "
                f"{', '.join(BACKEND_VARIANTS)}"
            )
        try:
            sections = state["sections"]
            self = cls(
                k=int(state["k"]),
                seed=int(state.get("seed", 0)),
                n_init=int(state.get("n_init", 5)),
                variant=variant,
            )
            means, targets = {}, {}
            for key, entry in sections.items():
                means[key] = _as_matrix(entry["means"], f"backend section {key} means")
                targets[key] = _as_matrix(
                    entry["targets"], f"backend section {key} targets", means[key].shape[1]
                )
                if targets[key].shape[0] == 0:
                    targets[key] = targets[key].reshape(0, means[key].shape[1])
        except (KeyError, TypeError, AttributeError, ValueError, DataError) as exc:
            raise CheckpointError(f"malformed backend entry in checkpoint: {exc}") from None
        if not means:
            raise CheckpointError("backend entry in checkpoint has no sections")
        self.means_, self.targets_ = means, targets
        self.k_ = {key: m.shape[0] for key, m in means.items()}
        return self


def _thread_limit(n_threads: int | None) -> contextlib.AbstractContextManager:
    if n_threads is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n_threads)


def _missing_section(section_key: str, available: Any) -> str:
    avail = sorted(available)
    shown = ", ".join(avail[:30]) + (f", ... ({len(avail)} in all)" if len(avail) > 30 else "")
    return f"section {section_key!r} is not in the fitted backend; available sections: {shown}"


class AnomalyScorer(nn.Module):
    """Encoder(s) + k-means backend as one black box: spectrogram batch -> anomaly scores.

    Parameters
    ----------
    encoders : nn.Module or dict model_key -> nn.Module
        An encoder ``(spec (B,T,F), spectrum (B,S) | None) -> (B,D)``; a dict keyed
        ``"all"`` (one model) or by section key (one model per section). A bare
        module is stored under ``"all"``.
    backend : KMeansBackend or dict
        A fitted backend or its :meth:`KMeansBackend.to_dict` form.

    Notes
    -----
    Every section's unit reference matrix (means then targets) is a buffer, so
    ``.to(device)`` moves everything. Scoring is one matrix product and one max
    per batch: ``1 - max_r (e . r)``.
    """

    def __init__(
        self, encoders: nn.Module | Mapping[str, nn.Module], backend: KMeansBackend | Mapping
    ):
        super().__init__()
        if isinstance(encoders, nn.Module) and not isinstance(encoders, nn.ModuleDict):
            encoders = {"all": encoders}
        self.encoders = nn.ModuleDict(dict(encoders))
        if len(self.encoders) == 0:
            raise ConfigError("AnomalyScorer needs at least one encoder")
        if not isinstance(backend, KMeansBackend):
            backend = KMeansBackend.from_dict(backend)
        self.sections = backend.sections
        self._index = {key: i for i, key in enumerate(self.sections)}
        for i, key in enumerate(self.sections):
            ref = torch.from_numpy(backend.references(key))
            self.register_buffer(f"ref_{i}", ref)
        self.n_references = {
            key: int(backend.k_[key] + backend.targets_[key].shape[0]) for key in self.sections
        }

    # ------------------------------------------------------------------ lookup
    def reference(self, section_key: str) -> torch.Tensor:
        """Unit reference matrix of a section, shape (R, D), on the scorer's device."""
        if section_key not in self._index:
            raise DataError(_missing_section(section_key, self.sections))
        return getattr(self, f"ref_{self._index[section_key]}")

    def model_key_for(self, section_key: str) -> str:
        """Which encoder scores a section: its own one if present, else ``"all"``."""
        if section_key in self.encoders:
            return section_key
        if "all" in self.encoders:
            return "all"
        if len(self.encoders) == 1:
            return next(iter(self.encoders))
        raise DataError(
            f"no encoder for section {section_key!r}; encoders: {', '.join(sorted(self.encoders))}"
        )

    def encoder_for(self, section_key: str) -> nn.Module:
        return self.encoders[self.model_key_for(section_key)]

    # ------------------------------------------------------------------ scoring
    def score_embeddings(self, emb: torch.Tensor, section_key: str) -> torch.Tensor:
        """Scores of embeddings ``(B, D)`` of one section -> ``(B,)`` (normalised first)."""
        ref = self.reference(section_key)
        e = _unit_torch(emb.to(ref.dtype))
        return 1.0 - (e @ ref.T).amax(dim=1)

    def forward(
        self, spec: torch.Tensor, section_key: str, spectrum: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Anomaly scores of a batch of clips of one section.

        Parameters
        ----------
        spec : Tensor [shape=(B, T, F)]
            Linear magnitude spectrograms (the encoder's input; RISE masks it).
        section_key : str
            e.g. ``"fan_section_00"``.
        spectrum : Tensor [shape=(B, S)], optional
            Whole-clip magnitude spectra, needed by dual-branch encoders.

        Returns
        -------
        Tensor [shape=(B,)]
            Min cosine distance to the section's references; higher = more anomalous.
        """
        ref = self.reference(section_key)  # fail early with the list of sections
        encoder = self.encoder_for(section_key)
        if spectrum is None and getattr(encoder, "needs_spectrum", False):
            raise ConfigError(
                "this encoder has a spectrum branch: pass spectrum= (or bind(section, spectrum))"
            )
        emb = encoder(spec) if spectrum is None else encoder(spec, spectrum)  # (B, D)
        e = _unit_torch(emb.to(ref.dtype))
        return 1.0 - (e @ ref.T).amax(dim=1)  # (B,)

    def bind(self, section_key: str, spectrum: torch.Tensor | None = None) -> BoundScorer:
        """Fix the section (and the clip's spectrum) -> a callable ``(B,T,F) -> (B,)``.

        Parameters
        ----------
        section_key : str
        spectrum : Tensor [shape=(S,) or (1, S)], optional
            One clip's spectrum, broadcast over every batch (RISE masks only the
            spectrogram of dual-branch models).
        """
        self.reference(section_key)
        return BoundScorer(self, section_key, spectrum)

    # ------------------------------------------------------------------ checkpoint
    @classmethod
    def from_checkpoint(
        cls, ckpt: Checkpoint, *, device: str | torch.device | None = "cpu"
    ) -> AnomalyScorer:
        """Build the scorer from a checkpoint with a fitted backend, in eval mode on ``device``.

        Raises
        ------
        CheckpointError
            The checkpoint has no backend (run ``asdxai fit-backend``).
        """
        if getattr(ckpt, "backend", None) is None:
            raise CheckpointError(
                "checkpoint has no fitted backend (k-means means / target embeddings); fit one "
                "on the normal training clips first (the command `asdxai fit-backend`)"
            )
        dev = resolve_device(device)
        encoders = {key: ckpt.build_encoder(model_key=key) for key in ckpt.encoders}
        scorer = cls(encoders, KMeansBackend.from_dict(ckpt.backend))
        return scorer.to(dev).eval()


class BoundScorer(nn.Module):
    """:class:`AnomalyScorer` with the section and (optionally) the spectrum fixed."""

    def __init__(self, scorer: AnomalyScorer, section_key: str, spectrum: torch.Tensor | None):
        super().__init__()
        self.scorer = scorer
        self.section_key = section_key
        if spectrum is not None:
            spectrum = torch.as_tensor(spectrum)
            if spectrum.dim() == 1:
                spectrum = spectrum.unsqueeze(0)
            if spectrum.dim() != 2 or spectrum.shape[0] != 1:
                raise ConfigError(
                    f"bind(): spectrum must have shape (S,) or (1, S), got {tuple(spectrum.shape)}"
                )
        self.spectrum = spectrum

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """``spec (B,T,F) -> scores (B,)``."""
        spectrum = None
        if self.spectrum is not None:
            spectrum = self.spectrum.to(spec.device, spec.dtype).expand(spec.shape[0], -1)
        return self.scorer(spec, self.section_key, spectrum)


def backend_from_embeddings(
    records: Sequence[Any],
    embeddings: np.ndarray,
    *,
    k: int = 16,
    seed: int = 0,
    n_init: int = 5,
    variant: str | None = None,
) -> KMeansBackend:
    """Fit the backend on embeddings of training clips.

    Parameters
    ----------
    records : sequence of ClipRecord [length N]
        Training clips; normal source-domain clips feed k-means, normal
        target-domain clips are kept as references (and also clustered by the
        ``"all"`` variants), anomalous ones are ignored.
    embeddings : np.ndarray [shape=(N, D)]
        Row ``i`` embeds ``records[i]``.
    k, seed, n_init, variant
        :class:`KMeansBackend` settings; ``variant`` None is its default (``"paper"``), so a
        caller can pass an optional choice (a recipe's, a command-line option's) as it is.

    Returns
    -------
    KMeansBackend
        Fitted on every section present in ``records``.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(records):
        raise DataError(f"{len(records)} records but embeddings of shape {emb.shape}")
    groups: dict[str, tuple[list[int], list[int]]] = {}
    for i, r in enumerate(records):
        if r.label == "anomaly":
            continue
        if r.domain not in ("source", "target"):
            raise DataError(f"training clip without a domain in its name: {r.path}")
        src, tgt = groups.setdefault(r.section_key, ([], []))
        (src if r.domain == "source" else tgt).append(i)
    dim = emb.shape[1]
    per_section = {
        key: (emb[src].reshape(-1, dim), emb[tgt].reshape(-1, dim))
        for key, (src, tgt) in groups.items()
    }
    options = {} if variant is None else {"variant": variant}
    return KMeansBackend(k=k, seed=seed, n_init=n_init, **options).fit(per_section)
