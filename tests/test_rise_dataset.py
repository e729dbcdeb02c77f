"""``asdxai rise --data``: the clips a selection picks, the summary table read back from the
``.h5`` files, resume, the refusals, and two gloo ranks sharing the clips."""

import json
import os
import socket

import numpy as np
import pytest
import torch.multiprocessing as mp
from conftest import tiny_checkpoint

from asdxai.cli import main
from asdxai.data.synth import PresetConfig, generate
from asdxai.errors import DataError
from asdxai.explain.result import load_result
from asdxai.layout import Layout
from asdxai.workflows.rise_dataset import (
    ALL_ROW,
    SUMMARY_MEASURES,
    select_clips,
    summarise_maps,
    summary_files,
)

#: Two machine types x two dev sections x 8 test clips (4 anomalous), 1 s long.
TINY = PresetConfig("rise-data", machines=("fan", "valve"), dev_sections=(0, 1),
                    eval_sections=(3,), duration_s=1.0, n_train_source=2, n_train_target=1,
                    n_test=2)  # fmt: skip
SECTIONS = tuple(f"{m}_section_{s:02d}" for m in TINY.machines for s in TINY.dev_sections)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("rise-data")
    generate(root / "tree", preset=TINY, seed=0, workers=1, progress=False, splits=("dev-test",))
    ckpt = tiny_checkpoint(root / "tiny.pt", TINY.feature_config(), section=SECTIONS)
    return {"tree": root / "tree", "ckpt": ckpt}


def _argv(assets, out, *extra):
    return ["rise", "--checkpoint", str(assets["ckpt"]), "--data", str(assets["tree"]), "--out",
            str(out), "--n-masks", "100", "--block-size", "50", "--batch-size", "50", "--study",
            "--device", "cpu", "--no-plot", "--no-progress", *extra]  # fmt: skip


def _names(records):
    return [(r.section_key, r.name) for r in records]


def test_selection_picks_the_expected_clips(assets):
    tree = assets["tree"]
    every = select_clips(tree, split="dev-test", sections=SECTIONS)
    assert len(every) == 4 * 8
    first = select_clips(tree, split="dev-test")  # default: the first section of each machine type
    assert {r.section_key for r in first} == {"fan_section_00", "valve_section_00"}
    assert _names(first) == _names(r for r in every if r.section == "00")
    three = select_clips(tree, split="dev-test", limit_per_section=3)
    want = [x for key in ("fan_section_00", "valve_section_00")
            for x in [y for y in _names(every) if y[0] == key][:3]]  # fmt: skip
    assert _names(three) == want
    ones = select_clips(tree, split="dev-test", sections=["01"], machines=["valve"],
                        anomalous_only=True)  # fmt: skip
    assert len(ones) == 4 and all(r.section_key == "valve_section_01" for r in ones)
    assert all(r.label == "anomaly" for r in ones)
    assert len(select_clips(tree, split="dev-test", sections=["fan_section_01"], limit=5)) == 5
    with pytest.raises(DataError, match="fan_section_07") as err:
        select_clips(tree, split="dev-test", sections=["fan_section_00", "fan_section_07"])
    assert err.value.param == "sections" and "valve_section_01" in str(err.value)
    with pytest.raises(DataError, match="fan_section_02, valve_section_02"):
        select_clips(tree, split="dev-test", sections=["02"])


