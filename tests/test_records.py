"""File-name parsing, tree scanning, ground truth and class counting (no audio is read)."""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from asdxai.data.records import (
    SPLITS,
    ClipRecord,
    class_labels,
    detect_dataset,
    parse_name,
    scan,
)
from asdxai.errors import ConfigError, DataError

NAMES = Path(__file__).parent / "data" / "dcase-names"
GT2023 = NAMES / "dcase2023_eval_ground_truth"


def _read_list(path: Path) -> dict[str, list[tuple[str, str]]]:
    """machine -> [(unlabeled_name, full_name)] from an organisers' eval list."""
    out: dict[str, list[tuple[str, str]]] = {}
    machine = None
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if len(row) == 1:
                machine = row[0].strip()
                out[machine] = []
            elif len(row) == 2:
                out[machine].append((row[0].strip(), row[1].strip()))
    return out


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _dev_tree(root: Path, machines=("fan", "valve"), sections=("00", "01", "02")) -> Path:
    for m in machines:
        for s in sections:
            base = root / "dev_data" / m
            for domain, n in (("source", 3), ("target", 1)):
                for i in range(n):
                    _touch(base / f"train/section_{s}_{domain}_train_normal_{i:04d}_a_{i}.wav")
            for domain in ("source", "target"):
                for label in ("normal", "anomaly"):
                    _touch(base / f"test/section_{s}_{domain}_test_{label}_0000_a_1.wav")
    return root


# --------------------------------------------------------------------------- parse_name


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "section_00_source_train_normal_0000_car_F1_spd_31V_mic_1_noise_6.wav",
            ("00", "source", "train", "normal", 0, "car_F1_spd_31V_mic_1_noise_6"),
        ),
        (
            "section_01_target_test_anomaly_0042_vel_2_f-n_D.wav",
            ("01", "target", "test", "anomaly", 42, "vel_2_f-n_D"),
        ),
        (
            "section_00_source_train_normal_0123_noAttribute.wav",
            ("00", "source", "train", "normal", 123, "noAttribute"),
        ),
        ("section_02_source_train_normal_0007.wav", ("02", "source", "train", "normal", 7, None)),
        ("section_03_test_0000.wav", ("03", None, "test", None, 0, None)),
        ("section_03_0199.wav", ("03", None, None, None, 199, None)),
        # organisers' ground-truth full names come without the extension
        (
            "section_00_target_test_anomaly_0012_car_C1_spd_1_mic_2",
            ("00", "target", "test", "anomaly", 12, "car_C1_spd_1_mic_2"),
        ),
        (
            "dir/section_05_target_test_anomaly_0199_v1pat_04_v2pat_05.wav",
            ("05", "target", "test", "anomaly", 199, "v1pat_04_v2pat_05"),
        ),
    ],
)
def test_parse_name_variants(name, expected):
    got = parse_name(name)
    keys = ("section", "domain", "subset", "label", "index", "attributes")
    assert tuple(got[k] for k in keys) == expected
    assert isinstance(got["index"], int)


@pytest.mark.parametrize(
    "name",
    [
        "foo.wav",
        "normal_id_00_00000000.wav",  # DCASE2020 naming
        "section_0_source_train_normal_0000_a.wav",
        "section_00_source_normal_0000_a.wav",  # label without train/test
        "section_00_source_train_normal_000_a.wav",  # 3-digit index
        "section_00_source_train_normal_0000_a.flac",
        "section_00_source_train_normal_0000_.wav",
    ],
)
def test_parse_name_rejects_bad_names(name):
    with pytest.raises(DataError, match=name.replace(".", r"\.")):
        parse_name(name)


@pytest.mark.parametrize("year", [2022, 2023])
def test_parse_every_real_eval_name(year):
    lists = _read_list(NAMES / f"eval_data_list_{year}.csv")
    n = 0
    for rows in lists.values():
        for unlabeled, full in rows:
            u = parse_name(unlabeled)
            f = parse_name(full)
            # independent split: section_XX_<domain>_test_<label>_<index>_<attributes>.wav
            parts = full[: -len(".wav")].split("_", 6)
            assert (u["domain"], u["label"], u["attributes"], u["subset"]) == (None,) * 4
            assert u["index"] == int(unlabeled[11:15])
            assert u["section"] == f["section"] == parts[1]
            assert f["domain"] == parts[2] and f["subset"] == parts[3] == "test"
            assert f["label"] == parts[4] and f["index"] == int(parts[5])
            assert f["attributes"] == parts[6] and f["attributes"]
            n += 1
    assert len(lists) == 7
    assert n == {2022: 4200, 2023: 1400}[year]


