"""Clip records: DCASE2022 / DCASE2023 Task 2 trees scanned into typed records.

A DCASE tree looks like::

    ROOT/dev_data/<machine>/train/section_00_source_train_normal_0000_<attributes>.wav
    ROOT/dev_data/<machine>/test/section_01_target_test_anomaly_0042_<attributes>.wav
    ROOT/dev_data/<machine>/attributes_00.csv
    ROOT/eval_data/<machine>/test/section_03_0000.wav          (unlabeled)
    ROOT/ground_truth/ground_truth_data/ground_truth_<machine>_section_03_test.csv   (optional)

Everything a record knows comes from the file name (and, for unlabeled
evaluation clips, from the organisers' ground-truth CSVs); nothing is guessed
from the order of files or folders. Scanning never opens audio.

Dataset detection (the ``dataset`` field of every record of one scan)
---------------------------------------------------------------------
Let M be the machine-type folders found under the split folder and S the
sections of the scanned clips.

* ``"DCASE2023"`` if every machine type is a DCASE2023 type (dev: ToyCar,
  ToyTrain, fan, gearbox, bearing, slider, valve; eval: ToyDrone, ToyNscale,
  ToyTank, Vacuum, bandsaw, grinder, shaker) and S == {"00"}
  (DCASE2023 has one section per machine type);
* ``"DCASE2022"`` if every machine type is a DCASE2022 type (fan, gearbox,
  bearing, slider, ToyCar, ToyTrain, valve) and S is a subset of 00..05 with at
  least one section other than 00;
* ``"unknown"`` otherwise (other machine names, e.g. a synthetic tree with its
  own machine names, or a mix).

A DCASE2022 tree cut down to section 00 alone is therefore reported as
DCASE2023: the two cannot be told apart from names alone.

Ground truth for unlabeled evaluation clips
-------------------------------------------
Labels and domains of ``eval-test`` clips named ``section_03_0000.wav`` are read
from the organisers' ground-truth CSVs, from the ``ground_truth`` argument or,
when that is not given, automatically from a ``ground_truth/`` folder next to
``eval_data/`` (where the synthetic generator writes them). The folder holds
``ground_truth_data/ground_truth_<machine>_section_<xx>_test.csv`` (``wav,label``,
1 = anomaly), ``ground_truth_domain/...`` (``wav,domain``, 1 = target) and
``ground_truth_attributes/...`` (``wav,full_name``), any of them optional.
Ground truth is read only for test splits and only when some clip's name
lacks its label or domain; a value that contradicts the file name or another
ground-truth file is an error. The clip keeps the index of its own file name.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..constants import SPLITS, TASKS
from ..errors import ConfigError, DataError

logger = logging.getLogger(__name__)


DCASE2022_MACHINES: tuple[str, ...] = (
    "ToyCar", "ToyTrain", "bearing", "fan", "gearbox", "slider", "valve",
)  # fmt: skip
DCASE2023_DEV_MACHINES: tuple[str, ...] = DCASE2022_MACHINES
DCASE2023_EVAL_MACHINES: tuple[str, ...] = (
    "ToyDrone", "ToyNscale", "ToyTank", "Vacuum", "bandsaw", "grinder", "shaker",
)  # fmt: skip
DCASE2022_SECTIONS: tuple[str, ...] = ("00", "01", "02", "03", "04", "05")

GROUND_TRUTH_KINDS: tuple[str, ...] = (
    "ground_truth_data",
    "ground_truth_domain",
    "ground_truth_attributes",
)

_NAME_RE = re.compile(
    r"^section_(?P<section>\d{2})_"
    r"(?:(?P<domain>source|target)_)?"
    r"(?:(?P<subset>train|test)_)?"
    r"(?:(?P<label>normal|anomaly)_)?"
    r"(?P<index>\d{4,})"
    r"(?:_(?P<attributes>.+))?$"
)
_OTHER_AUDIO = {".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aif", ".aiff", ".au", ".caf"}
_GT_FILE_RE = re.compile(r"^ground_truth_(?P<machine>.+)_section_(?P<section>\d{2})_test\.csv$")
_ATTR_FILE_RE = re.compile(r"^attributes_(?P<section>\d{2})\.csv$")


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a DCASE-layout tree.

    Attributes
    ----------
    path : Path
        Absolute path of the wav file.
    dataset : str
        ``"DCASE2022"``, ``"DCASE2023"`` or ``"unknown"`` (see the module docstring).
    split : str
        ``"dev"`` or ``"eval"``.
    subset : str
        ``"train"`` or ``"test"``.
    machine : str
        Machine type (the machine folder's name), e.g. ``"fan"``, ``"ToyCar"``.
    section : str
        Two-digit section, e.g. ``"00"``.
    domain : str or None
        ``"source"``, ``"target"`` or None when unknown.
    label : str or None
        ``"normal"``, ``"anomaly"`` or None when unknown.
    index : int
        The clip index written in the file name (``0042`` -> 42).
    attributes : str or None
        Everything after the index in the (full) name, e.g.
        ``"car_F1_spd_31V_mic_1_noise_6"`` or ``"noAttribute"``; None when unknown.
    """

    path: Path
    dataset: str
    split: str
    subset: str
    machine: str
    section: str
    domain: str | None
    label: str | None
    index: int
    attributes: str | None

    @property
    def section_key(self) -> str:
        """Section identifier used everywhere: ``f"{machine}_section_{section}"``."""
        return f"{self.machine}_section_{self.section}"

    @property
    def name(self) -> str:
        """File name of the clip."""
        return self.path.name

    @property
    def is_anomaly(self) -> bool | None:
        """True for anomalous, False for normal clips, None when the label is unknown."""
        return None if self.label is None else self.label == "anomaly"

    @property
    def split_name(self) -> str:
        """Split in command-line spelling, e.g. ``"dev-train"``."""
        return f"{self.split}-{self.subset}"

    def to_dict(self) -> dict:
        """Plain dict (path as str) for result files."""
        return {
            "path": str(self.path),
            "dataset": self.dataset,
            "split": self.split,
            "subset": self.subset,
            "machine": self.machine,
            "section": self.section,
            "domain": self.domain,
            "label": self.label,
            "index": self.index,
            "attributes": self.attributes,
        }


