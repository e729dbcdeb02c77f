"""Where results go: :mod:`asdxai.layout` decides, the commands, the demo and the figures ask it."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from asdxai.layout import KINDS, RISE_SUMMARY, Layout, output_stem, safe_name, table_files

ROOT = Path(__file__).resolve().parent.parent
#: What names a result: its file types and the folders of :data:`asdxai.layout.KINDS`.
RESULT_SUFFIXES = (".h5", ".png", ".pdf", ".csv", ".md", ".tex", ".json", ".pt", ".wav")
RESULT_PREFIXES = ("summary_", "results_", "anomaly_score_", "decision_result_")
#: Files of a synthetic data tree (inputs, laid out by :mod:`asdxai.data.synth`), not results.
DATA_FILES = ("synth.json", "anomaly_masks.h5")


def _names_a_result(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):  # an f-string: its literal parts
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    else:
        return False
    return text not in DATA_FILES and (text.endswith(RESULT_SUFFIXES)
                                       or text.startswith(RESULT_PREFIXES)
                                       or text in KINDS.values())  # fmt: skip


def _result_joins(path: Path, root: Path = ROOT) -> list[str]:
    """``<file>:<line>: / <right operand>`` of every ``/`` in ``path`` whose right side names a
    result."""
    tree = ast.parse(path.read_text())
    return [f"{path.relative_to(root)}:{n.lineno}: / {ast.unparse(n.right)}"
            for n in ast.walk(tree)
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
            and _names_a_result(n.right)]  # fmt: skip


def test_commands_demo_and_figures_leave_result_paths_to_the_layout():
    files = [*(ROOT / "asdxai" / "cli").glob("*.py"), ROOT / "asdxai" / "demo.py",
             *(ROOT / "figures").glob("*.py")]  # fmt: skip
    joins = [j for f in files for j in _result_joins(f)]
    assert not joins, joins


def test_the_path_walk_sees_a_result_join(tmp_path):
    """The check above can fail: it finds ``out / "x.csv"``, ``out / f"{s}.h5"`` and a folder."""
    src = tmp_path / "bad.py"
    src.write_text('a = out / "x.csv"\nb = out / f"{s}.h5"\nc = out / "rise"\nd = out / name\n')
    hits = _result_joins(src, tmp_path)
    assert [h.split(":")[1] for h in hits] == ["1", "2", "3"]


def test_demo_tree(tmp_path):
    layout = Layout(tmp_path)
    clip = tmp_path / "data" / "fan" / "test" / "section_00_anomaly_0001.wav"
    assert layout.data == tmp_path / "data"
    assert layout.models.checkpoint("sc-adacos") == tmp_path / "models" / "sc-adacos.pt"
    assert layout.scores.model("m").score_record() == tmp_path / "scores" / "m" / "score.json"
    assert layout.maps.model("m").map_stem(clip) == (
        tmp_path / "rise" / "m" / "fan" / "section_00_anomaly_0001"
    )
    assert layout.tsne.tsne_files("m")["distances"] == tmp_path / "tsne" / "m_distances.csv"
    assert layout.figure("fig4_rise") == tmp_path / "fig4_rise.png"
    assert layout.record("demo") == tmp_path / "demo.json"
    # `asdxai rise --data`: the run's summary beside the machine folders of its maps
    maps = layout.maps.model("m")
    assert [p.name for p in table_files(maps.table(RISE_SUMMARY))] == [
        "rise_summary.csv", "rise_summary.md", "rise_summary.tex"]  # fmt: skip
    assert maps.record(RISE_SUMMARY) == tmp_path / "rise" / "m" / "rise_summary.json"


def test_a_dot_in_a_stem_stays(tmp_path):
    """``Path.with_suffix`` would cut ``a0.95`` to ``a0.h5``."""
    stem = Layout(tmp_path).maps.model("k", "seed0-n8000-a0.95").root / "clip"
    assert Layout(stem.parent).map_files("clip.wav")["map"].name == "clip.h5"
    assert Layout(tmp_path).tsne_files("run.v2")["result"].name == "run.v2.h5"
    assert [p.name for p in table_files(tmp_path / "t0.5")] == ["t0.5.csv", "t0.5.md", "t0.5.tex"]


def test_score_and_listen_files(tmp_path):
    layout = Layout(tmp_path)
    assert layout.score_file("fan_section_00").name == "anomaly_score_fan_section_00_test.csv"
    assert layout.decision_file("fan_section_00").name == (
        "decision_result_fan_section_00_test.csv"
    )
    assert layout.results("study") == tmp_path / "results_study"
    assert {k: p.name for k, p in layout.listen_files("c").items()} == {
        "flagged": "c_flagged.wav", "rest": "c_rest.wav", "original": "c_original.wav",
        "overlay": "c_overlay.png",
    }  # fmt: skip


@pytest.mark.parametrize(("label", "name"), [("a b/c", "a_b_c"), ("..", "model"), ("x.pt", "x.pt")])
def test_safe_name(label, name):
    assert safe_name(label) == name


def test_output_stem_resolves_dots_without_following_links(tmp_path):
    real = tmp_path / "store" / "fan" / "test"
    real.mkdir(parents=True)
    (real / "a.wav").write_bytes(b"")
    link = tmp_path / "valve"
    os.symlink(tmp_path / "store" / "fan", link)
    out = tmp_path / "out"
    assert output_stem(out, link / "test" / "a.wav") == out / "valve" / "a"
    assert output_stem(out, real / ".." / ".." / "x.wav") == out / "x"
    assert output_stem(out, "../../x.wav").is_relative_to(out)


def test_the_layout_is_frozen(tmp_path):
    layout = Layout(str(tmp_path))
    assert layout.root == tmp_path
    with pytest.raises(AttributeError):
        layout.root = Path("/")  # type: ignore[misc]