# --------------------------------------------------------------------------- scan


def test_scan_dev_tree_fields_and_order(tmp_path):
    root = _dev_tree(tmp_path)
    recs = scan(root, split="dev-train")
    assert len(recs) == 2 * 3 * 4
    assert all(isinstance(r, ClipRecord) for r in recs)
    keys = [(r.machine, r.section, r.name) for r in recs]
    assert keys == sorted(keys)
    r = recs[0]
    assert r.path.is_absolute() and r.path.exists()
    assert (r.dataset, r.split, r.subset, r.machine, r.section) == (
        "DCASE2022", "dev", "train", "fan", "00",
    )  # fmt: skip
    assert r.section_key == "fan_section_00"
    assert r.name == r.path.name
    assert r.split_name == "dev-train"
    assert {x.domain for x in recs} == {"source", "target"}
    assert all(x.label == "normal" and x.is_anomaly is False for x in recs)

    test = scan(root, split="dev-test", machines=["valve"])
    assert {r.machine for r in test} == {"valve"}
    assert sum(r.is_anomaly for r in test) == 3 * 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.machine = "x"


def test_scan_accepts_split_folder_and_raw(tmp_path):
    root = _dev_tree(tmp_path / "a")
    full = scan(root, split="dev-test")
    assert [r.path for r in scan(root / "dev_data", split="dev-test")] == [r.path for r in full]
    raw = tmp_path / "b" / "dev_data" / "raw"
    shutil.copytree(root / "dev_data", raw)
    assert [r.name for r in scan(tmp_path / "b", split="dev-test")] == [r.name for r in full]


def test_scan_does_not_open_audio(tmp_path, monkeypatch):
    import soundfile

    def boom(*a, **k):
        raise AssertionError("scan opened audio")

    monkeypatch.setattr(soundfile, "info", boom)
    monkeypatch.setattr(soundfile, "read", boom)
    monkeypatch.setattr(soundfile, "SoundFile", boom)
    assert scan(_dev_tree(tmp_path), split="dev-train")


def test_dataset_detection_rule():
    assert detect_dataset(["fan", "ToyCar"], ["00", "01", "02"]) == "DCASE2022"
    assert detect_dataset(["fan"], ["03", "04", "05"]) == "DCASE2022"
    assert detect_dataset(["fan", "ToyCar"], ["00"]) == "DCASE2023"
    assert detect_dataset(["ToyDrone", "bandsaw"], ["00"]) == "DCASE2023"
    assert detect_dataset(["ToyDrone"], ["03"]) == "unknown"
    assert detect_dataset(["humming_box"], ["00", "01"]) == "unknown"
    assert detect_dataset(["fan"], ["07"]) == "unknown"


def test_scan_detects_2023_and_unknown(tmp_path):
    _dev_tree(tmp_path / "d23", machines=("fan", "bearing"), sections=("00",))
    assert {r.dataset for r in scan(tmp_path / "d23", split="dev-train")} == {"DCASE2023"}
    _dev_tree(tmp_path / "syn", machines=("pump_x",), sections=("00", "01"))
    assert {r.dataset for r in scan(tmp_path / "syn", split="dev-test")} == {"unknown"}


def test_scan_eval_train_and_unlabeled_test(tmp_path):
    for i in range(3):
        _touch(tmp_path / f"eval_data/fan/train/section_03_source_train_normal_{i:04d}_a.wav")
        _touch(tmp_path / f"eval_data/fan/train/section_04_target_train_normal_{i:04d}_a.wav")
        _touch(tmp_path / f"eval_data/fan/test/section_03_{i:04d}.wav")
        _touch(tmp_path / f"eval_data/fan/test/section_04_test_{i:04d}.wav")
    train = scan(tmp_path, split="eval-train")
    assert {(r.split, r.subset, r.dataset) for r in train} == {("eval", "train", "DCASE2022")}
    test = scan(tmp_path, split="eval-test")
    assert len(test) == 6
    assert all(r.label is None and r.domain is None and r.is_anomaly is None for r in test)
    assert [r.index for r in test] == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize(
    "make, split, match",
    [
        (lambda r: None, "dev-train", "does not exist"),
        (lambda r: _dev_tree(r), "dev_train", "unknown split"),
        (lambda r: _dev_tree(r), "eval-test", "no eval_data"),
        (lambda r: _touch(r / "dev_data/fan/train/section_00_source_train_normal_0000_a.wav"),
         "dev-test", "missing test/ folder"),
        (lambda r: (r / "dev_data/fan/train").mkdir(parents=True), "dev-train", "no wav clips"),
        (lambda r: (r / "dev_data/fan").mkdir(parents=True), "dev-train", "no machine folders"),
        (lambda r: [_touch(r / "eval_data/fan/test/section_03_0000.wav"),
                    _touch(r / "eval_data/fan/test/section_03_test_0000.wav")],
         "eval-test", "duplicate"),
        (lambda r: [_touch(r / "dev_data/fan/train/section_00_source_train_normal_0000_a.wav"),
                    _touch(r / "dev_data/fan/train/section_00_source_train_normal_0000_a.WAV")],
         "dev-train", "duplicate"),
        (lambda r: _touch(r / "dev_data/fan/train/recording_17.wav"), "dev-train",
         "recording_17.wav: file name does not follow"),
        (lambda r: _touch(r / "dev_data/fan/train/section_00_source_test_normal_0000_a.wav"),
         "dev-train", "test clip inside the train/ folder"),
    ],
)  # fmt: skip
def test_scan_errors(tmp_path, make, split, match):
    root = tmp_path / "tree"
    make(root)
    with pytest.raises(DataError, match=match):
        scan(root, split=split)