def parse_name(name: str | os.PathLike) -> dict:
    """Parse a DCASE2022/2023 Task 2 clip file name.

    Accepted forms (the ``.wav`` extension is optional)::

        section_00_source_train_normal_0000_<attributes>.wav
        section_01_target_test_anomaly_0042_<attributes>.wav
        section_00_source_train_normal_0000_noAttribute.wav
        section_00_source_train_normal_0000.wav            (no attributes)
        section_03_test_0000.wav                           (unlabeled evaluation)
        section_03_0000.wav                                (unlabeled evaluation)

    The attribute string is everything after the 4-digit index and may contain
    underscores and hyphens (``vel_2_f-n_D``).

    Parameters
    ----------
    name : str or path-like
        File name; a path is reduced to its last component.

    Returns
    -------
    dict
        Keys ``section`` (str, two digits), ``domain``, ``subset``, ``label``,
        ``attributes`` (str or None where the name does not say) and ``index`` (int).

    Raises
    ------
    DataError
        If the name does not follow the DCASE naming.
    """
    base = os.path.basename(os.fspath(name))
    stem = base[:-4] if base.lower().endswith(".wav") else base
    match = _NAME_RE.match(stem)
    problem = None
    if os.path.splitext(stem)[1].lower() in _OTHER_AUDIO:
        problem = "only .wav files are read"
    elif match is None:
        problem = "expected e.g. section_00_source_train_normal_0000_<attributes>.wav"
    elif (match["domain"] or match["label"]) and not match["subset"]:
        problem = "a domain or label needs train/test before the index"
    if problem:
        raise DataError(f"{base}: file name does not follow the DCASE naming ({problem})")
    return {
        "section": match["section"],
        "domain": match["domain"],
        "subset": match["subset"],
        "label": match["label"],
        "index": int(match["index"]),
        "attributes": match["attributes"],
    }


