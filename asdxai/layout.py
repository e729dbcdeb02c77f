"""Where every result goes: one frozen :class:`Layout` that names the folders and files of a run.

Every command, the demo, the figure scripts and the workflows that write results ask a
:class:`Layout` for their paths instead of joining names themselves, so one result is laid out
the same way wherever it is made. A layout is a root folder; a run that keeps several kinds of
results (the demo, the figure scripts' work folder) takes one sub-layout per kind
(:attr:`Layout.models`, :attr:`Layout.scores`, :attr:`Layout.maps`, :attr:`Layout.tsne`) and
one per model below it (:meth:`Layout.model`); a command that writes one kind writes it at its
root. The demo's tree::

    <root>/data/                          synthetic data
    <root>/models/<model>.pt              trained checkpoints
    <root>/scores/<model>/                score.json, results_<protocol>.*, organisers' files
    <root>/rise/<model>/<machine>/<clip>  RISE maps (.h5, .png; listen files beside them)
    <root>/tsne/<model>.h5                t-SNE results (+ <model>_distances.csv)
    <root>/<table>.csv|.md|.tex           tables, <root>/<figure>.png figures, <root>/<run>.json

``asdxai rise --out X`` is one model's map folder (``X/<machine>/<clip>``; with ``--data``
also ``X/rise_summary.*``), ``asdxai score
--out X`` one model's score folder (several checkpoints: ``X/<label>/``), ``asdxai tsne
--out X`` one t-SNE folder. Layer 0: imports nothing of asdxai and no torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Folder of each kind of result below a run's root.
KINDS: dict[str, str] = {"data": "data", "models": "models", "scores": "scores", "maps": "rise",
                         "tsne": "tsne", "work": "_work"}  # fmt: skip
#: What :meth:`Layout.listen_files` writes beside a map: key -> suffix of ``<stem>_<key>``.
LISTEN_FILES: dict[str, str] = {"flagged": ".wav", "rest": ".wav", "original": ".wav",
                                "overlay": ".png"}  # fmt: skip
#: Stems of what ``asdxai tsne`` writes for several models: the panel figure, Table III.
TSNE_PANELS, TSNE_TABLE = "tsne_panels", "table3"
#: Stem of the table (and its ``.json`` record) ``asdxai rise --data`` writes at its root:
#: where the run's maps look, per machine type.
RISE_SUMMARY = "rise_summary"
#: The three formats of every table (:func:`asdxai.metrics.write_tables`).
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".md", ".tex")


def safe_name(label: str) -> str:
    """``label`` as a folder or file name: runs of anything but ``A-Za-z0-9._+-`` become one
    ``_``, leading / trailing dots and underscores go (``model`` when nothing is left)."""
    s = re.sub(r"[^A-Za-z0-9._+-]+", "_", label).strip("._")
    return s or "model"


def output_stem(out: str | os.PathLike, clip: str | os.PathLike) -> Path:
    """Where the results of ``clip`` go below ``out``, without suffix.

    A clip in the DCASE layout (``<machine>/<train|test>/<name>.wav``) goes to
    ``<out>/<machine>/<name>``, so clips of different machines that share a file name (every
    DCASE machine has ``section_00_source_test_anomaly_0000_...``) never collide; any other
    clip goes to ``<out>/<name>``. ``..`` in ``clip`` is resolved first (without following
    symbolic links, so a linked clip keeps its own machine folder), so the result always lies
    below ``out``.
    """
    clip = Path(os.path.abspath(clip))
    if clip.parent.name in ("train", "test", "supplemental"):
        return Path(out) / clip.parent.parent.name / clip.stem
    return Path(out) / clip.stem


def with_suffix(stem: str | os.PathLike, suffix: str) -> Path:
    """``<stem><suffix>``; unlike :meth:`pathlib.Path.with_suffix`, a dot inside the stem's
    name (``seed0-n8000-a0.95``) stays."""
    stem = Path(stem)
    return stem.with_name(stem.name + suffix)


def table_files(stem: str | os.PathLike) -> list[Path]:
    """The files of the table at ``stem``, one per :data:`TABLE_SUFFIXES`."""
    return [with_suffix(stem, s) for s in TABLE_SUFFIXES]


class _Kind:
    """``layout.<kind>`` is the sub-layout ``Layout(layout.root / KINDS[<kind>])``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.folder = KINDS[name]

    def __get__(self, layout: Layout | None, owner: type | None = None) -> Any:
        return self if layout is None else Layout(layout.root / self.folder)