def test_scan_split_folder_mismatch_and_unknown_machine(tmp_path):
    _dev_tree(tmp_path)
    with pytest.raises(DataError, match="dev_data/ folder but split eval"):
        scan(tmp_path / "dev_data", split="eval-train")
    with pytest.raises(DataError, match="no machine folder.*pump"):
        scan(tmp_path, split="dev-train", machines=["pump"])


def test_scan_ignores_hidden_and_non_wav_files(tmp_path):
    _dev_tree(tmp_path)
    _touch(tmp_path / "dev_data/fan/train/._section_00_source_train_normal_0000_a_0.wav")
    _touch(tmp_path / "dev_data/fan/train/notes.txt")
    assert len(scan(tmp_path, split="dev-train")) == 24


def test_scan_warns_on_section_without_target_clips(tmp_path, caplog):
    _touch(tmp_path / "dev_data/fan/train/section_01_source_train_normal_0000_a.wav")
    _touch(tmp_path / "dev_data/fan/test/section_01_source_test_normal_0000_a.wav")
    with caplog.at_level(logging.WARNING):
        scan(tmp_path, split="dev-train")
    assert "fan_section_01: no target-domain training clips" in caplog.text


# --------------------------------------------------------------------------- attributes CSV


def _attr_tree(root: Path, csv_text: str) -> Path:
    for i in range(3):
        _touch(root / f"dev_data/fan/train/section_00_source_train_normal_{i:04d}_m-n_W_x_{i}.wav")
    _touch(root / "dev_data/fan/train/section_00_target_train_normal_0000_m-n_X_x_9.wav")
    (root / "dev_data/fan/attributes_00.csv").write_text(csv_text)
    return root


def test_attributes_csv_consistent_gives_no_warning(tmp_path, caplog):
    rows = ["file_name,d1p,d1v,d2p,d2v"]
    rows += [f"fan/train/section_00_source_train_normal_{i:04d}_m-n_W_x_{i}.wav,m-n,W,x,{i}"
             for i in range(3)]  # fmt: skip
    rows += ["fan/train/section_00_target_train_normal_0000_m-n_X_x_9.wav,m-n,X,x,9"]
    with caplog.at_level(logging.WARNING):
        recs = scan(_attr_tree(tmp_path, "\n".join(rows) + "\n"), split="dev-train")
    assert len(recs) == 4
    assert "attributes_00.csv" not in caplog.text


def test_attributes_csv_missing_rows_and_extra_columns_warn(tmp_path, caplog):
    text = (
        "file_name,d1p,d1v,extra\n"
        "fan/train/section_00_source_train_normal_0000_m-n_W_x_0.wav,m-n,W,x,0\n"
        "fan/train/section_00_source_train_normal_0001_m-n_W_x_1.wav,m-n,W,x,7,surplus\n"
    )
    with caplog.at_level(logging.WARNING):
        recs = scan(_attr_tree(tmp_path, text), split="dev-train")
    assert len(recs) == 4  # warnings, no crash; names keep their attributes
    assert recs[1].attributes == "m-n_W_x_1"
    assert "unexpected columns" in caplog.text
    assert "different number of columns" in caplog.text
    assert "no row for 2 of 4" in caplog.text
    assert "disagree with the attribute string" in caplog.text