def _parse_split(split: str) -> tuple[str, str]:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    part, subset = split.split("-")
    return part, subset


def _has_machine_folders(path: Path) -> bool:
    return any(
        child.is_dir() and ((child / "train").is_dir() or (child / "test").is_dir())
        for child in path.iterdir()
    )


def _split_dir(root: Path, part: str) -> tuple[Path, Path | None]:
    """Return (folder holding machine folders, dataset root or None)."""
    if not root.exists():
        raise DataError(f"{root}: data directory does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    wanted = f"{part}_data"
    other = "eval_data" if part == "dev" else "dev_data"
    if (root / wanted).is_dir():
        split_dir, dataset_root = root / wanted, root
    elif root.name == wanted:
        split_dir, dataset_root = root, root.parent
    elif root.name == other:
        raise DataError(f"{root}: this is the {other}/ folder but split {part}-* needs {wanted}/")
    elif (root / other).is_dir():
        raise DataError(f"{root}: no {wanted}/ folder (only {other}/); cannot scan {part}-* splits")
    elif _has_machine_folders(root):
        logger.info("%s: no %s/ folder; treating it as the %s folder itself", root, wanted, wanted)
        split_dir, dataset_root = root, None
    else:
        raise DataError(
            f"{root}: neither {wanted}/ nor machine folders (<machine>/train, test) found"
        )
    # the organisers' baseline unpacks into dev_data/raw/<machine>/
    if not _has_machine_folders(split_dir) and (split_dir / "raw").is_dir():
        split_dir = split_dir / "raw"
    return split_dir, dataset_root


def _machine_dirs(split_dir: Path) -> dict[str, Path]:
    found = {}
    for child in sorted(split_dir.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if (child / "train").is_dir() or (child / "test").is_dir():
            found[child.name] = child
        elif any(p.suffix.lower() == ".wav" for p in child.iterdir()):
            raise DataError(
                f"{child}: wav files directly in the machine folder; expected train/ and test/"
            )
        else:
            logger.debug("%s: no train/ or test/ folder; not a machine folder", child)
    if not found:
        raise DataError(f"{split_dir}: no machine folders (<machine>/train, <machine>/test) found")
    return found


def detect_dataset(machines: Iterable[str], sections: Iterable[str]) -> str:
    """Name the DCASE edition from machine types and sections (rule in the module docstring).

    Returns
    -------
    str
        ``"DCASE2022"``, ``"DCASE2023"`` or ``"unknown"``.
    """
    machines, sections = set(machines), set(sections)
    if not machines or not sections:
        return "unknown"
    if machines <= set(DCASE2023_DEV_MACHINES + DCASE2023_EVAL_MACHINES) and sections == {"00"}:
        return "DCASE2023"
    if (
        machines <= set(DCASE2022_MACHINES)
        and sections <= set(DCASE2022_SECTIONS)
        and sections != {"00"}
    ):
        return "DCASE2022"
    return "unknown"


def _read_csv_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None


def _read_attributes_csv(path: Path) -> dict[str, str]:
    """Map clip file name -> attribute string joined from ``d1p,d1v,...``; warn on oddities."""
    rows = _read_csv_rows(path)
    if not rows:
        logger.warning("%s: attributes CSV is empty", path)
        return {}
    header = [cell.strip() for cell in rows[0]]
    expected = ["file_name"] + [f"d{i // 2 + 1}{'pv'[i % 2]}" for i in range(len(header) - 1)]
    if header != expected:
        logger.warning(
            "%s: unexpected columns %s (expected file_name,d1p,d1v[,d2p,d2v,...])", path, header
        )
    out: dict[str, str] = {}
    ragged = 0
    for row in rows[1:]:
        if len(row) != len(header):
            ragged += 1
        name = os.path.basename(row[0].strip().replace("\\", "/"))
        values = [cell.strip() for cell in row[1:] if cell.strip()]
        out[name] = "_".join(values) if values else "noAttribute"
    if ragged:
        logger.warning(
            "%s: %d row(s) have a different number of columns than the header (%d)",
            path,
            ragged,
            len(header),
        )
    return out


def _check_attributes(records: list[ClipRecord], machine_dir: Path) -> list[ClipRecord]:
    """Cross-check names against ``attributes_XX.csv``; fill attributes of unlabeled clips."""
    by_section: dict[str, list[ClipRecord]] = defaultdict(list)
    for rec in records:
        by_section[rec.section].append(rec)
    out = []
    for section, recs in by_section.items():
        csv_path = machine_dir / f"attributes_{section}.csv"
        if not csv_path.is_file():
            out.extend(recs)
            continue
        table = _read_attributes_csv(csv_path)
        covered = [r for r in recs if r.name in table]
        missing = len(recs) - len(covered)
        if covered and missing:
            logger.warning(
                "%s: no row for %d of %d %s clips (e.g. %s)",
                csv_path,
                missing,
                len(recs),
                recs[0].subset,
                next(r.name for r in recs if r.name not in table),
            )
        mismatched = []
        for rec in recs:
            value = table.get(rec.name)
            if value is None:
                out.append(rec)
            elif rec.attributes is None:
                out.append(replace(rec, attributes=value))
            else:
                if value != rec.attributes:
                    mismatched.append(rec.name)
                out.append(rec)
        if mismatched:
            logger.warning(
                "%s: %d row(s) disagree with the attribute string in the file name (e.g. %s); "
                "the file name wins",
                csv_path,
                len(mismatched),
                mismatched[0],
            )
    return out


def _ground_truth_dirs(gt_root: Path) -> dict[str, Path]:
    if not gt_root.is_dir():
        raise DataError(f"{gt_root}: ground-truth directory does not exist")
    dirs = {kind: gt_root / kind for kind in GROUND_TRUTH_KINDS if (gt_root / kind).is_dir()}
    if not dirs and any(_GT_FILE_RE.match(p.name) for p in gt_root.iterdir()):
        dirs = {"ground_truth_data": gt_root}  # a flat folder of label files
    if not dirs:
        raise DataError(
            f"{gt_root}: no ground_truth_data/, ground_truth_domain/ or ground_truth_attributes/ "
            "folder with ground_truth_<machine>_section_<xx>_test.csv files"
        )
    return dirs


def _read_ground_truth_csv(path: Path, kind: str) -> dict[str, str]:
    rows = _read_csv_rows(path)
    out: dict[str, str] = {}
    for lineno, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise DataError(f"{path}: line {lineno}: expected 2 columns, got {len(row)}")
        name, value = row[0].strip(), row[1].strip()
        if lineno == 1 and not name.lower().endswith(".wav"):
            continue  # header, e.g. "wav,label"
        if kind == "ground_truth_attributes":
            full = value if value.lower().endswith(".wav") else value + ".wav"
            parse_name(full)
            value = full
        elif value not in ("0", "1"):
            raise DataError(f"{path}: line {lineno}: expected 0 or 1, got {value!r}")
        if name in out and out[name] != value:
            raise DataError(f"{path}: {name} listed twice with different values")
        out[name] = value
    return out


def _apply_ground_truth(records: list[ClipRecord], gt_root: Path) -> list[ClipRecord]:
    dirs = _ground_truth_dirs(gt_root)
    by_section: dict[tuple[str, str], list[ClipRecord]] = defaultdict(list)
    for rec in records:
        by_section[(rec.machine, rec.section)].append(rec)
    out: list[ClipRecord] = []
    used = 0
    for (machine, section), recs in by_section.items():
        tables = {}
        for kind, folder in dirs.items():
            path = folder / f"ground_truth_{machine}_section_{section}_test.csv"
            if path.is_file():
                tables[kind] = (path, _read_ground_truth_csv(path, kind))
        if not tables:
            out.extend(recs)
            continue
        used += 1
        unmatched_rows = set().union(*(set(t) for _, t in tables.values()))
        missing = 0
        for rec in recs:
            info: dict[str, str | None] = {}
            found = False
            for kind, (path, table) in tables.items():
                if rec.name not in table:
                    continue
                found = True
                unmatched_rows.discard(rec.name)
                value = table[rec.name]
                if kind == "ground_truth_data":
                    new = {"label": "anomaly" if value == "1" else "normal"}
                elif kind == "ground_truth_domain":
                    new = {"domain": "target" if value == "1" else "source"}
                else:
                    full = parse_name(value)
                    new = {k: full[k] for k in ("domain", "label", "attributes")}
                for key, val in new.items():
                    have = info.get(key) or getattr(rec, key)
                    if have is not None and val is not None and have != val:
                        raise DataError(
                            f"{path}: {rec.name} is {key} {val!r} here but {have!r} in its "
                            "file name or another ground-truth file"
                        )
                    info[key] = have or val
            if not found and (rec.label is None or rec.domain is None):
                missing += 1
            out.append(replace(rec, **info) if info else rec)
        if missing:
            logger.warning(
                "%s %s section %s: %d unlabeled clip(s) have no ground-truth row",
                gt_root,
                machine,
                section,
                missing,
            )
        if unmatched_rows and any(r.label is None or r.domain is None for r in recs):
            logger.warning(
                "%s: %d ground-truth row(s) for %s section %s name no clip in the tree (e.g. %s)",
                gt_root,
                len(unmatched_rows),
                machine,
                section,
                sorted(unmatched_rows)[0],
            )
    if not used:
        logger.warning(
            "%s: no ground_truth_<machine>_section_<xx>_test.csv for any scanned section (%s)",
            gt_root,
            ", ".join(f"{m}_section_{s}" for m, s in sorted(by_section)),
        )
    return out


def _scan_machine(
    machine: str, machine_dir: Path, part: str, subset: str
) -> list[tuple[Path, dict]]:
    subset_dir = machine_dir / subset
    if not subset_dir.is_dir():
        raise DataError(f"{machine_dir}: missing {subset}/ folder needed for split {part}-{subset}")
    abs_dir = subset_dir.resolve()
    items = []
    seen_names: dict[str, Path] = {}
    seen_ids: dict[tuple, Path] = {}
    for path in sorted(subset_dir.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() != ".wav" or path.is_dir():
            if not path.name.startswith("."):
                logger.debug("%s: not a wav file, ignored", path)
            continue
        try:
            fields = parse_name(path.name)
        except DataError as exc:  # name the whole path, not only the file name
            raise DataError(f"{path.parent}{os.sep}{exc}") from None
        if fields["subset"] not in (None, subset):
            raise DataError(f"{path}: a {fields['subset']} clip inside the {subset}/ folder")
        folded = path.name.lower()
        clip_id = tuple(fields[k] for k in ("section", "domain", "label", "index", "attributes"))
        other = seen_names.get(folded) or seen_ids.get(clip_id)
        if other is not None:
            raise DataError(
                f"{path}: duplicate of {other.name} in section {fields['section']} "
                f"of {machine} (the same clip twice)"
            )
        seen_names[folded] = path
        seen_ids[clip_id] = path
        items.append((abs_dir / path.name, fields))
    return items


def _warn_train_domains(records: list[ClipRecord]) -> None:
    counts: dict[str, Counter] = defaultdict(Counter)
    for rec in records:
        counts[rec.section_key][rec.domain] += 1
    for key, count in counts.items():
        for domain in ("source", "target"):
            if count[domain] == 0:
                logger.warning("%s: no %s-domain training clips", key, domain)


def scan(
    root: str | os.PathLike,
    *,
    split: str = "dev-train",
    ground_truth: str | os.PathLike | None = None,
    machines: Sequence[str] | None = None,
) -> list[ClipRecord]:
    """Scan a DCASE2022/2023-layout tree into clip records (no audio is opened).

    Parameters
    ----------
    root : path-like
        Dataset root holding ``dev_data/`` and/or ``eval_data/``, or one of
        those folders itself (``.../dev_data/raw/`` as unpacked by the
        organisers' baseline is accepted too).
    split : str
        One of :data:`SPLITS`: ``"dev-train"``, ``"dev-test"``, ``"eval-train"``,
        ``"eval-test"``.
    ground_truth : path-like, optional
        Folder with the organisers' ground-truth CSVs (see the module docstring)
        used to label unlabeled test clips. Default: ``<root>/ground_truth/``
        when it exists.
    machines : sequence of str, optional
        Only these machine types (folder names). Default: all.

    Returns
    -------
    list of ClipRecord
        Sorted by (machine, section, file name).

    Raises
    ------
    DataError
        Missing root, missing ``train/``/``test/`` folder, a file name that does
        not follow the naming, duplicate clips, no clips, unknown split or
        machine, inconsistent ground truth.
    """
    part, subset = _parse_split(split)
    root = Path(root).expanduser()
    split_dir, dataset_root = _split_dir(root, part)
    all_machines = _machine_dirs(split_dir)
    if machines is not None:
        unknown = sorted(set(machines) - set(all_machines))
        if unknown:
            raise DataError(
                f"{split_dir}: no machine folder(s) {', '.join(unknown)}; "
                f"found {', '.join(all_machines)}"
            )
        selected = {m: all_machines[m] for m in sorted(set(machines))}
    else:
        selected = all_machines

    found: list[tuple[str, Path, dict]] = []
    for machine, machine_dir in selected.items():
        found.extend((machine, p, f) for p, f in _scan_machine(machine, machine_dir, part, subset))
    if not found:
        raise DataError(f"{split_dir}: no wav clips found for split {split}")

    dataset = detect_dataset(all_machines, {f["section"] for _, _, f in found})
    records = [
        ClipRecord(
            path=path,
            dataset=dataset,
            split=part,
            subset=subset,
            machine=machine,
            section=f["section"],
            domain=f["domain"],
            label=f["label"],
            index=f["index"],
            attributes=f["attributes"],
        )
        for machine, path, f in found
    ]
    checked: list[ClipRecord] = []
    for machine, machine_dir in selected.items():
        checked.extend(_check_attributes([r for r in records if r.machine == machine], machine_dir))
    records = checked

    unlabeled = any(r.label is None or r.domain is None for r in records)
    if subset == "test" and not unlabeled:
        logger.debug("all %s clips are labeled by their names; ground truth not read", split)
    elif subset == "test":
        gt_root = None
        if ground_truth is not None:
            gt_root = Path(ground_truth).expanduser()
        elif dataset_root is not None and (dataset_root / "ground_truth").is_dir():
            gt_root = dataset_root / "ground_truth"
            logger.info("using ground truth found in %s", gt_root)
        if gt_root is not None:
            records = _apply_ground_truth(records, gt_root)
    elif ground_truth is not None:
        logger.info("ground truth is only used for test clips; ignored for %s", split)
    if subset == "train":
        _warn_train_domains(records)
    n_unlabeled = sum(r.label is None for r in records)
    if n_unlabeled:
        logger.info("%d of %d clips have no normal/anomaly label", n_unlabeled, len(records))

    records.sort(key=lambda r: (r.machine, r.section, r.name))
    synthetic = dataset_root is not None and (dataset_root / "synth.json").is_file()
    logger.info(
        "%s: %d %s clips, %s, machines %s",
        split_dir,
        len(records),
        split,
        "synthetic (asdxai synth)" if synthetic else dataset,  # its names fit either DCASE year
        ", ".join(selected),
    )
    return records


def normal_train_clips(clip: str | os.PathLike) -> list[Path]:
    """The normal training clips of ``clip``'s machine type and section, from the DCASE tree
    around it: ``<machine>/train/section_XX_[<domain>_]train_normal_*.wav`` beside the clip's
    ``<machine>/<train|test>/`` folder (``dev_data/`` or ``eval_data/``), of the clip's domain
    where its name states one.

    Parameters
    ----------
    clip : path-like, a clip of a DCASE-layout tree (its name gives the section)

    Returns
    -------
    list of Path
        Absolute paths, sorted by name (at least one).

    Raises
    ------
    DataError
        The clip's name or folder is not of a DCASE layout, there is no ``train/`` folder beside
        it, or its section (and domain) has no normal training clip.
    """
    clip = Path(clip).resolve()
    try:
        fields = parse_name(clip.name)
    except DataError:
        fields = None
    machine_dir = clip.parent.parent
    if fields is None or clip.parent.name not in ("train", "test") or not (
        machine_dir / "train"
    ).is_dir():
        raise DataError(
            f"{clip}: not a clip of a DCASE layout (<machine>/<train|test>/section_XX_...wav "
            "with a train/ folder beside it)"
        )
    split_dir = machine_dir.parent
    part = "eval" if "eval_data" in (split_dir.name, split_dir.parent.name) else "dev"
    domain = fields["domain"]
    found = [
        r.path for r in scan(split_dir, split=f"{part}-train", machines=[machine_dir.name])
        if r.section == fields["section"] and r.label == "normal"
        and (domain is None or r.domain == domain)
    ]  # fmt: skip
    if not found:
        what = f"section {fields['section']}" + ("" if domain is None else f", {domain} domain")
        raise DataError(f"{machine_dir / 'train'}: no normal training clip of {what}")
    return found


def class_labels(
    records: Sequence[ClipRecord], task: str, *, with_domain: bool = False
) -> tuple[np.ndarray, list[str]]:
    """Integer class labels of the auxiliary classification task.

    Parameters
    ----------
    records : sequence of ClipRecord
        Usually the training records.
    task : str
        ``"none"`` (one class ``"all"``), ``"machine"`` (machine type),
        ``"section"`` (machine type + section, class name = section key) or
        ``"attribute"`` (machine type + section + attribute string, class name
        ``f"{section_key}_{attributes}"``).
    with_domain : bool
        Task ``"attribute"`` only: append the domain, ``f"{section_key}_{attributes}_{domain}"``,
        as the study author's code labels its classes (section + attributes + "is source"). It
        changes the classes only where one attribute string occurs in both domains of a section;
        that never happens in the organisers' evaluation test names (``docs/FIDELITY.md``).

    Returns
    -------
    labels : np.ndarray [shape=(N,), dtype=int64]
        Class index of every record.
    names : list of str
        Sorted class names; ``names[labels[i]]`` is record i's class.

    Raises
    ------
    ConfigError
        Unknown task, or ``with_domain`` with a task other than ``"attribute"``.
    DataError
        No records, or (task ``"attribute"``) a record without attribute string (or, with
        ``with_domain``, without domain).
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if with_domain and task != "attribute":
        raise ConfigError(f"with_domain applies to the attribute task only, not {task!r}")
    if not records:
        raise DataError("no records to derive class labels from")
    if task == "none":
        keys = ["all"] * len(records)
    elif task == "machine":
        keys = [r.machine for r in records]
    elif task == "section":
        keys = [r.section_key for r in records]
    else:
        keys = []
        for rec in records:
            if rec.attributes is None:
                raise DataError(
                    f"{rec.path}: no attribute string; the attribute task needs full file names "
                    "(or ground truth with attributes)"
                )
            key = f"{rec.section_key}_{rec.attributes}"
            if with_domain:
                if rec.domain is None:
                    raise DataError(f"{rec.path}: no domain in the name for a domain class")
                key = f"{key}_{rec.domain}"
            keys.append(key)
    names = sorted(set(keys))
    lookup = {name: i for i, name in enumerate(names)}
    labels = np.fromiter((lookup[k] for k in keys), dtype=np.int64, count=len(keys))
    return labels, names