@dataclass(frozen=True)
class Layout:
    """The folders and file names of one run's results below ``root``.

    Methods return paths and create nothing; writers create folders
    (:func:`asdxai._atomic.ensure_writable_dir`) and write through
    :func:`asdxai._atomic.atomic_path`.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # ------------------------------------------------------------------ folders
    #: Sub-layouts of one kind of result each (:data:`KINDS`): ``models`` (checkpoints,
    #: :meth:`checkpoint`), ``scores`` and ``maps`` (one folder per model, :meth:`model`),
    #: ``tsne`` (:meth:`tsne_result`), ``work`` (the figure scripts' cache).
    models, scores, maps, tsne, work = (_Kind() for _ in range(5))

    @property
    def data(self) -> Path:
        """Folder of the run's synthetic data tree."""
        return self.root / KINDS["data"]

    def model(self, *names: str) -> Layout:
        """Sub-layout of one model (``names`` nest: recipe key, then setting)."""
        return Layout(self.root.joinpath(*(safe_name(n) for n in names)))

    def synthetic(self, preset: str, seed: int) -> Path:
        """Folder of a synthetic tree of ``preset`` and ``seed`` below :attr:`data`."""
        return self.data / f"synthetic-{preset}-seed{seed}"

    # ------------------------------------------------------------------ files
    def checkpoint(self, name: str) -> Path:
        """``<root>/<name>.pt``."""
        return self.root / f"{safe_name(name)}.pt"

    def map_stem(self, clip: str | os.PathLike) -> Path:
        """Stem of a clip's RISE map below the root (:func:`output_stem`)."""
        return output_stem(self.root, clip)

    def map_files(self, clip: str | os.PathLike, *, plot: bool = True) -> dict[str, Path]:
        """``{"map": <stem>.h5, "figure": <stem>.png}`` of a clip (no figure without ``plot``)."""
        stem = self.map_stem(clip)
        files = {"map": with_suffix(stem, ".h5")}
        if plot:
            files["figure"] = with_suffix(stem, ".png")
        return files

    def listen_files(self, stem: str) -> dict[str, Path]:
        """What ``listen`` writes for the map ``<stem>.h5``: ``{key: <root>/<stem>_<key>.*}``
        (keys of :data:`LISTEN_FILES`)."""
        return {key: self.root / f"{stem}_{key}{suffix}" for key, suffix in LISTEN_FILES.items()}

    def score_record(self) -> Path:
        """``score.json``: settings, thresholds and summary of one scored model."""
        return self.record("score")

    def score_file(self, section_key: str) -> Path:
        """The organisers' ``anomaly_score_<machine>_section_<xx>_test.csv``."""
        return self.root / f"anomaly_score_{section_key}_test.csv"

    def decision_file(self, section_key: str) -> Path:
        """The organisers' ``decision_result_<machine>_section_<xx>_test.csv``."""
        return self.root / f"decision_result_{section_key}_test.csv"

    def results(self, protocol: str) -> Path:
        """Stem of one model's per-section table under ``protocol`` (``results_<protocol>``)."""
        return self.table(f"results_{protocol}")

    def summary(self, protocol: str) -> Path:
        """Stem of the table of several models under ``protocol`` (``summary_<protocol>``)."""
        return self.table(f"summary_{protocol}")

    def tsne_result(self, name: str) -> Path:
        """``<root>/<name>.h5``: one t-SNE result (:func:`asdxai.embed.save_result`)."""
        return self.root / f"{safe_name(name)}.h5"

    def tsne_files(self, name: str) -> dict[str, Path]:
        """Everything ``asdxai tsne`` writes for one model: result, figure, distances, report."""
        stem = self.root / safe_name(name)
        return {"result": with_suffix(stem, ".h5"), "figure": with_suffix(stem, ".png"),
                "distances": with_suffix(stem, "_distances.csv"),
                "report": with_suffix(stem, "_report.csv")}  # fmt: skip

    def embedding_cache(self) -> Path:
        """``<root>/embedding_cache.h5`` (:class:`asdxai.embedding_cache.EmbeddingCache`)."""
        return self.root / "embedding_cache.h5"

    def table(self, name: str) -> Path:
        """Stem of a table (the writers add :data:`TABLE_SUFFIXES`)."""
        return self.root / name

    def csv(self, name: str) -> Path:
        """``<root>/<name>.csv``: a table in CSV only."""
        return self.root / f"{name}.csv"

    def markdown(self, name: str) -> Path:
        """``<root>/<name>.md``."""
        return self.root / f"{name}.md"

    def figure(self, name: str, *, suffix: str = ".png") -> Path:
        """``<root>/<name><suffix>``: a figure."""
        return self.root / f"{name}{suffix}"

    def record(self, name: str) -> Path:
        """``<root>/<name>.json``: what a run did (settings, summary, provenance)."""
        return self.root / f"{name}.json"