def test_attributes_csv_fills_unlabeled_clips(tmp_path):
    _touch(tmp_path / "eval_data/fan/test/section_03_0000.wav")
    _touch(tmp_path / "eval_data/fan/test/section_03_0001.wav")
    (tmp_path / "eval_data/fan/attributes_03.csv").write_text(
        "file_name,d1p,d1v\nfan/test/section_03_0000.wav,vel,4\nfan/test/section_03_0001.wav,,\n"
    )
    recs = scan(tmp_path, split="eval-test")
    assert [r.attributes for r in recs] == ["vel_4", "noAttribute"]


# --------------------------------------------------------------------------- class counting


def _real_names_tree(root: Path, year: int, full: bool) -> dict[str, list[tuple[str, str]]]:
    lists = _read_list(NAMES / f"eval_data_list_{year}.csv")
    for machine, rows in lists.items():
        folder = root / "eval_data" / machine / "test"
        folder.mkdir(parents=True)
        for unlabeled, full_name in rows:
            os.close(os.open(folder / (full_name if full else unlabeled), os.O_CREAT | os.O_WRONLY))
    return lists


@pytest.mark.parametrize("year, n_sections", [(2022, 21), (2023, 7)])
def test_class_counts_on_real_names(tmp_path, year, n_sections):
    lists = _real_names_tree(tmp_path, year, full=True)
    recs = scan(tmp_path, split="eval-test")
    assert len(recs) == sum(len(v) for v in lists.values())
    assert {r.dataset for r in recs} == {f"DCASE{year}"}

    # independent count: split the full names by hand
    triples = {
        (m, full.split("_")[1], full[:-4].split("_", 6)[6])
        for m, rows in lists.items()
        for _, full in rows
    }
    pairs = {(m, s) for m, s, _ in triples}
    assert len(pairs) == n_sections

    for task, expected in (("none", 1), ("machine", 7), ("section", len(pairs)),
                           ("attribute", len(triples))):  # fmt: skip
        labels, names = class_labels(recs, task)
        assert labels.dtype == np.int64 and labels.shape == (len(recs),)
        assert len(names) == expected == len(np.unique(labels))
        assert names == sorted(names)
    labels, names = class_labels(recs, "attribute")
    for rec, lab in zip(recs, labels, strict=True):
        assert names[lab] == f"{rec.section_key}_{rec.attributes}"
    labels, names = class_labels(recs, "section")
    assert all(names[lab] == rec.section_key for rec, lab in zip(recs, labels, strict=True))


def test_class_labels_errors(tmp_path):
    _real_names_tree(tmp_path, 2023, full=False)
    recs = scan(tmp_path, split="eval-test")
    with pytest.raises(DataError, match="no attribute string"):
        class_labels(recs, "attribute")
    with pytest.raises(ConfigError, match="unknown task"):
        class_labels(recs, "machines")
    with pytest.raises(DataError):
        class_labels([], "machine")
    labels, names = class_labels(recs, "none")
    assert names == ["all"] and not labels.any()


# --------------------------------------------------------------------------- ground truth


def _gt_table(kind: str, machine: str) -> dict[str, str]:
    with open(GT2023 / kind / f"ground_truth_{machine}_section_00_test.csv", newline="") as fh:
        return {row[0]: row[1] for row in csv.reader(fh) if row}


def _unlabeled_2023_tree(root: Path) -> list[str]:
    machines = sorted(p.name[len("ground_truth_"):-len("_section_00_test.csv")]
                      for p in (GT2023 / "ground_truth_data").iterdir())  # fmt: skip
    for m in machines:
        for name in _gt_table("ground_truth_data", m):
            _touch(root / "eval_data" / m / "test" / name)
    return machines


def _check_against_gt(recs: list[ClipRecord], machines: list[str]) -> None:
    assert len(recs) == 200 * len(machines)
    for m in machines:
        labels = _gt_table("ground_truth_data", m)
        domains = _gt_table("ground_truth_domain", m)
        full = _gt_table("ground_truth_attributes", m)
        for r in (r for r in recs if r.machine == m):
            assert r.is_anomaly == (labels[r.name] == "1")
            assert r.domain == ("target" if domains[r.name] == "1" else "source")
            assert r.attributes == full[r.name].split("_", 6)[6]
            assert r.index == int(r.name[11:15])  # the file's own index is kept


def test_ground_truth_explicit(tmp_path):
    machines = _unlabeled_2023_tree(tmp_path)
    assert {r.label for r in scan(tmp_path, split="eval-test")} == {None}
    recs = scan(tmp_path, split="eval-test", ground_truth=GT2023)
    assert {r.dataset for r in recs} == {"DCASE2023"}
    _check_against_gt(recs, machines)
    labels, names = class_labels(recs, "attribute")  # attributes known from ground truth
    assert len(names) > 7