def test_summary_is_the_mean_of_the_saved_maps_and_a_rerun_computes_nothing(assets, tmp_path,
                                                                             capsys):  # fmt: skip
    out = tmp_path / "out"
    assert main(_argv(assets, out, "--limit-per-section", "3", "--sections", "00", "01")) == 0
    printed = capsys.readouterr().out
    assert "explaining 12 clips of 4 sections" in printed and "rise_summary.md" in printed
    records = select_clips(assets["tree"], split="dev-test", sections=["00", "01"],
                           limit_per_section=3)  # fmt: skip
    maps = [Layout(out).map_files(r.path, plot=False)["map"] for r in records]
    assert all(h5.is_file() for h5 in maps)
    saved = json.loads(summary_files(out)["json"].read_text())
    assert [row["machine"] for row in saved["rows"]] == ["fan", "valve", ALL_ROW]
    measures = [load_result(h5).meta["measures"] for h5 in maps]
    for row in saved["rows"]:
        mine = [m for m, r in zip(measures, records, strict=True)
                if row["machine"] in (ALL_ROW, r.machine)]  # fmt: skip
        assert row["clips"] == len(mine) == (12 if row["machine"] == ALL_ROW else 6)
        assert row["anomalous"] == sum("pixel_auc" in m for m in mine) > 0
        for key in SUMMARY_MEASURES:  # a known answer: the mean and sample std of the files
            values = [m[key] for m in mine if key in m]
            assert row[key]["n"] == len(values) > 0, key
            assert row[key]["mean"] == pytest.approx(np.mean(values), abs=1e-12)
            assert row[key]["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    csv_text = summary_files(out)["csv"].read_text()
    assert csv_text.startswith("machine,clips,anomalous,machine_focus,machine_focus_std,")
    assert "| all | 12 |" in summary_files(out)["md"].read_text()
    # a re-run recomputes nothing and rewrites the same summary
    before = {h5: h5.stat().st_mtime_ns for h5 in maps}
    assert main(_argv(assets, out, "--limit-per-section", "3", "--sections", "00", "01")) == 0
    assert capsys.readouterr().out.count("already complete, kept") == 12
    assert {h5: h5.stat().st_mtime_ns for h5 in maps} == before
    assert json.loads(summary_files(out)["json"].read_text()) == saved
    # a clip whose result is gone: left out of the summary (and said so), then made again alone
    maps[0].unlink()
    partial = summarise_maps(records, out, write=False)
    assert partial.missing == [maps[0]] and partial.rows[-1]["clips"] == 11
    assert main(_argv(assets, out, "--limit-per-section", "3", "--sections", "00", "01")) == 0
    assert capsys.readouterr().out.count("already complete, kept") == 11
    assert json.loads(summary_files(out)["json"].read_text()) == saved


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--clip", "x.wav"], ["--clip", "--data", "not allowed"]),
        (["--sections", "fan_section_07"], ["fan_section_07", "(option --sections)"]),
        (["--section", "fan_section_00"], ["--section", "--sections"]),
    ],
)
def test_refusals_are_one_clear_line(assets, tmp_path, capsys, extra, words):
    assert main(_argv(assets, tmp_path / "o", *extra)) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert not (tmp_path / "o" / "fan").exists()


def test_data_options_are_refused_with_clips(assets, tmp_path, capsys):
    clip = next((assets["tree"] / "dev_data" / "fan" / "test").glob("*.wav"))
    argv = ["rise", "--checkpoint", str(assets["ckpt"]), "--clip", str(clip), "--out",
            str(tmp_path / "o"), "--limit-per-section", "2", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    assert "--limit-per-section select clips of --data" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, argv: list[str]) -> None:
    """One ``torchrun`` rank: the environment it sets, then the command."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    assert main(argv) == 0


def test_two_gloo_ranks_share_the_clips_and_rank_0_writes_the_summary(assets, tmp_path):
    out, single = tmp_path / "two", tmp_path / "one"
    argv = _argv(assets, out, "--limit-per-section", "2")
    mp.spawn(_rank, args=(2, _free_port(), argv), nprocs=2, join=True)
    assert main(_argv(assets, single, "--limit-per-section", "2")) == 0
    records = select_clips(assets["tree"], split="dev-test", limit_per_section=2)
    for r in records:
        a, b = (load_result(Layout(o).map_files(r.path)["map"]) for o in (out, single))
        np.testing.assert_allclose(a.importance, b.importance, rtol=1e-6, atol=1e-6)
    two, one = (json.loads(summary_files(o)["json"].read_text()) for o in (out, single))
    assert two["rows"] == one["rows"] and two["rows"][-1]["clips"] == 4