def test_ground_truth_found_next_to_eval_data(tmp_path, caplog):
    machines = _unlabeled_2023_tree(tmp_path)
    shutil.copytree(GT2023, tmp_path / "ground_truth")
    with caplog.at_level(logging.INFO):
        recs = scan(tmp_path / "eval_data", split="eval-test")
    assert "ground_truth" in caplog.text
    _check_against_gt(recs, machines)


def test_ground_truth_partial_and_missing_rows_warn(tmp_path, caplog):
    _unlabeled_2023_tree(tmp_path)
    gt = tmp_path / "gt"
    (gt / "ground_truth_data").mkdir(parents=True)
    src = GT2023 / "ground_truth_data" / "ground_truth_shaker_section_00_test.csv"
    lines = src.read_text().splitlines()
    (gt / "ground_truth_data" / src.name).write_text(
        "wav,label\n" + "\n".join(lines[:150] + ["section_00_9999.wav,1"]) + "\n"
    )
    with caplog.at_level(logging.WARNING):
        recs = scan(tmp_path, split="eval-test", ground_truth=gt)
    shaker = [r for r in recs if r.machine == "shaker"]
    assert sum(r.label is not None for r in shaker) == 150
    assert all(r.domain is None for r in shaker)  # no domain file given
    assert all(r.label is None for r in recs if r.machine != "shaker")
    assert "50 unlabeled clip(s) have no ground-truth row" in caplog.text
    assert "1 ground-truth row(s)" in caplog.text


def test_ground_truth_conflict_and_bad_values(tmp_path):
    _unlabeled_2023_tree(tmp_path)
    gt = tmp_path / "gt"
    shutil.copytree(GT2023, gt)
    path = gt / "ground_truth_data" / "ground_truth_bandsaw_section_00_test.csv"
    rows = path.read_text().splitlines()
    name, value = rows[0].split(",")
    path.write_text("\n".join([f"{name},{1 - int(value)}"] + rows[1:]) + "\n")
    with pytest.raises(DataError, match=f"{name} is label"):
        scan(tmp_path, split="eval-test", ground_truth=gt)
    path.write_text(f"{name},yes\n")
    with pytest.raises(DataError, match="expected 0 or 1"):
        scan(tmp_path, split="eval-test", ground_truth=gt)
    with pytest.raises(DataError, match="does not exist"):
        scan(tmp_path, split="eval-test", ground_truth=tmp_path / "nope")
    (tmp_path / "empty_gt").mkdir()
    with pytest.raises(DataError, match="no ground_truth_data"):
        scan(tmp_path, split="eval-test", ground_truth=tmp_path / "empty_gt")


def test_splits_constant():
    assert SPLITS == ("dev-train", "dev-test", "eval-train", "eval-test")


def test_ground_truth_for_other_sections_warns(tmp_path, caplog):
    _touch(tmp_path / "eval_data/fan/test/section_03_0000.wav")
    with caplog.at_level(logging.WARNING):
        recs = scan(tmp_path, split="eval-test", ground_truth=GT2023)
    assert recs[0].label is None
    assert "no ground_truth_<machine>_section_<xx>_test.csv for any scanned section" in caplog.text


def test_normal_train_clips_of_a_clip_are_its_sections_and_domains(tmp_path):
    from conftest import tiny_tree

    from asdxai.data.records import normal_train_clips

    tiny_tree(tmp_path, 400, n_source=3, n_target=2)
    pump = tmp_path / "dev_data" / "pump"
    source = pump / "test" / "section_01_source_test_anomaly_0003_a_1.wav"
    target = pump / "test" / "section_01_target_test_normal_0006_a_1.wav"
    found = normal_train_clips(source)
    assert [p.name for p in found] == [f"section_01_source_train_normal_{i:04d}_a_1.wav"
                                       for i in range(3)]  # fmt: skip
    assert all(p.is_absolute() and p.parent == (pump / "train").resolve() for p in found)
    assert len(normal_train_clips(target)) == 2
    unlabeled = pump / "test" / "section_01_0099.wav"  # no domain in the name: every domain
    shutil.copy(source, unlabeled)
    assert len(normal_train_clips(unlabeled)) == 5
    for bad in (pump / "test" / "section_02_source_test_normal_0000_a_1.wav",
                tmp_path / "loose" / source.name):  # fmt: skip
        bad.parent.mkdir(exist_ok=True)
        shutil.copy(source, bad)
        with pytest.raises(DataError):
            normal_train_clips(bad)
